"""Fault tolerance: a SIGKILLed run resumes exactly (density estimation and variational inference), NaN stops a
run without harming what was saved, a failed backup (disk full, read-only folder) keeps the previous one and
says so, and every write is atomic.

Resuming is explicit: `tfp-flows train --resume RUN_DIR` (the same run folder, so the same config.json and
backup/). Re-running the original command starts a new, timestamped run folder from scratch, by design.
"""

import errno
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfp_flows.datasets
from keras_models import (
    RealNVP,
    _backend,  # noqa: F401
)
from keras_models.train import callbacks as training
from keras_models.train import run
from keras_models.train.common import make_optimizer

TIMEOUT_S = 300
EPOCHS, STEPS = 4, 40
TRAIN_ARGS = [
    "train",
    "--epochs",
    str(EPOCHS),
    "--steps-per-epoch",
    str(STEPS),
    "--batch-size",
    "32",
    "--seed",
    "3",
    "--model-args",
    # Dropout: its random masks must go on where the backup left them, not restart (the seed generators' states).
    json.dumps({"num_couplings": 2, "hidden_units": [8, 8], "actnorm": True, "dropout": 0.2}),
    "--no-export",
    "--quiet",
    "--run-dir",
    "runs",
]
# Variational inference samples its own data: the sampler's state must come back with the backup. Its steps are
# cheap (about 3 ms): 100 keep an epoch well beyond the pause before the kill, so the kill lands inside one.
VI_STEPS = 100
VI_TRAIN_ARGS = [
    "train",
    "--preset",
    "planar",
    "--dataset",
    "U2",
    "--epochs",
    str(EPOCHS),
    "--steps-per-epoch",
    str(VI_STEPS),
    "--batch-size",
    "32",
    "--seed",
    "3",
    "--model-args",
    json.dumps({"num_layers": 2}),
    "--no-export",
    "--quiet",
    "--run-dir",
    "runs",
]
KILLED_RUNS = {  # id: (command line, steps per epoch, the training metric in metrics.json, pause before the kill)
    # With a warmup over half the run, the kill and the resume fall inside it: the schedule must go on at its step.
    "density-realnvp-two_moons": ([*TRAIN_ARGS, "--warmup-fraction", "0.5"], STEPS, "train_nll", 0.2),
    "vi-planar-U2": (VI_TRAIN_ARGS, VI_STEPS, "train_elbo", 0.1),
}


def _env():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env.pop("PYTHONPATH", None)
    env.pop("TF_CONFIG", None)
    return env


def _start(args, cwd):
    return subprocess.Popen(
        [sys.executable, "-m", "keras_models.cli", *args],
        cwd=cwd,
        env=_env(),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _finish(process):
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, f"{stdout}\n{stderr[-4000:]}"
    return stdout


def _only_run_dir(cwd):
    dirs = list((cwd / "runs").iterdir()) if (cwd / "runs").is_dir() else []
    return dirs[0] if len(dirs) == 1 else None


def _kill_after_first_backup(process, cwd, pause_s=0.2):
    """SIGKILL `process` `pause_s` into the epoch after its first backup."""
    deadline = time.time() + TIMEOUT_S
    while time.time() < deadline and process.poll() is None:
        run_dir = _only_run_dir(cwd)
        if run_dir is not None and (run_dir / "backup" / training.BACKUP_STATE_FILE).is_file():
            time.sleep(pause_s)  # into the next epoch's steps
            break
        time.sleep(0.02)
    assert process.poll() is None, "the run ended before it could be killed:\n" + process.communicate()[1][-3000:]
    process.send_signal(signal.SIGKILL)
    stdout, _ = process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL
    return stdout


def _weights(path):
    import keras_models  # noqa: F401  (registers the presets)

    model = keras.saving.load_model(str(path), compile=False)
    # In creation order: auto-generated layer names differ between two models loaded in one process.
    return [(w.path.split("/", 1)[0], np.asarray(w)) for w in model.weights]


@pytest.mark.parametrize("train_args, steps, metric, pause_s", KILLED_RUNS.values(), ids=KILLED_RUNS.keys())
@pytest.mark.slow
def test_a_killed_run_resumes_at_its_last_backup_and_ends_like_an_uninterrupted_one(
    tmp_path, train_args, steps, metric, pause_s
):
    reference_dir, victim_dir = tmp_path / "uninterrupted", tmp_path / "killed"
    reference_dir.mkdir()
    victim_dir.mkdir()
    reference, victim = _start(train_args, reference_dir), _start(train_args, victim_dir)
    try:
        killed_stdout = _kill_after_first_backup(victim, victim_dir, pause_s)
        reference_stdout = _finish(reference)
    finally:
        for process in (reference, victim):
            if process.poll() is None:
                process.kill()
                process.wait()
    run_dir = _only_run_dir(victim_dir)
    backed_up = training.backed_up_epoch(str(run_dir / "backup"))
    assert 1 <= backed_up < EPOCHS, backed_up
    assert not (run_dir / "metrics.json").exists()  # it really died mid-run
    assert f"epoch {EPOCHS}/{EPOCHS}" not in killed_stdout

    resumed_stdout = _finish(_start(["train", "--resume", str(run_dir), "--quiet"], victim_dir))

    epoch_lines = [line.split(":")[0] for line in resumed_stdout.splitlines() if line.startswith("epoch ")]
    assert epoch_lines == [f"epoch {e}/{EPOCHS}" for e in range(backed_up + 1, EPOCHS + 1)], epoch_lines
    metrics = json.loads((run_dir / "metrics.json").read_text())
    reference_metrics = json.loads((_only_run_dir(reference_dir) / "metrics.json").read_text())
    assert metrics["stop_reason"] == reference_metrics["stop_reason"] == "completed"
    assert metrics["resumed_from_epoch"] == backed_up and reference_metrics["resumed_from_epoch"] == 0
    assert metrics["epochs"] == reference_metrics["epochs"] == EPOCHS
    assert metrics["steps"] == reference_metrics["steps"] == EPOCHS * steps
    np.testing.assert_allclose(metrics[metric], reference_metrics[metric], rtol=1e-5)
    assert "epoch 1/" in reference_stdout

    resumed, uninterrupted = _weights(run_dir / "model.keras"), _weights(_only_run_dir(reference_dir) / "model.keras")
    assert [name for name, _ in resumed] == [name for name, _ in uninterrupted]
    for (name, value), (_, expected) in zip(resumed, uninterrupted):
        np.testing.assert_allclose(value, expected, rtol=1e-5, atol=1e-6, err_msg=name)
    assert sorted(p.name for p in (run_dir / "backup").iterdir()) == [f"epoch-{EPOCHS:06d}.weights.h5", "state.json"]
    assert not list(tmp_path.rglob(".tmp-*")), list(tmp_path.rglob(".tmp-*"))


# ------------------------------------------------------------------------------------------------------------
# The resumed data stream: a pure function of (seed, global step), across data-epoch boundaries.
@pytest.mark.slow
def test_the_training_stream_resumes_at_any_step_with_the_batches_an_uninterrupted_run_reads():
    config = run.resolve_config({"batch_size": 4096, "seed": 5})  # 50000 two-moons points: 12 batches per epoch
    reference = list(run._train_stream(config, 0).take(40).as_numpy_iterator())
    for start in (1, 12, 30):  # inside the first data epoch, at its end, inside the third
        resumed = list(run._train_stream(config, start).take(40 - start).as_numpy_iterator())
        for step, batch in enumerate(resumed, start=start):
            np.testing.assert_array_equal(batch, reference[step], err_msg=f"step {step} after resuming at {start}")
    assert not np.array_equal(reference[0], reference[12])  # epochs are shuffled differently


# ------------------------------------------------------------------------------------------------------------
# NaN: the run stops, keeps its last good checkpoint and backup, and metrics.json says why.
POISON_FROM_STEP = 7  # epoch 2 of 5-step epochs


def _poisoned_make_dataset(original):
    def make_dataset(name, split="train", *args, **kwargs):
        dataset = original(name, split, *args, **kwargs)
        if split != "train" or not kwargs.get("repeat"):
            return dataset

        def poison(step, batch):
            return tf.where(step >= POISON_FROM_STEP, tf.fill(tf.shape(batch), np.nan), batch)

        return dataset.enumerate().map(poison)

    return make_dataset


def _train_in_process(tmp_path, **overrides):
    config = {
        "epochs": 3,
        "steps_per_epoch": 5,
        "batch_size": 64,
        "verbose": 0,
        "run_dir": str(tmp_path / "runs"),
        "export_dir": str(tmp_path / "exports"),
        "model_args": {"num_couplings": 2, "hidden_units": [8, 8]},
    }
    config.update(overrides)
    result = run.train(config)
    metrics_text = (pathlib.Path(result["run_dir"]) / "metrics.json").read_text()
    json.loads(metrics_text, parse_constant=lambda c: pytest.fail(f"metrics.json holds {c}: not strict JSON"))
    return pathlib.Path(result["run_dir"]), json.loads(metrics_text)


def _assert_kept_the_epoch_1_checkpoint(run_dir):
    import keras_models  # noqa: F401

    model = keras.saving.load_model(str(run_dir / "model.keras"))
    assert int(model.optimizer.iterations.numpy()) == 5  # written after epoch 1, never touched again
    assert not training.non_finite_weights(model)
    assert training.backed_up_epoch(str(run_dir / "backup")) == 1


@pytest.mark.parametrize(
    "nan_policy, reason",
    [
        ("raise", r"^non-finite input data: `x` \(a batch read from the dataset\) holds NaN or infinity"),
        ("propagate", r"^non-finite loss \(nan\) at epoch 2, batch 3: stopped by TerminateOnNaN"),
    ],
)
@pytest.mark.slow
def test_nan_data_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, nan_policy, reason):
    monkeypatch.setattr(tfp_flows.datasets, "make_dataset", _poisoned_make_dataset(tfp_flows.datasets.make_dataset))
    run_dir, metrics = _train_in_process(
        tmp_path, model_args={"num_couplings": 2, "hidden_units": [8, 8], "nan_policy": nan_policy}
    )
    assert metrics["stop_reason"] != "completed"
    assert re.search(reason, metrics["stop_reason"]), metrics["stop_reason"]
    _assert_kept_the_epoch_1_checkpoint(run_dir)
    assert not (tmp_path / "exports").exists() and "export_path" not in metrics
    assert not list(tmp_path.rglob(".tmp-*"))


def _unit_scale_make_dataset(original):
    """Two moons squashed into (0, 1) (the support of 8-bit data), pushed out of it from POISON_FROM_STEP on."""

    def make_dataset(name, split="train", *args, **kwargs):
        dataset = original(name, split, *args, **kwargs).map(tf.sigmoid)
        if split != "train" or not kwargs.get("repeat"):
            return dataset

        def push_out(step, batch):
            return tf.where(step >= POISON_FROM_STEP, batch - 0.5, batch)

        return dataset.enumerate().map(push_out)

    return make_dataset


@pytest.mark.slow
def test_data_outside_the_support_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setattr(tfp_flows.datasets, "make_dataset", _unit_scale_make_dataset(tfp_flows.datasets.make_dataset))
    run_dir, metrics = _train_in_process(
        tmp_path, preset="nice", model_args={"num_couplings": 2, "hidden_units": [8, 8], "num_bits": 8}
    )
    assert re.search(
        r"^input data outside the model's support: `x` \(a batch read from the dataset\) holds values "
        r"outside the model's support \[0, 1\]; received values in \[-0\.\d+, 0\.\d+\]",
        metrics["stop_reason"],
    ), metrics["stop_reason"]
    _assert_kept_the_epoch_1_checkpoint(run_dir)
    assert not (tmp_path / "exports").exists() and "export_path" not in metrics


@pytest.mark.slow
def test_a_diverging_learning_rate_stops_at_the_first_nan_and_saves_nothing_bad(tmp_path):
    run_dir, metrics = _train_in_process(tmp_path, learning_rate=1e30, epochs=2)
    assert metrics["stop_reason"].startswith("non-finite loss"), metrics["stop_reason"]
    assert metrics["train_nll"] is None or np.isfinite(metrics["train_nll"])
    assert not (run_dir / "model.keras").exists()  # no epoch ended with finite weights
    assert training.backed_up_epoch(str(run_dir / "backup")) == 0
    assert not (tmp_path / "exports").exists()


# ------------------------------------------------------------------------------------------------------------
# A backup that cannot be written (disk full, read-only folder): the previous one stays and the error says so.
def _backups_done(folder):
    return os.path.basename(folder) == "backup" and training.backed_up_epoch(folder) >= 1


def _disk_full_while_writing_the_weights(monkeypatch, original):
    def save_weights(model, filepath, *args, **kwargs):
        original(model, filepath, *args, **kwargs)
        if _backups_done(os.path.dirname(filepath)):
            with open(filepath, "r+b") as handle:  # the disk filled up halfway through the file
                handle.truncate(os.path.getsize(filepath) // 2)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), filepath)

    monkeypatch.setattr(keras.Model, "save_weights", save_weights)
    return errno.ENOSPC, "epoch-000002.weights.h5", "No space left on device"


def _disk_full_while_writing_the_state(monkeypatch, original):
    write_json = training.atomic_write_json

    def atomic_write_json(path, obj):
        if os.path.basename(path) == training.BACKUP_STATE_FILE and _backups_done(os.path.dirname(path)):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        write_json(path, obj)

    monkeypatch.setattr(training, "atomic_write_json", atomic_write_json)
    return errno.ENOSPC, training.BACKUP_STATE_FILE, "No space left on device"


def _run_folder_made_read_only(monkeypatch, original):
    mkstemp = training.tempfile.mkstemp

    def read_only_after_the_first_backup(*args, dir=None, **kwargs):
        run_dir = os.path.dirname(os.path.abspath(dir))
        if _backups_done(os.path.join(run_dir, "backup")) or _backups_done(dir):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), dir)
        return mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(training.tempfile, "mkstemp", read_only_after_the_first_backup)
    return errno.EROFS, "epoch-000002.weights.h5", "Read-only file system"


@pytest.mark.parametrize(
    "fault",
    [_disk_full_while_writing_the_weights, _disk_full_while_writing_the_state, _run_folder_made_read_only],
    ids=["disk-full-weights", "disk-full-state", "read-only-folder"],
)
@pytest.mark.slow
def test_a_backup_that_cannot_be_written_keeps_the_previous_one_and_says_why(tmp_path, monkeypatch, capsys, fault):
    from keras_models import cli

    snapshots = []  # the model's weights at each backup, as the backup saw them
    original = keras.Model.save_weights

    def recording(model, filepath, *args, **kwargs):
        snapshots.append([np.array(w) for w in model.weights])
        original(model, filepath, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "save_weights", recording)
    error_number, failed_file, cause = fault(monkeypatch, recording)

    code = cli.main(
        [
            "train",
            "--epochs",
            "3",
            "--steps-per-epoch",
            "5",
            "--batch-size",
            "64",
            "--model-args",
            json.dumps({"num_couplings": 2, "hidden_units": [8, 8]}),
            "--no-export",
            "--quiet",
            "--run-dir",
            str(tmp_path / "runs"),
        ]
    )

    message = capsys.readouterr().err.strip().splitlines()[-1]
    (run_dir,) = (tmp_path / "runs").iterdir()
    backup = run_dir / "backup"
    assert code == 1, message
    assert re.fullmatch(
        rf"tfp-flows train: error: \[Errno {error_number}\] could not back up epoch 2: writing "
        rf"'{re.escape(str(backup / failed_file))}' failed \({cause}\); the previous backup \(epoch 1, "
        rf"epoch-000001.weights.h5\) in '{re.escape(str(backup))}' is intact: .*--resume\)",
        message,
    ), message
    # The previous backup is whole: state.json names it, nothing half-written is left, its weights load back.
    assert training.backed_up_epoch(str(backup)) == 1
    assert sorted(p.name for p in backup.iterdir()) == ["epoch-000001.weights.h5", "state.json"]
    assert not list(tmp_path.rglob(".tmp-*"))
    config = run.resolve_config(json.loads((run_dir / "config.json").read_text()))
    model = run.build_model(
        config["preset"], (2,), **run._model_args(config, tfp_flows.datasets.dataset_info(config["dataset"]))
    )
    model.compile(optimizer=make_optimizer(config))
    model.optimizer.build(model.trainable_variables)
    model.load_weights(str(backup / "epoch-000001.weights.h5"))
    assert int(model.optimizer.iterations.numpy()) == 5
    for value, expected in zip(model.weights, snapshots[0], strict=True):
        np.testing.assert_array_equal(np.asarray(value), expected)


# ------------------------------------------------------------------------------------------------------------
# Atomic writes and refusals, in process.
def test_a_failed_atomic_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    training.atomic_write_json(str(path), {"epoch": 1})

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        training.atomic_write_json(str(path), {"epoch": 2})
    assert json.loads(path.read_text()) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def _small_model():
    model = RealNVP((2,), num_couplings=2, hidden_units=(4,))
    model.compile(optimizer="adam")
    return model


def _poison_one_weight(model):
    weight = model.trainable_weights[0]
    weight.assign(np.full(weight.shape, np.nan, weight.dtype))


@pytest.mark.slow
def test_checkpoints_and_backups_refuse_non_finite_weights(tmp_path):
    x = np.random.default_rng(0).normal(size=(64, 2)).astype("float32")
    model = _small_model()
    backup = training.AtomicBackupAndRestore(str(tmp_path / "backup"), chief=True, delete_checkpoint=False)
    checkpoint = training.AtomicCheckpoint(str(tmp_path / "model.keras"))
    model.fit(x, batch_size=32, epochs=2, callbacks=[backup, checkpoint], verbose=0)
    assert training.backed_up_epoch(str(tmp_path / "backup")) == 2
    saved = (tmp_path / "model.keras").read_bytes()

    _poison_one_weight(model)
    backup.set_model(model)
    checkpoint.set_model(model)
    backup.write_dir = str(tmp_path / "backup")
    backup.on_epoch_end(2)
    checkpoint.on_epoch_end(2)
    assert training.backed_up_epoch(str(tmp_path / "backup")) == 2  # the good backup stays
    assert (tmp_path / "model.keras").read_bytes() == saved
    assert checkpoint.stop_reason.startswith("non-finite weights after epoch 3") and model.stop_training
    with pytest.raises(ValueError, match=r"refusing to save .*non-finite weights in \["):
        training.save_model_atomically(model, str(tmp_path / "other.keras"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup", "model.keras"]


@pytest.mark.slow
def test_a_new_fit_restores_the_backup_and_continues_at_its_epoch(tmp_path):
    x = np.random.default_rng(0).normal(size=(64, 2)).astype("float32")
    first = _small_model()
    callback = training.AtomicBackupAndRestore(str(tmp_path / "backup"), chief=True, delete_checkpoint=False)
    first.fit(x, batch_size=32, epochs=2, callbacks=[callback], verbose=0)
    second = _small_model()
    history = second.fit(
        x,
        batch_size=32,
        epochs=3,
        verbose=0,
        callbacks=[training.AtomicBackupAndRestore(str(tmp_path / "backup"), chief=True, delete_checkpoint=False)],
    )
    assert len(history.history["loss"]) == 1  # only epoch 3 ran
    assert int(second.optimizer.iterations.numpy()) == 6  # 2 restored epochs of 2 steps, plus one more


@pytest.mark.slow
def test_an_epoch_cut_short_is_not_backed_up(tmp_path):
    class StopInSecondEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == 1 and batch == 0:
                self.model.stop_training = True  # as TerminateOnNaN does

    x = np.random.default_rng(0).normal(size=(64, 2)).astype("float32")
    callback = training.AtomicBackupAndRestore(str(tmp_path / "backup"), chief=True, delete_checkpoint=False)
    _small_model().fit(x, batch_size=16, epochs=3, verbose=0, callbacks=[StopInSecondEpoch(), callback])
    assert training.backed_up_epoch(str(tmp_path / "backup")) == 1


@pytest.mark.slow
def test_a_worker_restores_from_the_chiefs_backup_but_writes_elsewhere(tmp_path):
    x = np.random.default_rng(0).normal(size=(64, 2)).astype("float32")
    chief_model = _small_model()
    chief_model.fit(
        x,
        batch_size=32,
        epochs=1,
        verbose=0,
        callbacks=[training.AtomicBackupAndRestore(str(tmp_path / "backup"), chief=True, delete_checkpoint=False)],
    )
    before = sorted(p.name for p in (tmp_path / "backup").iterdir())
    worker = training.AtomicBackupAndRestore(str(tmp_path / "backup"), chief=False, delete_checkpoint=False)
    worker_model = _small_model()
    worker_model.fit(x, batch_size=32, epochs=2, verbose=0, callbacks=[worker])
    assert worker.restored_epoch == 1
    assert sorted(p.name for p in (tmp_path / "backup").iterdir()) == before  # untouched by the worker


@pytest.mark.parametrize(
    "tf_config, chief",
    [
        ({}, True),
        ({"cluster": {"chief": ["a:1"], "worker": ["b:1"]}, "task": {"type": "chief", "index": 0}}, True),
        ({"cluster": {"chief": ["a:1"], "worker": ["b:1"]}, "task": {"type": "worker", "index": 0}}, False),
        ({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 0}}, True),
        ({"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}, False),
        ({"cluster": {"worker": ["a:1"], "evaluator": ["c:1"]}, "task": {"type": "evaluator", "index": 0}}, False),
    ],
)
def test_only_the_chief_writes(tf_config, chief):
    assert training.is_chief(tf_config) is chief
