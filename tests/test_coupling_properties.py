"""Property tests (hypothesis) for the couplings, ActNorm and the invertible 1x1 convolution: random parameters,
masks and inputs, including zero and large magnitudes; the invariants hold, or a clear error is raised.

Checks run eagerly on fresh tensors (TFP's cache cannot hide a broken inverse); the compiled paths are covered
by the conformance kit.
"""
import math

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tfp_flows import ActNorm, AdditiveCoupling, AffineCoupling, InvertibleConv1x1, actnorm_initial_parameters, masks
from tfp_flows.invertible_conv1x1 import random_rotation_lower_upper
from tfp_flows.testing import jacobian_log_det

PROPERTY_SETTINGS = settings(max_examples=20, deadline=None, derandomize=True,
                             suppress_health_check=[HealthCheck.too_slow])
MAGNITUDES = st.sampled_from([0.0, 1e-3, 1.0, 10.0, 1e2, 1e3])
SEEDS = st.integers(0, 2**31 - 1)


def fresh(x, dtype=tf.float32):
    return tf.constant(np.asarray(x), dtype=dtype)


class FlatConditioner(tf.Module):
    """Any event shape -> `num_outputs` tensors of that shape: tanh layer plus a term linear in x (unbounded)."""

    def __init__(self, event_shape, num_outputs, seed, weight_scale, dtype=tf.float32):
        super().__init__()
        rng = np.random.default_rng(seed)
        size = int(np.prod(event_shape))
        self.event_shape, self.num_outputs = list(event_shape), num_outputs
        self.w1 = tf.Variable(rng.normal(size=(size, 6)) * weight_scale, dtype=dtype)
        self.w2 = tf.Variable(rng.normal(size=(6, num_outputs * size)) * weight_scale, dtype=dtype)
        self.skip = tf.Variable(rng.normal(size=(size, num_outputs * size)) * weight_scale / size, dtype=dtype)

    def __call__(self, x):
        batch = tf.shape(x)[: x.shape.rank - len(self.event_shape)]
        flat = tf.reshape(x, tf.concat([batch, [-1]], axis=0))
        out = tf.math.tanh(flat @ self.w1) @ self.w2 + flat @ self.skip
        outputs = tf.split(out, self.num_outputs, axis=-1)
        return tuple(tf.reshape(o, tf.concat([batch, self.event_shape], axis=0)) for o in outputs)


@st.composite
def mask_and_shape(draw):
    """A mask of any supported kind (including a random non-contiguous one) and a batch shape of inputs."""
    kind = draw(st.sampled_from(["half", "checkerboard", "channel", "random"]))
    parity = draw(st.integers(0, 1))
    if kind in ("half", "random"):
        size = draw(st.integers(2, 8))
        if kind == "half":
            mask = masks.half(size, parity)
        else:
            bits = draw(st.lists(st.integers(0, 1), min_size=size, max_size=size).filter(lambda b: 0 < sum(b) < size))
            mask = np.array(bits, np.float32)
    else:
        height, width, channels = draw(st.integers(1, 3)), draw(st.integers(2, 3)), draw(st.integers(2, 3))
        helper = masks.checkerboard if kind == "checkerboard" else masks.channel
        mask = helper(height, width, channels, parity)
    batch = draw(st.integers(1, 3))
    return mask, (batch,) + mask.shape


def _inputs(shape, seed, magnitude):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=shape) * magnitude).astype(np.float32)


def _close(actual, desired, magnitude, what, rtol=1e-4):
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=1e-4 * (1.0 + magnitude), err_msg=what)


@PROPERTY_SETTINGS
@given(setup=mask_and_shape(), seed=SEEDS, magnitude=MAGNITUDES, weight_scale=st.sampled_from([0.1, 1.0, 3.0]),
       limit=st.sampled_from([0.5, 2.0, 5.0]))
def test_tanh_affine_coupling_is_finite_invertible_and_bounded(setup, seed, magnitude, weight_scale, limit):
    mask, shape = setup
    coupling = AffineCoupling(mask, FlatConditioner(mask.shape, 2, seed, weight_scale), log_scale_limit=limit)
    event_ndims = mask.ndim
    x = _inputs(shape, seed, magnitude)
    y = coupling.forward(fresh(x)).numpy()
    assert np.all(np.isfinite(y))
    np.testing.assert_array_equal(y[..., mask == 1], x[..., mask == 1])  # pass-through is exact
    _close(coupling.inverse(fresh(y)), x, magnitude * np.exp(limit), "inverse(forward(x)) != x")
    fldj = coupling.forward_log_det_jacobian(fresh(x), event_ndims=event_ndims).numpy()
    ildj = coupling.inverse_log_det_jacobian(fresh(y), event_ndims=event_ndims).numpy()
    assert np.all(np.abs(fldj) <= limit * np.sum(mask == 0) * (1 + 1e-6))
    _close(ildj, -fldj, 0.0, "ildj(f(x)) != -fldj(x)")
    if magnitude <= 10.0:
        expected = jacobian_log_det(coupling.forward, fresh(x), event_ndims).numpy()
        _close(fldj, expected, 0.0, "fldj != log|det| of the autodiff Jacobian", rtol=1e-3)


@PROPERTY_SETTINGS
@given(setup=mask_and_shape(), seed=SEEDS, magnitude=MAGNITUDES, weight_scale=st.sampled_from([0.1, 1.0, 3.0]),
       limit=st.sampled_from([1.0, 2.0, math.inf]))
def test_sigmoid_affine_coupling_density_direction_is_bounded(setup, seed, magnitude, weight_scale, limit):
    """Glow's bound: the inverse multiplies by g = exp(-c) + (1 - exp(-c)) sigmoid(r + 2) <= 1, so it is finite
    for any finite data and its log-det is <= 0. The forward scale 1/g is at most exp(c); without the floor
    (c = inf) it is unbounded above, and the round trip is checked only where the forward log-det (the sum of the
    non-negative log-scales) stays below 60."""
    mask, shape = setup
    coupling = AffineCoupling(mask, FlatConditioner(mask.shape, 2, seed, weight_scale), log_scale_bound="sigmoid",
                              log_scale_limit=limit)
    y = _inputs(shape, seed, magnitude)
    x = coupling.inverse(fresh(y)).numpy()
    ildj = coupling.inverse_log_det_jacobian(fresh(y), event_ndims=mask.ndim).numpy()
    assert np.all(np.isfinite(x)) and np.all(np.isfinite(ildj))
    assert np.all(ildj <= 0.0)
    assert np.all(-ildj <= limit * np.sum(mask == 0) * (1 + 1e-6))
    if np.any(-ildj > 60.0):
        assert math.isinf(limit)
        return  # some forward scale exceeds exp(60): beyond what the sampling direction can represent
    y_back = coupling.forward(fresh(x)).numpy()
    _close(y_back, y, magnitude, "forward(inverse(y)) != y")
    fldj = coupling.forward_log_det_jacobian(fresh(x), event_ndims=mask.ndim).numpy()
    _close(fldj, -ildj, 0.0, "fldj(f^-1(y)) != -ildj(y)")


@PROPERTY_SETTINGS
@given(setup=mask_and_shape(), seed=SEEDS, magnitude=MAGNITUDES, weight_scale=st.sampled_from([0.1, 1.0, 3.0]))
def test_unbounded_affine_coupling_is_invertible_where_finite(setup, seed, magnitude, weight_scale):
    mask, shape = setup
    coupling = AffineCoupling(mask, FlatConditioner(mask.shape, 2, seed, weight_scale), log_scale_bound=None)
    x = _inputs(shape, seed, magnitude)
    y = coupling.forward(fresh(x)).numpy()
    fldj = coupling.forward_log_det_jacobian(fresh(x), event_ndims=mask.ndim).numpy()
    if not (np.all(np.isfinite(y)) and np.all(np.abs(fldj) < 20)):
        return  # unbounded scales may overflow at large inputs: that is what the bounds are for
    _close(coupling.inverse(fresh(y)), x, magnitude * np.exp(20.0), "inverse(forward(x)) != x")
    ildj = coupling.inverse_log_det_jacobian(fresh(y), event_ndims=mask.ndim).numpy()
    _close(ildj, -fldj, 0.0, "ildj(f(x)) != -fldj(x)")


@PROPERTY_SETTINGS
@given(setup=mask_and_shape(), seed=SEEDS, magnitude=MAGNITUDES, weight_scale=st.sampled_from([0.1, 1.0, 3.0]))
def test_additive_coupling_preserves_volume_and_inverts(setup, seed, magnitude, weight_scale):
    mask, shape = setup
    conditioner = FlatConditioner(mask.shape, 1, seed, weight_scale)
    coupling = AdditiveCoupling(mask, lambda h: conditioner(h)[0])
    x = _inputs(shape, seed, magnitude)
    y = coupling.forward(fresh(x)).numpy()
    assert np.all(np.isfinite(y))
    np.testing.assert_array_equal(y[..., mask == 1], x[..., mask == 1])
    shift_scale = magnitude * (1.0 + weight_scale ** 2)
    _close(coupling.inverse(fresh(y)), x, shift_scale, "inverse(forward(x)) != x")
    np.testing.assert_array_equal(coupling.forward_log_det_jacobian(fresh(x), event_ndims=mask.ndim), 0.0)
    np.testing.assert_array_equal(coupling.inverse_log_det_jacobian(fresh(y), event_ndims=mask.ndim), 0.0)


@st.composite
def actnorm_setup(draw):
    channels = draw(st.integers(1, 5))
    image = draw(st.booleans())
    shape = (draw(st.integers(1, 3)),) + ((draw(st.integers(1, 3)), draw(st.integers(1, 3))) if image else ())
    return channels, shape + (channels,), 3 if image else 1


@PROPERTY_SETTINGS
@given(setup=actnorm_setup(), seed=SEEDS, magnitude=MAGNITUDES, log_scale_range=st.sampled_from([0.1, 2.0, 5.0]),
       dtype=st.sampled_from([tf.float32, tf.float64]))
def test_actnorm_inverts_and_has_the_documented_log_det(setup, seed, magnitude, log_scale_range, dtype):
    channels, shape, event_ndims = setup
    rng = np.random.default_rng(seed)
    loc = rng.normal(size=channels) * magnitude
    log_scale = rng.uniform(-log_scale_range, log_scale_range, size=channels)
    bijector = ActNorm(tf.constant(loc, dtype), tf.constant(log_scale, dtype))
    x = _inputs(shape, seed + 1, magnitude)
    y = bijector.forward(fresh(x, dtype)).numpy()
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y, x * np.exp(log_scale) + loc, rtol=1e-5, atol=1e-5 * (1 + magnitude))
    _close(bijector.inverse(fresh(y, dtype)), x, magnitude * np.exp(log_scale_range), "inverse(forward(x)) != x")
    positions = int(np.prod(shape[1:-1]))
    fldj = bijector.forward_log_det_jacobian(fresh(x, dtype), event_ndims=event_ndims).numpy()
    np.testing.assert_allclose(fldj, np.full(shape[:1], positions * log_scale.sum()), rtol=1e-5, atol=1e-5)
    ildj = bijector.inverse_log_det_jacobian(fresh(y, dtype), event_ndims=event_ndims).numpy()
    np.testing.assert_allclose(ildj, -fldj, rtol=1e-6, atol=1e-6)


@PROPERTY_SETTINGS
@given(seed=SEEDS, channels=st.integers(1, 4), image=st.booleans(),
       constant=st.lists(st.booleans(), min_size=4, max_size=4),
       log10_std=st.lists(st.floats(-3.0, 3.0), min_size=4, max_size=4),
       offset=st.sampled_from([0.0, 1.0, -1e3]))
def test_actnorm_initial_parameters_standardise_any_batch(seed, channels, image, constant, log10_std, offset):
    rng = np.random.default_rng(seed)
    shape = (32, 2, 2, channels) if image else (64, channels)
    std = 10.0 ** np.asarray(log10_std[:channels])
    x = rng.normal(size=shape) * std + offset
    is_constant = np.asarray(constant[:channels])
    x[..., is_constant] = offset  # constant channels (a blank region, an all-zero "build" batch)
    x = x.astype(np.float64)
    loc, log_scale = actnorm_initial_parameters(fresh(x, tf.float64))
    assert np.all(np.isfinite(loc)) and np.all(np.isfinite(log_scale))
    z = ActNorm(loc, log_scale).inverse(fresh(x, tf.float64)).numpy().reshape(-1, channels)
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(z[:, ~is_constant].std(axis=0), 1.0, rtol=1e-6)
    np.testing.assert_allclose(z[:, is_constant], 0.0, atol=1e-6)


@st.composite
def conv_setup(draw):
    channels = draw(st.integers(1, 5))
    diag = draw(st.lists(st.floats(0.3, 3.0), min_size=channels, max_size=channels))
    signs = draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=channels, max_size=channels))
    image = draw(st.booleans())
    shape = (draw(st.integers(1, 3)),) + ((2, draw(st.integers(1, 3))) if image else ()) + (channels,)
    return channels, np.asarray(diag) * np.asarray(signs), shape, 3 if image else 1


@PROPERTY_SETTINGS
@given(setup=conv_setup(), seed=SEEDS, magnitude=MAGNITUDES)
def test_invertible_conv1x1_inverts_and_has_the_documented_log_det(setup, seed, magnitude):
    channels, diag_scale, shape, event_ndims = setup
    lower_upper, permutation = random_rotation_lower_upper(channels, seed=seed, dtype=np.float64)
    lower_upper[np.diag_indices(channels)] *= diag_scale
    bijector = InvertibleConv1x1(lower_upper.astype(np.float32), permutation)
    x = _inputs(shape, seed, magnitude)
    y = bijector.forward(fresh(x)).numpy()
    lower = np.tril(lower_upper, -1) + np.eye(channels)
    w = (lower @ np.triu(lower_upper))[np.argsort(permutation)]  # W[permutation[j]] = (L U)[j]
    np.testing.assert_allclose(y, x @ w.T, rtol=1e-4, atol=1e-4 * (1 + magnitude))
    _close(bijector.inverse(fresh(y)), x, magnitude * 30.0, "inverse(forward(x)) != x")
    positions = int(np.prod(shape[1:-1]))
    expected = positions * np.linalg.slogdet(w)[1]
    fldj = bijector.forward_log_det_jacobian(fresh(x), event_ndims=event_ndims).numpy()
    np.testing.assert_allclose(fldj, np.full(shape[:1], expected), rtol=1e-4, atol=1e-4)
    ildj = bijector.inverse_log_det_jacobian(fresh(y), event_ndims=event_ndims).numpy()
    np.testing.assert_allclose(ildj, -fldj, rtol=1e-6, atol=1e-6)


@PROPERTY_SETTINGS
@given(channels=st.integers(2, 5), data=st.data())
def test_invertible_conv1x1_accepts_permutations_and_rejects_the_rest(channels, data):
    permutation = data.draw(st.lists(st.integers(0, channels - 1), min_size=channels, max_size=channels))
    lower_upper = random_rotation_lower_upper(channels, seed=channels)[0]
    if sorted(permutation) == list(range(channels)):
        bijector = InvertibleConv1x1(lower_upper, permutation, validate_args=True)
        x = _inputs((2, channels), channels, 1.0)
        _close(bijector.inverse(bijector.forward(fresh(x)) + 0.0), x, 1.0, "inverse(forward(x)) != x")
    else:
        with pytest.raises((ValueError, tf.errors.InvalidArgumentError), match="permutation"):
            InvertibleConv1x1(lower_upper, permutation, validate_args=True)


@PROPERTY_SETTINGS
@given(param_channels=st.integers(1, 5), input_channels=st.integers(1, 5))
def test_channel_mismatch_is_a_clear_error(param_channels, input_channels):
    actnorm = ActNorm(tf.zeros([param_channels]), tf.zeros([param_channels]))
    conv = InvertibleConv1x1(*random_rotation_lower_upper(param_channels, seed=0))
    x = tf.zeros([2, 2, input_channels])
    for bijector, param in ((actnorm, "log_scale"), (conv, "lower_upper")):
        if param_channels == input_channels:
            assert bijector.forward(x).shape == x.shape
        else:
            with pytest.raises(ValueError, match=f"`x`.*{param_channels} channels.*{param}"):
                bijector.forward(x)
