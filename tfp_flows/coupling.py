"""Shared mechanics of masked coupling bijectors (NICE, RealNVP/Glow, Flow++).

A coupling splits the event with a 0/1 `mask` of the event shape: entries where mask = 1 pass through
unchanged and condition the transform; entries where mask = 0 are transformed elementwise by an invertible
map whose parameters come from a conditioner applied to the masked input (Dinh et al. 2015, 2017):

    y = mask * x + (1 - mask) * g(x; theta(mask * x)),   log|det J| = sum_{mask=0} log|g'(x; theta)|.

The conditioner always sees the full event shape (`x * mask`, zeros where transformed) and returns
parameters of the full event shape; only the entries where mask = 0 are used.

Speed: when the mask is known statically to split the last axis into two contiguous blocks (the half mask for
vectors and the channel mask for images) the coupling slices instead of multiplying, so the transform and its
log-det touch only the transformed block. Any other mask (checkerboard, custom) takes the multiplicative path.
"""
import numpy as np
import tensorflow as tf

from tfp_flows import validation
from tfp_flows.one_pass import OnePassBijector

__all__ = ["MaskedCoupling", "last_axis_split"]


def last_axis_split(mask):
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
    if np.all(row[: row.size - ones] == 0) and np.all(row[row.size - ones:] == 1):
        return row.size - ones, False
    return None


class MaskedCoupling(OnePassBijector):
    """Base class: subclasses implement the elementwise transform of the masked-out entries.

    Subclasses define:
      `_conditioner_params(x_masked)` -> a tuple of tensors of the full event shape (plus any trailing
        parameter axes) computed from the masked input;
      `_transform(x, params)` -> (y, elementwise log|dy/dx|) on the transformed block;
      `_untransform(y, params)` -> (x, elementwise log|dx/dy|) on the transformed block.
    Parameters handed to `_transform`/`_untransform` are already restricted to the transformed block.
    Conditioner outputs must have the input's batch shape and the full event shape (then any trailing
    parameter axes): a static mismatch raises ValueError naming the conditioner output.
    """

    def __init__(self, mask, validate_args, parameters, name):
        mask_value = tf.get_static_value(mask) if tf.is_tensor(mask) else np.asarray(mask)
        if mask_value is None:
            raise ValueError(f"{name}: `mask` must be a static 0/1 array of the event shape; received a tensor "
                             "whose value is unknown at construction time")
        mask_value = np.asarray(mask_value)
        if mask_value.ndim == 0:
            raise ValueError(f"{name}: `mask` must have the event shape (rank >= 1); received a scalar")
        if not np.all((mask_value == 0) | (mask_value == 1)):
            raise ValueError(f"{name}: `mask` must contain only 0 and 1; received values "
                             f"{np.unique(mask_value).tolist()}")
        if mask_value.all() or not mask_value.any():
            raise ValueError(f"{name}: `mask` must have both 0 (transformed) and 1 (pass-through) entries; "
                             f"received all {int(mask_value.flat[0])}")
        self._mask_value = mask_value.astype(np.float32)
        self._split = last_axis_split(mask_value)
        super().__init__(forward_min_event_ndims=mask_value.ndim, validate_args=validate_args,
                         parameters=parameters, name=name)

    @classmethod
    def _parameter_properties(cls, dtype, num_classes=None):
        return {}

    @property
    def mask(self):
        """The 0/1 mask (NumPy array of the event shape): 1 = pass-through, 0 = transformed."""
        return self._mask_value

    @property
    def event_shape(self):
        return self._mask_value.shape

    def _check_input(self, x, arg_name):
        validation.check_float_dtype(x, arg_name)
        validation.check_event_shape(x, self._mask_value.shape, arg_name, self.name)

    def _mask(self, dtype):
        return tf.constant(self._mask_value, dtype=dtype)

    def _split_input(self, x):
        """(pass-through block, transformed block, conditioner input of the full event shape)."""
        if self._split is not None:
            index, pass_first = self._split
            if pass_first:
                x_pass, x_trans = x[..., :index], x[..., index:]
                conditioner_input = tf.concat([x_pass, tf.zeros_like(x_trans)], axis=-1)
            else:
                x_trans, x_pass = x[..., :index], x[..., index:]
                conditioner_input = tf.concat([tf.zeros_like(x_trans), x_pass], axis=-1)
            return x_pass, x_trans, conditioner_input
        mask = self._mask(x.dtype)
        return x, x, x * mask

    def _restrict(self, param, input_rank, index):
        """The part of a full-event-shaped parameter that acts on the transformed block.

        Parameters have the batch and event shape of the input, plus any trailing parameter axes (mixture
        components), whose number is the parameter's rank minus the input's rank.
        """
        event_shape = list(self._mask_value.shape)
        rank = param.shape.rank
        extra = max(rank - input_rank, 0) if rank is not None and input_rank is not None else 0
        if rank is not None:
            # Without this check a broadcastable parameter (last event axis of size 1) would be sliced empty.
            trailing = param.shape.as_list()[: rank - extra][-len(event_shape):]
            if len(trailing) < len(event_shape) or any(
                    got is not None and got != want for got, want in zip(trailing, event_shape)):
                raise ValueError(
                    f"{self.name}: conditioner output {index} must have the event shape {event_shape} (then any "
                    f"trailing parameter axes); received shape {param.shape.as_list()}")
        if self._split is None:
            return param
        split_index, pass_first = self._split
        size = event_shape[-1]
        begin, end = (split_index, size) if pass_first else (0, split_index)
        return param[(Ellipsis, slice(begin, end)) + (slice(None),) * extra]

    def _merge(self, x_pass, y_trans, x_full):
        if self._split is not None:
            _, pass_first = self._split
            return tf.concat([x_pass, y_trans] if pass_first else [y_trans, x_pass], axis=-1)
        mask = self._mask(x_full.dtype)
        return mask * x_full + (1.0 - mask) * y_trans

    def _reduce_log_det(self, elementwise, dtype):
        event_axes = list(range(-self._mask_value.ndim, 0))
        if self._split is None:
            elementwise = elementwise * (1.0 - self._mask(dtype))
        return tf.reduce_sum(elementwise, axis=event_axes)

    def _run(self, x, direction):
        x_pass, x_trans, conditioner_input = self._split_input(x)
        params = tuple(self._restrict(p, x.shape.rank, i)
                       for i, p in enumerate(self._conditioner_params(conditioner_input)))
        step = self._transform if direction == "forward" else self._untransform
        y_trans, log_det = step(x_trans, params)
        return self._merge(x_pass, y_trans, x), self._reduce_log_det(log_det, x.dtype)

    def _forward_and_log_det(self, x):
        self._check_input(x, "x")
        return self._run(x, "forward")

    def _inverse_and_log_det(self, y):
        self._check_input(y, "y")
        return self._run(y, "inverse")

    def _conditioner_params(self, x_masked):
        raise NotImplementedError

    def _transform(self, x, params):
        raise NotImplementedError

    def _untransform(self, y, params):
        raise NotImplementedError
