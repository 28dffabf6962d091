"""Activation normalization (ActNorm) from Glow (Kingma & Dhariwal 2018, sec. 3.1), and its data-dependent init."""

from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow_probability import bijectors as tfb
from tensorflow_probability.python.internal import assert_util, parameter_properties, tensor_util
from tensorflow_probability.python.internal import prefer_static as ps

from tfp_flows import validation
from tfp_flows.instance_cache import InstanceKeyedCache

__all__ = ["ActNorm", "actnorm_initial_parameters"]


def channel_count(param: tf.Tensor, arg_name: str, min_rank: int, bijector_name: str) -> int | None:
    """The static size of `param`'s last axis (None if unknown); ValueError if its rank is below `min_rank`."""
    rank = param.shape.rank
    if rank is not None and rank < min_rank:
        raise ValueError(
            f"{bijector_name}: `{arg_name}` must have rank >= {min_rank} (channels on the last axis); "
            f"received shape {param.shape.as_list()}"
        )
    return param.shape[-1] if rank is not None else None


def check_channels(x: tf.Tensor, channels: int | None, arg_name: str, param_name: str, bijector_name: str) -> None:
    """Static check that `x` is floating point and ends in `channels` (skipped where a size is unknown).

    Raises TypeError/ValueError naming `x`'s argument and the parameter that fixes the channel count.
    """
    validation.check_float_dtype(x, arg_name)
    rank = x.shape.rank
    if rank is not None and rank < 1:
        raise ValueError(
            f"{bijector_name}: `{arg_name}` must have rank >= 1 with channels on the last axis; received a scalar"
        )
    static = x.shape[-1] if rank is not None else None
    if static is not None and channels is not None and static != channels:
        raise ValueError(
            f"{bijector_name}: the last axis of `{arg_name}` must have {channels} channels, the size of "
            f"`{param_name}`'s last axis; received shape {x.shape.as_list()}"
        )


def broadcast_over_positions(log_det: tf.Tensor, x: tf.Tensor) -> tf.Tensor:
    """The per-position log-det broadcast to x's shape without its channel axis (batch and spatial axes).

    TFP then sums it over the event axes beyond the channel vector (H * W terms for an [H, W, C] event), and
    callers get a log-det of x's batch shape rather than a bare scalar.
    """
    shape = ps.broadcast_shape(ps.shape(x)[:-1], ps.shape(log_det))
    return tf.broadcast_to(log_det, shape)


def assert_finite_parameter(param: tf.Tensor, message: str) -> tf.Operation | None:
    """A check that `param` is finite: ValueError now if its value is static, else an assertion op.

    (TFP's `assert_finite` hands back the tensor itself when the value is static, which the Bijector base
    class then turns into a `None` control dependency in eager mode.)
    """
    value = tf.get_static_value(param)
    if value is not None:
        if not np.all(np.isfinite(value)):
            raise ValueError(message)
        return None
    return assert_util.assert_equal(tf.reduce_all(tf.math.is_finite(param)), True, message=message)


def checked_channels(
    x: tf.Tensor,
    channels: int | None,
    param: tf.Tensor,
    arg_name: str,
    param_name: str,
    bijector_name: str,
    validate_args: bool,
) -> tf.Tensor:
    """`x` after `check_channels`, and with `validate_args` behind `assert_channels` (both name `param_name`)."""
    check_channels(x, channels, arg_name, param_name, bijector_name)
    if validate_args:
        return assert_channels(x, param, arg_name, param_name, bijector_name)
    return x


def assert_channels(x: tf.Tensor, param: tf.Tensor, arg_name: str, param_name: str, bijector_name: str) -> tf.Tensor:
    """`x` behind a run-time assertion that its last axis matches `param`'s (for `validate_args=True`)."""
    assertion = assert_util.assert_equal(
        tf.shape(x)[-1],
        tf.shape(param)[-1],
        message=f"{bijector_name}: the last axis of `{arg_name}` must have as many channels as `{param_name}`",
    )
    with tf.control_dependencies([assertion]):
        return tf.identity(x)


class PerChannel:
    """Shared by bijectors whose parameters act on the last (channel) axis: the static channel count, the input
    check against the parameter named by `_channel_param` (the attribute `"_" + _channel_param`), and the log-dets.

    A subclass gives `_log_abs_det()`, log|det| of its map on one channel vector (of the parameters' batch shape);
    the map is the same at every position, so the log-det of an input is that value at each of its positions.
    """

    _channels: int | None
    _channel_param: str
    name: str
    validate_args: bool

    @property
    def channels(self) -> int | None:
        """The static channel count C (None if unknown)."""
        return self._channels

    def _checked(self, x: tf.Tensor, arg_name: str) -> tf.Tensor:
        param = getattr(self, "_" + self._channel_param)
        return checked_channels(x, self._channels, param, arg_name, self._channel_param, self.name, self.validate_args)

    def _log_abs_det(self) -> tf.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement `_log_abs_det`")

    def _forward_log_det_jacobian(self, x: tf.Tensor) -> tf.Tensor:
        check_channels(x, self._channels, "x", self._channel_param, self.name)
        return broadcast_over_positions(self._log_abs_det(), x)

    def _inverse_log_det_jacobian(self, y: tf.Tensor) -> tf.Tensor:
        check_channels(y, self._channels, "y", self._channel_param, self.name)
        return broadcast_over_positions(-self._log_abs_det(), y)


class ActNorm(PerChannel, InstanceKeyedCache, tfb.Bijector):
    """Per-channel affine map with learned location and log-scale (Glow's ActNorm).

    Forward (latent -> data), per channel c on the last axis:

        y[..., c] = x[..., c] * exp(log_scale[c]) + loc[c]
        inverse:   x[..., c] = (y[..., c] - loc[c]) * exp(-log_scale[c])

    log|det dy/dx| = sum_c log_scale[c] for a vector event [C] (event_ndims=1) and
    H * W * sum_c log_scale[c] for an image event [H, W, C] (event_ndims=3): the bijector's minimal event is the
    channel vector and TFP sums the log-det over the extra event axes. Equal to
    `tfb.Chain([tfb.Shift(loc), tfb.Scale(tf.exp(log_scale))])`. Glow (Kingma & Dhariwal 2018, sec. 3.1)
    writes the data -> latent direction, which here is the inverse: its scale s and bias b are
    s = exp(-log_scale), b = -loc * exp(-log_scale).

    Parameters of shape [..., C] (leading axes are the bijector's batch shape); tensors, `tf.Variable`s or
    `DeferredTensor`s. Use `actnorm_initial_parameters` for Glow's data-dependent initialisation.

    Args:
      loc: float tensor [..., C].
      log_scale: float tensor [..., C].
      validate_args: when True, assert that `loc` and `log_scale` are finite and that inputs have C channels.
      name: name scope of the bijector's ops.

    Example:
        >>> import tensorflow as tf
        >>> from tfp_flows import ActNorm
        >>> actnorm = ActNorm(loc=[1.0, -1.0], log_scale=[0.0, tf.math.log(2.0)])
        >>> actnorm.forward(tf.ones([1, 2, 2, 2]))[0, 0, 0].numpy()
        array([2., 1.], dtype=float32)
        >>> float(actnorm.forward_log_det_jacobian(tf.ones([1, 2, 2, 2]), event_ndims=3)[0])  # 4 * log 2
        2.772588...
    """

    _channel_param = "log_scale"

    def __init__(
        self, loc: tf.Tensor, log_scale: tf.Tensor, validate_args: bool = False, name: str = "actnorm"
    ) -> None:
        parameters = dict(locals())
        with tf.name_scope(name) as name:
            dtype, (self._loc, self._log_scale) = validation.float_parameters("ActNorm", loc=loc, log_scale=log_scale)
            loc_channels = channel_count(self._loc, "loc", 1, "ActNorm")
            scale_channels = channel_count(self._log_scale, "log_scale", 1, "ActNorm")
            if loc_channels is not None and scale_channels is not None and loc_channels != scale_channels:
                raise ValueError(
                    f"ActNorm: `loc` and `log_scale` must have the same number of channels (last axis); "
                    f"received shapes {self._loc.shape.as_list()} and {self._log_scale.shape.as_list()}"
                )
            self._channels = scale_channels if scale_channels is not None else loc_channels
            super().__init__(
                forward_min_event_ndims=1,
                is_constant_jacobian=True,
                dtype=dtype,
                validate_args=validate_args,
                parameters=parameters,
                name=name,
            )

    @classmethod
    def _parameter_properties(cls, dtype: tf.DType, num_classes: int | None = None) -> dict[str, Any]:
        return {
            "loc": parameter_properties.ParameterProperties(event_ndims=1),
            "log_scale": parameter_properties.ParameterProperties(event_ndims=1),
        }

    @property
    def loc(self) -> tf.Tensor:
        return self._loc

    @property
    def log_scale(self) -> tf.Tensor:
        return self._log_scale

    def _forward(self, x: tf.Tensor) -> tf.Tensor:
        x = self._checked(x, "x")
        return x * tf.math.exp(self._log_scale) + self._loc

    def _inverse(self, y: tf.Tensor) -> tf.Tensor:
        y = self._checked(y, "y")
        return (y - self._loc) * tf.math.exp(-self._log_scale)

    def _log_abs_det(self) -> tf.Tensor:
        return tf.reduce_sum(self._log_scale, axis=-1)

    def _parameter_control_dependencies(self, is_init: bool) -> list[tf.Operation]:
        if not self.validate_args:
            return []
        assertions = []
        for arg_name, param in (("loc", self._loc), ("log_scale", self._log_scale)):
            if is_init != tensor_util.is_ref(param):
                assertions.append(
                    assert_finite_parameter(tf.convert_to_tensor(param), f"{self.name}: `{arg_name}` must be finite")
                )
        return [a for a in assertions if a is not None]


def actnorm_initial_parameters(x: tf.Tensor, epsilon: float = 1e-6) -> tuple[tf.Tensor, tf.Tensor]:
    """Glow's data-dependent initialisation: (loc, log_scale) such that `ActNorm(loc, log_scale).inverse(x)`
    has zero mean and unit variance per channel over the batch `x` (Kingma & Dhariwal 2018, sec. 3.1).

        loc = mean(x),   log_scale = log(max(std(x), epsilon)),

    with mean and std over every axis but the last (batch and spatial positions). The floor keeps a constant
    batch (an all-zero "build" batch, a blank image region) finite: there, log_scale = log(epsilon) instead of
    -inf, and the inverse maps the batch to zeros.

    Args:
      x: float tensor [N, ..., C] of data (the data side, the bijector's output), N >= 1.
      epsilon: floor of the per-channel std, a number > 0.
    Returns:
      (loc, log_scale): tensors [C] of x's dtype.

    Example:
        >>> import tensorflow as tf
        >>> from tfp_flows import ActNorm, actnorm_initial_parameters
        >>> x = tf.random.normal([64, 4, 4, 3], mean=5.0, stddev=3.0)
        >>> z = ActNorm(*actnorm_initial_parameters(x)).inverse(x)  # mean ~0, std ~1 per channel
    """
    validation.check_number(epsilon, "epsilon", minimum=0, strict=True)
    x = tf.convert_to_tensor(x)
    validation.check_float_dtype(x, "x")
    if x.shape.rank is None or x.shape.rank < 2:
        raise ValueError(
            f"`x` must be a batch of shape [N, ..., C] (rank >= 2, channels last); received shape {x.shape}"
        )
    axes = list(range(x.shape.rank - 1))
    mean, variance = tf.nn.moments(x, axes=axes)
    std = tf.math.sqrt(variance)
    log_scale = tf.math.log(tf.maximum(std, tf.constant(epsilon, dtype=x.dtype)))
    return mean, log_scale
