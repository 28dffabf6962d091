"""What a model does with data it cannot take a density of: NaN or infinity, and values outside its support.

The policy (`nan_policy`, the names of scipy.stats) is "raise" (default), "omit" or "propagate"; the
`FlowModel` docstring (core/flow_model.py) says what each does where. This module holds the pieces that are not
the model's maths: the two errors (both `ValueError`s whose messages name the argument, the expected values and
those received), `out_of_support_error` for eager data, and `check_finite_batches`, the tf.data check that
runs in the input pipeline (so it also holds under XLA, which drops `tf.debugging` checks in a compiled step) and
hands its error objects to `fit`/`evaluate` through an `InputErrorRecord`: each model has its own (so two fits in
two threads never see each other's errors), and `raised_input_errors` is the record of pipelines checked outside a
model (input functions of distributed datasets).
"""

from __future__ import annotations

import threading

import numpy as np
import tensorflow as tf

NAN_POLICIES = ("raise", "omit", "propagate")


UNIT_INTERVAL = (0.0, 1.0)


class NonFiniteInputError(ValueError):
    """Data with NaN or infinity handed to a model with `nan_policy="raise"`."""


class OutOfSupportError(ValueError):
    """Data outside the model's `support` (e.g. images not on the [0, 1] scale) with `nan_policy="raise"`."""


def non_finite_message(arg_name: str, where: str) -> str:
    """The message of a `NonFiniteInputError` for `arg_name` (`where`: a few words on where it was found, or "")."""
    where = f" {where}" if where else ""
    return (
        f"`{arg_name}`{where} holds NaN or infinity; expected finite values (nan_policy='raise'; pass "
        f"nan_policy='omit' to leave such examples out, or clean the data)"
    )


def finite_rows(x: tf.Tensor, event_rank: int) -> tf.Tensor:
    """Batch-shaped bool: True where every value of the example (the last `event_rank` axes) is finite."""
    return tf.reduce_all(tf.math.is_finite(x), axis=list(range(-event_rank, 0)))


def _format_number(value):
    return f"{float(value):.6g}"


def _interval_text(support):
    return f"[{_format_number(support[0])}, {_format_number(support[1])}]"


def _support_hint(support):
    if tuple(support) == UNIT_INTERVAL:
        return "data on the [0, 1] scale, as make_dataset gives ((pixel + u) / 256)"
    return f"every value in {_interval_text(support)}"


def _out_of_support_prefix(arg_name, where, support):
    where = f" {where}" if where else ""
    return f"`{arg_name}`{where} holds values outside the model's support {_interval_text(support)}"


def _out_of_support_suffix(support):
    return (
        f"; expected {_support_hint(support)} (nan_policy='raise'; pass nan_policy='omit' to leave such "
        f"examples out, or rescale the data)"
    )


def out_of_support_error(
    x: tf.Tensor | np.ndarray,
    support: tuple[float, float] | None,
    arg_name: str = "x",
    event_rank: int = 1,
    where: str = "",
) -> OutOfSupportError | None:
    """An `OutOfSupportError` describing the finite values of `x` outside the closed interval `support`, or None.

    `x` is an array or eager tensor [batch..., *event] (the event is the last `event_rank` axes); the message
    names `arg_name`, the expected interval, the range of the values received and the offending examples.
    """
    if support is None:
        return None
    values = np.asarray(x)
    low, high = support
    outside = np.isfinite(values) & ((values < low) | (values > high))
    if not outside.any():
        return None
    finite = values[np.isfinite(values)]
    rows = outside.reshape(values.shape[: values.ndim - event_rank] + (-1,)).any(axis=-1)
    where_bad = [index[0] if len(index) == 1 else tuple(index) for index in np.argwhere(rows).tolist()]
    return OutOfSupportError(
        f"{_out_of_support_prefix(arg_name, where, support)}; received values in "
        f"[{_format_number(finite.min())}, {_format_number(finite.max())}], in {len(where_bad)} example(s), "
        f"at batch index(es) {where_bad[:5]}{_out_of_support_suffix(support)}"
    )


def check_finite_batches(
    dataset: tf.data.Dataset,
    arg_name: str = "x",
    support: tuple[float, float] | None = None,
    record: InputErrorRecord | None = None,
) -> tf.data.Dataset:
    """`dataset` with every float tensor checked for NaN/inf as it is read, and, given a `support` (low, high),
    the data (x, the element's first tensor) for values outside that interval.

    The checks run in the tf.data pipeline, not in the (possibly XLA-compiled) train step. A good batch passes
    through pure TensorFlow ops; a bad one takes a `tf.cond` branch into Python (`tf.py_function`), which builds
    the `NonFiniteInputError` or `OutOfSupportError` naming `arg_name`, records the object in `record` (an
    `InputErrorRecord`; None: the process-wide `raised_input_errors`) and raises it. tf.data delivers it as a
    `tf.errors.InvalidArgumentError` (a ValueError raised in Python), and `FlowModel.fit`/`evaluate` re-raise the
    recorded error object itself: no error text is parsed. `fit` checks its datasets with the model's own record
    (`FlowModel.input_errors`); inside `distribute_datasets_from_function` input functions, pass
    `support=model.support` and `record=model.input_errors`, so concurrent fits keep their errors apart.
    """
    record = raised_input_errors if record is None else record
    where = "(a batch read from the dataset)"

    def raise_input_error(x, finite):
        if not bool(finite):
            error = NonFiniteInputError(non_finite_message(arg_name, where))
        else:
            values = np.asarray(x)
            error = OutOfSupportError(
                f"{_out_of_support_prefix(arg_name, where, support)}; received values in "
                f"[{_format_number(values.min())}, {_format_number(values.max())}]{_out_of_support_suffix(support)}"
            )
        record.record(error)
        raise error

    def check(*element):
        floats = [t for t in tf.nest.flatten(element) if t.dtype.is_floating]
        x = element[0] if tf.is_tensor(element[0]) and element[0].dtype.is_floating else None  # not y, weights
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(t)) for t in floats]) if floats else tf.constant(True)
        good = finite
        if support is not None and x is not None:
            inside = tf.logical_and(
                tf.reduce_all(x >= tf.constant(support[0], x.dtype)),
                tf.reduce_all(x <= tf.constant(support[1], x.dtype)),
            )
            good = tf.logical_and(finite, inside)
        passed = tf.cond(
            good,
            lambda: tf.constant(True),
            lambda: tf.py_function(raise_input_error, [x if x is not None else tf.zeros([0]), finite], Tout=tf.bool),
        )
        with tf.control_dependencies([passed]):
            checked = tf.nest.map_structure(tf.identity, element)
        return checked if len(checked) > 1 else checked[0]

    return dataset.map(check, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


class InputErrorRecord:
    """The input errors `check_finite_batches` raised since the last `take`: how `FlowModel.fit`/`evaluate` know
    that an `InvalidArgumentError` from tf.data is one of ours, and get our error object back.

    Owned by one model (`FlowModel.input_errors`; tf.data runs the check on its own threads, not the caller's, so
    the record travels with the pipeline rather than with a thread): `fit` and `evaluate` clear it before they
    start reading and take the first error recorded when reading fails. Thread-safe.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._errors = []

    def record(self, error: ValueError) -> None:
        with self._lock:
            self._errors.append(error)

    def clear(self) -> None:
        with self._lock:
            self._errors.clear()

    def take(self) -> ValueError | None:
        """The first error recorded since the last `clear`/`take` (None if there is none); clears the record."""
        with self._lock:
            errors, self._errors = self._errors, []
        return errors[0] if errors else None


# Pipelines checked outside a model (`check_finite_batches` without `record`) record here; FlowModel.fit looks here
# after its own record.
raised_input_errors = InputErrorRecord()
