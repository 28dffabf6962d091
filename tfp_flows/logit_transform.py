"""LogitTransform: RealNVP's preprocessing between data in [0, 1] and the real line (Dinh et al. 2017, sec. 4.1).

Direction (TFP's convention: forward = latent -> data, inverse = data -> latent):

    inverse (data -> latent):  z = logit(alpha + (1 - 2 alpha) x),        x in [0, 1]
    forward (latent -> data):  x = (sigmoid(z) - alpha) / (1 - 2 alpha),  z in R

    inverse log|dz/dx| = log(1 - 2 alpha) - log(p) - log(1 - p),           p = alpha + (1 - 2 alpha) x
    forward log|dx/dz| = -softplus(-z) - softplus(z) - log(1 - 2 alpha)     (= log sigmoid(z) (1 - sigmoid(z)) - ...)

In a chain it sits closest to the data: `tfb.Chain([LogitTransform(), flow])` maps flow samples to [0, 1], and
its inverse turns image data into the unbounded space the flow models. The shrink by alpha keeps pixels equal to
0 or 1 away from logit's infinities; its log-det is part of the data likelihood (bits/dim accounting).

Precision: p and 1 - p are both formed directly from x and 1 - x (never as 1 - p), so data at both ends keeps
full relative precision. The forward image of R is (-alpha / (1 - 2 alpha), 1 + alpha / (1 - 2 alpha)), slightly
wider than [0, 1]; latents beyond logit(alpha) .. logit(1 - alpha) land just outside [0, 1] and, once sigmoid
saturates (|z| beyond about 16 in float32, 36 in float64), cannot be told apart any more.
"""

from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow_probability import bijectors as tfb
from tensorflow_probability.python.internal import assert_util, dtype_util, parameter_properties, tensor_util

from tfp_flows import validation

__all__ = ["LogitTransform"]


class LogitTransform(tfb.Bijector):
    """Elementwise map between latent z in R (forward's input) and data x in [0, 1] (inverse's input).

    forward: x = (sigmoid(z) - alpha) / (1 - 2 alpha);  inverse: z = logit(alpha + (1 - 2 alpha) x).

    Event shape: elementwise (`forward_min_event_ndims=0`). `alpha` in (0, 1/2) is usually a Python float
    (a fixed preprocessing constant; 1e-6 as in FFJORD, RealNVP used 0.05 on CIFAR-10) and may be a tensor; a
    statically known `alpha` outside (0, 1/2) raises ValueError at once, otherwise `validate_args=True` asserts
    it.

    The inverse expects data x in [0, 1] (images on the [0, 1] scale, e.g. (pixel + u) / 256; not the [-0.5, 0.5]
    of TFP's and Glow's own preprocessing). With `validate_args=True` it asserts so (InvalidArgumentError naming
    the argument); without, data below -alpha / (1 - 2 alpha) or above 1 + alpha / (1 - 2 alpha) gives NaN and
    data just outside [0, 1] a finite but meaningless value, so validate your data or keep `validate_args=True`
    in your own chains (`keras_models` presets check their data against `FlowModel.support` instead, which also
    holds under XLA).

    Example:
        >>> import tensorflow as tf
        >>> from tfp_flows import LogitTransform
        >>> to_data = LogitTransform(alpha=0.05)
        >>> pixels = tf.constant([0.0, 0.5, 1.0])
        >>> z = to_data.inverse(pixels)                   # [logit(0.05), 0, logit(0.95)]
        >>> ildj = to_data.inverse_log_det_jacobian(pixels, event_ndims=1)   # the data-side log-det
    """

    def __init__(self, alpha: float = 1e-6, validate_args: bool = False, name: str = "logit_transform") -> None:
        """Build the bijector.

        Args:
          alpha: float in (0, 1/2): data x maps to logit(alpha + (1 - 2 alpha) x).
          validate_args: if True, assert 0 < alpha < 1/2 and that the inverse's data lies in [0, 1].
          name: name scope of the ops.
        """
        parameters = dict(locals())
        with tf.name_scope(name) as name:
            static_alpha = (
                alpha
                if not tf.is_tensor(alpha)
                else (None if tensor_util.is_ref(alpha) else tf.get_static_value(alpha))
            )
            if static_alpha is not None and not np.all(
                (np.asarray(static_alpha) > 0) & (np.asarray(static_alpha) < 0.5)
            ):
                raise ValueError(f"LogitTransform: argument `alpha` must lie in (0, 0.5); received {static_alpha}")
            if tf.is_tensor(alpha) or tensor_util.is_ref(alpha) or np.ndim(alpha) > 0:
                dtype, (self._alpha,) = validation.float_parameters(alpha=alpha)
            else:
                # A Python number stays one: it follows the dtype of each input (float32 or float64) at full
                # precision, and no tensor is created at construction.
                dtype = None
                self._alpha = float(alpha)
            super().__init__(
                forward_min_event_ndims=0, validate_args=validate_args, dtype=dtype, parameters=parameters, name=name
            )

    @property
    def alpha(self) -> float:
        return self._alpha

    @classmethod
    def _parameter_properties(cls, dtype: tf.DType) -> dict[str, Any]:
        return {
            "alpha": parameter_properties.ParameterProperties(
                default_constraining_bijector_fn=lambda: tfb.Sigmoid(
                    low=dtype_util.eps(dtype), high=0.5 - dtype_util.eps(dtype)
                )
            ),
        }

    def _is_increasing(self) -> bool:
        return True

    def _alpha_as(self, dtype: tf.DType) -> tf.Tensor:
        if isinstance(self.alpha, float):
            return tf.constant(self.alpha, dtype)
        return tf.cast(tf.convert_to_tensor(self.alpha), dtype)

    def _forward(self, z: tf.Tensor) -> tf.Tensor:
        alpha = self._alpha_as(z.dtype)
        return (tf.sigmoid(z) - alpha) / (1.0 - 2.0 * alpha)

    def _shrunk(self, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """(p, 1 - p) with p = alpha + (1 - 2 alpha) x, each formed directly (no 1 - p cancellation)."""
        alpha = self._alpha_as(x.dtype)
        scale = 1.0 - 2.0 * alpha
        return alpha + scale * x, alpha + scale * (1.0 - x), scale

    def _inverse(self, x: tf.Tensor) -> tf.Tensor:
        with tf.control_dependencies(self._data_assertions(x)):
            p, one_minus_p, _ = self._shrunk(x)
            return tf.math.log(p) - tf.math.log(one_minus_p)

    def _inverse_log_det_jacobian(self, x: tf.Tensor) -> tf.Tensor:
        with tf.control_dependencies(self._data_assertions(x)):
            p, one_minus_p, scale = self._shrunk(x)
            return tf.math.log(scale) - tf.math.log(p) - tf.math.log(one_minus_p)

    def _forward_log_det_jacobian(self, z: tf.Tensor) -> tf.Tensor:
        alpha = self._alpha_as(z.dtype)
        # log sigmoid(z) + log(1 - sigmoid(z)) = -softplus(-z) - softplus(z): finite for any z.
        return -tf.math.softplus(-z) - tf.math.softplus(z) - tf.math.log(1.0 - 2.0 * alpha)

    def _data_assertions(self, x: tf.Tensor) -> list[tf.Operation]:
        if not self.validate_args:
            return []
        zero, one = tf.zeros([], x.dtype), tf.ones([], x.dtype)
        message = "LogitTransform.inverse: data argument `y` must lie in [0, 1]"
        return [
            tf.debugging.assert_greater_equal(x, zero, message=f"{message}; received values below 0"),
            tf.debugging.assert_less_equal(x, one, message=f"{message}; received values above 1"),
        ]

    def _parameter_control_dependencies(self, is_init: bool) -> list[tf.Operation]:
        if not self.validate_args or isinstance(self.alpha, float) or is_init == tensor_util.is_ref(self.alpha):
            return []  # a Python float was checked in __init__
        alpha = tf.convert_to_tensor(self.alpha)
        return [
            assert_util.assert_positive(alpha, message="LogitTransform: argument `alpha` must be > 0"),
            assert_util.assert_less(
                alpha, tf.constant(0.5, alpha.dtype), message="LogitTransform: argument `alpha` must be < 0.5"
            ),
        ]
