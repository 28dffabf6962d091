"""A user's own data for flows: `from_source(source, ...)` reads a CSV, a NumPy file or array, a pandas DataFrame,
a `tf.data.Dataset`, a folder of images or a registered dataset name, and splits it for training.

Tabular sources ([N, D] numbers) become a `TabularData`: seeded train / validation / test splits (or the
user's own split files, a dict {"train": ..., "validation": ..., "test": ...}), the column names, and the
training split's statistics, `standardization()`, that the model's fixed first step (keras_models'
`StandardizeLayer`) applies, so densities and samples are in the data's own units:

    y_j = log x_j (the `log_columns`),   z_j = (y_j - m_j) / s_j,   m, s: mean and std of y on the training split

Refused with a ValueError (FileNotFoundError for a missing path) whose one line names the file and the column:
an empty file, a CSV without a header row or with a ragged row, a used column that is not numeric, a constant
column (s_j = 0), NaN or infinite values (under `nan_policy="raise"`; "omit" drops those rows, "propagate"
keeps them), a log column with a value <= 0.

Images (a folder of PNG/JPEG files, optionally one subfolder per class, the class giving the context c of a
conditional flow) are read by `image_folder.load_image_folder` into an `ImageData`; a registered name
(`list_datasets()`) is `make_dataset`'s data. All three answer `info` and `dataset(split, batch_size, ...)`, the
run's two questions.

Example:
    >>> import numpy as np
    >>> from tfp_flows.datasets import from_source
    >>> rows = np.random.default_rng(0).normal([0.0, 100.0], [1.0, 10.0], size=(200, 2))
    >>> data = from_source(rows, columns=None, validation_fraction=0.1, test_fraction=0.1)
    >>> data.columns, data.train.shape, data.validation.shape, data.test.shape
    (('x0', 'x1'), (160, 2), (20, 2), (20, 2))
    >>> next(iter(data.dataset("train", batch_size=32))).shape
    TensorShape([32, 2])
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from tfp_flows.validation import check_int, check_number, check_one_of, is_int

from .pipeline import seeded_epochs
from .registry import FlowDatasetInfo, dataset_info, list_datasets

__all__ = [
    "ImageData",
    "RegisteredData",
    "SPLITS",
    "TabularData",
    "check_finite",
    "from_source",
    "read_table",
    "read_table_chunks",
]

SPLITS = ("train", "validation", "test")
TABULAR_SUFFIXES = (".csv", ".npy", ".npz")
NAN_POLICIES = ("raise", "omit", "propagate")
_MISSING = {"", "na", "nan", "n/a", "null", "none"}  # CSV cells read as NaN (then nan_policy decides)


@dataclasses.dataclass(frozen=True)
class TabularData:
    """Rows of numbers [N, D] from one source, split; `dataset(split)` batches a split for `fit`.

    Attributes:
      name: a short name for runs and exports (the file's stem, "array" or "dataframe").
      columns: the D column names (a CSV's header, a DataFrame's columns, "x0".."x{D-1}" for arrays).
      train, validation, test: float64 arrays [N_split, D] in the data's own units.
      log_columns: the columns modelled on a log scale (positive values only).
    """

    name: str
    columns: tuple[str, ...]
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    log_columns: tuple[str, ...] = ()

    @property
    def info(self) -> FlowDatasetInfo:
        """The `FlowDatasetInfo` a run reads: event shape (D,), continuous, no labels."""
        return FlowDatasetInfo(self.name, (len(self.columns),), False, SPLITS, tfds_name="")

    def split(self, split: str) -> np.ndarray:
        """The rows of `split` ("train", "validation" or "test")."""
        return getattr(self, check_one_of(split, "split", SPLITS))

    def standardization(self) -> dict[str, list]:
        """{"columns", "shift", "scale", "log_columns"}: the training split's mean m and standard deviation s of
        each column (of log x for the log columns), the constants of the model's `StandardizeLayer`."""
        values = self.train.copy()
        logged = [self.columns.index(name) for name in self.log_columns]
        values[:, logged] = np.log(values[:, logged])
        finite = np.all(np.isfinite(values), axis=1)  # "propagate" may keep NaN rows: statistics of the rest
        return {
            "columns": list(self.columns),
            "shift": [float(v) for v in values[finite].mean(axis=0)],
            "scale": [float(v) for v in values[finite].std(axis=0)],
            "log_columns": list(self.log_columns),
        }

    def dataset(
        self,
        split: str = "train",
        batch_size: int = 128,
        *,
        shuffle: bool = True,
        seed: int = 0,
        drop_remainder: bool | None = None,
        repeat: bool = False,
        initial_epoch: int = 0,
        input_context: tf.distribute.InputContext | None = None,
        dtype: tf.DType = tf.float32,
        conditional: bool = False,
    ) -> tf.data.Dataset:
        """Batches of `split` as `make_dataset` gives them (same arguments, same epoch sequence and sharding)."""
        if conditional:
            raise ValueError(f"`conditional=True` needs labels; the tabular data {self.name!r} have none")
        batch_size = check_int(batch_size, "batch_size")
        drop_remainder = bool(shuffle) if drop_remainder is None else bool(drop_remainder)
        rows = self.split(split)
        pipeline_id, per_replica_batch = 0, batch_size
        if input_context is not None:
            pipeline_id = input_context.input_pipeline_id
            rows = rows[pipeline_id :: input_context.num_input_pipelines]
            per_replica_batch = input_context.get_per_replica_batch_size(batch_size)
        if len(rows) == 0 or (drop_remainder and len(rows) < per_replica_batch):
            raise ValueError(
                f"the {split} split of {self.name!r} has {len(rows)} rows, fewer than one batch of "
                f"{per_replica_batch}; expected a smaller `batch_size` (--batch-size) or more rows"
            )
        dtype = tf.as_dtype(dtype)
        rows = tf.constant(rows.astype(dtype.as_numpy_dtype))
        size = int(rows.shape[0])

        def one_epoch(epoch_key: tf.Tensor) -> tf.data.Dataset:
            key = tf.random.experimental.stateless_fold_in(epoch_key, pipeline_id)
            order = tf.range(size, dtype=tf.int64)
            if shuffle:
                order = tf.random.experimental.stateless_shuffle(order, seed=key)
            batches = tf.data.Dataset.from_tensor_slices(order).batch(per_replica_batch, drop_remainder=drop_remainder)
            return batches.map(lambda index: tf.gather(rows, index), num_parallel_calls=tf.data.AUTOTUNE)

        return seeded_epochs(
            one_epoch,
            seed=check_int(seed, "seed", minimum=None),
            repeat=repeat,
            initial_epoch=check_int(initial_epoch, "initial_epoch", minimum=0),
            batches_per_epoch=size // per_replica_batch if drop_remainder else -(-size // per_replica_batch),
        )


@dataclasses.dataclass(frozen=True)
class ImageData:
    """A folder of images (`image_folder.load_image_folder`'s `ImageFolder`) as a run reads it: `info` and
    `dataset(split, ...)`, which is `image_batches(folder, split, ...)` (8-bit dequantization, one-hot labels
    with `conditional=True`)."""

    name: str
    folder: Any

    @property
    def info(self) -> FlowDatasetInfo:
        names = self.folder.class_names
        return FlowDatasetInfo(
            self.name,
            tuple(self.folder.image_shape),
            True,
            SPLITS,
            tfds_name="",
            context_shape=None if names is None else (len(names),),
            class_names=None if names is None else tuple(names),
        )

    def dataset(self, split: str = "train", batch_size: int = 128, **kwargs: Any) -> tf.data.Dataset:
        from .image_folder import image_batches

        return image_batches(self.folder, split, batch_size, **kwargs)


@dataclasses.dataclass(frozen=True)
class RegisteredData:
    """A dataset of the registry (`list_datasets()`): `dataset(split, ...)` is `make_dataset(name, split, ...)`."""

    name: str

    @property
    def info(self) -> FlowDatasetInfo:
        return dataset_info(self.name)

    def dataset(self, split: str = "train", batch_size: int = 128, **kwargs: Any) -> tf.data.Dataset:
        # The package's make_dataset, looked up when called: code that wraps tfp_flows.datasets.make_dataset (the
        # fault-injection tests do) sees its wrapper used, as when runs called make_dataset themselves.
        from . import make_dataset

        return make_dataset(self.name, split, batch_size, **kwargs)


def from_source(
    source: Any,
    *,
    columns: str | Sequence[str | int] | None = None,
    log_columns: str | Sequence[str | int] | None = None,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
    image_size: int | Sequence[int] | None = None,
    nan_policy: str = "raise",
) -> Any:
    """The data of `source`, checked and split: a `TabularData`, an `ImageData` (a folder of images) or a
    `RegisteredData`; each has `info` (a `FlowDatasetInfo`) and `dataset(split, batch_size, ...)`.

    Args:
      source: a path to a `.csv` file (a header row of column names), a `.npy` / `.npz` file of an [N, D] array
        (an `.npz` holding one array), a folder of PNG/JPEG images, a NumPy array [N, D], a pandas DataFrame,
        a `tf.data.Dataset` of rows [D] (or batches [B, D]), a registered name (`list_datasets()`), or a dict
        {"train": ..., "validation": ..., "test": ...} of tabular sources giving the splits themselves.
      columns: the columns to use, by name or index (a list, or one comma-separated string); None: all.
      log_columns: columns modelled as log x (their values must be > 0); by name or index, as `columns`.
      validation_fraction, test_fraction: the shares of rows in the validation and test splits, drawn by a
        permutation seeded with `seed`.
      image_size: for image folders, (height, width) or one int to resize every image to; None keeps the
        files' own size (which must then be the same for all).
      nan_policy: "raise" (a ValueError naming the column and row), "omit" (drop rows with NaN or inf) or
        "propagate" (keep them), the model's `nan_policy` names.
    """
    check_one_of(nan_policy, "nan_policy", NAN_POLICIES)
    validation_fraction = check_number(validation_fraction, "validation_fraction", minimum=0)
    test_fraction = check_number(test_fraction, "test_fraction", minimum=0)
    if validation_fraction + test_fraction >= 1:
        raise ValueError(
            "`validation_fraction` + `test_fraction` must leave rows for training (sum < 1); received "
            f"{validation_fraction} + {test_fraction}"
        )
    seed = check_int(seed, "seed", minimum=None)
    if isinstance(source, Mapping):
        return _given_splits(source, columns, log_columns, nan_policy)
    if isinstance(source, (str, os.PathLike)) and os.path.isdir(source):
        return _image_folder(os.fspath(source), image_size, validation_fraction, test_fraction, seed)
    if isinstance(source, str) and not os.path.exists(source) and source in list_datasets():
        return RegisteredData(source)
    values, names, name = read_table(source, columns)
    values = _checked_values(values, names, name, nan_policy)
    logged = _column_names(log_columns, names, "log_columns", name)
    _check_log_columns(values, names, logged, name)
    train, validation, test = _split_rows(values, validation_fraction, test_fraction, seed, name)
    return TabularData(os.path.splitext(name)[0], names, train, validation, test, logged)


def read_table(
    source: Any, columns: str | Sequence[str | int] | None = None
) -> tuple[np.ndarray, tuple[str, ...], str]:
    """(values float64 [N, D], column names, the source's name for messages: the file's name, "array",
    "dataframe" or "dataset") of a tabular source, all rows, the `columns` chosen."""
    chunks = list(read_table_chunks(source, columns, chunk_rows=1 << 16))
    name, names = chunks[0][2], chunks[0][1]
    values = np.concatenate([chunk for chunk, _, _ in chunks]) if chunks[0][0] is not None else np.zeros((0, 0))
    if values.size == 0:
        raise ValueError(f"{name}: no rows of data; expected at least one row")
    return values, names, name


def read_table_chunks(
    source: Any, columns: str | Sequence[str | int] | None = None, chunk_rows: int = 4096
) -> Iterator[tuple[np.ndarray | None, tuple[str, ...], str]]:
    """(values float64 [n <= chunk_rows, D], column names, the source's name) for consecutive rows of a tabular source,
    read a chunk at a time (a CSV line by line, a `.npy` memory-mapped), so a file larger than memory streams.

    Yields at least once (values None for a source without rows); errors as `from_source`'s.
    """
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.exists(path):
            raise FileNotFoundError(
                f"--data / `source`: no file or folder at {path!r}; expected a .csv, .npy or .npz file, an image "
                f"folder or a dataset name among {list_datasets()}"
            )
        suffix = os.path.splitext(path)[1].lower()
        if suffix == ".csv":
            yield from _csv_chunks(path, columns, chunk_rows)
            return
        if suffix in (".npy", ".npz"):
            yield from _array_chunks(_load_numpy(path), columns, chunk_rows, path)
            return
        raise ValueError(f"{path}: unknown file type {suffix or '(none)'!r}; expected one of {TABULAR_SUFFIXES}")
    if isinstance(source, tf.data.Dataset):
        yield from _array_chunks(_dataset_rows(source), columns, chunk_rows, "dataset")
        return
    if hasattr(source, "columns") and hasattr(source, "to_numpy"):  # a pandas DataFrame, without importing pandas
        names = tuple(str(c) for c in source.columns)
        chosen = _column_indices(columns, names, "dataframe")
        frame = source.iloc[:, list(chosen)]
        for column in frame.columns:
            if not np.issubdtype(frame[column].dtype, np.number):
                raise ValueError(
                    f"dataframe: column {str(column)!r} is not numeric (dtype {frame[column].dtype}); expected "
                    "numbers, or leave it out with `columns`"
                )
        values = frame.to_numpy(dtype=np.float64)
        for start in range(0, max(len(values), 1), chunk_rows):
            yield (
                (values[start : start + chunk_rows] if len(values) else None),
                tuple(names[i] for i in chosen),
                ("dataframe"),
            )
        return
    yield from _array_chunks(source, columns, chunk_rows, "array")


def _load_numpy(path: str) -> np.ndarray:
    if path.lower().endswith(".npy"):
        return np.load(path, mmap_mode="r", allow_pickle=False)
    with np.load(path, allow_pickle=False) as archive:
        if len(archive.files) != 1:
            raise ValueError(f"{path}: expected an .npz holding one array [N, D]; received arrays {archive.files}")
        return archive[archive.files[0]]


def _dataset_rows(dataset: tf.data.Dataset) -> np.ndarray:
    spec = dataset.element_spec
    if not isinstance(spec, tf.TensorSpec) or spec.shape.rank not in (1, 2):
        raise ValueError(f"dataset: expected a tf.data.Dataset of rows [D] or batches [B, D]; received elements {spec}")
    chunks = [
        np.asarray(element, np.float64).reshape(-1, spec.shape[-1] or np.shape(element)[-1])
        for element in dataset.as_numpy_iterator()
    ]
    return np.concatenate(chunks) if chunks else np.zeros((0, spec.shape[-1] or 0))


def _array_chunks(array: Any, columns: Any, chunk_rows: int, name: str) -> Iterator:
    array = np.asarray(array) if not isinstance(array, np.ndarray) else array
    where = name if name in ("array", "dataset") else os.path.basename(name)
    if array.ndim != 2:
        raise ValueError(f"{where}: expected a 2-D array [N, D] of rows; received shape {list(array.shape)}")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ValueError(f"{where}: expected a numeric array; received dtype {array.dtype}")
    names = tuple(f"x{i}" for i in range(array.shape[1]))
    chosen = _column_indices(columns, names, where)
    if len(array) == 0:
        yield None, tuple(names[i] for i in chosen), where
        return
    for start in range(0, len(array), chunk_rows):
        rows = np.asarray(array[start : start + chunk_rows], dtype=np.float64)[:, list(chosen)]
        yield rows, tuple(names[i] for i in chosen), where


def _csv_chunks(path: str, columns: Any, chunk_rows: int) -> Iterator:
    where = os.path.basename(path)
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or not any(field.strip() for field in header):
            raise ValueError(f"{where}: the file is empty; expected a header row of column names, then rows")
        header = [field.strip() for field in header]
        if all(_is_number(field) for field in header):
            raise ValueError(
                f"{where}: the first row {header[:5]} is all numbers; expected a header row of column names"
            )
        chosen = _column_indices(columns, tuple(header), where)
        names = tuple(header[i] for i in chosen)
        rows: list[list[float]] = []
        yielded = False
        for row in reader:
            if not row:
                continue  # a blank line (often the last)
            if len(row) != len(header):
                raise ValueError(
                    f"{where}: line {reader.line_num} has {len(row)} fields; expected {len(header)} (as the header)"
                )
            rows.append([_number(row[i], header[i], where, reader.line_num) for i in chosen])
            if len(rows) == chunk_rows:
                yield np.asarray(rows, np.float64), names, where
                rows, yielded = [], True
        if rows or not yielded:
            yield (np.asarray(rows, np.float64) if rows else None), names, where


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _number(text: str, column: str, where: str, line: int) -> float:
    try:
        return float(text)
    except ValueError:
        if text.strip().lower() in _MISSING:
            return math.nan
        raise ValueError(
            f"{where}: column {column!r} is not numeric (line {line}: {text!r}); expected numbers, or leave the "
            "column out with --columns / `columns`"
        ) from None


def _column_indices(columns: Any, names: tuple[str, ...], where: str) -> tuple[int, ...]:
    """The indices of `columns` (names or indices; a comma-separated string) among `names`; None: all."""
    if columns is None:
        return tuple(range(len(names)))
    wanted = [c.strip() for c in columns.split(",")] if isinstance(columns, str) else list(columns)
    indices = []
    for column in wanted:
        if isinstance(column, (int, np.integer)) and not isinstance(column, bool) and 0 <= column < len(names):
            indices.append(int(column))
        elif str(column) in names:
            indices.append(names.index(str(column)))
        elif isinstance(column, str) and column.isdigit() and int(column) < len(names) and column not in names:
            indices.append(int(column))
        else:
            raise ValueError(
                f"{where}: unknown column {column!r} in --columns / `columns`; expected names among {list(names)} "
                f"or indices below {len(names)}"
            )
    if not indices or len(set(indices)) != len(indices):
        raise ValueError(f"{where}: --columns / `columns` must name distinct columns; received {columns!r}")
    return tuple(indices)


def _column_names(columns: Any, names: tuple[str, ...], arg_name: str, where: str) -> tuple[str, ...]:
    if columns is None or columns == "" or (not isinstance(columns, str) and len(columns) == 0):
        return ()
    try:
        return tuple(names[i] for i in _column_indices(columns, names, where))
    except ValueError:
        raise ValueError(
            f"{where}: `{arg_name}` (--{arg_name.replace('_', '-')}) must name used columns among {list(names)}; "
            f"received {columns!r}"
        ) from None


def check_finite(values: np.ndarray, names: Sequence[str], where: str, first_row: int = 0) -> None:
    """A ValueError naming the first column and row (counted from `first_row`) holding NaN or inf, if any."""
    bad = ~np.isfinite(values)
    if bad.any():
        row, column = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{where}: column {names[column]!r} holds {values[row, column]} (row {first_row + row}, "
            f"{int(bad[:, column].sum())} such value(s) in the column); expected finite numbers (nan_policy 'omit' "
            "drops such rows when training)"
        )


def _checked_values(values: np.ndarray, names: tuple[str, ...], where: str, nan_policy: str) -> np.ndarray:
    """`values` after the NaN/inf policy and the constant-column check (errors name the column)."""
    bad = ~np.isfinite(values)
    if bad.any() and nan_policy == "raise":
        check_finite(values, names, where)
    if bad.any() and nan_policy == "omit":
        values = values[~bad.any(axis=1)]
        if len(values) == 0:
            raise ValueError(f"{where}: every row holds NaN or inf; expected some finite rows")
    for j, name in enumerate(names):
        column = values[np.isfinite(values[:, j]), j]
        if len(column) > 1 and np.ptp(column) == 0:
            raise ValueError(
                f"{where}: column {name!r} is constant (every value {column[0]}): it cannot be standardised; "
                "expected a varying column, or leave it out with --columns / `columns`"
            )
    return values


def _check_log_columns(values: np.ndarray, names: tuple[str, ...], logged: tuple[str, ...], where: str) -> None:
    for name in logged:
        column = values[:, names.index(name)]
        if np.any(column[np.isfinite(column)] <= 0):
            raise ValueError(
                f"{where}: log column {name!r} has values <= 0 (smallest {np.nanmin(column)}); expected positive "
                "values for --log-columns / `log_columns`"
            )


def _split_rows(
    values: np.ndarray, validation_fraction: float, test_fraction: float, seed: int, where: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(values)
    order = np.random.default_rng(seed).permutation(n)
    num_test, num_validation = round(n * test_fraction), round(n * validation_fraction)
    if n - num_test - num_validation < 2 or (validation_fraction > 0 and num_validation == 0):
        raise ValueError(
            f"{where}: {n} rows are too few to split (validation_fraction={validation_fraction}, "
            f"test_fraction={test_fraction}); expected at least 2 training rows and 1 validation row"
        )
    test = values[order[:num_test]]
    validation = values[order[num_test : num_test + num_validation]]
    return values[order[num_test + num_validation :]], validation, test


def _given_splits(sources: Mapping[str, Any], columns: Any, log_columns: Any, nan_policy: str) -> TabularData:
    if set(sources) - set(SPLITS) or "train" not in sources:
        raise ValueError(
            f"`source` as a dict must map 'train' (and optionally 'validation', 'test') to tabular sources; "
            f"received keys {sorted(sources)}"
        )
    read = {split: read_table(source, columns) for split, source in sources.items()}
    _, names, name = read["train"]
    for split, (_, other, _) in read.items():
        if other != names:
            raise ValueError(f"the {split} source has columns {list(other)}; expected those of train, {list(names)}")
    values = {split: _checked_values(v, names, f"{n} ({split})", nan_policy) for split, (v, _, n) in read.items()}
    logged = _column_names(log_columns, names, "log_columns", name)
    for split, v in values.items():
        _check_log_columns(v, names, logged, f"{name} ({split})")
    empty = np.zeros((0, len(names)))
    return TabularData(name, names, values["train"], values.get("validation", empty), values.get("test", empty), logged)


def _image_folder(path: str, image_size: Any, validation_fraction: float, test_fraction: float, seed: int) -> ImageData:
    from .image_folder import load_image_folder

    if is_int(image_size):
        image_size = (image_size, image_size)
    folder = load_image_folder(
        path, image_size=image_size, validation_fraction=validation_fraction, test_fraction=test_fraction, seed=seed
    )
    return ImageData(os.path.basename(os.path.normpath(path)), folder)
