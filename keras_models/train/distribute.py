"""tf.distribute for a run: the strategy named on the command line and which process writes files."""

import json
import os

import tensorflow as tf


def is_chief(tf_config=None):
    """True unless TF_CONFIG makes this process a non-chief worker (only the chief writes files).

    The chief is task "chief", or worker 0 when the cluster has no "chief" job (MultiWorkerMirroredStrategy's
    rule). Without TF_CONFIG every process is its own chief.
    """
    config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}") if tf_config is None else tf_config
    task = config.get("task", {})
    task_type = task.get("type", "chief")
    if task_type == "chief":
        return True
    return task_type == "worker" and int(task.get("index", 0)) == 0 and "chief" not in config.get("cluster", {})


def make_strategy(name):
    """The tf.distribute strategy for --strategy default|mirrored|multiworker."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown strategy {name!r}; expected one of ['default', 'mirrored', 'multiworker']")
