"""Registry cases for the continuous flow (ContinuousFlow: TFP's FFJORD with DormandPrince), checked by the kit's
ODE mode (`assert_ode_bijector_invariants`: tolerances follow the solver's).

The fields are tiny tf.Modules (2-D, 8 hidden units), so a case costs a few seconds: the field is an attribute of
the bijector, so its variables are the bijector's `trainable_variables` and the kit checks their gradients (through
the solver's adjoint). The float64 build solves at tighter tolerances: it is the reference of the dtype check.
"""

import numpy as np
import tensorflow as tf

from bijector_cases import BijectorCase
from tfp_flows.continuous_flow import ContinuousFlow

_rng = np.random.default_rng(11)
_W1, _B1, _T1 = _rng.normal(size=[2, 8]) * 0.8, _rng.normal(size=[8]) * 0.3, _rng.normal(size=[8])
_W2 = _rng.normal(size=[8, 2]) * 0.5
_SCALE, _SHIFT, _RATE = _rng.normal(size=[2]) * 0.6, _rng.normal(size=[2]) * 0.3, _rng.normal(size=[2])


def solver_tolerance(dtype):
    return 1e-5 if dtype == tf.float32 else 1e-9


class MixingField(tf.Module):
    """v(t, x) = tanh(x W1 + t u + b) W2: a dense Jacobian that changes with x and t."""

    def __init__(self, dtype):
        super().__init__(name="mixing_field")
        self.w1 = tf.Variable(_W1, dtype=dtype, name="w1")
        self.b1 = tf.Variable(_B1, dtype=dtype, name="b1")
        self.u = tf.Variable(_T1, dtype=dtype, name="u")
        self.w2 = tf.Variable(_W2, dtype=dtype, name="w2")

    def __call__(self, t, x):
        return tf.tanh(tf.matmul(x, self.w1) + tf.cast(t, x.dtype) * self.u + self.b1) @ self.w2


class ElementwiseField(tf.Module):
    """v(t, x)_i = a_i tanh(x_i + r_i t) + s_i: a diagonal Jacobian, for which one Rademacher probe gives the exact
    trace (eps_i^2 = 1), so Hutchinson's log-det must match the autodiff Jacobian too."""

    def __init__(self, dtype):
        super().__init__(name="elementwise_field")
        self.scale = tf.Variable(_SCALE, dtype=dtype, name="scale")
        self.shift = tf.Variable(_SHIFT, dtype=dtype, name="shift")
        self.rate = tf.Variable(_RATE, dtype=dtype, name="rate")

    def __call__(self, t, x):
        return self.scale * tf.tanh(x + self.rate * tf.cast(t, x.dtype)) + self.shift


def _flow(field, trace):
    def make(dtype):
        tolerance = solver_tolerance(dtype)
        return ContinuousFlow(field(dtype), trace=trace, rtol=tolerance, atol=tolerance, dtype=dtype)

    return make


_EDGES = [np.zeros([1, 2]), np.array([[30.0, -30.0]])]
CASES = {
    "ContinuousFlow-exact-mixing": BijectorCase(
        make=_flow(MixingField, "exact"), x=_rng.normal(size=[3, 2]), event_ndims=1, edge_inputs=_EDGES, ode=True
    ),
    "ContinuousFlow-hutchinson-elementwise": BijectorCase(
        make=_flow(ElementwiseField, "hutchinson"),
        x=_rng.normal(size=[3, 2]),
        event_ndims=1,
        edge_inputs=_EDGES,
        ode=True,
    ),
}
