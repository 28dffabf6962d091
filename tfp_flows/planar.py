"""Planar flow (Rezende & Mohamed 2015, "Variational inference with normalizing flows", sec. 4.1, appendix A).

    f(z) = z + u_hat * tanh(w . z + b),                   event shape [D]
    u_hat = u + (m(w . u) - w . u) * w / ||w||^2,        m(a) = -1 + softplus(a)
    log|det df/dz| = log|1 + u_hat . psi(z)|,            psi(z) = (1 - tanh^2(w . z + b)) * w

The reparametrisation u -> u_hat (appendix A) makes w . u_hat = m(w . u) > -1 for every u, which is exactly the
condition for f to be invertible; it is applied inside the bijector, so any `u` is valid.

Exact inverse: writing a = w . z, the forward pass gives w . y = a + (w . u_hat) tanh(a + b), a strictly
increasing 1-D equation in a (slope 1 + (w . u_hat) sech^2 > 0). Its root lies within |w . u_hat| of w . y,
which gives a guaranteed bracket for `tfp.math.find_root_chandrupatla` (fixed iteration budget, so it compiles
under XLA); then z = y - u_hat tanh(a + b). Gradients of a come from the implicit function theorem,
da/dtheta = -(dg/dtheta) / (dg/da) at the root (`tfp_flows.implicit_root`), not from the search loop.
"""

from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from tensorflow_probability import bijectors as tfb
from tensorflow_probability.python.internal import assert_util, dtype_util, parameter_properties, tensor_util

from tfp_flows import validation
from tfp_flows.implicit_root import implicit_root

__all__ = ["Planar"]

# Chandrupatla converges superlinearly; 100 steps bound even pure bisection from a bracket of width 2|c| + 2
# down to float64 resolution, and the loop stops as soon as every batch member has converged.
_MAX_ROOT_ITERATIONS = 100


def _tiny(dtype: tf.DType) -> tf.Tensor:
    """The smallest positive normal number of `dtype`."""
    return tf.constant(np.finfo(dtype_util.as_numpy_dtype(dtype)).tiny, dtype)


def _projection_residual(a: tf.Tensor, w_dot_y: tf.Tensor, b: tf.Tensor, one_plus_c: tf.Tensor) -> tf.Tensor:
    """g(a) = a + c tanh(a + b) - w . y, c = w . u_hat = one_plus_c - 1: zero at a = w . inverse(y)."""
    return a + (one_plus_c - 1.0) * tf.tanh(a + b) - w_dot_y


def _solve_projection_root(w_dot_y: tf.Tensor, b: tf.Tensor, one_plus_c: tf.Tensor) -> tf.Tensor:
    """The root of `_projection_residual` by Chandrupatla's method inside a guaranteed bracket."""
    c = one_plus_c - 1.0
    # The root is within |c| of w . y; widening by 1 makes the end values strictly of opposite signs
    # (g(w.y - |c| - 1) <= -1 < 0 < 1 <= g(w.y + |c| + 1)) even when c = 0.
    half_width = tf.abs(c) + 1.0
    eps = dtype_util.eps(w_dot_y.dtype)
    return tfp.math.find_root_chandrupatla(
        lambda a: _projection_residual(a, w_dot_y, b, one_plus_c),
        low=w_dot_y - half_width,
        high=w_dot_y + half_width,
        position_tolerance=eps * (tf.abs(w_dot_y) + half_width),
        # A zero value tolerance can stall under XLA, whose tanh is not bit-identical to the eager one: the
        # bracket collapses without an exact zero and the search ends in NaN. g is evaluated to about
        # eps * (|w.y| + |c| + 1), so no smaller residual is meaningful anyway.
        value_tolerance=eps * (tf.abs(w_dot_y) + tf.abs(c) + 1.0),
        max_iterations=_MAX_ROOT_ITERATIONS,
    ).estimated_root


class Planar(tfb.Bijector):
    """f(z) = z + u_hat tanh(w . z + b) on vectors, invertible for every u (Rezende & Mohamed 2015).

    Event shape: [D] (`forward_min_event_ndims=1`). Parameters `w` and `u` have shape [..., D] and `b` has
    shape [...]; their leading dimensions form the batch shape and broadcast with the input's. Forward is the
    sampling direction (latent -> data); the inverse is exact (a bracketed 1-D root solve, see the module
    docstring), not an approximation, and its gradients follow from the implicit function theorem.
    Parameters may be tensors, `tf.Variable`s or `tfp.util.DeferredTensor`s; they are read at every call.
    `w` must be nonzero (`validate_args=True` asserts it): u_hat divides by ||w||^2.

    Example:
        >>> import tensorflow as tf
        >>> from tfp_flows import Planar
        >>> bijector = Planar(w=[1.0, 0.5], u=[-3.0, 1.0], b=0.2)  # w . u < -1 is fine: u_hat fixes it
        >>> z = tf.constant([[0.3, -1.2]])
        >>> y = bijector.forward(z)
        >>> x = bijector.inverse(tf.identity(y))   # exact: matches z to float32 precision
        >>> ldj = bijector.forward_log_det_jacobian(z, event_ndims=1)
    """

    def __init__(
        self, w: tf.Tensor, u: tf.Tensor, b: tf.Tensor, validate_args: bool = False, name: str = "planar"
    ) -> None:
        """Build the bijector.

        Args:
          w: float tensor-like [..., D], the normal of the hyperplane; nonzero.
          u: float tensor-like [..., D], the direction of the shift (any value: reparametrised to u_hat).
          b: float tensor-like [...], the offset.
          validate_args: if True, assert ||w|| > 0 and check that w and u end in the same event size.
          name: name scope of the ops.
        """
        parameters = dict(locals())
        with tf.name_scope(name) as name:
            dtype, (self._w, self._u, self._b) = validation.float_parameters(w=w, u=u, b=b)
            for arg_name, param in (("w", self._w), ("u", self._u)):
                if param.shape.rank == 0:
                    raise ValueError(f"Planar: `{arg_name}` must have shape [..., D] (rank >= 1); received a scalar")
            event_size = tf.compat.dimension_value(self._w.shape[-1])
            validation.check_event_shape(self._u, [event_size], "u", "Planar")
            super().__init__(
                forward_min_event_ndims=1, validate_args=validate_args, dtype=dtype, parameters=parameters, name=name
            )

    @property
    def w(self) -> tf.Tensor:
        return self._w

    @property
    def u(self) -> tf.Tensor:
        return self._u

    @property
    def b(self) -> tf.Tensor:
        return self._b

    @classmethod
    def _parameter_properties(cls, dtype: tf.DType) -> dict[str, Any]:
        return {
            "w": parameter_properties.ParameterProperties(event_ndims=1),
            "u": parameter_properties.ParameterProperties(event_ndims=1),
            "b": parameter_properties.ParameterProperties(event_ndims=0),
        }

    def _params(self) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        """(w, u_hat, b, softplus(w . u) = 1 + w . u_hat), read from the (possibly variable) parameters."""
        w = tf.convert_to_tensor(self.w)
        u = tf.convert_to_tensor(self.u)
        b = tf.convert_to_tensor(self.b)
        w_dot_u = tf.reduce_sum(w * u, axis=-1, keepdims=True)
        # m(a) - a = softplus(a) - 1 - a = softplus(-a) - 1: no cancellation for large w . u.
        u_hat = u + (tf.math.softplus(-w_dot_u) - 1.0) * w / tf.reduce_sum(tf.square(w), axis=-1, keepdims=True)
        # w . u_hat = m(w . u) = softplus(w . u) - 1 > -1; kept as 1 + w . u_hat, which stays accurate near 0.
        # The floor (smallest normal number) keeps the log-det finite where softplus underflows (w . u < -87
        # in float32), a numerically singular but still mathematically invertible map.
        one_plus_c = tf.maximum(tf.math.softplus(w_dot_u[..., 0]), _tiny(w.dtype))
        return w, u_hat, b, one_plus_c

    @staticmethod
    def _slope(tanh: tf.Tensor, one_plus_c: tf.Tensor) -> tf.Tensor:
        """d(w . f(z)) / d(w . z) = 1 + u_hat . psi(z) = 1 + c sech^2, as tanh^2 + sech^2 (1 + c).

        Both terms are non-negative, so there is no cancellation when c = w . u_hat is close to -1.
        """
        tanh_sq = tf.square(tanh)
        return tanh_sq + (1.0 - tanh_sq) * one_plus_c

    def _forward(self, z: tf.Tensor) -> tf.Tensor:
        w, u_hat, b, _ = self._params()
        tanh = tf.tanh(tf.reduce_sum(w * z, axis=-1) + b)
        return z + u_hat * tanh[..., tf.newaxis]

    def _forward_log_det_jacobian(self, z: tf.Tensor) -> tf.Tensor:
        w, _, b, one_plus_c = self._params()
        return tf.math.log(self._slope(tf.tanh(tf.reduce_sum(w * z, axis=-1) + b), one_plus_c))

    def _solve_projection(self, y: tf.Tensor, w: tf.Tensor, b: tf.Tensor, one_plus_c: tf.Tensor) -> tf.Tensor:
        """a = w . z from y: the root of g(a) = a + c tanh(a + b) - w . y, with implicit-function gradients."""
        w_dot_y = tf.reduce_sum(w * y, axis=-1)
        shape = tf.broadcast_dynamic_shape(
            tf.shape(w_dot_y), tf.broadcast_dynamic_shape(tf.shape(b), tf.shape(one_plus_c))
        )
        w_dot_y, b, one_plus_c = (tf.broadcast_to(t, shape) for t in (w_dot_y, b, one_plus_c))
        # Implicit function theorem (`tfp_flows.implicit_root`): da/dtheta = -(dg/dtheta) / (dg/da) at the root,
        # with dg/da = 1 + c sech^2 from `_slope`, free of the cancellation autodiff would have near c = -1.
        return implicit_root(
            _solve_projection_root,
            _projection_residual,
            w_dot_y,
            b,
            one_plus_c,
            slope=lambda a, w_dot_y, b, one_plus_c: self._slope(tf.tanh(a + b), one_plus_c),
        )

    def _inverse(self, y: tf.Tensor) -> tf.Tensor:
        w, u_hat, b, one_plus_c = self._params()
        a = self._solve_projection(y, w, b, one_plus_c)
        return y - u_hat * tf.tanh(a + b)[..., tf.newaxis]

    def _inverse_log_det_jacobian(self, y: tf.Tensor) -> tf.Tensor:
        w, _, b, one_plus_c = self._params()
        # a = w . x with x = inverse(y): `log_prob` asks for inverse(y) and then ildj(y), and TFP's cache hands
        # back the same x, so the root solve runs once per log_prob (twice if ildj is called on its own).
        a = tf.reduce_sum(w * self.inverse(y), axis=-1)
        return -tf.math.log(self._slope(tf.tanh(a + b), one_plus_c))

    def _parameter_control_dependencies(self, is_init: bool) -> list[tf.Operation]:
        if not self.validate_args:
            return []
        assertions = []
        if is_init != tensor_util.is_ref(self.w):
            w = tf.convert_to_tensor(self.w)
            assertions.append(
                assert_util.assert_positive(
                    tf.reduce_sum(tf.square(w), axis=-1),
                    message="Planar: argument `w` must be nonzero (u_hat divides by ||w||^2); received w = 0",
                )
            )
        if is_init != (tensor_util.is_ref(self.w) or tensor_util.is_ref(self.u)):
            assertions.append(
                assert_util.assert_equal(
                    tf.shape(self.w)[-1],
                    tf.shape(self.u)[-1],
                    message="Planar: arguments `w` and `u` must have the same last dimension D",
                )
            )
        return assertions
