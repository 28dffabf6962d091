"""Our bijectors compose with TFP's: a 6-bijector Chain inside a TransformedDistribution, under tf.function."""
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

import tfp_flows
from tfp_flows import masks
from tfp_flows.testing import assert_bijector_invariants, jacobian_log_det

tfb, tfd = tfp.bijectors, tfp.distributions
D = 4


def _chain():
    rng = np.random.default_rng(5)
    kernel = tf.Variable(rng.normal(size=[D, 2 * D]) * 0.3, dtype=tf.float32)

    def shift_and_log_scale(x_masked):
        out = tf.tanh(tf.matmul(x_masked, kernel))
        return out[..., :D], out[..., D:]

    planar = tfp_flows.Planar(w=tf.constant([0.5, -1.0, 0.3, 0.8]), u=tf.constant([1.0, 0.2, -0.7, 0.4]),
                              b=tf.constant(0.1))
    return tfb.Chain([
        tfp_flows.AffineCoupling(masks.half(D), shift_and_log_scale),
        tfb.Permute(permutation=tf.constant([3, 1, 0, 2])),
        tfp_flows.PReLU(alpha=tf.constant(0.6)),
        tfb.Invert(planar),
        tfp_flows.ActNorm(loc=tf.constant([0.1, -0.2, 0.3, 0.0]), log_scale=tf.constant([0.2, -0.1, 0.0, 0.3])),
        tfb.Scale(scale=tf.constant(1.5)),
    ])


def test_mixed_chain_passes_the_conformance_kit():
    z = tf.constant(np.random.default_rng(0).normal(size=[6, D]), tf.float32)
    assert_bijector_invariants(_chain(), z, event_ndims=1, rtol=2e-4, atol=2e-4)


def test_mixed_chain_log_prob_and_sample_under_tf_function():
    chain = _chain()
    base = tfd.MultivariateNormalDiag(loc=tf.zeros(D))
    dist = tfd.TransformedDistribution(base, chain)

    @tf.function
    def sample_and_log_prob(seed):
        x = dist.sample(64, seed=seed)
        return x, dist.log_prob(tf.identity(x))

    x, log_prob = sample_and_log_prob(tf.constant([1, 2], tf.int32))
    assert x.shape == (64, D) and np.all(np.isfinite(x.numpy()))
    # Same draw, computed independently: the base density at the latent minus the autodiff log-det.
    z = base.sample(64, seed=tf.constant([1, 2], tf.int32))
    np.testing.assert_allclose(chain.forward(z).numpy(), x.numpy(), rtol=1e-4, atol=1e-4)
    expected = base.log_prob(z) - jacobian_log_det(chain.forward, z, event_ndims=1)
    np.testing.assert_allclose(log_prob.numpy(), expected.numpy(), rtol=1e-3, atol=1e-3)
    # And the density direction on fresh data: base(f^-1(x)) + log|det d f^-1/dx| by autodiff.
    x_fresh = tf.constant(x.numpy())
    expected = base.log_prob(chain.inverse(x_fresh)) + jacobian_log_det(chain.inverse, x_fresh, event_ndims=1)
    np.testing.assert_allclose(tf.function(dist.log_prob)(x_fresh).numpy(), expected.numpy(),
                               rtol=1e-3, atol=1e-3)
