"""ActNorm: equal to Shift after Scale, variable updates and deferred tensors, data-dependent init,
errors, dtype and batch-shape rules shared with InvertibleConv1x1, validate_args under XLA, and property tests.
"""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from bijector_cases.couplings import ConvConditioner
from coupling_support import (
    MAGNITUDES,
    PROPERTY_SETTINGS,
    SEEDS,
    assert_near,
    assert_same_bijection,
    fresh,
    normal,
    random_inputs,
)
from hypothesis import given
from hypothesis import strategies as st

from tfp_flows import ActNorm, AffineCoupling, InvertibleConv1x1, actnorm_initial_parameters, masks
from tfp_flows.invertible_conv1x1 import random_rotation_lower_upper

tfb = tfp.bijectors


@pytest.mark.parametrize("shape,event_ndims", [((4, 5), 1), ((2, 3, 3, 5), 3)])
def test_actnorm_equals_shift_after_scale(shape, event_ndims):
    loc, log_scale = normal(5, 14), normal(5, 15, scale=0.7)
    ours = ActNorm(loc, log_scale)
    reference = tfb.Chain([tfb.Shift(loc), tfb.Scale(np.exp(log_scale))])
    assert_same_bijection(ours, reference, normal(shape, 16), event_ndims)
    # The log-det has x's batch shape (not a bare scalar), for both directions.
    assert ours.forward_log_det_jacobian(fresh(normal(shape, 17)), event_ndims).shape == shape[:-event_ndims]
    assert ours.inverse_log_det_jacobian(fresh(normal(shape, 17)), event_ndims).shape == shape[:-event_ndims]


# --- Parameters: Variables, DeferredTensors, dtypes ----------------------------------------------------------


def test_actnorm_tracks_variable_updates_and_deferred_tensors():
    log_scale = tf.Variable([0.0, 0.0])
    scale = tfp.util.DeferredTensor(log_scale, tf.identity)
    loc = tf.Variable([1.0, -1.0])
    bijector = ActNorm(loc, scale)
    x = np.ones((2, 2), np.float32)
    np.testing.assert_allclose(bijector.forward(fresh(x)), [[2.0, 0.0]] * 2)
    log_scale.assign([np.log(2.0), 0.0])
    np.testing.assert_allclose(bijector.forward(fresh(x)), [[3.0, 0.0]] * 2, rtol=1e-6)
    with tf.GradientTape() as tape:
        fldj = bijector.forward_log_det_jacobian(fresh(x), event_ndims=1)
    np.testing.assert_allclose(fldj, [np.log(2.0)] * 2, rtol=1e-6)
    np.testing.assert_allclose(tape.gradient(fldj, log_scale), [2.0, 2.0])  # d/ds of the sum over 2 rows
    assert len(bijector.trainable_variables) == 2


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_parameter_dtype_is_kept(dtype):
    actnorm = ActNorm(tf.zeros([3], dtype), tf.zeros([3], dtype))
    conv = InvertibleConv1x1(*random_rotation_lower_upper(3, seed=0, dtype=dtype.as_numpy_dtype))
    for bijector in (actnorm, conv):
        assert bijector.dtype == dtype
        assert bijector.forward(tf.ones([2, 3], dtype)).dtype == dtype


def test_batch_shapes_come_from_parameters():
    assert ActNorm(tf.zeros([2, 3]), tf.zeros([3])).experimental_batch_shape() == [2]
    factors = [random_rotation_lower_upper(3, seed=s) for s in (1, 2)]
    conv = InvertibleConv1x1(np.stack([f[0] for f in factors]), np.stack([f[1] for f in factors]))
    assert conv.experimental_batch_shape() == [2]


# --- actnorm_initial_parameters -------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(256, 3), (16, 4, 4, 3)])
def test_actnorm_initial_parameters_standardise_the_batch(shape):
    rng = np.random.default_rng(32)
    x = (rng.normal(size=shape) * [0.01, 1.0, 300.0] + [5.0, -2.0, 1e3]).astype(np.float32)
    loc, log_scale = actnorm_initial_parameters(fresh(x))
    assert loc.shape == [3] and log_scale.shape == [3]
    z = ActNorm(loc, log_scale).inverse(fresh(x)).numpy().reshape(-1, 3)
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-3)
    np.testing.assert_allclose(z.std(axis=0), 1.0, rtol=1e-3)


def test_actnorm_initial_parameters_of_a_constant_batch_are_finite():
    x = np.zeros((8, 2, 2, 3), np.float32)
    x[..., 1] = 4.0  # constant but nonzero channel
    x[..., 2] = normal((8, 2, 2), 33)
    loc, log_scale = actnorm_initial_parameters(fresh(x), epsilon=1e-6)
    assert np.all(np.isfinite(loc)) and np.all(np.isfinite(log_scale))
    np.testing.assert_allclose(log_scale[:2], np.log(1e-6), rtol=1e-6)
    bijector = ActNorm(loc, log_scale)
    z = bijector.inverse(fresh(x)).numpy()
    np.testing.assert_allclose(z[..., :2], 0.0, atol=1e-6)
    assert np.all(np.isfinite(bijector.inverse_log_det_jacobian(fresh(x), event_ndims=3)))


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), True])
def test_actnorm_initial_parameters_reject_bad_epsilon(bad):
    with pytest.raises(ValueError, match="epsilon"):
        actnorm_initial_parameters(tf.ones([4, 2]), epsilon=bad)


def test_actnorm_initial_parameters_need_a_batch():
    with pytest.raises(ValueError, match="x"):
        actnorm_initial_parameters(tf.ones([3]))
    with pytest.raises(TypeError, match="x"):
        actnorm_initial_parameters(tf.ones([4, 3], tf.int32))


def test_actnorm_errors_name_the_argument():
    with pytest.raises(ValueError, match="`x`.*3 channels.*log_scale"):
        ActNorm(tf.zeros([3]), tf.zeros([3])).forward(tf.zeros([2, 4]))
    with pytest.raises(ValueError, match="`y`"):
        ActNorm(tf.zeros([3]), tf.zeros([3])).inverse_log_det_jacobian(tf.zeros([2, 4]), event_ndims=1)
    with pytest.raises(ValueError, match="`loc` and `log_scale`"):
        ActNorm(tf.zeros([3]), tf.zeros([4]))
    with pytest.raises(ValueError, match="log_scale.*rank"):
        ActNorm(tf.zeros([3]), 0.0)
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError), match="log_scale.*finite"):
        ActNorm(tf.zeros([2]), [0.0, np.inf], validate_args=True)
    log_scale = tf.Variable([0.0, 0.0])
    bijector = ActNorm(tf.zeros([2]), log_scale, validate_args=True)
    log_scale.assign([np.nan, 0.0])  # checked at every call, since a Variable can change
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError), match="log_scale.*finite"):
        bijector.forward(tf.zeros([1, 2]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="log_scale.*finite"):
        tf.function(bijector.forward)(tf.zeros([1, 2]))


def test_actnorm_validate_args_checks_channels_of_dynamically_shaped_input():
    bijector = ActNorm(tf.zeros([3]), tf.zeros([3]), validate_args=True)
    forward = tf.function(bijector.forward, input_signature=[tf.TensorSpec([None, None])])
    with pytest.raises(tf.errors.InvalidArgumentError, match="channels"):
        forward(tf.zeros([2, 4]))


@pytest.mark.slow
def test_validate_args_bijectors_compile_under_xla():
    lower_upper, permutation = random_rotation_lower_upper(4, seed=1)
    bijectors = [
        InvertibleConv1x1(tf.Variable(lower_upper), permutation, validate_args=True),
        ActNorm(tf.Variable(tf.zeros([4])), tf.Variable(tf.ones([4])), validate_args=True),
        AffineCoupling(masks.channel(2, 2, 4), ConvConditioner(4, 2, tf.float32, seed=2), validate_args=True),
    ]
    x = normal((2, 2, 2, 4), 3)
    for bijector in bijectors:
        run = tf.function(lambda t, b=bijector: b.inverse(tf.identity(b.forward(t))), jit_compile=True)
        np.testing.assert_allclose(run(fresh(x)), x, rtol=1e-4, atol=1e-4, err_msg=bijector.name)


@st.composite
def actnorm_setup(draw):
    channels = draw(st.integers(1, 5))
    image = draw(st.booleans())
    shape = (draw(st.integers(1, 3)),) + ((draw(st.integers(1, 3)), draw(st.integers(1, 3))) if image else ())
    return channels, shape + (channels,), 3 if image else 1


@PROPERTY_SETTINGS
@given(
    setup=actnorm_setup(),
    seed=SEEDS,
    magnitude=MAGNITUDES,
    log_scale_range=st.sampled_from([0.1, 2.0, 5.0]),
    dtype=st.sampled_from([tf.float32, tf.float64]),
)
@pytest.mark.slow
def test_actnorm_inverts_and_has_the_documented_log_det(setup, seed, magnitude, log_scale_range, dtype):
    channels, shape, event_ndims = setup
    rng = np.random.default_rng(seed)
    loc = rng.normal(size=channels) * magnitude
    log_scale = rng.uniform(-log_scale_range, log_scale_range, size=channels)
    bijector = ActNorm(tf.constant(loc, dtype), tf.constant(log_scale, dtype))
    x = random_inputs(shape, seed + 1, magnitude)
    y = bijector.forward(fresh(x, dtype)).numpy()
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(y, x * np.exp(log_scale) + loc, rtol=1e-5, atol=1e-5 * (1 + magnitude))
    assert_near(bijector.inverse(fresh(y, dtype)), x, magnitude * np.exp(log_scale_range), "inverse(forward(x)) != x")
    positions = int(np.prod(shape[1:-1]))
    fldj = bijector.forward_log_det_jacobian(fresh(x, dtype), event_ndims=event_ndims).numpy()
    np.testing.assert_allclose(fldj, np.full(shape[:1], positions * log_scale.sum()), rtol=1e-5, atol=1e-5)
    ildj = bijector.inverse_log_det_jacobian(fresh(y, dtype), event_ndims=event_ndims).numpy()
    np.testing.assert_allclose(ildj, -fldj, rtol=1e-6, atol=1e-6)


@PROPERTY_SETTINGS
@given(
    seed=SEEDS,
    channels=st.integers(1, 4),
    image=st.booleans(),
    constant=st.lists(st.booleans(), min_size=4, max_size=4),
    log10_std=st.lists(st.floats(-3.0, 3.0), min_size=4, max_size=4),
    offset=st.sampled_from([0.0, 1.0, -1e3]),
)
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
