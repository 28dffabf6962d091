"""Argument checks shared by the bijectors: errors that name the argument, what was expected and what came.

Static problems (wrong rank, wrong trailing dimensions, integer dtypes) raise `ValueError`/`TypeError` at once,
whatever `validate_args` says; value checks that need the data (positivity, domain) become
`tf.debugging` assertions only when `validate_args=True`, as everywhere in TFP.
"""
import tensorflow as tf

__all__ = ["check_float_dtype", "check_event_shape", "assert_in_unit_interval"]


def check_float_dtype(x, arg_name):
    """Raise TypeError unless `x` has a floating-point dtype."""
    dtype = tf.as_dtype(getattr(x, "dtype", tf.float32))
    if not dtype.is_floating:
        raise TypeError(f"`{arg_name}` must have a floating-point dtype (float32 or float64); received {dtype.name}")


def check_event_shape(x, event_shape, arg_name, bijector_name):
    """Raise ValueError when the static trailing dimensions of `x` contradict `event_shape`.

    `event_shape` may hold `None` for a dimension that is free. Unknown static shapes pass (checked at run time
    by TFP when `validate_args=True`).
    """
    shape = tf.TensorShape(getattr(x, "shape", None))
    if shape.rank is None:
        return
    event_shape = list(event_shape)
    if shape.rank < len(event_shape):
        raise ValueError(
            f"{bijector_name}: `{arg_name}` must have rank >= {len(event_shape)} with trailing event shape "
            f"{event_shape}; received shape {shape.as_list()}")
    trailing = shape.as_list()[shape.rank - len(event_shape):]
    for got, want in zip(trailing, event_shape):
        if got is not None and want is not None and got != want:
            raise ValueError(
                f"{bijector_name}: `{arg_name}` must end in the event shape {event_shape}; "
                f"received shape {shape.as_list()}")


def assert_in_unit_interval(x, arg_name):
    """Assertions that `x` lies in [0, 1] (for `validate_args=True`)."""
    return [
        tf.debugging.assert_greater_equal(x, tf.zeros([], x.dtype), message=f"`{arg_name}` must be >= 0"),
        tf.debugging.assert_less_equal(x, tf.ones([], x.dtype), message=f"`{arg_name}` must be <= 1"),
    ]
