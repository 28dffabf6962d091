"""What a model does with data it cannot take a density of: NaN or infinity, and values outside its support.

The policy (`nan_policy`, the names of scipy.stats) is "raise" (default), "omit" or "propagate"; the
`FlowModel` docstring (core/flow_model.py) says what each does where. This module holds the pieces that are not
the model's maths: the two errors (both `ValueError`s whose messages name the argument, the expected values and
those received), `out_of_support_error` for eager data, and `check_finite_batches`, the tf.data check that
runs in the input pipeline (so it also holds under XLA, which drops `tf.debugging` checks in a compiled step).
"""
import re

import numpy as np
import tensorflow as tf

NAN_POLICIES = ("raise", "omit", "propagate")


_NON_FINITE_MARKER = "holds NaN or infinity"


_OUT_OF_SUPPORT_MARKER = "holds values outside the model's support"


_OUT_OF_SUPPORT_END = "or rescale the data)"


UNIT_INTERVAL = (0.0, 1.0)


class NonFiniteInputError(ValueError):
    """Data with NaN or infinity handed to a model with `nan_policy="raise"`."""


class OutOfSupportError(ValueError):
    """Data outside the model's `support` (e.g. images not on the [0, 1] scale) with `nan_policy="raise"`."""


def non_finite_message(arg_name, where):
    where = f" {where}" if where else ""
    return (f"`{arg_name}`{where} {_NON_FINITE_MARKER}; expected finite values (nan_policy='raise'; pass "
            f"nan_policy='omit' to leave such examples out, or clean the data)")


def finite_rows(x, event_rank):
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
    return f"`{arg_name}`{where} {_OUT_OF_SUPPORT_MARKER} {_interval_text(support)}"


def _out_of_support_suffix(support):
    return (f"; expected {_support_hint(support)} (nan_policy='raise'; pass nan_policy='omit' to leave such "
            f"examples out, {_OUT_OF_SUPPORT_END}")


def out_of_support_error(x, support, arg_name="x", event_rank=1, where=""):
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
    rows = outside.reshape(values.shape[:values.ndim - event_rank] + (-1,)).any(axis=-1)
    where_bad = [index[0] if len(index) == 1 else tuple(index) for index in np.argwhere(rows).tolist()]
    return OutOfSupportError(
        f"{_out_of_support_prefix(arg_name, where, support)}; received values in "
        f"[{_format_number(finite.min())}, {_format_number(finite.max())}], in {len(where_bad)} example(s), "
        f"at batch index(es) {where_bad[:5]}{_out_of_support_suffix(support)}")


def check_finite_batches(dataset, arg_name="x", support=None):
    """`dataset` with every float tensor checked for NaN/inf (`tf.debugging.check_numerics`) as it is read,
    and, given a `support` (low, high), the data (x, the element's first tensor) for values outside that interval.

    The checks run in the tf.data pipeline, not in the (possibly XLA-compiled) train step; a bad batch stops
    iteration with `tf.errors.InvalidArgumentError` naming `arg_name`, which `FlowModel.fit` turns into a
    `NonFiniteInputError` or an `OutOfSupportError`. Use it inside `distribute_datasets_from_function` input
    functions (with `support=model.support`).
    """
    message = non_finite_message(arg_name, "(a batch read from the dataset)")
    where = "(a batch read from the dataset)"

    def check_support(t):
        low, high = tf.constant(support[0], t.dtype), tf.constant(support[1], t.dtype)
        smallest, largest = tf.reduce_min(t), tf.reduce_max(t)  # finite: check_numerics ran first
        text = tf.strings.format(
            _out_of_support_prefix(arg_name, where, support) + "; received values in [{}, {}]"
            + _out_of_support_suffix(support), (smallest, largest))
        inside = tf.logical_and(smallest >= low, largest <= high)  # an empty batch passes (inf >= low)
        with tf.control_dependencies([tf.debugging.Assert(inside, [text])]):
            return tf.identity(t)

    def check(*element):
        checked = tf.nest.map_structure(
            lambda t: tf.debugging.check_numerics(t, message) if t.dtype.is_floating else t, element)
        if support is not None and tf.is_tensor(checked[0]) and checked[0].dtype.is_floating:
            checked = (check_support(checked[0]),) + tuple(checked[1:])  # x only: not targets or sample weights
        return checked if len(checked) > 1 else checked[0]

    return dataset.map(check, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def input_error_from(error):
    """A NonFiniteInputError or OutOfSupportError for an InvalidArgumentError raised by `check_finite_batches`,
    else None.

    tf.data turns the pipeline's assertion into an `InvalidArgumentError` whose message carries ours among
    TensorFlow's own lines; the markers above find it there.
    """
    # tf.debugging.Assert prints its string data escaped (model\'s): undo that first.
    message = str(getattr(error, "message", error)).replace("\\'", "'")
    found = re.search(r"`\w+` \(a batch read from the dataset\) " + re.escape(_NON_FINITE_MARKER) + r"[^\n]*",
                      message)
    if found:
        return NonFiniteInputError(found.group(0))
    found = re.search(r"`\w+` \(a batch read from the dataset\) " + re.escape(_OUT_OF_SUPPORT_MARKER) + r".*?"
                      + re.escape(_OUT_OF_SUPPORT_END), message, flags=re.DOTALL)
    return OutOfSupportError(found.group(0)) if found else None
