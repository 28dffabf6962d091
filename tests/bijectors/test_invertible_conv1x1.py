"""InvertibleConv1x1: equal to TFP's ScaleMatvecLU over channels, gradients, the random rotation's
LU convention and seeding, errors that name the argument, and property tests.
"""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
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

from tfp_flows import InvertibleConv1x1
from tfp_flows.invertible_conv1x1 import random_rotation_lower_upper

tfb = tfp.bijectors


@pytest.mark.parametrize("shape,event_ndims", [((3, 2, 2, 4), 3), ((5, 4), 1), ((2, 3, 4), 2)])
def test_invertible_conv1x1_equals_scale_matvec_lu_over_channels(shape, event_ndims):
    lower_upper, permutation = random_rotation_lower_upper(4, seed=8)
    lower_upper = lower_upper + np.diag([0.5, -0.2, 0.3, 0.1]).astype(np.float32)  # log|det| != 0
    ours = InvertibleConv1x1(lower_upper, permutation)
    reference = tfb.ScaleMatvecLU(lower_upper, permutation)
    assert_same_bijection(ours, reference, normal(shape, 9), event_ndims)
    # The documented value: positions * sum(log|diag U|).
    positions = int(np.prod(shape[len(shape) - event_ndims : -1]))
    expected = positions * np.sum(np.log(np.abs(np.diag(lower_upper))))
    fldj = ours.forward_log_det_jacobian(fresh(normal(shape, 10)), event_ndims)
    assert fldj.shape == shape[:-event_ndims]
    np.testing.assert_allclose(fldj, np.full(shape[:-event_ndims], expected), rtol=1e-5)


def test_invertible_conv1x1_with_batched_parameters_equals_scale_matvec_lu():
    factors = [random_rotation_lower_upper(3, seed=s) for s in (11, 12)]
    lower_upper = np.stack([f[0] * 1.3 for f in factors])  # [2, 3, 3]: scales U's diagonal too
    permutation = np.stack([f[1] for f in factors])
    ours = InvertibleConv1x1(lower_upper, permutation)
    reference = tfb.ScaleMatvecLU(lower_upper, permutation)
    assert_same_bijection(ours, reference, normal((4, 2, 3), 13), event_ndims=1)


def test_invertible_conv1x1_gradient_reaches_lower_upper_variable():
    lower_upper = tf.Variable(random_rotation_lower_upper(3, seed=29)[0])
    bijector = InvertibleConv1x1(lower_upper, random_rotation_lower_upper(3, seed=29)[1])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(bijector.inverse(fresh(normal((2, 2, 2, 3), 30))) ** 2)
        loss += tf.reduce_sum(bijector.inverse_log_det_jacobian(fresh(normal((2, 2, 2, 3), 31)), event_ndims=3))
    grad = tape.gradient(loss, lower_upper)
    assert grad is not None and np.all(np.isfinite(grad)) and np.any(grad.numpy() != 0)


# --- random_rotation_lower_upper -----------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 2, 5, 16])
def test_random_rotation_lower_upper_follows_tf_linalg_lu_convention(channels):
    lower_upper, permutation = random_rotation_lower_upper(channels, seed=channels, dtype=np.float64)
    assert lower_upper.dtype == np.float64 and permutation.dtype == np.int32
    assert sorted(permutation.tolist()) == list(range(channels))
    weights = tfp.math.lu_reconstruct(tf.constant(lower_upper), permutation).numpy()
    np.testing.assert_allclose(weights @ weights.T, np.eye(channels), atol=1e-10)
    tf_lower_upper, tf_permutation = tf.linalg.lu(weights)  # the same factorisation as TensorFlow's
    np.testing.assert_allclose(tf_lower_upper, lower_upper, atol=1e-10)
    np.testing.assert_array_equal(tf_permutation, permutation)


def test_random_rotation_is_reproducible_and_seed_dependent():
    a, b, c = (random_rotation_lower_upper(4, seed=s)[0] for s in (7, 7, 8))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    with pytest.raises(ValueError, match="channels"):
        random_rotation_lower_upper(0)


def test_invertible_conv1x1_errors_name_the_argument():
    lower_upper, permutation = random_rotation_lower_upper(3, seed=0)
    with pytest.raises(ValueError, match="`x`.*3 channels.*lower_upper"):
        InvertibleConv1x1(lower_upper, permutation).forward(tf.zeros([2, 2, 2, 4]))
    with pytest.raises(ValueError, match="permutation"):
        InvertibleConv1x1(lower_upper, [0, 1])
    with pytest.raises(ValueError, match="square"):
        InvertibleConv1x1(lower_upper[:2], permutation)
    with pytest.raises(TypeError, match="permutation"):
        InvertibleConv1x1(lower_upper, permutation.astype(np.float32))
    with pytest.raises(tf.errors.InvalidArgumentError, match="permutation"):
        InvertibleConv1x1(lower_upper, [0, 2, 2], validate_args=True)
    singular = lower_upper.copy()
    singular[1, 1] = 0.0
    with pytest.raises(tf.errors.InvalidArgumentError, match="lower_upper.*nonzero"):
        InvertibleConv1x1(singular, permutation, validate_args=True)


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
    x = random_inputs(shape, seed, magnitude)
    y = bijector.forward(fresh(x)).numpy()
    lower = np.tril(lower_upper, -1) + np.eye(channels)
    w = (lower @ np.triu(lower_upper))[np.argsort(permutation)]  # W[permutation[j]] = (L U)[j]
    np.testing.assert_allclose(y, x @ w.T, rtol=1e-4, atol=1e-4 * (1 + magnitude))
    assert_near(bijector.inverse(fresh(y)), x, magnitude * 30.0, "inverse(forward(x)) != x")
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
        x = random_inputs((2, channels), channels, 1.0)
        assert_near(bijector.inverse(bijector.forward(fresh(x)) + 0.0), x, 1.0, "inverse(forward(x)) != x")
    else:
        with pytest.raises((ValueError, tf.errors.InvalidArgumentError), match="permutation"):
            InvertibleConv1x1(lower_upper, permutation, validate_args=True)
