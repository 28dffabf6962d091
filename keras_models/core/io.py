"""Files a model is written to, atomically, and the refusal to write non-finite weights.

Every file that must never be half-written (a `.keras` model, a backup's state, metrics, TF Serving's
models.config) goes through a temporary file in the same folder, an fsync and an atomic rename, so a crash
leaves either the old file or the new one. Shared by `keras_models.train` (checkpoints, backups) and
`keras_models.serving` (exports), which must not depend on each other.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import tempfile
from collections.abc import Callable
from typing import Any

import keras
import numpy as np


def non_finite_weights(model: keras.Model) -> list[str]:
    """Paths of the weights (trainable or not) holding NaN or infinity."""
    bad = []
    for weight in model.weights:
        value = keras.ops.convert_to_numpy(weight)
        if np.issubdtype(value.dtype, np.floating) and not np.all(np.isfinite(value)):
            bad.append(weight.path)
    return bad


def _temporary_prefix(path):
    return f".tmp-{os.path.basename(path)}."


def remove_stale_temporaries(path: str | os.PathLike) -> None:
    """Remove temporary files a killed writer of `path` left beside it (only one process writes `path`)."""
    folder = os.path.dirname(os.path.abspath(path))
    for stale in glob.glob(os.path.join(glob.escape(folder), glob.escape(_temporary_prefix(path)) + "*")):
        with contextlib.suppress(OSError):
            os.remove(stale)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` through a temporary file in the same folder and an atomic rename."""

    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)

    save_through_temporary(write, path, suffix="")


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write `obj` as indented JSON (NumPy numbers and arrays as plain ones) with `atomic_write_text`."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def save_model_atomically(model: keras.Model, path: str | os.PathLike) -> None:
    """`model.save(path)` through a temporary `.keras` file and a rename; refuses non-finite weights."""
    bad = non_finite_weights(model)
    if bad:
        raise ValueError(
            f"refusing to save {path}: non-finite weights in {bad[:5]}{' and more' if len(bad) > 5 else ''}"
        )
    save_through_temporary(model.save, path, suffix=".keras")


def save_through_temporary(save: Callable[[str], object], path: str | os.PathLike, suffix: str) -> None:
    """`save(temporary)` in `path`'s folder, fsync, then an atomic rename onto `path`."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=_temporary_prefix(path), suffix=suffix)
    os.close(fd)
    try:
        save(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
