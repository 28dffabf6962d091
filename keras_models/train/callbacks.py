"""Keras callbacks for training runs: atomic checkpoints and backups, NaN refusal, the best epoch, stop reasons.

Everything here is the Keras ecosystem (BackupAndRestore, TensorBoard, TerminateOnNaN) plus what it lacks for
flows that must be deployable: checkpoints and backups are written atomically (temporary file + rename, so a
crash never leaves half a file where the last good one was), never with non-finite weights, and in a
multi-worker run only the chief writes where everyone reads.

Resuming: `AtomicBackupAndRestore` backs up the model and optimizer at the end of every epoch; a new `fit`
with the same callback (the same `backup_dir`) restores them and continues at the next epoch. For the same
result as an uninterrupted run, the data must continue where it stopped too: `backed_up_epoch(backup_dir)`
says where, before the dataset is built (`keras_models.train.run` skips the batches already seen). The atomic
writes themselves are `keras_models.core.io`'s.
"""

import contextlib
import glob
import json
import math
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence

import keras
import numpy as np

from keras_models.core.io import (
    atomic_write_json,
    non_finite_weights,
    remove_stale_temporaries,
    save_model_atomically,
    save_through_temporary,
)
from keras_models.train.distribute import is_chief


class AtomicCheckpoint(keras.callbacks.Callback):
    """Saves the whole model to `path` (a `.keras` file) at the end of every epoch, atomically.

    An epoch that ends with non-finite weights is not saved (the last good file stays), training stops and
    `stop_reason` says why. `path=None` only checks (non-chief workers must stop with the chief).
    """

    def __init__(self, path: str | None) -> None:
        super().__init__()
        self.path = path
        self.stop_reason = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.path:
            remove_stale_temporaries(self.path)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        bad = non_finite_weights(self.model)
        if bad:
            self.stop_reason = (
                f"non-finite weights after epoch {epoch + 1} in {bad[:3]}: not saved, the last good checkpoint is kept"
            )
            self.model.stop_training = True
            return
        if self.path:
            save_model_atomically(self.model, self.path)


class NaNGuard(keras.callbacks.TerminateOnNaN):
    """Keras' TerminateOnNaN that also records why it stopped (for metrics.json)."""

    def __init__(self) -> None:
        super().__init__()
        self.stop_reason = None
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._epoch = epoch

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(float(np.asarray(loss))) and self.stop_reason is None:
            self.stop_reason = (
                f"non-finite loss ({float(np.asarray(loss))}) at epoch {self._epoch + 1}, batch "
                f"{batch + 1}: stopped by TerminateOnNaN, the last good checkpoint is kept"
            )
        super().on_batch_end(batch, logs)


BACKUP_STATE_FILE = "state.json"


def read_backup_state(backup_dir: str) -> dict | None:
    """The backup's state {"epoch": n, "weights": file name} (n epochs done), or None when there is none."""
    path = os.path.join(backup_dir, BACKUP_STATE_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as handle:
        state = json.load(handle)
    if not os.path.isfile(os.path.join(backup_dir, state.get("weights", ""))):
        raise ValueError(
            f"the backup in {backup_dir!r} names weights {state.get('weights')!r} that are missing; "
            "expected them beside state.json (was the folder edited or partly copied?)"
        )
    return state


def backed_up_epoch(backup_dir: str) -> int:
    """How many epochs the backup in `backup_dir` has completed (0 when there is no backup)."""
    state = read_backup_state(backup_dir)
    return int(state["epoch"]) if state else 0


def seed_states(model: keras.Model) -> list:
    """The states of `model`'s random seed generators (Dropout's), in the model's own order (its structure, not the
    auto-numbered names, which depend on what the process built before).

    `save_weights` leaves them out (they are not weights), so a backup records them beside the weights: a resumed
    run then draws the dropout masks the uninterrupted run would have drawn."""
    return [v for v in model.non_trainable_variables if v.path.endswith("seed_generator_state")]


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` made crash-safe, NaN-proof and multi-worker aware.

    At the end of every epoch the model's and optimizer's variables go to a new file `epoch-<n>.weights.h5`
    (temporary name, fsync, rename), then `state.json` ({"epoch": n, "weights": ...}) is replaced atomically,
    then older weight files are deleted: a SIGKILL at any moment leaves one complete, consistent backup. (Keras'
    own callback rewrites `latest.weights.h5` in place and the epoch afterwards, so a kill in between resumes
    from a torn file or with the wrong epoch.) An epoch cut short (TerminateOnNaN) or ending with non-finite
    weights is not backed up. A write that fails (disk full, read-only folder) leaves the previous backup as it
    was and stops `fit` with an OSError (same errno) naming the file, the cause and the backup that is left.

    A `fit` that starts with a backup present restores it and continues at epoch n (so `fit(epochs=E)` runs
    E - n more epochs). Multi-worker runs: every worker restores from `backup_dir` (the chief's, on storage all
    workers see), but only the chief (`chief=True`) writes there; other workers write into a private temporary
    folder removed when training ends, as tf.keras did (saving may need every worker's collectives).

    Args:
      backup_dir: the folder of the backup (one per training run; nothing else may write there).
      chief: whether this process writes `backup_dir` (default: `is_chief()` from TF_CONFIG).
      delete_checkpoint: delete the backup when `fit` ends normally (Keras' default True); keep it (False) to
        let a finished run be resumed for more epochs.
    """

    def __init__(self, backup_dir: str, chief: bool | None = None, delete_checkpoint: bool = True) -> None:
        super().__init__(backup_dir, save_freq="epoch", delete_checkpoint=delete_checkpoint)
        self.chief = is_chief() if chief is None else bool(chief)
        self.write_dir = None
        self.restored_epoch = 0
        self._batches_done = 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.write_dir = self.backup_dir if self.chief else tempfile.mkdtemp(prefix="tfp-flows-worker-backup-")
        self._remove_stale_temporaries()
        state = read_backup_state(self.backup_dir)
        self.restored_epoch = 0
        if state is None:
            return
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)  # its variables must exist to be loaded
        self.model.load_weights(os.path.join(self.backup_dir, state["weights"]))
        for variable, value in zip(seed_states(self.model), state.get("seed_states", [])):
            variable.assign(value)
        self.restored_epoch = int(state["epoch"])
        # Keras has no public hook for "fit starts at epoch n" from a callback; this attribute is what its own
        # BackupAndRestore sets, and tests/test_fault_tolerance.py's test_a_new_fit_restores_the_backup_and_continues_
        # at_its_epoch fails the day Keras changes it.
        self.model._initial_epoch = self.restored_epoch

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._batches_done = 0

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._batches_done = batch + 1  # backups happen at epoch ends only

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        steps = (self.params or {}).get("steps")
        if steps and self._batches_done < steps:
            return  # stopped mid-epoch (TerminateOnNaN): a partial epoch is not a finished one
        if non_finite_weights(self.model):
            return  # keep the last good backup; NaNGuard / AtomicCheckpoint stop the run and say why
        self._write(epoch + 1)

    def _write(self, epoch):
        weights_name = f"epoch-{epoch:06d}.weights.h5"
        weights_path = os.path.join(self.write_dir, weights_name)
        state_path = os.path.join(self.write_dir, BACKUP_STATE_FILE)
        target = weights_path
        try:
            save_through_temporary(
                lambda tmp: self.model.save_weights(tmp, overwrite=True), weights_path, suffix=".weights.h5"
            )
            target = state_path
            seeds = [np.asarray(variable).tolist() for variable in seed_states(self.model)]
            atomic_write_json(state_path, {"epoch": epoch, "weights": weights_name, "seed_states": seeds})
        except OSError as error:
            raise self._write_failed(error, epoch, target, weights_path) from error
        for stale in glob.glob(os.path.join(glob.escape(self.write_dir), "*.weights.h5")):
            if os.path.basename(stale) != weights_name:
                os.remove(stale)
        self._remove_stale_temporaries()

    def _write_failed(self, error, epoch, target, weights_path):
        """The OSError to raise when backing up `epoch` failed writing `target` (disk full, read-only, ...).

        It keeps `error`'s errno and names the file, the cause and the backup that is left: the temporary file
        is gone and state.json still names the previous, complete weights."""
        try:
            previous = read_backup_state(self.write_dir)
        except (OSError, ValueError):
            previous = None
        if target != weights_path and (previous is None or previous["weights"] != os.path.basename(weights_path)):
            with contextlib.suppress(OSError):
                os.remove(weights_path)  # in place, but state.json could not name it: nothing ever will
        kept = (
            f"the previous backup (epoch {previous['epoch']}, {previous['weights']}) in {self.write_dir!r} is "
            "intact: free some space or make the folder writable, then resume from it (tfp-flows train --resume)"
            if previous
            else f"there is no previous backup in {self.write_dir!r}"
        )
        cause = error.strerror or str(error)
        return OSError(error.errno, f"could not back up epoch {epoch}: writing {target!r} failed ({cause}); {kept}")

    def _remove_stale_temporaries(self):
        """Temporary files of writes a kill interrupted (this process is the only writer of `write_dir`)."""
        for stale in glob.glob(os.path.join(glob.escape(self.write_dir), ".tmp-*")):
            with contextlib.suppress(OSError):
                os.remove(stale)

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.write_dir and self.write_dir != self.backup_dir:
            shutil.rmtree(self.write_dir, ignore_errors=True)
        elif self.delete_checkpoint and self.chief and not self.model.stop_training:
            shutil.rmtree(self.backup_dir, ignore_errors=True)
        self.write_dir = None


BEST_WEIGHTS_FILE = "best.weights.h5"
BEST_STATE_FILE = "best.json"


def read_best_state(folder: str) -> dict | None:
    """{"epoch": n, "val_loss": v} of the best validation epoch saved in `folder`, or None."""
    path = os.path.join(folder, BEST_STATE_FILE)
    if not os.path.isfile(path) or not os.path.isfile(os.path.join(folder, BEST_WEIGHTS_FILE)):
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


class BestEpochCheckpoint(keras.callbacks.Callback):
    """Keeps the best validation epoch's weights on disk, crash-safe: what Keras' `ModelCheckpoint(monitor="val_loss",
    save_best_only=True, save_weights_only=True)` does, on the public `Callback` hooks only.

    At the end of an epoch whose `monitor` value is finite and below the best so far, the weights go to
    `folder/best.weights.h5` through a temporary file and a rename, then `folder/best.json` ({"epoch", "val_loss"})
    is replaced atomically. The best value survives a resume: a new callback on the same folder starts from it,
    so a run killed and resumed keeps the same best epoch as one never interrupted. `restore(model)` loads the best
    weights at the end of training (what `EarlyStopping(restore_best_weights=True)` does, without stopping early
    and without holding the weights only in memory). Only the chief writes (`chief=False`: nothing); every
    worker keeps the same `best_epoch`.
    """

    def __init__(self, folder: str, chief: bool = True, monitor: str = "val_loss") -> None:
        super().__init__()
        self.folder = folder
        self.filepath = os.path.join(folder, BEST_WEIGHTS_FILE)
        self.monitor = monitor
        self.chief = bool(chief)
        state = read_best_state(folder)
        self.best = math.inf if state is None else float(state["val_loss"])
        self.best_epoch = None if state is None else int(state["epoch"])

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.chief:  # a run killed while writing the best epoch left its temporary files here
            for path in (self.filepath, os.path.join(self.folder, BEST_STATE_FILE)):
                remove_stale_temporaries(path)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        current = (logs or {}).get(self.monitor)
        if current is None:
            warnings.warn(
                f"BestEpochCheckpoint: the logs of epoch {epoch + 1} have no {self.monitor!r} (fit without "
                f"validation_data?); expected one of them, received {sorted(logs or {})}",
                stacklevel=2,
            )
            return
        current = float(np.asarray(current))
        if not current < self.best:  # NaN never improves
            return
        previous = (self.best, self.best_epoch)
        self.best, self.best_epoch = current, epoch + 1
        if not self.chief:
            return
        try:
            save_through_temporary(
                lambda tmp: self.model.save_weights(tmp, overwrite=True), self.filepath, suffix=".weights.h5"
            )
            atomic_write_json(
                os.path.join(self.folder, BEST_STATE_FILE), {"epoch": self.best_epoch, "val_loss": current}
            )
        except OSError as error:
            # Not fatal: the backup is what a run cannot go on without (it stops the run and says why); here the
            # previous best stays on disk, and so in memory, so that restore() and metrics.json agree.
            self.best, self.best_epoch = previous
            warnings.warn(
                f"could not save epoch {epoch + 1} as the best epoch in {self.folder!r} "
                f"({error.strerror or error}); keeping the previous best (epoch {self.best_epoch})",
                stacklevel=2,
            )

    def restore(self, model: keras.Model) -> int | None:
        """Load the best epoch's weights into `model`; returns that epoch (None when none was saved)."""
        if read_best_state(self.folder) is None:
            return None
        model.load_weights(self.filepath)
        return self.best_epoch


def default_callbacks(
    run_dir: str,
    backup: bool = True,
    tensorboard: bool = True,
    checkpoint: bool = True,
    chief: bool | None = None,
    best: bool = False,
) -> list[keras.callbacks.Callback]:
    """NaN guard, BackupAndRestore (resume after a crash), TensorBoard and an atomic checkpoint in `run_dir`.

    `chief` (default: `is_chief()` from TF_CONFIG): only the chief writes; every worker still checks for
    non-finite losses and weights, so that all of them stop together. `best=True` adds a `BestEpochCheckpoint`
    (the best validation epoch's weights in `run_dir/best/`) after the backup, so that a run folder that can no
    longer be written fails first where the backup's error explains what is left. (A kill in the instant
    between the two writes resumes after that epoch without having compared it: a known, narrow gap.)
    """
    chief = is_chief() if chief is None else bool(chief)
    callbacks = [NaNGuard()]
    if backup:
        callbacks.append(AtomicBackupAndRestore(os.path.join(run_dir, "backup"), chief=chief, delete_checkpoint=False))
    if best:
        callbacks.append(BestEpochCheckpoint(os.path.join(run_dir, "best"), chief=chief))
    if tensorboard and chief:
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(run_dir, "tensorboard"), write_graph=False))
    if checkpoint:
        callbacks.append(AtomicCheckpoint(os.path.join(run_dir, "model.keras") if chief else None))
    return callbacks


def stop_reason(callbacks: Sequence[keras.callbacks.Callback]) -> str | None:
    """The first recorded reason a callback stopped training, or None."""
    for callback in callbacks:
        reason = getattr(callback, "stop_reason", None)
        if reason:
            return reason
    return None
