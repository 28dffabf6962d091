"""Argument checks for the whole project: errors that name the argument, what was expected and what came.

Static problems (wrong rank, wrong trailing dimensions, integer dtypes) raise `ValueError`/`TypeError` at once,
whatever `validate_args` says; value checks that need the data (positivity, domain) become
`tf.debugging` assertions only when `validate_args=True`, as everywhere in TFP.

Python arguments (counts, sizes, shapes, tolerances, choices, callables) are checked by `check_int`,
`check_positive_ints`, `check_vector_event_shape`, `check_number`, `check_one_of` and `check_callable`: the one
set of checks the bijectors, `tfp_flows.datasets` and keras_models all use. Like Keras' own argument checks they
raise `ValueError` for a value of the wrong type too, and `bool` is never a number here (`True` would otherwise
pass as 1):

>>> check_int(3, "num_layers")
3
>>> check_int(True, "num_layers")
Traceback (most recent call last):
...
ValueError: `num_layers` must be an int >= 1; received True of type bool
>>> check_int(-1, "seed", minimum=None)
-1
>>> check_positive_ints([64, 64], "hidden_units")
(64, 64)
>>> check_number(0.0, "epsilon", minimum=0, strict=True)
Traceback (most recent call last):
...
ValueError: `epsilon` must be a finite number > 0; received 0.0
>>> check_one_of("sigmoid", "log_scale_bound", ("tanh", "sigmoid", None))
'sigmoid'
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection, Sequence
from typing import Any, Literal, TypeVar, overload

import numpy as np
import tensorflow as tf
from tensorflow_probability.python.internal import dtype_util, tensor_util

__all__ = [
    "check_float_dtype",
    "check_event_shape",
    "assert_in_unit_interval",
    "check_callable",
    "check_int",
    "check_number",
    "check_one_of",
    "check_positive_ints",
    "check_vector_event_shape",
    "float_parameters",
    "is_int",
    "is_real",
]


T = TypeVar("T")


def _prefix(owner: str | None) -> str:
    return f"{owner}: " if owner else ""


def is_int(value: Any) -> bool:
    """True for Python and NumPy integers, False for `bool` (and everything else)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def is_real(value: Any) -> bool:
    """True for Python and NumPy real numbers (ints included), False for `bool` and everything else."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


@overload
def check_int(
    value: Any,
    arg_name: str,
    minimum: int | None = 1,
    maximum: int | None = None,
    owner: str | None = None,
    allow_none: Literal[False] = False,
    hint: str = "",
) -> int: ...


@overload
def check_int(
    value: Any,
    arg_name: str,
    minimum: int | None = 1,
    maximum: int | None = None,
    owner: str | None = None,
    allow_none: bool = False,
    hint: str = "",
) -> int | None: ...


def check_int(
    value: Any,
    arg_name: str,
    minimum: int | None = 1,
    maximum: int | None = None,
    owner: str | None = None,
    allow_none: bool = False,
    hint: str = "",
) -> int | None:
    """`value` as an int, or a ValueError naming `arg_name`, the range expected and the value received.

    Args:
      value: the argument.
      arg_name: its name, as the caller spells it.
      minimum: smallest value allowed (default 1); None for no lower bound.
      maximum: largest value allowed; None (default) for no upper bound.
      owner: a prefix for the message (the class or bijector name), or None.
      allow_none: whether None passes (and is returned as None).
      hint: a few words appended to the message in parentheses (why the range), or "".
    """
    if value is None and allow_none:
        return None
    in_range = is_int(value) and (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
    if not in_range:
        if minimum is not None and maximum is not None:
            expected = f"an int in [{minimum}, {maximum}]"
        elif minimum is not None:
            expected = f"an int >= {minimum}"
        elif maximum is not None:
            expected = f"an int <= {maximum}"
        else:
            expected = "an int"
        expected = f"None or {expected}" if allow_none else expected
        received = repr(value) if is_int(value) else f"{value!r} of type {type(value).__name__}"
        raise ValueError(
            f"{_prefix(owner)}`{arg_name}` must be {expected}; received {received}{f' ({hint})' if hint else ''}"
        )
    return int(value)


def check_number(
    value: Any,
    arg_name: str,
    minimum: float | None = None,
    strict: bool = False,
    allow_inf: bool = False,
    owner: str | None = None,
    hint: str = "",
    below: float | None = None,
) -> float:
    """`value` as a float, or a ValueError naming `arg_name`, the range expected and the value received.

    Args:
      value: the argument: a Python or NumPy real number (not `bool`, not NaN).
      arg_name: its name, as the caller spells it.
      minimum: smallest value allowed; None (default) for no lower bound.
      strict: whether `minimum` itself is excluded (> rather than >=).
      allow_inf: whether +inf passes (otherwise the number must be finite).
      owner: a prefix for the message (the class or bijector name), or None.
      hint: a few words appended to the message in parentheses, or "".
      below: a strict upper bound (the value must be < `below`), or None (default) for none.
    """
    ok = is_real(value) and (math.isfinite(value) or (allow_inf and value == math.inf))
    ok = ok and (minimum is None or (value > minimum if strict else value >= minimum))
    ok = ok and (below is None or value < below)
    if not ok:
        expected = "a finite number"
        if minimum is not None and below is not None:
            expected = f"a number in {'(' if strict else '['}{minimum:g}, {below:g})"
        elif minimum is not None:
            expected += f" {'>' if strict else '>='} {minimum}"
        elif below is not None:
            expected += f" < {below}"
        expected += " or math.inf" if allow_inf else ""
        raise ValueError(
            f"{_prefix(owner)}`{arg_name}` must be {expected}; received {value!r}{f' ({hint})' if hint else ''}"
        )
    return float(value)


def check_one_of(value: T, arg_name: str, choices: Collection[Any], owner: str | None = None) -> T:
    """`value` if it is one of `choices`, else a ValueError naming `arg_name`, the choices and the value."""
    if value not in choices:
        raise ValueError(f"{_prefix(owner)}`{arg_name}` must be one of {choices}; received {value!r}")
    return value


def check_callable(value: T, arg_name: str, signature: str, owner: str | None = None) -> T:
    """`value` if callable, else a TypeError naming `arg_name`, the `signature` expected and the type received."""
    if not callable(value):
        raise TypeError(f"{_prefix(owner)}`{arg_name}` must be callable ({signature}); received {type(value).__name__}")
    return value


def check_positive_ints(values: Sequence[int], arg_name: str, owner: str | None = None) -> tuple[int, ...]:
    """A non-empty sequence of positive ints (layer widths, a shape) as a tuple, or a ValueError."""
    items = tuple(values) if np.ndim(values) else ()
    if not items or not all(is_int(v) and v > 0 for v in items):
        raise ValueError(
            f"{_prefix(owner)}`{arg_name}` must be a non-empty sequence of positive ints; received {values!r}"
        )
    return tuple(int(v) for v in items)


def check_vector_event_shape(event_shape: Any, owner: str, min_size: int = 2, hint: str = "") -> tuple[int]:
    """`(D,)` with D >= `min_size`, or a ValueError naming `owner`; `hint` says what to do instead."""
    shape = tuple(event_shape) if np.ndim(event_shape) else (event_shape,)
    if len(shape) != 1 or not is_int(shape[0]) or shape[0] < min_size:
        raise ValueError(
            f"{owner} models vectors: `event_shape` must be (D,) with D >= {min_size}; received "
            f"{event_shape!r}{f' ({hint})' if hint else ''}"
        )
    return (int(shape[0]),)


def check_float_dtype(x: Any, arg_name: str, owner: str | None = None) -> None:
    """Raise TypeError unless `x` has a floating-point dtype."""
    dtype = tf.as_dtype(getattr(x, "dtype", tf.float32))
    if not dtype.is_floating:
        raise TypeError(
            f"{_prefix(owner)}`{arg_name}` must have a floating-point dtype (float32 or float64); received {dtype.name}"
        )


def float_parameters(owner: str | None = None, **params: Any) -> tuple[tf.DType, list[Any]]:
    """(dtype, [tensors]): a bijector's parameters in their common floating-point dtype, in the order given.

    The dtype is TFP's `dtype_util.common_dtype` of the values (float32 for Python numbers); a non-float one
    raises TypeError naming all of them. Each value goes through `tensor_util.convert_nonref_to_tensor`, so
    `tf.Variable`s and `DeferredTensor`s stay as they are (read at every call) and the rest become tensors
    named after their argument. Call it inside the bijector's name scope.
    """
    dtype = dtype_util.common_dtype(list(params.values()), dtype_hint=tf.float32)
    check_float_dtype(tf.zeros([], dtype), ", ".join(params), owner)
    return dtype, [
        tensor_util.convert_nonref_to_tensor(value, dtype=dtype, name=name) for name, value in params.items()
    ]


def check_event_shape(x: Any, event_shape: Sequence[int | None], arg_name: str, bijector_name: str) -> None:
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
            f"{event_shape}; received shape {shape.as_list()}"
        )
    trailing = shape.as_list()[shape.rank - len(event_shape) :]
    for got, want in zip(trailing, event_shape):
        if got is not None and want is not None and got != want:
            raise ValueError(
                f"{bijector_name}: `{arg_name}` must end in the event shape {event_shape}; "
                f"received shape {shape.as_list()}"
            )


def assert_in_unit_interval(x: tf.Tensor, arg_name: str) -> list[tf.Operation]:
    """Assertions that `x` lies in [0, 1] (for `validate_args=True`)."""
    return [
        tf.debugging.assert_greater_equal(x, tf.zeros([], x.dtype), message=f"`{arg_name}` must be >= 0"),
        tf.debugging.assert_less_equal(x, tf.ones([], x.dtype), message=f"`{arg_name}` must be <= 1"),
    ]
