"""Argument checks for the datasets package: errors name the argument, what was expected and what came."""

from collections.abc import Collection
from typing import Any

import numpy as np
import numpy.typing as npt
import tensorflow as tf

from tfp_flows.validation import is_int

__all__ = ["check_positive_int", "check_points_2d", "check_choice", "check_classes", "check_one_hot"]


def check_positive_int(value: Any, arg_name: str) -> int:
    """Return `value` as an int, or raise TypeError/ValueError naming `arg_name`."""
    if not is_int(value):
        raise TypeError(f"`{arg_name}` must be a positive int; received {value!r} of type {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"`{arg_name}` must be a positive int; received {value}")
    return int(value)


def check_points_2d(x: tf.Tensor, arg_name: str = "x") -> tf.Tensor:
    """Convert `x` to a float tensor of shape [..., 2], or raise TypeError/ValueError naming `arg_name`."""
    if not tf.is_tensor(x):
        x = tf.convert_to_tensor(x)
        if x.dtype in (tf.float16, tf.bfloat16):
            x = tf.cast(x, tf.float32)
    if not x.dtype.is_floating:
        raise TypeError(f"`{arg_name}` must have a floating-point dtype (float32 or float64); received {x.dtype.name}")
    shape = x.shape
    if shape.rank == 0 or (shape.rank is not None and shape[-1] is not None and shape[-1] != 2):
        raise ValueError(f"`{arg_name}` must have shape [..., 2] (2-D points); received shape {shape}")
    return x


def check_choice(value: Any, choices: Collection[Any], arg_name: str) -> Any:
    """Raise ValueError naming `arg_name` unless `value` is one of `choices`."""
    if value not in choices:
        raise ValueError(f"`{arg_name}` must be one of {sorted(map(str, choices))}; received {value!r}")
    return value


def check_classes(classes: npt.ArrayLike, num_samples: int, num_classes: int, arg_name: str) -> np.ndarray:
    """`classes` as an int64 array [num_samples] of values in 0..num_classes-1 (an int is repeated), or raise
    TypeError/ValueError naming `arg_name`."""
    array = np.asarray(classes)
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"`{arg_name}` must hold integer class indices; received dtype {array.dtype}")
    if array.ndim == 0:
        array = np.full(num_samples, array)
    if array.shape != (num_samples,):
        raise ValueError(f"`{arg_name}` must be an int or have shape [{num_samples}]; received shape {array.shape}")
    if array.size and (array.min() < 0 or array.max() >= num_classes):
        raise ValueError(
            f"`{arg_name}` must lie in 0..{num_classes - 1}; received values from {array.min()} to {array.max()}"
        )
    return array.astype(np.int64)


def check_one_hot(c: tf.Tensor, num_classes: int, dtype: npt.DTypeLike, arg_name: str = "c") -> tf.Tensor:
    """`c` as a tensor [..., num_classes] of `dtype`; its values are checked to be one-hot rows when eager
    (a traced function cannot look at them). Raises TypeError/ValueError naming `arg_name`."""
    c = tf.convert_to_tensor(c)
    if not (c.dtype.is_floating or c.dtype.is_integer):
        raise TypeError(f"`{arg_name}` must be a numeric one-hot tensor; received dtype {c.dtype.name}")
    if c.shape.rank == 0 or (c.shape[-1] is not None and c.shape[-1] != num_classes):
        raise ValueError(f"`{arg_name}` must be one-hot with shape [..., {num_classes}]; received shape {c.shape}")
    c = tf.cast(c, dtype)
    if tf.executing_eagerly():
        rows = c.numpy().reshape(-1, num_classes)
        bad = ~(np.all((rows == 0) | (rows == 1), axis=-1) & (rows.sum(axis=-1) == 1))
        if bad.any():
            raise ValueError(
                f"`{arg_name}` must be one-hot (each row one 1, the rest 0); received the row "
                f"{rows[np.argmax(bad)].tolist()}"
            )
    return c
