"""Per-example log-densities of a user's rows under a trained flow: what `tfp-flows score` and `evaluate --data` run.

`load_scorer(path)` opens a checkpoint (a run folder or its `model.keras`) or a SavedModel alone (a version
folder or `saved_models/<name>`, its newest version) and returns a `Scorer`: a function of float rows to
log p(x) in nats, the model's column names (tabular models: those it was trained on, read by name from the
file being scored) and the training split's log-density quantiles (a run's metrics.json, an export's
assets.extra/tfp_flows.json) that `--threshold-quantile q` compares against:

    is_outlier = log p(x) < Q(q),   Q interpolated linearly between the stored quantiles of the training rows

`score_rows(scorer, source, out, ...)` streams the source a batch at a time (`read_table_chunks`: a CSV line by
line, an `.npy` memory-mapped; a folder of images file by file), so data larger than memory work, and writes a
CSV of `index,log_prob` (images: `index,file,log_prob,bits_per_dim`; `,is_outlier` with a threshold) to a
temporary file renamed into place: a bad row leaves no half-written output.
"""

from __future__ import annotations

import csv
import dataclasses
import itertools
import json
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from keras_models.serving.export import SAVED_MODEL_FILE, list_versions, load_serving_model, read_export_metadata


@dataclasses.dataclass(frozen=True)
class Scorer:
    """A trained flow's log-density of rows, its column names (None: any [N, D] rows) and the training split's
    log-density quantiles ({q: value}; None when the model has none)."""

    log_prob: Callable[[np.ndarray], np.ndarray]
    columns: tuple[str, ...] | None
    quantiles: Mapping[float, float] | None
    event_shape: tuple[int, ...]
    bits_per_dim: Callable[[np.ndarray], np.ndarray] | None = None  # image models: log p (nats) -> bits/dim
    log_columns: tuple[str, ...] = ()  # columns the model takes the log of: their values must be > 0

    def threshold(self, quantile: float) -> float:
        """Q(quantile): the training rows' log-density quantile, interpolated between the stored ones."""
        if not self.quantiles:
            raise ValueError(
                "--threshold-quantile needs the training split's log-density quantiles, which this model lacks "
                "(metrics.json of a run, or the export's assets.extra/tfp_flows.json, from `tfp-flows train --data`)"
            )
        qs = sorted(self.quantiles)
        if not qs[0] <= quantile <= qs[-1]:
            raise ValueError(
                f"--threshold-quantile must lie in [{qs[0]}, {qs[-1]}] (the stored quantiles); received {quantile}"
            )
        return float(np.interp(quantile, qs, [self.quantiles[q] for q in qs]))


def is_export(path: str) -> bool:
    """Whether `path` is a SavedModel folder or a model folder of integer versions (else: a checkpoint)."""
    return os.path.isfile(os.path.join(path, SAVED_MODEL_FILE)) or bool(list_versions(path))


def load_scorer(path: str, load_checkpoint: Callable[[str], Any]) -> Scorer:
    """The `Scorer` of a checkpoint or run folder (`load_checkpoint(path)` opens it) or of a SavedModel alone."""
    if is_export(path):
        loaded = load_serving_model(path)
        signature = loaded.signatures["log_prob"]
        inputs = signature.structured_input_signature[1]
        if "context" in inputs:
            raise ValueError(f"--model {path!r} is a conditional export; expected an unconditional model to score")
        dtype = inputs["x"].dtype
        metadata = read_export_metadata(path)

        def export_log_prob(rows: np.ndarray) -> np.ndarray:
            return signature(x=tf.constant(rows, dtype))["log_prob"].numpy()

        event_shape = tuple(inputs["x"].shape[1:])
        num_levels = metadata.get("pixel_levels", 256)
        return Scorer(
            export_log_prob,
            _columns(metadata.get("columns")),
            _quantiles(metadata.get("train_log_prob_quantiles")),
            event_shape,
            _bits_per_dim(int(np.prod(event_shape)), num_levels) if "bits_per_dim" in loaded.signatures else None,
            tuple(metadata.get("log_columns", ())),
        )
    model = load_checkpoint(path)
    if getattr(model, "context_shape", None) is not None:
        raise ValueError(f"--model {path!r} is a conditional model; expected an unconditional model to score")
    run_dir = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    metrics_path = os.path.join(run_dir, "metrics.json")
    quantiles = None
    if os.path.isfile(metrics_path):
        with open(metrics_path, encoding="utf-8") as handle:
            quantiles = _quantiles(json.load(handle).get("train_log_prob_quantiles"))
    standardization = getattr(model, "standardization", None) or {}

    def checkpoint_log_prob(rows: np.ndarray) -> np.ndarray:
        return model.log_prob(tf.constant(rows, model.compute_dtype)).numpy()

    bits = _bits_per_dim(model.num_dims, model.pixel_levels) if getattr(model, "num_bits", None) else None
    return Scorer(
        checkpoint_log_prob,
        _columns(standardization.get("columns")),
        quantiles,
        tuple(model.event_shape),
        bits,
        tuple(standardization.get("log_columns", ())),
    )


def _bits_per_dim(num_dims: int, num_levels: int) -> Callable[[np.ndarray], np.ndarray]:
    from tfp_flows.datasets import bits_per_dim

    return lambda log_prob: np.asarray(bits_per_dim(log_prob, num_dims, num_levels=num_levels))


def _columns(columns: Sequence[str] | None) -> tuple[str, ...] | None:
    return None if columns is None else tuple(str(c) for c in columns)


def _quantiles(quantiles: Mapping[str, float] | None) -> dict[float, float] | None:
    return None if not quantiles else {float(q): float(v) for q, v in quantiles.items()}


def iter_log_probs(scorer: Scorer, source: Any, batch_size: int) -> Any:
    """(first row index, rows, log p of the rows) for consecutive batches of the tabular `source`, read with the
    scorer's columns (by name) and checked for NaN/inf (a ValueError naming the column and row)."""
    from tfp_flows.datasets import read_table_chunks
    from tfp_flows.datasets.sources import check_finite

    if len(scorer.event_shape) != 1:
        raise ValueError(
            f"--data tables are scored by tabular models; this model takes events of shape {list(scorer.event_shape)}"
        )
    start = 0
    for rows, names, name in read_table_chunks(source, scorer.columns, chunk_rows=batch_size):
        if rows is None:
            raise ValueError(f"{name}: no rows of data; expected at least one row")
        if rows.shape[1] != scorer.event_shape[0]:
            raise ValueError(
                f"{name}: {rows.shape[1]} columns {list(names)}; the model takes {scorer.event_shape[0]} (pass "
                "--columns at training, or score a file with the model's columns)"
            )
        check_finite(rows, names, name, first_row=start)
        for column in scorer.log_columns:
            values = rows[:, names.index(column)]
            if np.any(values <= 0):
                row = int(np.argmax(values <= 0))
                raise ValueError(
                    f"{name}: column {column!r} holds {values[row]} (row {start + row}); the model takes its log, "
                    "so expected values > 0"
                )
        yield start, rows, scorer.log_prob(rows.astype(np.float32))
        start += len(rows)


def iter_image_log_probs(scorer: Scorer, folder: str, batch_size: int) -> Any:
    """(first index, file paths, log p) for consecutive batches of the PNG/JPEG files under `folder` (sorted paths,
    class subfolders included), each image at its bin centres x = (pixel + 1/2) / 256 (as `evaluate` scores
    images); an image of another size or channel count than the model's is refused, naming the file."""
    from tfp_flows.datasets.image_folder import IMAGE_EXTENSIONS

    if len(scorer.event_shape) != 3:
        raise ValueError(f"--data {folder!r} is a folder of images; this model takes rows of {scorer.event_shape[0]}")
    files = sorted(
        os.path.join(root, name)
        for root, folders, names in os.walk(folder)
        for name in names
        if name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith(".")
    )
    if not files:
        raise ValueError(f"{folder}: no PNG/JPEG images (files ending in {', '.join(IMAGE_EXTENSIONS)})")
    height, width, channels = scorer.event_shape
    for start in range(0, len(files), batch_size):
        batch = files[start : start + batch_size]
        images = []
        for file in batch:
            image = tf.io.decode_image(tf.io.read_file(file), channels=channels, expand_animations=False)
            if tuple(image.shape[:2]) != (height, width):
                raise ValueError(
                    f"{file}: an image of size {tuple(image.shape[:2])}; the model takes ({height}, {width}) images "
                    "(resize the files, or train with --image-size)"
                )
            images.append(image.numpy())
        yield start, batch, scorer.log_prob((np.stack(images).astype(np.float32) + 0.5) / 256.0)


def score_rows(
    scorer: Scorer, source: Any, out: str, batch_size: int = 1024, threshold_quantile: float | None = None
) -> dict[str, Any]:
    """Write `out` (CSV: index, log_prob[, is_outlier]) for every row of `source`; returns a summary dict."""
    threshold = None if threshold_quantile is None else scorer.threshold(threshold_quantile)
    images = isinstance(source, (str, os.PathLike)) and os.path.isdir(source)
    if images and scorer.bits_per_dim is None:
        raise ValueError(f"--data {source!r} is a folder of images; --model is not an image model")
    batches = (
        iter_image_log_probs(scorer, os.fspath(source), batch_size)
        if images
        else iter_log_probs(scorer, source, batch_size)
    )
    first = next(batches)  # a missing, empty or unreadable source fails here, before anything is created
    folder = os.path.dirname(os.path.abspath(out))
    created = not os.path.isdir(folder)
    os.makedirs(folder, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-scores-", suffix=".csv")
    count, total, outliers = 0, 0.0, 0
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            header = ["index", "file", "log_prob", "bits_per_dim"] if images else ["index", "log_prob"]
            writer.writerow(header + (["is_outlier"] if threshold is not None else []))
            for start, rows, log_probs in itertools.chain([first], batches):
                bits = scorer.bits_per_dim(log_probs) if images else None
                for offset, value in enumerate(log_probs):
                    line = [start + offset]
                    if images:
                        line += [os.path.relpath(rows[offset], source), repr(float(value)), repr(float(bits[offset]))]
                    else:
                        line.append(repr(float(value)))
                    if threshold is not None:
                        outlier = bool(value < threshold)
                        outliers += outlier
                        line.append(int(outlier))
                    writer.writerow(line)
                count += len(log_probs)
                total += float(np.sum(log_probs, dtype=np.float64))
        os.replace(temporary, out)
    except BaseException:
        os.unlink(temporary)
        if created:
            os.rmdir(folder)
        raise
    summary: dict[str, Any] = {"out": out, "examples": count, "mean_log_prob": total / count}
    if threshold is not None:
        summary.update(threshold_quantile=threshold_quantile, threshold_log_prob=threshold, outliers=outliers)
    return summary
