"""The testers are shown to fail. The conformance kit: every deliberately broken bijector below makes
`tfp_flows.testing.assert_bijector_invariants` (or `assert_dtype_agreement`) raise an AssertionError whose message
names the broken property, and the correct bijector they all derive from passes (the control).

Each broken bijector is the elementwise affine map y = exp(s) x + b (log|dy/dx| = s) with ONE method wrong, so a
failure can only come from that method. s and b are tensors, so TFP's cache never hands one instance's values to
another (the instances are keyed by id, `tfp_flows.instance_cache`).

The model checklist (tests/model_checks.py): a small PReLUFlow with one method broken fails the check that
should catch it, and the unbroken model passes the same checks.
"""

import re

import keras
import model_cases
import model_checks
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_probability import bijectors as tfb

from keras_models import PReLUFlow
from tfp_flows.continuous_flow import ContinuousFlow
from tfp_flows.instance_cache import InstanceKeyedCache
from tfp_flows.testing import assert_bijector_invariants, assert_dtype_agreement, assert_ode_bijector_invariants

X = tf.constant([[0.5, -1.0, 2.0], [-0.3, 0.8, -1.7]])
EDGES = (tf.zeros([1, 3]), tf.constant([[1e30, -1e30, 1e20]]))


class ScaleShift(InstanceKeyedCache, tfb.Bijector):
    """The correct map: y = exp(s) x + b, x = (y - b) exp(-s), log|dy/dx| = s per element."""

    def __init__(self, log_scale: float = 0.3, shift: float = -0.2, dtype: tf.DType = tf.float32, name: str = "ok"):
        parameters = dict(locals())
        self.log_scale = tf.constant(log_scale, dtype)
        self.shift = tf.constant(shift, dtype)
        super().__init__(forward_min_event_ndims=0, dtype=dtype, parameters=parameters, name=name)

    def _forward(self, x):
        return tf.exp(self.log_scale) * x + self.shift

    def _inverse(self, y):
        return (y - self.shift) * tf.exp(-self.log_scale)

    def _forward_log_det_jacobian(self, x):
        return tf.broadcast_to(self.log_scale, tf.shape(x))

    def _inverse_log_det_jacobian(self, y):
        return -tf.broadcast_to(self.log_scale, tf.shape(y))


class WrongSignLogDet(ScaleShift):
    """Both log-dets negated (a consistent pair, so only the autodiff Jacobian can tell)."""

    def _forward_log_det_jacobian(self, x):
        return -super()._forward_log_det_jacobian(x)

    def _inverse_log_det_jacobian(self, y):
        return -super()._inverse_log_det_jacobian(y)


class LogDetOffByConstant(ScaleShift):
    """A forgotten normalising constant: both log-dets shifted by 0.1, again a consistent pair."""

    def _forward_log_det_jacobian(self, x):
        return super()._forward_log_det_jacobian(x) + 0.1

    def _inverse_log_det_jacobian(self, y):
        return super()._inverse_log_det_jacobian(y) - 0.1


class InverseLogDetWrongSign(ScaleShift):
    """A correct forward log-det with an inverse log-det of the wrong sign."""

    def _inverse_log_det_jacobian(self, y):
        return -super()._inverse_log_det_jacobian(y)


class WrongInverse(ScaleShift):
    """The inverse forgets the shift."""

    def _inverse(self, y):
        return y * tf.exp(-self.log_scale)


class NonFiniteAtTheEdges(ScaleShift):
    """A log-det with a term that is 0 in exact arithmetic, log(1 + x^2) - log(1 + x^2), written so that it
    overflows to inf - inf = NaN for |x| > 1.8e19 in float32: finite on ordinary points, NaN at the edge inputs."""

    def _forward_log_det_jacobian(self, x):
        term = tf.math.log(1.0 + tf.square(x))
        return super()._forward_log_det_jacobian(x) + term - term


class NonFiniteGradient(ScaleShift):
    """A log-scale held as sqrt(v^2) of a variable v = 0: every value is finite, the gradient w.r.t. v is NaN."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.v = tf.Variable(0.0, name="v")

    def _scale(self):
        return tf.sqrt(tf.square(self.v))

    def _forward(self, x):
        return tf.exp(self._scale()) * x

    def _inverse(self, y):
        return y * tf.exp(-self._scale())

    def _forward_log_det_jacobian(self, x):
        return tf.broadcast_to(self._scale(), tf.shape(x))

    def _inverse_log_det_jacobian(self, y):
        return -tf.broadcast_to(self._scale(), tf.shape(y))


class GraphDisagreesWithEager(ScaleShift):
    """A Python branch on `tf.executing_eagerly()`: another shift inside `tf.function` and XLA than eagerly."""

    def _forward(self, x):
        return super()._forward(x) + (0.0 if tf.executing_eagerly() else 0.5)

    def _inverse(self, y):
        return super()._inverse(y - (0.0 if tf.executing_eagerly() else 0.5))


class XlaDisagreesWithGraph(ScaleShift):
    """A branch on whether XLA compiles the function (TF's own `control_flow_util.GraphOrParentsInXlaContext`):
    eager and `tf.function` agree, XLA alone sees another shift."""

    @staticmethod
    def _xla_shift():
        from tensorflow.python.ops import control_flow_util

        return 0.5 if control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph()) else 0.0

    def _forward(self, x):
        return super()._forward(x) + self._xla_shift()

    def _inverse(self, y):
        return super()._inverse(y - self._xla_shift())


class HalfPrecisionInFloat32(ScaleShift):
    """A "mixed precision" shortcut: float32 outputs are rounded to float16, float64 ones are not."""

    def _forward(self, x):
        y = super()._forward(x)
        return tf.cast(tf.cast(y, tf.float16), tf.float32) if y.dtype == tf.float32 else y


LOG_DET = "forward_log_det_jacobian != log|det| of autodiff Jacobian"
BROKEN = [
    pytest.param(WrongSignLogDet, LOG_DET, id="log-det-sign"),
    pytest.param(LogDetOffByConstant, LOG_DET, id="log-det-constant"),
    pytest.param(InverseLogDetWrongSign, "ildj(f(x)) != -fldj(x)", id="inverse-log-det-sign"),
    pytest.param(WrongInverse, "inverse(forward(x)) != x", id="wrong-inverse"),
    pytest.param(NonFiniteAtTheEdges, "(edge input 1): fldj is not finite", id="non-finite-at-edges"),
    pytest.param(NonFiniteGradient, "gradient of forward + fldj w.r.t. v:0 is not finite", id="non-finite-gradient"),
    pytest.param(GraphDisagreesWithEager, "forward differs between eager and tf.function", id="graph-vs-eager"),
    pytest.param(XlaDisagreesWithGraph, "forward differs between eager and XLA", id="xla-vs-eager"),
]


def test_the_correct_bijector_passes():
    assert_bijector_invariants(ScaleShift(), X, event_ndims=1, edge_inputs=EDGES)
    assert_bijector_invariants(ScaleShift(), X, event_ndims=0, edge_inputs=EDGES)
    assert_dtype_agreement(lambda dtype: ScaleShift(dtype=dtype), X * 7.0, event_ndims=1)


@pytest.mark.parametrize("broken, message", BROKEN)
def test_a_broken_bijector_fails_naming_the_property(broken, message):
    with pytest.raises(AssertionError, match=re.escape(message)):
        assert_bijector_invariants(broken(name="broken"), X, event_ndims=1, edge_inputs=EDGES)


@pytest.mark.slow
def test_the_broken_bijectors_are_broken_only_where_they_say():
    """Away from its broken region (no edge inputs; no XLA; float64) each passes: the failures above come from
    the broken property, not from something else the kit checks."""
    assert_bijector_invariants(NonFiniteAtTheEdges(), X, event_ndims=1)
    assert_bijector_invariants(XlaDisagreesWithGraph(), X, event_ndims=1, check_xla=False)
    assert_bijector_invariants(HalfPrecisionInFloat32(dtype=tf.float64), tf.cast(X, tf.float64), event_ndims=1)


def test_a_dtype_disagreement_fails_naming_the_property():
    with pytest.raises(AssertionError, match=re.escape("forward differs between float32 and float64")):
        assert_dtype_agreement(lambda dtype: HalfPrecisionInFloat32(dtype=dtype), X * 7.0, event_ndims=1)


def test_a_wrong_log_det_is_caught_at_event_ndims_zero_too():
    with pytest.raises(AssertionError, match=re.escape(LOG_DET)):
        assert_bijector_invariants(LogDetOffByConstant(), X, event_ndims=0)


# ------------------------------------------------------------------------------------------------------------
# The kit's ODE mode (assert_ode_bijector_invariants) is shown to fail too: a continuous flow whose log-dets have the
# wrong sign, a consistent pair (ildj = -fldj) that only the autodiff Jacobian through the solver can tell.
class ContinuousFlowWrongSignLogDet(ContinuousFlow):
    """Both log-dets negated where FFJORD computes them, with the state, in each solve (its cache hands these values
    to `forward_log_det_jacobian` without calling `_forward_log_det_jacobian`)."""

    def _augmented_forward(self, x, **kwargs):
        y, log_dets = super()._augmented_forward(x, **kwargs)
        return y, {key: -value for key, value in log_dets.items()}

    def _augmented_inverse(self, y, **kwargs):
        x, log_dets = super()._augmented_inverse(y, **kwargs)
        return x, {key: -value for key, value in log_dets.items()}


def rotating_field(t, x):
    """dx/dt = x A with a fixed A of trace 0.3: log|det| = 0.3 for every x."""
    return tf.matmul(x, tf.constant([[0.2, -0.7], [0.9, 0.1]], x.dtype))


@pytest.mark.slow
def test_an_ode_bijector_with_a_wrong_log_det_fails_the_ode_mode():
    x = tf.constant([[0.5, -1.0], [-0.3, 0.8]])
    with pytest.raises(AssertionError, match=re.escape(LOG_DET)):
        assert_ode_bijector_invariants(ContinuousFlowWrongSignLogDet(rotating_field), x, 1, check_xla=False)
    # The control: the same flow unbroken passes, and its log-det is the closed form's.
    flow = ContinuousFlow(rotating_field)
    assert_ode_bijector_invariants(flow, x, 1, check_xla=False)
    np.testing.assert_allclose(flow.forward_log_det_jacobian(x, event_ndims=1), 0.3, atol=1e-4)


# ------------------------------------------------------------------------------------------------------------
# The model checklist (tests/model_checks.py) is shown to fail too: a small PReLUFlow with one method broken.
class LogProbOffByConstant(PReLUFlow):
    """log_prob forgets nothing but adds 1 nat: no longer the density of the model's distribution."""

    def log_prob(self, x, c=None):
        return super().log_prob(x, c) + 1.0


class DecodeOffByAShift(PReLUFlow):
    """decode is not the inverse of encode."""

    def decode(self, z, c=None):
        return super().decode(z, c) + 0.01


class SampleIgnoresTheSeed(PReLUFlow):
    """sample drops its seed: two draws with the same seed differ."""

    def sample(self, num_samples, c=None, temperature=None, seed=None):
        return super().sample(num_samples, c, temperature=temperature, seed=None)


class UnusedWeight(PReLUFlow):
    """A weight that no computation reads: fit cannot train it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.unused = self.add_weight(shape=(2,), initializer="zeros", name="unused")


def small(model_class):
    keras.utils.set_random_seed(0)
    return model_checks.perturb(model_class((2,), num_layers=2))


BANANA = model_cases.banana(32, seed=1)
BROKEN_MODELS = [
    pytest.param(
        LogProbOffByConstant, model_checks.assert_log_prob_per_example, "log_prob != the distribution's", id="log-prob"
    ),
    pytest.param(DecodeOffByAShift, model_checks.assert_sample_encode_decode, "decode(encode(x)) != x", id="decode"),
    pytest.param(SampleIgnoresTheSeed, model_checks.assert_sample_encode_decode, "sample: same seed", id="seed"),
    pytest.param(
        UnusedWeight,
        model_checks.assert_every_weight_trains,
        "weights unchanged by fit",
        id="unused-weight",
        marks=pytest.mark.filterwarnings("ignore:Gradients do not exist:UserWarning"),
    ),
]


@pytest.mark.parametrize("broken, check, message", BROKEN_MODELS)
@pytest.mark.slow_params("unused-weight")
def test_a_broken_model_fails_the_check_that_should_catch_it(broken, check, message):
    with pytest.raises(AssertionError, match=re.escape(message)):
        check(small(broken), BANANA)


@pytest.mark.slow
def test_the_correct_model_passes_the_same_checks():
    model = small(PReLUFlow)
    for check in dict.fromkeys(check for _, check, _ in (p.values for p in BROKEN_MODELS)):
        check(model, BANANA)
