"""Property tests for LogisticMixtureCDF and LogisticMixtureCoupling: random mixtures and inputs (extreme
magnitudes included) satisfy the invariants or raise a clear error (validate_args=True) - never a silent NaN.

Invariants per example: values, log-dets and gradients are finite; round trips hold in both directions through
fresh tensors; fldj(z) == -ildj(f(z)); in float64 the inverse log-det equals the mixture's log-density minus
the standard logistic's (tfd.MixtureSameFamily as the closed-form reference).

Tolerances are backward errors: float arithmetic on u_k = (x - mu_k) / s_k carries an absolute error of about
eps * (|x| + |mu_k|) / s_k, which no algorithm can beat, so the latent tolerance grows with that quantity; a
data-space error is the latent error divided by dz/dx (large only where the CDF is flat and x is ill-defined).
Generated parameters: up to 6 components, |logits| <= 10, |locs| <= 20, log_scales in [-4, 3].
"""
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tfp_flows import LogisticMixtureCDF, LogisticMixtureCoupling, masks

tfd = tfp.distributions

SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
DTYPES = {"float32": tf.float32, "float64": tf.float64}


def _floats(low, high):
    # TensorFlow flushes subnormal numbers to zero on CPU: keep inputs normal.
    return st.floats(low, high, allow_subnormal=False, allow_nan=False)


def _magnitudes(max_abs):
    """Zero, order one, and anything up to max_abs, either sign."""
    return st.one_of(st.sampled_from([0.0, max_abs, -max_abs]), _floats(-1.0, 1.0), _floats(-max_abs, max_abs))


def _vectors(size, elements):
    return st.lists(elements, min_size=size, max_size=size).map(np.array)


@st.composite
def mixtures(draw):
    k = draw(st.integers(1, 6))
    return (draw(_vectors(k, _floats(-10.0, 10.0))), draw(_vectors(k, _floats(-20.0, 20.0))),
            draw(_vectors(k, _floats(-4.0, 3.0))))


def _tensor(value, dtype):
    return tf.constant(np.asarray(value), dtype)


def _latent_tolerance(z, x, params, dtype):
    """Backward-error bound on |logit F(x) - z| for float evaluation of F at x (see the module docstring)."""
    eps = np.finfo(dtype.as_numpy_dtype).eps
    _, locs, log_scales = params
    conditioning = (np.abs(x) + np.abs(locs).max()) * np.exp(-log_scales.min())
    return 3.0 * eps ** 0.75 + 64.0 * eps * (np.abs(z) + conditioning)


def _assert_finite(what, value):
    value = np.asarray(value)
    assert np.all(np.isfinite(value)), f"{what} is not finite: {value}"


def _finite_gradients(bijector, inputs, direction):
    variables = list(bijector.trainable_variables)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        if direction == "forward":
            objective = bijector.forward(inputs) + bijector.forward_log_det_jacobian(inputs, event_ndims=0)
        else:
            objective = bijector.inverse(inputs) + bijector.inverse_log_det_jacobian(inputs, event_ndims=0)
    for name, grad in zip(["input"] + [v.name for v in variables], tape.gradient(objective, [inputs] + variables)):
        if grad is not None:
            _assert_finite(f"{direction} gradient w.r.t. {name}", tf.convert_to_tensor(grad))


@SETTINGS
@given(params=mixtures(), z=_vectors(6, _magnitudes(200.0)), dtype_name=st.sampled_from(sorted(DTYPES)))
def test_sampling_direction_round_trips(params, z, dtype_name):
    dtype = DTYPES[dtype_name]
    bijector = LogisticMixtureCDF(*(tf.Variable(p, dtype=dtype) for p in params), validate_args=True)
    x = bijector.forward(_tensor(z, dtype)).numpy()
    fldj = bijector.forward_log_det_jacobian(_tensor(z, dtype), event_ndims=0).numpy()
    z_back = bijector.inverse(_tensor(x, dtype)).numpy()
    ildj = bijector.inverse_log_det_jacobian(_tensor(x, dtype), event_ndims=0).numpy()
    for what, value in (("forward", x), ("fldj", fldj), ("inverse", z_back), ("ildj", ildj)):
        _assert_finite(what, value)
    z = z.astype(dtype.as_numpy_dtype)
    error = np.abs(z_back - z)
    tolerance = _latent_tolerance(z, x, params, dtype)
    assert np.all(error <= tolerance), f"z -> x -> z errors {error} above {tolerance} at z = {z}"
    np.testing.assert_allclose(fldj, -ildj, rtol=1e-5, atol=1e-5, err_msg="fldj(z) != -ildj(f(z))")
    _finite_gradients(bijector, _tensor(z, dtype), "forward")


@SETTINGS
@given(params=mixtures(), x=_vectors(6, _magnitudes(1e3)), dtype_name=st.sampled_from(sorted(DTYPES)))
def test_density_direction_round_trips_and_matches_the_mixture(params, x, dtype_name):
    dtype = DTYPES[dtype_name]
    bijector = LogisticMixtureCDF(*(tf.Variable(p, dtype=dtype) for p in params), validate_args=True)
    z = bijector.inverse(_tensor(x, dtype)).numpy()
    ildj = bijector.inverse_log_det_jacobian(_tensor(x, dtype), event_ndims=0).numpy()
    x_back = bijector.forward(_tensor(z, dtype)).numpy()
    for what, value in (("inverse", z), ("ildj", ildj), ("forward", x_back)):
        _assert_finite(what, value)
    x = x.astype(dtype.as_numpy_dtype)
    eps = np.finfo(dtype.as_numpy_dtype).eps
    # A latent error maps to the data side divided by dz/dx = exp(ildj).
    tolerance = (2.0 * _latent_tolerance(z, x, params, dtype) * np.exp(-ildj.astype(np.float64))
                 + 8.0 * eps * np.abs(x) + eps ** 0.75)
    error = np.abs(x_back - x)
    assert np.all(error <= tolerance), f"x -> z -> x errors {error} above {tolerance} at x = {x}"
    if dtype == tf.float64:
        logits, locs, log_scales = params
        mixture = tfd.MixtureSameFamily(tfd.Categorical(logits=logits), tfd.Logistic(locs, np.exp(log_scales)))
        expected = mixture.log_prob(x).numpy() - tfd.Logistic(np.float64(0.0), 1.0).log_prob(z).numpy()
        np.testing.assert_allclose(ildj, expected, rtol=1e-9, atol=1e-7, err_msg="ildj != log mixture - log logistic")
    _finite_gradients(bijector, _tensor(x, dtype), "inverse")


@SETTINGS
@given(params=mixtures(), bad=st.sampled_from([np.nan, np.inf, -np.inf]), which=st.sampled_from([0, 1, 2]),
       index=st.integers(0, 5))
def test_non_finite_parameters_raise_instead_of_returning_nan(params, bad, which, index):
    params = [np.array(p) for p in params]
    params[which][index % params[which].size] = bad
    bijector = LogisticMixtureCDF(*(tf.Variable(p, dtype=tf.float32) for p in params), validate_args=True)
    name = ["logits", "locs", "log_scales"][which]
    if name == "logits" and bad == -np.inf:
        # A logit of -inf drops that component: still a valid mixture unless every component is dropped.
        if np.all(params[0] == -np.inf):
            return
        x = bijector.forward(tf.constant([0.0, 3.0, -40.0]))
        _assert_finite("forward with a dropped component", x)
        _assert_finite("inverse with a dropped component", bijector.inverse(tf.constant(x.numpy())))
        return
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"`{name}` must be"):
        bijector.forward(tf.constant([0.0, 3.0]))


class _RandomConditioner(tf.Module):
    """A random linear conditioner with a tanh hidden layer; `gain` scales its outputs (up to extreme)."""

    def __init__(self, size, num_components, gain, seed):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.size, self.k = size, num_components
        self.w1 = tf.Variable(rng.normal(size=(size, 8)), dtype=tf.float32)
        self.w2 = tf.Variable(rng.normal(size=(8, size * (2 + 3 * num_components))) * gain, dtype=tf.float32)

    def __call__(self, x):
        out = tf.matmul(tf.tanh(tf.matmul(x, self.w1)), self.w2)
        out = tf.reshape(out, tf.concat([tf.shape(x), [2 + 3 * self.k]], axis=0))
        return out[..., 0], out[..., 1], out[..., 2:2 + self.k], out[..., 2 + self.k:2 + 2 * self.k], \
            out[..., 2 + 2 * self.k:]


@SETTINGS
@given(size=st.integers(2, 6), num_components=st.integers(1, 4), gain=_floats(0.01, 5.0),
       seed=st.integers(0, 2**16), parity=st.sampled_from([0, 1]), z=st.lists(_magnitudes(1e3), min_size=12,
                                                                            max_size=12))
def test_coupling_round_trips_with_finite_log_dets_and_gradients(size, num_components, gain, seed, parity, z):
    conditioner = _RandomConditioner(size, num_components, gain, seed)
    coupling = LogisticMixtureCoupling(masks.half(size, parity), conditioner, num_components, validate_args=True)
    z = np.reshape(z[: 2 * size], (2, size)).astype(np.float32)
    variables = list(coupling.trainable_variables)
    assert variables, "the conditioner's variables must reach the bijector"
    with tf.GradientTape(persistent=True) as tape:
        z_t = tf.constant(z)
        tape.watch(z_t)
        x = coupling.forward(z_t)
        fldj = coupling.forward_log_det_jacobian(z_t, event_ndims=1)
        objective = tf.reduce_sum(x) + tf.reduce_sum(fldj)
    for what, value in (("forward", x), ("fldj", fldj)):
        _assert_finite(what, value)
    for grad in tape.gradient(objective, [z_t] + variables):
        _assert_finite("gradient", tf.convert_to_tensor(grad))
    z_back = coupling.inverse(tf.constant(x.numpy())).numpy()
    ildj = coupling.inverse_log_det_jacobian(tf.constant(x.numpy()), event_ndims=1).numpy()
    _assert_finite("inverse", z_back)
    np.testing.assert_allclose(fldj, -ildj, rtol=1e-4, atol=1e-4, err_msg="fldj(z) != -ildj(f(z))")
    # Backward error of the elementwise map (as above, with the conditioner's locs and floored log-scales),
    # times exp(a) <= e for the affine step.
    outputs = [o.numpy() for o in conditioner(tf.constant(x.numpy() * masks.half(size, parity)))]
    conditioning = (np.abs(x.numpy()) + np.abs(outputs[3]).max()) * np.exp(-max(outputs[4].min(), -7.0))
    eps = np.finfo(np.float32).eps
    tolerance = np.e * (3.0 * eps ** 0.75 + 64.0 * eps * (np.abs(z) + conditioning))
    error = np.abs(z_back - z)
    assert np.all(error <= tolerance), f"z -> x -> z errors {error} above {tolerance}"
