"""`ChannelSlice`: apply a bijector to the leading channels of the last axis, pass the rest through.

    y = concat([g(x[..., :k]), x[..., k:]], axis=-1),      log|det J| = log|det J_g(x[..., :k])|

This is the factor-out of multi-scale flows (RealNVP sec. 3.6, Dinh et al. 2017; Glow, Kingma & Dhariwal
2018): after a level, half of the channels are set aside and the next level transforms only the other half.
The inner bijector `g` must map events of shape [..., k] (with `event_ndims` dimensions) to the same shape.

Example:
    >>> import tensorflow as tf, tensorflow_probability as tfp
    >>> from tfp_flows.channel_slice import ChannelSlice
    >>> b = ChannelSlice(tfp.bijectors.Scale(2.0), num_channels=1, event_ndims=1)
    >>> b.forward(tf.constant([[1.0, 1.0]])).numpy()
    array([[2., 1.]], dtype=float32)
"""

from typing import Any

import tensorflow as tf
from tensorflow_probability import bijectors as tfb

from tfp_flows import validation
from tfp_flows.one_pass import OnePassBijector

__all__ = ["ChannelSlice"]


class ChannelSlice(OnePassBijector):
    """Applies `bijector` to `x[..., :num_channels]` and the identity to the remaining channels.

    Args:
      bijector: the inner `tfb.Bijector`, shape-preserving on the sliced events.
      num_channels: how many leading channels of the last axis it transforms (a positive Python int).
      event_ndims: the event rank the inner bijector works on (1 for vectors, 3 for [H, W, C] images).
    """

    def __init__(
        self,
        bijector: tfb.Bijector,
        num_channels: int,
        event_ndims: int,
        validate_args: bool = False,
        name: str = "channel_slice",
    ) -> None:
        num_channels = validation.check_int(num_channels, "num_channels", owner="ChannelSlice")
        event_ndims = validation.check_int(event_ndims, "event_ndims", owner="ChannelSlice")
        parameters = dict(locals())
        self._bijector = bijector
        self._num_channels = num_channels
        self._event_ndims = event_ndims
        super().__init__(
            forward_min_event_ndims=event_ndims, validate_args=validate_args, parameters=parameters, name=name
        )

    @classmethod
    def _parameter_properties(cls, dtype: tf.DType, num_classes: int | None = None) -> dict[str, Any]:
        return {}

    @property
    def bijector(self) -> tfb.Bijector:
        return self._bijector

    def _split(self, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        channels = x.shape[-1]
        if channels is not None and channels <= self._num_channels:
            raise ValueError(
                f"{self.name}: the input's last axis must have more than num_channels="
                f"{self._num_channels} channels; received shape {x.shape.as_list()}"
            )
        return x[..., : self._num_channels], x[..., self._num_channels :]

    # Output and log-det in one pass (the inner chain's own caches then serve its log-det without a rerun).
    # Keyword arguments (a conditional inner chain's `bijector_kwargs`, `tfp_flows.conditioning`) go to the inner
    # bijector unchanged, as `tfb.Invert` passes its own.
    passes_kwargs_to_bijector = True

    def _forward_and_log_det(self, x: tf.Tensor, **kwargs: Any) -> tuple[tf.Tensor, tf.Tensor]:
        head, tail = self._split(x)
        y_head = self._bijector.forward(head, **kwargs)
        fldj = self._bijector.forward_log_det_jacobian(head, event_ndims=self._event_ndims, **kwargs)
        return tf.concat([y_head, tail], axis=-1), fldj

    def _inverse_and_log_det(self, y: tf.Tensor, **kwargs: Any) -> tuple[tf.Tensor, tf.Tensor]:
        head, tail = self._split(y)
        x_head = self._bijector.inverse(head, **kwargs)
        ildj = self._bijector.inverse_log_det_jacobian(head, event_ndims=self._event_ndims, **kwargs)
        return tf.concat([x_head, tail], axis=-1), ildj
