"""Shared mechanics of masked coupling bijectors (NICE, RealNVP/Glow, Flow++).

A coupling splits the event with a 0/1 `mask` of the event shape: entries where mask = 1 pass through
unchanged and condition the transform; entries where mask = 0 are transformed elementwise by an invertible
map whose parameters come from a conditioner applied to the masked input (Dinh et al. 2015, 2017):

    y = mask * x + (1 - mask) * g(x; theta(mask * x)),   log|det J| = sum_{mask=0} log|g'(x; theta)|.

The conditioner sees the full event shape (`x * mask`, zeros where transformed) and returns parameters of the
full event shape; only the entries where mask = 0 are used.

Block conditioners (optional). When the mask splits the last axis into two contiguous blocks (the half mask
for vectors, the channel mask for images), the zeros of `x * mask` and the parameters of the pass-through
entries are dead weight. A conditioner that declares the attribute

    block_split = last_axis_split(mask)      # (split index, pass-through block first?)

is called on the pass-through block alone, `fn(x_pass)`, and returns parameters for the transformed block
alone (the event shape with its last axis cut to the transformed block, then any trailing parameter axes),
as TFP's `tfb.RealNVP` hands its `shift_and_log_scale_fn` only the first block. The math is the same: the
network gets the numbers it would have sliced out of `x * mask`. A callable without the attribute (or with
`block_split = None`) keeps the full-shape contract above; one declaring a split other than the mask's raises
ValueError (it was built for another mask). `keras_models.layers.MaskedConditioner` declares it.

Context (conditional couplings, `tfp_flows.conditioning`). Every method takes `conditional_input=None`: when it
is not None, the conditioner is called as `conditioner(x_cond, conditional_input=c)`; without it exactly as
above. Subclasses receive it in `_conditioner_params(x_masked, conditional_input)` and call their conditioner
through `self._call_conditioner(fn, x_masked, conditional_input)`, which applies that rule.

Speed: with a two-block mask the coupling slices instead of multiplying, so the transform and its log-det
touch only the transformed block. Any other mask (checkerboard, custom) takes the multiplicative path.
"""

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import tensorflow as tf

from tfp_flows import validation
from tfp_flows.conditioning import CONDITIONAL_INPUT, ConditionalBijector
from tfp_flows.one_pass import OnePassBijector

__all__ = ["MaskedCoupling", "last_axis_split"]


def last_axis_split(mask: npt.ArrayLike) -> tuple[int, bool] | None:
    """(split index, pass-through block first?) when `mask` is two contiguous blocks along its last axis.

    The split index is where the second block starts: the mask's last axis is [1] * index + [0] * rest when the
    pass-through block comes first, and [0] * index + [1] * rest otherwise.

    Returns None when the mask is not static or not of that form (then the coupling multiplies by the mask).
    """
    value = tf.get_static_value(mask) if tf.is_tensor(mask) else np.asarray(mask)
    if value is None or value.ndim == 0:
        return None
    value = np.asarray(value)
    row = value.reshape(-1, value.shape[-1])
    if not np.all(row == row[:1]):  # must be constant over every axis but the last
        return None
    row = row[0]
    ones = int(row.sum())
    if ones in (0, row.size):
        return None
    if np.all(row[:ones] == 1) and np.all(row[ones:] == 0):
        return ones, True
    if np.all(row[: row.size - ones] == 0) and np.all(row[row.size - ones :] == 1):
        return row.size - ones, False
    return None


class _MultiplyLayout:
    """Any 0/1 mask: the conditioner sees x * mask; y = mask * x + (1 - mask) * g(x); log-dets masked."""

    def __init__(self, mask_value: np.ndarray) -> None:
        self._mask_value = mask_value
        self.param_event_shape = list(mask_value.shape)

    def _mask(self, dtype: tf.DType) -> tf.Tensor:
        return tf.constant(self._mask_value, dtype=dtype)

    def split(self, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """(pass-through part, transformed part, conditioner input)."""
        return x, x, x * self._mask(x.dtype)

    def restrict(self, param: tf.Tensor, extra: int) -> tf.Tensor:
        return param

    def merge(self, x_pass: tf.Tensor, y_trans: tf.Tensor) -> tf.Tensor:
        mask = self._mask(x_pass.dtype)
        return mask * x_pass + (1.0 - mask) * y_trans

    def mask_log_det(self, elementwise: tf.Tensor) -> tf.Tensor:
        return elementwise * (1.0 - self._mask(elementwise.dtype))


class _SliceLayout:
    """A mask of two contiguous blocks along the last axis (`last_axis_split`): slice and concatenate.

    With `block_conditioner` the conditioner gets the pass-through block and returns the transformed block's
    parameters; otherwise it gets the full event shape (zeros where transformed) and its parameters are sliced.
    """

    def __init__(self, mask_value: np.ndarray, split: tuple[int, bool], block_conditioner: bool) -> None:
        self._index, self._pass_first = split
        self._block_conditioner = block_conditioner
        event_shape = list(mask_value.shape)
        size = event_shape[-1]
        self._begin, self._end = (self._index, int(size)) if self._pass_first else (0, self._index)
        self.param_event_shape = event_shape[:-1] + [self._end - self._begin] if block_conditioner else event_shape

    def split(self, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """(pass-through block, transformed block, conditioner input)."""
        index = self._index
        x_pass, x_trans = (x[..., :index], x[..., index:]) if self._pass_first else (x[..., index:], x[..., :index])
        if self._block_conditioner:
            return x_pass, x_trans, x_pass
        zeros = tf.zeros_like(x_trans)
        return x_pass, x_trans, tf.concat([x_pass, zeros] if self._pass_first else [zeros, x_pass], axis=-1)

    def restrict(self, param: tf.Tensor, extra: int) -> tf.Tensor:
        """The part of a conditioner output that acts on the transformed block."""
        if self._block_conditioner:
            return param
        return param[(Ellipsis, slice(self._begin, self._end)) + (slice(None),) * extra]

    def merge(self, x_pass: tf.Tensor, y_trans: tf.Tensor) -> tf.Tensor:
        return tf.concat([x_pass, y_trans] if self._pass_first else [y_trans, x_pass], axis=-1)

    def mask_log_det(self, elementwise: tf.Tensor) -> tf.Tensor:
        return elementwise


class MaskedCoupling(ConditionalBijector, OnePassBijector):
    """Base class: subclasses implement the elementwise transform of the masked-out entries.

    Subclasses define:
      `_conditioner_params(x_masked, conditional_input)` -> a tuple of tensors computed by the conditioner
        (called through `_call_conditioner`, so the context c reaches it only when given) from its input: the masked
        input of the full event shape, or, for a block conditioner (`conditioner` passed to `__init__`
        declares `block_split`), the pass-through block; the tensors have the matching event shape (full, or
        the transformed block's) plus any trailing parameter axes;
      `_transform(x, params)` -> (y, elementwise log|dy/dx|) on the transformed block;
      `_untransform(y, params)` -> (x, elementwise log|dx/dy|) on the transformed block.
    Parameters handed to `_transform`/`_untransform` are already restricted to the transformed block.
    Conditioner outputs must have the input's batch shape and the expected event shape (then any trailing
    parameter axes): a static mismatch raises ValueError naming the conditioner output.

    The mask and the conditioner fix one layout at construction: `_SliceLayout` for a two-block mask (the
    conditioner given the pass-through block or the full shape), `_MultiplyLayout` for any other mask; one
    code path (`_run`) then splits, conditions, transforms and merges through it.
    """

    def __init__(
        self,
        mask: npt.ArrayLike,
        validate_args: bool,
        parameters: dict[str, Any],
        name: str,
        conditioner: Callable[..., Any] | None = None,
    ) -> None:
        mask_value = tf.get_static_value(mask) if tf.is_tensor(mask) else np.asarray(mask)
        if mask_value is None:
            raise ValueError(
                f"{name}: `mask` must be a static 0/1 array of the event shape; received a tensor "
                "whose value is unknown at construction time"
            )
        mask_value = np.asarray(mask_value)
        if mask_value.ndim == 0:
            raise ValueError(f"{name}: `mask` must have the event shape (rank >= 1); received a scalar")
        if not np.all((mask_value == 0) | (mask_value == 1)):
            raise ValueError(
                f"{name}: `mask` must contain only 0 and 1; received values {np.unique(mask_value).tolist()}"
            )
        if mask_value.all() or not mask_value.any():
            raise ValueError(
                f"{name}: `mask` must have both 0 (transformed) and 1 (pass-through) entries; "
                f"received all {int(mask_value.flat[0])}"
            )
        self._mask_value = mask_value.astype(np.float32)
        self._split = last_axis_split(mask_value)
        self._block_conditioner = _declares_blocks(conditioner, self._split, name)
        self._layout = (
            _MultiplyLayout(self._mask_value)
            if self._split is None
            else _SliceLayout(self._mask_value, self._split, self._block_conditioner)
        )
        super().__init__(
            forward_min_event_ndims=mask_value.ndim, validate_args=validate_args, parameters=parameters, name=name
        )

    @classmethod
    def _parameter_properties(cls, dtype: tf.DType, num_classes: int | None = None) -> dict[str, Any]:
        return {}

    @property
    def mask(self) -> np.ndarray:
        """The 0/1 mask (NumPy array of the event shape): 1 = pass-through, 0 = transformed."""
        return self._mask_value

    @property
    def event_shape(self) -> tuple[int, ...]:
        return self._mask_value.shape

    def _check_input(self, x: tf.Tensor, arg_name: str) -> None:
        validation.check_float_dtype(x, arg_name)
        validation.check_event_shape(x, self._mask_value.shape, arg_name, self.name)

    def _check_param_shape(self, param: tf.Tensor, input_rank: int, index: int, event_shape: Sequence[int]) -> int:
        """The number of trailing parameter axes of `param`, after checking its event shape statically.

        Parameters have the batch and event shape of the input, plus any trailing parameter axes (mixture
        components), whose number is the parameter's rank minus the input's rank.
        """
        rank = param.shape.rank
        extra = max(rank - input_rank, 0) if rank is not None and input_rank is not None else 0
        if rank is not None:
            # Without this check a broadcastable parameter (last event axis of size 1) would be sliced empty.
            trailing = param.shape.as_list()[: rank - extra][-len(event_shape) :]
            if len(trailing) < len(event_shape) or any(
                got is not None and got != want for got, want in zip(trailing, event_shape)
            ):
                raise ValueError(
                    f"{self.name}: conditioner output {index} must have the event shape {event_shape} (then any "
                    f"trailing parameter axes); received shape {param.shape.as_list()}"
                )
        return extra

    @staticmethod
    def _call_conditioner(conditioner: Callable[..., Any], x_cond: tf.Tensor, conditional_input: tf.Tensor) -> Any:
        """`conditioner(x_cond)`, or `conditioner(x_cond, conditional_input=c)` when there is a context c: an
        unconditional conditioner is called exactly as before conditioning existed."""
        if conditional_input is None:
            return conditioner(x_cond)
        return conditioner(x_cond, **{CONDITIONAL_INPUT: conditional_input})

    def _run(
        self, x: tf.Tensor, direction: str, conditional_input: tf.Tensor | None = None
    ) -> tuple[tf.Tensor, tf.Tensor]:
        layout = self._layout
        x_pass, x_trans, conditioner_input = layout.split(x)
        params = tuple(
            layout.restrict(p, self._check_param_shape(p, x.shape.rank, i, layout.param_event_shape))
            for i, p in enumerate(self._conditioner_params(conditioner_input, conditional_input))
        )
        step = self._transform if direction == "forward" else self._untransform
        y_trans, log_det = step(x_trans, params)
        event_axes = list(range(-self._mask_value.ndim, 0))
        return layout.merge(x_pass, y_trans), tf.reduce_sum(layout.mask_log_det(log_det), axis=event_axes)

    # TFP hands a bijector only the keyword arguments it declares: the context, never arbitrary **kwargs.
    def _forward_and_log_det(  # type: ignore[override]
        self, x: tf.Tensor, conditional_input: tf.Tensor | None = None
    ) -> tuple[tf.Tensor, tf.Tensor]:
        self._check_input(x, "x")
        return self._run(x, "forward", conditional_input)

    def _inverse_and_log_det(  # type: ignore[override]
        self, y: tf.Tensor, conditional_input: tf.Tensor | None = None
    ) -> tuple[tf.Tensor, tf.Tensor]:
        self._check_input(y, "y")
        return self._run(y, "inverse", conditional_input)

    def _conditioner_params(
        self, x_masked: tf.Tensor, conditional_input: tf.Tensor | None = None
    ) -> tuple[tf.Tensor, ...]:
        raise NotImplementedError

    def _transform(self, x: tf.Tensor, params: tuple[tf.Tensor, ...]) -> tuple[tf.Tensor, tf.Tensor]:
        raise NotImplementedError

    def _untransform(self, y: tf.Tensor, params: tuple[tf.Tensor, ...]) -> tuple[tf.Tensor, tf.Tensor]:
        raise NotImplementedError


def _declares_blocks(conditioner: Callable[..., Any] | None, split: tuple[int, bool] | None, name: str) -> bool:
    """Whether `conditioner` takes the pass-through block: its `block_split` is the mask's `split`.

    `block_split` is the conditioner's declaration (see the module docstring); None or absent means the
    full-shape contract. A declaration that is malformed or disagrees with the mask raises ValueError.
    """
    declared = getattr(conditioner, "block_split", None)
    if declared is None:
        return False
    if not isinstance(declared, (tuple, list)) or len(declared) != 2 or not validation.is_int(declared[0]):
        raise ValueError(
            f"{name}: the conditioner's `block_split` must be None or (split index, pass-through "
            f"first?) as returned by `last_axis_split`; received {declared!r}"
        )
    declared = (int(declared[0]), bool(declared[1]))
    if declared != split:
        mask_split = "is not two contiguous blocks along its last axis" if split is None else f"has block_split {split}"
        raise ValueError(
            f"{name}: the conditioner declares block_split {declared} but the mask {mask_split}: "
            "a block conditioner must be built for the coupling's own mask"
        )
    return True
