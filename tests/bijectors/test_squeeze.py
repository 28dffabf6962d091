"""Squeeze: space-to-depth and back, any batch rank, inside a TransformedDistribution, shape errors,
and a property test of the round trip.
"""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from elementwise_support import SETTINGS
from hypothesis import given
from hypothesis import strategies as st

from tfp_flows import Squeeze

tfd = tfp.distributions


def test_squeeze_inverse_is_space_to_depth_and_forward_is_depth_to_space():
    images = tf.random.normal([2, 6, 12, 3], seed=1)
    for factor in (2, 3):
        squeeze = Squeeze(factor)
        np.testing.assert_array_equal(squeeze.inverse(images), tf.nn.space_to_depth(images, factor))
    latent = tf.random.normal([2, 2, 3, 18], seed=2)
    np.testing.assert_array_equal(Squeeze(3).forward(latent), tf.nn.depth_to_space(latent, 3))


def test_squeeze_handles_any_number_of_batch_dimensions():
    squeeze = Squeeze(2)
    images = tf.random.normal([2, 3, 4, 6, 1], seed=4)
    expected = tf.reshape(tf.nn.space_to_depth(tf.reshape(images, [6, 4, 6, 1]), 2), [2, 3, 2, 3, 4])
    np.testing.assert_array_equal(squeeze.inverse(images), expected)
    np.testing.assert_array_equal(squeeze.inverse(images[0, 0]), expected[0, 0])  # no batch at all
    assert squeeze.inverse_event_shape([4, 6, 1]) == tf.TensorShape([2, 3, 4])
    assert squeeze.forward_event_shape([2, 3, 4]) == tf.TensorShape([4, 6, 1])
    np.testing.assert_array_equal(squeeze.inverse_event_shape_tensor([4, 6, 1]), [2, 3, 4])
    np.testing.assert_array_equal(squeeze.forward_event_shape_tensor([2, 3, 4]), [4, 6, 1])


def test_squeeze_in_a_transformed_distribution_reshapes_samples_and_has_zero_log_det():
    base = tfd.Sample(tfd.Normal(0.0, 1.0), [2, 2, 4])
    dist = tfd.TransformedDistribution(base, Squeeze(2))
    assert dist.event_shape == tf.TensorShape([4, 4, 1])
    images = tf.random.normal([3, 4, 4, 1], seed=5)
    np.testing.assert_allclose(dist.log_prob(images), base.log_prob(tf.nn.space_to_depth(images, 2)), rtol=1e-6)
    assert dist.sample(5, seed=1).shape == (5, 4, 4, 1)


def test_squeeze_rejects_height_or_width_not_divisible_by_the_factor():
    squeeze = Squeeze(2, validate_args=True)
    with pytest.raises(ValueError, match="height H and width W of `y` must be divisible by 2.*\\[1, 5, 4, 3\\]"):
        squeeze.inverse(tf.zeros([1, 5, 4, 3]))
    with pytest.raises(ValueError, match="divisible by 2"):
        squeeze.inverse_event_shape([4, 3, 3])
    with pytest.raises(ValueError, match="channel dimension C of `x` must be divisible by 4"):
        squeeze.forward(tf.zeros([1, 2, 2, 6]))
    with pytest.raises(ValueError, match="`factor`"):
        Squeeze(0)
    # Shapes known only at run time: the assertion fires inside the graph.
    inverse = tf.function(squeeze.inverse, input_signature=[tf.TensorSpec([None, None, None, 3])])
    with pytest.raises(tf.errors.InvalidArgumentError, match="height H and width W of `y`"):
        inverse(tf.zeros([1, 4, 5, 3]))


# ---- Squeeze -----------------------------------------------------------------------------------------------------


@SETTINGS
@given(
    factor=st.integers(1, 3),
    height=st.integers(1, 6),
    width=st.integers(1, 6),
    channels=st.integers(1, 3),
    batch=st.lists(st.integers(1, 2), max_size=2),
    scale=st.sampled_from([0.0, 1.0, 1e30]),
)
def test_squeeze_round_trips_or_rejects_the_shape(factor, height, width, channels, batch, scale):
    squeeze = Squeeze(factor, validate_args=True)
    rng = np.random.default_rng(height * 100 + width * 10 + channels)
    data = (scale * rng.standard_normal(batch + [height, width, channels])).astype(np.float32)
    if height % factor or width % factor:
        with pytest.raises(ValueError, match="height H and width W of `y` must be divisible"):
            squeeze.inverse(tf.constant(data))
        return
    latent = squeeze.inverse(tf.constant(data))
    assert latent.shape == tuple(batch) + (height // factor, width // factor, channels * factor**2)
    np.testing.assert_array_equal(squeeze.forward(tf.constant(latent.numpy())), data)
    np.testing.assert_array_equal(np.sort(latent.numpy(), axis=None), np.sort(data, axis=None))  # a permutation
    assert float(squeeze.inverse_log_det_jacobian(tf.constant(data), event_ndims=3)) == 0.0
