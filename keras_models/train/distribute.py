"""tf.distribute for a run: the strategy named on the command line and which process writes files."""

import json
import os

import tensorflow as tf

from keras_models.train.config import STRATEGIES


def is_chief(tf_config: dict | None = None) -> bool:
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


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The tf.distribute strategy for --strategy default|mirrored|multiworker (`config.STRATEGIES`)."""
    makers = {
        "default": tf.distribute.get_strategy,
        "mirrored": tf.distribute.MirroredStrategy,
        "multiworker": tf.distribute.MultiWorkerMirroredStrategy,
    }
    if name not in makers:
        raise ValueError(f"unknown strategy {name!r}; expected one of {list(STRATEGIES)}")
    return makers[name]()
