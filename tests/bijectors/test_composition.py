"""Our bijectors compose with TFP's: a 6-bijector Chain inside a TransformedDistribution, under tf.function.
Also: densities pushed through 1-D and 2-D elementwise flows integrate to one, and two-bijector chains
(Planar then Radial, LogitTransform then Squeeze) give the log-densities written out by hand.
"""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from elementwise_support import const64

import tfp_flows
from tfp_flows import LogitTransform, Planar, PReLU, Radial, Squeeze, masks
from tfp_flows.testing import assert_bijector_invariants, jacobian_log_det

tfb, tfd = tfp.bijectors, tfp.distributions
D = 4


def _chain():
    rng = np.random.default_rng(5)
    kernel = tf.Variable(rng.normal(size=[D, 2 * D]) * 0.3, dtype=tf.float32)

    def shift_and_log_scale(x_masked):
        out = tf.tanh(tf.matmul(x_masked, kernel))
        return out[..., :D], out[..., D:]

    planar = tfp_flows.Planar(
        w=tf.constant([0.5, -1.0, 0.3, 0.8]), u=tf.constant([1.0, 0.2, -0.7, 0.4]), b=tf.constant(0.1)
    )
    return tfb.Chain(
        [
            tfp_flows.AffineCoupling(masks.half(D), shift_and_log_scale),
            tfb.Permute(permutation=tf.constant([3, 1, 0, 2])),
            tfp_flows.PReLU(alpha=tf.constant(0.6)),
            tfb.Invert(planar),
            tfp_flows.ActNorm(loc=tf.constant([0.1, -0.2, 0.3, 0.0]), log_scale=tf.constant([0.2, -0.1, 0.0, 0.3])),
            tfb.Scale(scale=tf.constant(1.5)),
        ]
    )


@pytest.mark.slow
def test_mixed_chain_passes_the_conformance_kit():
    z = tf.constant(np.random.default_rng(0).normal(size=[6, D]), tf.float32)
    assert_bijector_invariants(_chain(), z, event_ndims=1, rtol=2e-4, atol=2e-4)


@pytest.mark.slow
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
    np.testing.assert_allclose(tf.function(dist.log_prob)(x_fresh).numpy(), expected.numpy(), rtol=1e-3, atol=1e-3)


tfb = tfp.bijectors
tfd = tfp.distributions


# ---- densities pushed forward integrate to 1 ------------------------------------------------------------------


def _midpoint_grid_1d(low, high, cells):
    edges = np.linspace(low, high, cells + 1)  # an even cell count puts 0 (PReLU's kink) on a cell edge
    return 0.5 * (edges[1:] + edges[:-1]), (high - low) / cells


ONE_D_FLOWS = {
    "PReLU-alpha_2": (lambda: PReLU(const64(2.0)), 0, (-20.0, 20.0)),
    "PReLU-alpha_0.3": (lambda: PReLU(const64(0.3)), 0, (-12.0, 12.0)),
    "Planar-D1-contracting": (lambda: Planar(const64([1.5]), const64([-2.0]), const64(0.3)), 1, (-12.0, 12.0)),
    "Planar-D1-expanding": (lambda: Planar(const64([0.8]), const64([3.0]), const64(-0.5)), 1, (-14.0, 14.0)),
    "Radial-D1": (lambda: Radial(const64([0.4]), const64(0.5), const64(1.5)), 1, (-14.0, 14.0)),
    # The forward image of R is (-alpha / (1 - 2 alpha), 1 + alpha / (1 - 2 alpha)) = (-1/18, 19/18).
    "LogitTransform-alpha_0.05": (lambda: LogitTransform(0.05), 0, (-1.0 / 18.0, 19.0 / 18.0)),
}


@pytest.mark.parametrize("flow_id", sorted(ONE_D_FLOWS))
def test_standard_normal_pushed_through_1d_flow_integrates_to_one(flow_id):
    make, event_ndims, (low, high) = ONE_D_FLOWS[flow_id]
    base = tfd.Normal(const64(0.0), const64(1.0))
    if event_ndims == 1:
        base = tfd.Sample(base, 1)
    dist = tfd.TransformedDistribution(base, make())
    y, dy = _midpoint_grid_1d(low, high, 40_000)
    points = const64(y[:, None] if event_ndims == 1 else y)
    density = np.exp(dist.log_prob(points).numpy())
    assert np.all(np.isfinite(density))
    np.testing.assert_allclose(density.sum() * dy, 1.0, atol=1e-3)


TWO_D_FLOWS = {
    "PReLU-alpha_0.5": (lambda: PReLU(const64(0.5)), (-10.0, 10.0)),
    "Planar-D2-contracting": (lambda: Planar(const64([1.0, -0.5]), const64([-0.8, 0.3]), const64(0.1)), (-10.0, 10.0)),
    "Planar-D2-expanding": (lambda: Planar(const64([0.7, 1.2]), const64([1.5, 2.0]), const64(-0.3)), (-12.0, 12.0)),
    "Radial-D2-contracting": (lambda: Radial(const64([0.5, -0.5]), const64(1.0), const64(-0.7)), (-10.0, 10.0)),
    "Radial-D2-expanding": (lambda: Radial(const64([0.0, 1.0]), const64(0.5), const64(2.0)), (-12.0, 12.0)),
}


@pytest.mark.parametrize("flow_id", sorted(TWO_D_FLOWS))
@pytest.mark.slow_params("Planar-D2-contracting", "Planar-D2-expanding")
def test_standard_normal_pushed_through_2d_flow_integrates_to_one(flow_id):
    make, (low, high) = TWO_D_FLOWS[flow_id]
    base = tfd.MultivariateNormalDiag(loc=const64([0.0, 0.0]))
    # PReLU is elementwise: with event_ndims=1 TransformedDistribution sums its log-det over the pair.
    dist = tfd.TransformedDistribution(base, make())
    axis, step = _midpoint_grid_1d(low, high, 800)
    grid = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2)
    density = np.exp(dist.log_prob(const64(grid)).numpy())
    assert np.all(np.isfinite(density))
    np.testing.assert_allclose(density.sum() * step**2, 1.0, atol=1e-3)


def test_bijectors_compose_in_a_two_bijector_chain_inside_a_transformed_distribution():
    planar = Planar(tf.constant([1.0, -0.5]), tf.constant([-2.0, 0.3]), tf.constant(0.1))
    radial = Radial(tf.constant([0.5, -0.5]), tf.constant(1.0), tf.constant(-0.7))
    base = tfd.MultivariateNormalDiag(tf.zeros(2))
    dist = tfd.TransformedDistribution(base, tfb.Chain([radial, planar]))  # planar first, then radial
    y = tf.constant(np.random.default_rng(4).standard_normal([7, 2]).astype(np.float32))
    x_mid = planar.inverse(tf.identity(radial.inverse(tf.identity(y))))
    expected = (
        base.log_prob(x_mid)
        + radial.inverse_log_det_jacobian(tf.identity(y), event_ndims=1)
        + planar.inverse_log_det_jacobian(radial.inverse(tf.identity(y)), event_ndims=1)
    )
    np.testing.assert_allclose(tf.function(dist.log_prob)(tf.identity(y)), expected, rtol=1e-5, atol=1e-5)
    samples = tf.function(lambda: dist.sample(16, seed=3))()
    assert samples.shape == (16, 2) and np.all(np.isfinite(samples))


def test_logit_squeeze_chain_maps_latents_to_unit_interval_images():
    chain = tfb.Chain([LogitTransform(0.05, validate_args=True), Squeeze(2)])
    dist = tfd.TransformedDistribution(tfd.Sample(tfd.Normal(0.0, 1.0), [2, 2, 4]), chain)
    images = tf.random.uniform([3, 4, 4, 1], seed=6)
    latents = tf.nn.space_to_depth(tf.math.log(0.05 + 0.9 * images) - tf.math.log(0.95 - 0.9 * images), 2)
    np.testing.assert_allclose(chain.inverse(tf.identity(images)), latents, atol=1e-5)
    per_pixel_ildj = tf.math.log(0.9) - tf.math.log((0.05 + 0.9 * images) * (0.95 - 0.9 * images))
    expected = dist.distribution.log_prob(latents) + tf.reduce_sum(per_pixel_ildj, axis=[1, 2, 3])
    np.testing.assert_allclose(dist.log_prob(tf.identity(images)), expected, rtol=1e-5)
