"""Training plumbing shared by the command line and users: Keras callbacks, atomic writes, NaN refusal.

Everything here is the Keras ecosystem (BackupAndRestore, TensorBoard, TerminateOnNaN) plus the two things it
lacks for flows that must be deployable: checkpoints are written atomically (temporary file + rename, so a
crash never leaves half a file where the last good one was) and never with non-finite weights.
"""
import json
import os
import tempfile

import numpy as np

from keras_models import _backend  # noqa: F401
import keras


def non_finite_weights(model):
    """Paths of the weights (trainable or not) holding NaN or infinity."""
    bad = []
    for weight in model.weights:
        value = keras.ops.convert_to_numpy(weight)
        if np.issubdtype(value.dtype, np.floating) and not np.all(np.isfinite(value)):
            bad.append(weight.path)
    return bad


def atomic_write_text(path, text):
    """Write `text` to `path` through a temporary file in the same folder and an atomic rename."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write_json(path, obj):
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def save_model_atomically(model, path):
    """`model.save(path)` through a temporary `.keras` file and a rename; refuses non-finite weights."""
    bad = non_finite_weights(model)
    if bad:
        raise ValueError(f"refusing to save {path}: non-finite weights in {bad[:5]}"
                         f"{' and more' if len(bad) > 5 else ''}")
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".keras")
    os.close(fd)
    try:
        model.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


class AtomicCheckpoint(keras.callbacks.Callback):
    """Saves the whole model to `path` (a `.keras` file) at the end of every epoch, atomically.

    An epoch that ends with non-finite weights is not saved (the last good file stays) and `stop_reason`
    says why.
    """

    def __init__(self, path):
        super().__init__()
        self.path = path
        self.stop_reason = None

    def on_epoch_end(self, epoch, logs=None):
        bad = non_finite_weights(self.model)
        if bad:
            self.stop_reason = f"non-finite weights after epoch {epoch + 1}: {bad[:3]}"
            self.model.stop_training = True
            return
        save_model_atomically(self.model, self.path)


class NaNGuard(keras.callbacks.TerminateOnNaN):
    """Keras' TerminateOnNaN that also records why it stopped (for metrics.json)."""

    def __init__(self):
        super().__init__()
        self.stop_reason = None

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(float(np.asarray(loss))):
            self.stop_reason = f"loss became {float(np.asarray(loss))} at batch {batch}"
        super().on_batch_end(batch, logs)


def default_callbacks(run_dir, backup=True, tensorboard=True, checkpoint=True):
    """BackupAndRestore (resume after a crash), TensorBoard, NaN guard and an atomic checkpoint in `run_dir`."""
    callbacks = [NaNGuard()]
    if backup:
        callbacks.append(keras.callbacks.BackupAndRestore(os.path.join(run_dir, "backup"), save_freq="epoch",
                                                          delete_checkpoint=False))
    if tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(run_dir, "tensorboard"), write_graph=False))
    if checkpoint:
        callbacks.append(AtomicCheckpoint(os.path.join(run_dir, "model.keras")))
    return callbacks


def stop_reason(callbacks):
    """The first recorded reason a callback stopped training, or None."""
    for callback in callbacks:
        reason = getattr(callback, "stop_reason", None)
        if reason:
            return reason
    return None
