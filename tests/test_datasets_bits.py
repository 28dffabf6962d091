"""bits_per_dim against closed forms: uniform = 8, a Gaussian by hand, and a logit counted inside or outside."""

import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows.datasets import bits_per_dim

tfb, tfd = tfp.bijectors, tfp.distributions


def test_uniform_model_scores_exactly_eight():
    uniform = tfd.Independent(tfd.Uniform(tf.zeros(64), tf.ones(64)), 1)
    x = tf.random.stateless_uniform([5, 64], seed=[1, 2])
    np.testing.assert_array_equal(bits_per_dim(uniform.log_prob(x), num_dims=64).numpy(), np.full(5, 8.0))
    assert float(bits_per_dim(0.0, num_dims=3072)) == 8.0
    assert float(bits_per_dim(0.0, num_dims=10, num_levels=2)) == 1.0


def test_gaussian_by_hand():
    # A diagonal Gaussian N(0.5, 0.1^2) in D = 4 dimensions, evaluated at the mean:
    # log p = -D log(0.1 sqrt(2 pi)); bits/dim = 8 - log p / (D ln 2) = 8 + log2(0.1 sqrt(2 pi)).
    gaussian = tfd.MultivariateNormalDiag(tf.fill([4], 0.5), tf.fill([4], 0.1))
    got = float(bits_per_dim(gaussian.log_prob(tf.fill([4], 0.5)), num_dims=4))
    want = 8.0 + math.log2(0.1 * math.sqrt(2.0 * math.pi))  # = 8 - 1.99618 = 6.00382
    assert abs(got - want) < 1e-5
    assert abs(got - 6.003820) < 1e-5  # 0.1 sqrt(2 pi) = 0.2506628, log2 = -1.996180


def test_float64_and_batch_shape_are_kept():
    log_prob = tf.constant([[0.0, -10.0]], tf.float64)
    result = bits_per_dim(log_prob, num_dims=5)
    assert result.dtype == tf.float64 and result.shape == (1, 2)
    np.testing.assert_allclose(result.numpy(), [[8.0, 8.0 + 10.0 / (5 * math.log(2.0))]], rtol=1e-15)


ALPHA = 0.05


def _logit_bijector(kind):
    """latent z -> data x = (sigmoid(z) - alpha) / (1 - 2 alpha); its inverse is RealNVP's logit preprocessing."""
    if kind == "tfp_chain":
        scale, shift = tf.constant(1.0 / (1.0 - 2.0 * ALPHA), tf.float64), tf.constant(-ALPHA, tf.float64)
        return tfb.Chain([tfb.Scale(scale), tfb.Shift(shift), tfb.Sigmoid()])
    try:
        from tfp_flows import LogitTransform

        bijector = LogitTransform(alpha=ALPHA)
        bijector.inverse(tf.constant([0.5], tf.float64))
    except Exception as err:
        pytest.skip(f"tfp_flows.LogitTransform is not usable yet: {err!r}")
    return bijector


@pytest.mark.parametrize("kind", ["tfp_chain", "tfp_flows.LogitTransform"])
def test_logit_jacobian_is_counted_inside_or_outside_the_model(kind):
    dims = 3
    x = tf.constant([[0.2, 0.5, 0.9], [0.0, 0.7, 0.33]], tf.float64)
    base = tfd.MultivariateNormalDiag(tf.zeros(dims, tf.float64), tf.ones(dims, tf.float64))
    model = tfd.TransformedDistribution(base, _logit_bijector(kind))  # the logit inside the model's chain
    inside = bits_per_dim(model.log_prob(x), dims)
    # By hand (RealNVP sec. 4.1): p = alpha + (1 - 2 alpha) x, z = logit(p),
    # log p(x) = sum_i [log N(z_i; 0, 1) + log(1 - 2 alpha) - log p_i - log(1 - p_i)].
    xs = x.numpy()
    ps = ALPHA + (1 - 2 * ALPHA) * xs
    zs = np.log(ps / (1 - ps))
    log_det = np.sum(np.log(1 - 2 * ALPHA) - np.log(ps) - np.log(1 - ps), axis=-1)
    log_p = np.sum(-0.5 * zs**2 - 0.5 * np.log(2 * np.pi), axis=-1) + log_det
    np.testing.assert_allclose(inside.numpy(), 8 - log_p / (dims * np.log(2)), rtol=1e-10)
    # The same preprocessing done in the pipeline instead: the model sees z and the Jacobian is passed in.
    outside = bits_per_dim(base.log_prob(zs), dims, preprocessing_log_det_jacobian=log_det)
    np.testing.assert_allclose(inside.numpy(), outside.numpy(), rtol=1e-10)
    # Forgetting the Jacobian gives a different (wrong) figure: the check can fail.
    assert np.all(np.abs(bits_per_dim(base.log_prob(zs), dims).numpy() - outside.numpy()) > 0.1)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        (dict(log_prob=0.0, num_dims=0), ValueError),
        (dict(log_prob=0.0, num_dims=2.5), ValueError),
        (dict(log_prob=0.0, num_dims=4, num_levels=0), ValueError),
    ],
)
def test_bad_arguments(kwargs, error):
    with pytest.raises(error, match="num_dims|num_levels"):
        bits_per_dim(**kwargs)
