"""PReLU: the parametric leaky-ReLU bijector, an elementwise piecewise-linear map.

    y = x            for x >= 0
    y = alpha * x    for x <  0,          alpha > 0,
    log|dy/dx| = 0 for x >= 0 and log(alpha) for x < 0.

He et al. 2015 ("Delving deep into rectifiers") introduced the parametric ReLU; with alpha > 0 it is a
bijection of R, used as an invertible nonlinearity between linear flow layers (e.g. Oliva et al. 2018,
"Transformation autoregressive networks"). The map preserves sign, so the inverse picks its branch on y.
"""

from typing import Any

import tensorflow as tf
from tensorflow_probability import bijectors as tfb
from tensorflow_probability.python.internal import assert_util, dtype_util, parameter_properties, tensor_util

from tfp_flows import validation

__all__ = ["PReLU"]


class PReLU(tfb.Bijector):
    """Elementwise y = x (x >= 0), y = alpha * x (x < 0); alpha > 0 keeps it a bijection of R.

    Event shape: elementwise (`forward_min_event_ndims=0`); the batch shape is the shape of `alpha`, which
    broadcasts with the input. Forward is the sampling direction (latent -> data), as everywhere in TFP.
    `alpha` may be a tensor, a `tf.Variable` or a `tfp.util.DeferredTensor` (for example
    `DeferredTensor(raw_alpha, tf.math.softplus)` to keep it positive while training); it is read at every call,
    so gradients reach the variable.

    Example:
        >>> import tensorflow as tf
        >>> from tfp_flows import PReLU
        >>> bijector = PReLU(alpha=0.5)
        >>> bijector.forward(tf.constant([-2.0, 3.0])).numpy()
        array([-1.,  3.], dtype=float32)
        >>> float(bijector.inverse_log_det_jacobian(tf.constant([-1.0, 3.0]), event_ndims=1))  # -log(0.5)
        0.6931471824645996
    """

    def __init__(self, alpha: float | tf.Tensor, validate_args: bool = False, name: str = "prelu") -> None:
        """Build the bijector.

        Args:
          alpha: float tensor-like > 0, the slope for negative inputs; its shape is the batch shape.
          validate_args: if True, assert `alpha > 0` (at construction for constants, at every call for
            variables).
          name: name scope of the ops.
        """
        parameters = dict(locals())
        with tf.name_scope(name) as name:
            dtype, (self._alpha,) = validation.float_parameters(alpha=alpha)
            super().__init__(
                forward_min_event_ndims=0, validate_args=validate_args, dtype=dtype, parameters=parameters, name=name
            )

    @property
    def alpha(self) -> tf.Tensor:
        """The slope applied to negative inputs."""
        return self._alpha

    @classmethod
    def _parameter_properties(cls, dtype: tf.DType) -> dict[str, Any]:
        return {
            "alpha": parameter_properties.ParameterProperties(
                default_constraining_bijector_fn=lambda: tfb.Softplus(low=dtype_util.eps(dtype))
            ),
        }

    def _is_increasing(self) -> bool:
        return True

    def _forward(self, x: tf.Tensor) -> tf.Tensor:
        alpha = tf.convert_to_tensor(self.alpha)
        return tf.where(x >= 0, x, alpha * x)

    def _inverse(self, y: tf.Tensor) -> tf.Tensor:
        alpha = tf.convert_to_tensor(self.alpha)
        return tf.where(y >= 0, y, y / alpha)

    def _log_slope(self, on_negative_side: tf.Tensor) -> tf.Tensor:
        # The log-det takes the broadcast shape of the input and alpha (each entry is the slope's log).
        log_alpha = tf.math.log(tf.convert_to_tensor(self.alpha))
        return tf.where(on_negative_side, log_alpha, tf.zeros([], log_alpha.dtype))

    def _forward_log_det_jacobian(self, x: tf.Tensor) -> tf.Tensor:
        return self._log_slope(x < 0)

    def _inverse_log_det_jacobian(self, y: tf.Tensor) -> tf.Tensor:
        return -self._log_slope(y < 0)

    def _parameter_control_dependencies(self, is_init: bool) -> list[tf.Operation]:
        if not self.validate_args:
            return []
        # Constants are checked once at construction, variables at every use (TFP's convention).
        if is_init == tensor_util.is_ref(self.alpha):
            return []
        alpha = tf.convert_to_tensor(self.alpha)
        return [
            assert_util.assert_positive(
                alpha, message="PReLU: argument `alpha` must be > 0 (a slope of 0 or below is not invertible)"
            )
        ]
