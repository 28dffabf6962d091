"""Argument checks for the datasets package: errors name the argument, what was expected and what came."""
import tensorflow as tf

from tfp_flows.validation import is_int

__all__ = ["check_positive_int", "check_points_2d", "check_choice"]


def check_positive_int(value, arg_name):
    """Return `value` as an int, or raise TypeError/ValueError naming `arg_name`."""
    if not is_int(value):
        raise TypeError(f"`{arg_name}` must be a positive int; received {value!r} of type {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"`{arg_name}` must be a positive int; received {value}")
    return int(value)


def check_points_2d(x, arg_name="x"):
    """Convert `x` to a float tensor of shape [..., 2], or raise TypeError/ValueError naming `arg_name`."""
    if not tf.is_tensor(x):
        x = tf.convert_to_tensor(x)
        if x.dtype in (tf.float16, tf.bfloat16):
            x = tf.cast(x, tf.float32)
    if not x.dtype.is_floating:
        raise TypeError(f"`{arg_name}` must have a floating-point dtype (float32 or float64); "
                        f"received {x.dtype.name}")
    shape = x.shape
    if shape.rank == 0 or (shape.rank is not None and shape[-1] is not None and shape[-1] != 2):
        raise ValueError(f"`{arg_name}` must have shape [..., 2] (2-D points); received shape {shape}")
    return x


def check_choice(value, choices, arg_name):
    """Raise ValueError naming `arg_name` unless `value` is one of `choices`."""
    if value not in choices:
        raise ValueError(f"`{arg_name}` must be one of {sorted(map(str, choices))}; received {value!r}")
    return value
