"""Radial flow (Rezende & Mohamed 2015, "Variational inference with normalizing flows", sec. 4.1, appendix A).

    f(z) = z + beta * h(r) * (z - z0),      h(r) = 1 / (alpha + r),   r = ||z - z0||,   event shape [D]
    log|det df/dz| = (D - 1) log(1 + beta h) + log(1 + beta h + beta h'(r) r)
                   = (D - 1) log((alpha + beta + r) / (alpha + r)) + log(1 + alpha beta / (alpha + r)^2)

f moves points radially around z0: ||f(z) - z0|| = r_y = r (alpha + beta + r) / (alpha + r), increasing in r
exactly when alpha > 0 and beta >= -alpha, the invertibility conditions (appendix A).

Closed-form inverse: r_y (alpha + r) = r (alpha + beta + r) is the quadratic r^2 + p r - alpha r_y = 0 with
p = alpha + beta - r_y, whose non-negative root is taken in the cancellation-free form
    r = 2 alpha r_y / (p + sqrt(p^2 + 4 alpha r_y))   (p >= 0),    r = (-p + sqrt(p^2 + 4 alpha r_y)) / 2   (p < 0);
then z = z0 + (y - z0) / (1 + beta h(r)), since y - z0 and z - z0 are parallel.
"""

from typing import Any

import tensorflow as tf
from tensorflow_probability import bijectors as tfb
from tensorflow_probability.python.internal import assert_util, dtype_util, parameter_properties, tensor_util

from tfp_flows import validation

__all__ = ["Radial"]


def _safe_norm(v: tf.Tensor) -> tf.Tensor:
    """||v|| over the last axis with a zero (not NaN) gradient at v = 0.

    The Euclidean norm is not differentiable at 0 and tf.norm returns NaN there; every use below multiplies
    the norm's gradient by (z - z0), which vanishes at the same point, so a zero gradient gives the correct
    Jacobian of f at z0.
    """
    squared = tf.reduce_sum(tf.square(v), axis=-1)
    positive = squared > 0
    return tf.where(positive, tf.sqrt(tf.where(positive, squared, tf.ones_like(squared))), tf.zeros_like(squared))


class Radial(tfb.Bijector):
    """f(z) = z + beta (z - z0) / (alpha + ||z - z0||), a radial contraction/expansion around z0.

    Event shape: [D] (`forward_min_event_ndims=1`). `z0` has shape [..., D]; `alpha` and `beta` have shape
    [...]; the leading dimensions form the batch shape and broadcast with the input's. Forward is the sampling
    direction (latent -> data); the inverse is exact, in closed form.

    Constraints: alpha > 0 and beta >= -alpha (otherwise f is not invertible). The values are taken as
    given; `validate_args=True` asserts both. To train unconstrained parameters, reparametrise as in
    Rezende & Mohamed (2015, appendix A), for example with `tfp.util.DeferredTensor`:
        alpha = softplus(raw_alpha),    beta = -alpha + softplus(raw_beta).
    Parameters may be tensors, `tf.Variable`s or `DeferredTensor`s; they are read at every call.

    Example:
        >>> import tensorflow as tf
        >>> from tfp_flows import Radial
        >>> bijector = Radial(z0=[0.0, 1.0], alpha=0.5, beta=-0.3)
        >>> z = tf.constant([[0.3, -1.2], [0.0, 1.0]])   # the second point is z0 itself: fixed by f
        >>> y = bijector.forward(z)
        >>> z_back = bijector.inverse(tf.identity(y))
        >>> ldj = bijector.forward_log_det_jacobian(z, event_ndims=1)
    """

    def __init__(
        self,
        z0: tf.Tensor,
        alpha: float | tf.Tensor,
        beta: tf.Tensor,
        validate_args: bool = False,
        name: str = "radial",
    ) -> None:
        """Build the bijector.

        Args:
          z0: float tensor-like [..., D], the reference point.
          alpha: float tensor-like [...], > 0, the radial length scale.
          beta: float tensor-like [...], >= -alpha, the strength (negative contracts, positive expands).
          validate_args: if True, assert alpha > 0 and beta >= -alpha.
          name: name scope of the ops.
        """
        parameters = dict(locals())
        with tf.name_scope(name) as name:
            dtype, (self._z0, self._alpha, self._beta) = validation.float_parameters(z0=z0, alpha=alpha, beta=beta)
            if self._z0.shape.rank == 0:
                raise ValueError("Radial: `z0` must have shape [..., D] (rank >= 1); received a scalar")
            super().__init__(
                forward_min_event_ndims=1, validate_args=validate_args, dtype=dtype, parameters=parameters, name=name
            )

    @property
    def z0(self) -> tf.Tensor:
        return self._z0

    @property
    def alpha(self) -> tf.Tensor:
        return self._alpha

    @property
    def beta(self) -> tf.Tensor:
        return self._beta

    @classmethod
    def _parameter_properties(cls, dtype: tf.DType) -> dict[str, Any]:
        return {
            "z0": parameter_properties.ParameterProperties(event_ndims=1),
            "alpha": parameter_properties.ParameterProperties(
                default_constraining_bijector_fn=lambda: tfb.Softplus(low=dtype_util.eps(dtype))
            ),
            # beta >= -alpha depends on alpha: no fixed constraining bijector exists (see the class docstring).
            "beta": parameter_properties.ParameterProperties(
                default_constraining_bijector_fn=parameter_properties.BIJECTOR_NOT_IMPLEMENTED
            ),
        }

    def _params(self) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        return (tf.convert_to_tensor(self.z0), tf.convert_to_tensor(self.alpha), tf.convert_to_tensor(self.beta))

    @staticmethod
    def _log_det(r: tf.Tensor, alpha: tf.Tensor, beta: tf.Tensor, event_size: int) -> tf.Tensor:
        """log|det df/dz| at radius r, written as sums of non-negative terms (no cancellation as beta -> -alpha).

        1 + beta h = (alpha + beta + r) / (alpha + r);
        1 + beta h + beta h' r = ((alpha + r)^2 + alpha beta) / (alpha + r)^2
                               = (alpha (alpha + beta) + r (2 alpha + r)) / (alpha + r)^2.
        """
        log_alpha_plus_r = tf.math.log(alpha + r)
        radial_term = tf.math.log(alpha * (alpha + beta) + r * (2.0 * alpha + r)) - 2.0 * log_alpha_plus_r
        tangential_term = tf.math.log(alpha + beta + r) - log_alpha_plus_r
        return tf.cast(event_size - 1, r.dtype) * tangential_term + radial_term

    def _forward(self, z: tf.Tensor) -> tf.Tensor:
        z0, alpha, beta = self._params()
        offset = z - z0
        r = _safe_norm(offset)
        return z + (beta / (alpha + r))[..., tf.newaxis] * offset

    def _forward_log_det_jacobian(self, z: tf.Tensor) -> tf.Tensor:
        z0, alpha, beta = self._params()
        r = _safe_norm(z - z0)
        return self._log_det(r, alpha, beta, tf.shape(z)[-1])

    def _inverse_radius(self, r_y: tf.Tensor, alpha: tf.Tensor, beta: tf.Tensor) -> tf.Tensor:
        """The non-negative root r of r^2 + p r - alpha r_y = 0, p = alpha + beta - r_y, without cancellation."""
        p = alpha + beta - r_y
        # q = |p| + sqrt(p^2 + 4 alpha r_y) serves both stable forms; it vanishes only in the degenerate case
        # r_y = 0 and beta = -alpha, where r = 0.
        q = tf.abs(p) + tf.sqrt(tf.square(p) + 4.0 * alpha * r_y)
        safe_q = tf.where(q > 0, q, tf.ones_like(q))
        return tf.where(p >= 0, 2.0 * alpha * r_y / safe_q, 0.5 * q)

    def _inverse(self, y: tf.Tensor) -> tf.Tensor:
        z0, alpha, beta = self._params()
        offset = y - z0
        r = self._inverse_radius(_safe_norm(offset), alpha, beta)
        # 1 / (1 + beta h(r)) = (alpha + r) / (alpha + beta + r); the denominator is 0 only if r = 0 and
        # beta = -alpha, where y = z0 and the offset is 0 too.
        denominator = alpha + beta + r
        safe_denominator = tf.where(denominator > 0, denominator, tf.ones_like(denominator))
        return z0 + ((alpha + r) / safe_denominator)[..., tf.newaxis] * offset

    def _inverse_log_det_jacobian(self, y: tf.Tensor) -> tf.Tensor:
        z0, alpha, beta = self._params()
        r = self._inverse_radius(_safe_norm(y - z0), alpha, beta)
        return -self._log_det(r, alpha, beta, tf.shape(y)[-1])

    def _parameter_control_dependencies(self, is_init: bool) -> list[tf.Operation]:
        if not self.validate_args:
            return []
        assertions = []
        if is_init != tensor_util.is_ref(self.alpha):
            assertions.append(
                assert_util.assert_positive(
                    tf.convert_to_tensor(self.alpha), message="Radial: argument `alpha` must be > 0"
                )
            )
        if is_init != (tensor_util.is_ref(self.alpha) or tensor_util.is_ref(self.beta)):
            assertions.append(
                assert_util.assert_greater_equal(
                    tf.convert_to_tensor(self.beta),
                    -tf.convert_to_tensor(self.alpha),
                    message="Radial: argument `beta` must be >= -alpha (otherwise the map is not invertible)",
                )
            )
        return assertions
