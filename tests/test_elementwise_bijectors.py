"""Behaviour of PReLU, Planar, Radial, LogitTransform and Squeeze beyond the conformance kit: normalisation of
pushed-forward densities, agreement with TFP built-ins and with the papers' formulas written out in NumPy,
validate_args errors, and composition."""
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows import LogitTransform, Planar, PReLU, Radial, Squeeze

tfb = tfp.bijectors
tfd = tfp.distributions
F64 = tf.float64


def _const(value):
    return tf.constant(value, F64)


# ---- densities pushed forward integrate to 1 ------------------------------------------------------------------

def _midpoint_grid_1d(low, high, cells):
    edges = np.linspace(low, high, cells + 1)  # an even cell count puts 0 (PReLU's kink) on a cell edge
    return 0.5 * (edges[1:] + edges[:-1]), (high - low) / cells


ONE_D_FLOWS = {
    "PReLU-alpha_2": (lambda: PReLU(_const(2.0)), 0, (-20.0, 20.0)),
    "PReLU-alpha_0.3": (lambda: PReLU(_const(0.3)), 0, (-12.0, 12.0)),
    "Planar-D1-contracting": (lambda: Planar(_const([1.5]), _const([-2.0]), _const(0.3)), 1, (-12.0, 12.0)),
    "Planar-D1-expanding": (lambda: Planar(_const([0.8]), _const([3.0]), _const(-0.5)), 1, (-14.0, 14.0)),
    "Radial-D1": (lambda: Radial(_const([0.4]), _const(0.5), _const(1.5)), 1, (-14.0, 14.0)),
    # The forward image of R is (-alpha / (1 - 2 alpha), 1 + alpha / (1 - 2 alpha)) = (-1/18, 19/18).
    "LogitTransform-alpha_0.05": (lambda: LogitTransform(0.05), 0, (-1.0 / 18.0, 19.0 / 18.0)),
}


@pytest.mark.parametrize("flow_id", sorted(ONE_D_FLOWS))
def test_standard_normal_pushed_through_1d_flow_integrates_to_one(flow_id):
    make, event_ndims, (low, high) = ONE_D_FLOWS[flow_id]
    base = tfd.Normal(_const(0.0), _const(1.0))
    if event_ndims == 1:
        base = tfd.Sample(base, 1)
    dist = tfd.TransformedDistribution(base, make())
    y, dy = _midpoint_grid_1d(low, high, 40_000)
    points = _const(y[:, None] if event_ndims == 1 else y)
    density = np.exp(dist.log_prob(points).numpy())
    assert np.all(np.isfinite(density))
    np.testing.assert_allclose(density.sum() * dy, 1.0, atol=1e-3)


TWO_D_FLOWS = {
    "PReLU-alpha_0.5": (lambda: PReLU(_const(0.5)), (-10.0, 10.0)),
    "Planar-D2-contracting": (lambda: Planar(_const([1.0, -0.5]), _const([-0.8, 0.3]), _const(0.1)), (-10.0, 10.0)),
    "Planar-D2-expanding": (lambda: Planar(_const([0.7, 1.2]), _const([1.5, 2.0]), _const(-0.3)), (-12.0, 12.0)),
    "Radial-D2-contracting": (lambda: Radial(_const([0.5, -0.5]), _const(1.0), _const(-0.7)), (-10.0, 10.0)),
    "Radial-D2-expanding": (lambda: Radial(_const([0.0, 1.0]), _const(0.5), _const(2.0)), (-12.0, 12.0)),
}


@pytest.mark.parametrize("flow_id", sorted(TWO_D_FLOWS))
def test_standard_normal_pushed_through_2d_flow_integrates_to_one(flow_id):
    make, (low, high) = TWO_D_FLOWS[flow_id]
    base = tfd.MultivariateNormalDiag(loc=_const([0.0, 0.0]))
    # PReLU is elementwise: with event_ndims=1 TransformedDistribution sums its log-det over the pair.
    dist = tfd.TransformedDistribution(base, make())
    axis, step = _midpoint_grid_1d(low, high, 800)
    grid = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2)
    density = np.exp(dist.log_prob(_const(grid)).numpy())
    assert np.all(np.isfinite(density))
    np.testing.assert_allclose(density.sum() * step ** 2, 1.0, atol=1e-3)


# ---- formulas written out independently --------------------------------------------------------------------------

def _planar_numpy(z, w, u, b):
    """Rezende & Mohamed (2015) eq. 10 and appendix A, in NumPy: f(z) and log|det| with u_hat."""
    w_dot_u = w @ u
    m = -1.0 + np.log1p(np.exp(w_dot_u))
    u_hat = u + (m - w_dot_u) * w / (w @ w)
    activation = z @ w + b
    psi = (1.0 - np.tanh(activation) ** 2)[:, None] * w
    return z + np.tanh(activation)[:, None] * u_hat, np.log(np.abs(1.0 + psi @ u_hat))


def test_planar_forward_and_log_det_match_the_paper_formula():
    rng = np.random.default_rng(0)
    w, u, b = np.array([1.0, 0.5, -0.3]), np.array([-3.0, 1.0, 2.0]), 0.4
    z = rng.standard_normal([20, 3])
    bijector = Planar(_const(w), _const(u), _const(b))
    expected_y, expected_ldj = _planar_numpy(z, w, u, b)
    np.testing.assert_allclose(bijector.forward(_const(z)), expected_y, rtol=1e-12)
    np.testing.assert_allclose(bijector.forward_log_det_jacobian(_const(z), event_ndims=1), expected_ldj,
                               rtol=1e-10, atol=1e-12)


# Down to w . u = -4 the slope of w . f along w stays >= softplus(-4) = 0.018; much further, the forward pass
# itself contracts float32 rounding of y by 1 / softplus(w . u) and no inverse can recover z to 1e-5.
@pytest.mark.parametrize("w_dot_u_factor", [-1.5, -3.0, -4.0])
def test_planar_inverse_is_exact_in_float32_even_when_w_dot_u_is_below_minus_one(w_dot_u_factor):
    w = np.array([1.0, 0.5], np.float32)
    u = (w_dot_u_factor / (w @ w) * w + np.array([0.5, -1.0]) * 0.4).astype(np.float32)
    assert w @ u < -1.0  # the raw u would make f non-invertible without the u_hat reparametrisation
    bijector = Planar(tf.constant(w), tf.constant(u), tf.constant(0.3))
    z = np.random.default_rng(1).standard_normal([500, 2]).astype(np.float32)
    y = bijector.forward(tf.constant(z))
    z_back = bijector.inverse(tf.constant(y.numpy()))  # a fresh tensor: no cache hit
    assert np.max(np.abs(z_back.numpy() - z)) < 1e-5
    # The inverse log-det is that of the true inverse, as the forward's Jacobian says (float64 reference).
    z64 = z.astype(np.float64)
    _, ldj64 = _planar_numpy(z64, w.astype(np.float64), u.astype(np.float64), 0.3)
    np.testing.assert_allclose(bijector.inverse_log_det_jacobian(tf.constant(y.numpy()), event_ndims=1),
                               -ldj64, atol=1e-4)


def test_planar_inverse_under_xla_matches_eager():
    bijector = Planar(tf.constant([0.6, -0.4]), tf.constant([-5.0, 4.0]), tf.constant(0.5))
    y = tf.random.normal([64, 2], seed=3) * 5.0
    eager = bijector.inverse(y)
    compiled = tf.function(bijector.inverse, jit_compile=True)(tf.identity(y))
    np.testing.assert_allclose(compiled, eager, atol=1e-5)


def test_planar_broadcasts_a_batch_of_parameters_against_a_batch_of_inputs():
    rng = np.random.default_rng(2)
    w, u, b = rng.standard_normal([3, 4]), rng.standard_normal([3, 4]), rng.standard_normal([3])
    bijector = Planar(_const(w), _const(u), _const(b))
    z = rng.standard_normal([5, 3, 4])
    y = bijector.forward(_const(z)).numpy()
    ldj = bijector.forward_log_det_jacobian(_const(z), event_ndims=1).numpy()
    assert ldj.shape == (5, 3)
    for k in range(3):
        expected_y, expected_ldj = _planar_numpy(z[:, k], w[k], u[k], b[k])
        np.testing.assert_allclose(y[:, k], expected_y, rtol=1e-12)
        np.testing.assert_allclose(ldj[:, k], expected_ldj, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(bijector.inverse(_const(y)), z, atol=1e-10)


def test_radial_is_finite_and_analytic_at_its_centre():
    z0, alpha, beta = np.array([0.3, -0.7, 1.1]), 0.8, -0.5
    bijector = Radial(_const(z0), _const(alpha), _const(beta))
    z = _const(z0[None])
    with tf.GradientTape() as tape:
        tape.watch(z)
        y = bijector.forward(z)
    jacobian = tape.batch_jacobian(y, z).numpy()[0]
    # At r = 0, f(z) ~ z0 + (1 + beta / alpha)(z - z0): the Jacobian is a multiple of the identity.
    np.testing.assert_allclose(jacobian, (1.0 + beta / alpha) * np.eye(3), atol=1e-12)
    np.testing.assert_allclose(bijector.forward_log_det_jacobian(z, event_ndims=1), [3 * np.log1p(beta / alpha)],
                               rtol=1e-12)
    np.testing.assert_allclose(bijector.inverse(_const(z0[None])), z0[None], atol=1e-15)
    np.testing.assert_allclose(bijector.inverse_log_det_jacobian(_const(z0[None]), event_ndims=1),
                               [-3 * np.log1p(beta / alpha)], rtol=1e-12)


def test_radial_forward_and_log_det_match_the_paper_formula():
    rng = np.random.default_rng(3)
    z0, alpha, beta = rng.standard_normal(4), 0.6, 1.7
    z = rng.standard_normal([10, 4]) * 3.0
    r = np.linalg.norm(z - z0, axis=-1)
    h, h_prime = 1.0 / (alpha + r), -1.0 / (alpha + r) ** 2
    expected_y = z + (beta * h)[:, None] * (z - z0)
    expected_ldj = 3 * np.log1p(beta * h) + np.log1p(beta * h + beta * h_prime * r)
    bijector = Radial(_const(z0), _const(alpha), _const(beta))
    np.testing.assert_allclose(bijector.forward(_const(z)), expected_y, rtol=1e-12)
    np.testing.assert_allclose(bijector.forward_log_det_jacobian(_const(z), event_ndims=1), expected_ldj,
                               rtol=1e-10)


def test_logit_transform_matches_tfp_sigmoid_with_affine_shrink():
    alpha = 0.05
    ours = LogitTransform(alpha)
    # data -> latent: scale by (1 - 2 alpha), shift by alpha, then logit (the inverse of tfb.Sigmoid).
    reference = tfb.Chain([tfb.Invert(tfb.Sigmoid()), tfb.Shift(_const(alpha)), tfb.Scale(_const(1 - 2 * alpha))])
    data = _const(np.concatenate([[0.0, 1.0, 1e-9, 1 - 1e-9], np.linspace(0.0, 1.0, 41)]))
    np.testing.assert_allclose(ours.inverse(data), reference.forward(data), rtol=1e-10)
    np.testing.assert_allclose(ours.inverse_log_det_jacobian(data, event_ndims=0),
                               reference.forward_log_det_jacobian(data, event_ndims=0), rtol=1e-10)
    latent = _const(np.linspace(-2.9, 2.9, 31))
    np.testing.assert_allclose(ours.forward(latent), reference.inverse(latent), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(ours.forward_log_det_jacobian(latent, event_ndims=0),
                               reference.inverse_log_det_jacobian(latent, event_ndims=0), rtol=1e-10)


def test_logit_transform_data_end_points_give_finite_latents_in_float32():
    bijector = LogitTransform(1e-6)
    data = tf.constant([0.0, 1.0, 0.5])
    z = bijector.inverse(data).numpy()
    np.testing.assert_allclose(z, [np.log(1e-6), -np.log(1e-6), 0.0], rtol=1e-3, atol=1e-6)
    assert np.all(np.isfinite(bijector.inverse_log_det_jacobian(data, event_ndims=0)))
    np.testing.assert_allclose(bijector.forward(tf.constant(z)), data, atol=1e-6)


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


# ---- validate_args errors name the argument ----------------------------------------------------------------------

def _message(excinfo):
    return str(excinfo.value)


@pytest.mark.parametrize("alpha", [0.0, -0.5])
def test_prelu_rejects_non_positive_alpha(alpha):
    with pytest.raises(tf.errors.InvalidArgumentError) as excinfo:
        PReLU(tf.constant(alpha), validate_args=True)
    assert "`alpha`" in _message(excinfo)
    variable = tf.Variable(alpha)
    bijector = PReLU(variable, validate_args=True)  # variables are checked when used
    with pytest.raises(tf.errors.InvalidArgumentError, match="`alpha`"):
        bijector.forward(tf.ones([2]))


def test_radial_rejects_non_positive_alpha_and_beta_below_minus_alpha():
    with pytest.raises(tf.errors.InvalidArgumentError, match="`alpha`"):
        Radial(tf.zeros([2]), tf.constant(0.0), tf.constant(1.0), validate_args=True)
    with pytest.raises(tf.errors.InvalidArgumentError, match="`beta`"):
        Radial(tf.zeros([2]), tf.constant(0.5), tf.constant(-0.6), validate_args=True)
    beta = tf.Variable(0.0)
    bijector = Radial(tf.zeros([2]), tf.constant(0.5), beta, validate_args=True)
    beta.assign(-0.7)  # e.g. an optimiser step leaving the valid region
    with pytest.raises(tf.errors.InvalidArgumentError, match="`beta`"):
        bijector.inverse(tf.ones([1, 2]))
    Radial(tf.zeros([2]), tf.constant(0.5), tf.constant(-0.5), validate_args=True)  # the bound is allowed


def test_planar_rejects_zero_w_and_mismatched_sizes():
    with pytest.raises(tf.errors.InvalidArgumentError, match="`w`"):
        Planar(tf.zeros([3]), tf.ones([3]), tf.constant(0.0), validate_args=True)
    with pytest.raises(ValueError, match="`u`"):
        Planar(tf.ones([3]), tf.ones([2]), tf.constant(0.0))


def test_logit_transform_rejects_data_outside_the_unit_interval():
    bijector = LogitTransform(0.05, validate_args=True)
    for bad in ([0.5, -0.01], [1.2, 0.5]):
        with pytest.raises(tf.errors.InvalidArgumentError, match="`y` must lie in \\[0, 1\\]"):
            bijector.inverse(tf.constant(bad))
        with pytest.raises(tf.errors.InvalidArgumentError, match="`y` must lie in \\[0, 1\\]"):
            bijector.inverse_log_det_jacobian(tf.constant(bad), event_ndims=1)
    bijector.inverse(tf.constant([0.0, 1.0]))  # the closed interval is fine


@pytest.mark.parametrize("alpha", [0.0, 0.5, -1e-3, 0.7])
def test_logit_transform_rejects_alpha_outside_zero_to_half(alpha):
    with pytest.raises(ValueError, match="`alpha`"):
        LogitTransform(alpha)
    variable = tf.Variable(alpha)
    bijector = LogitTransform(variable, validate_args=True)
    with pytest.raises(tf.errors.InvalidArgumentError, match="`alpha`"):
        bijector.forward(tf.zeros([2]))


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


# ---- parameters, composition ---------------------------------------------------------------------------------

def test_gradients_reach_variables_behind_deferred_tensors():
    raw_alpha = tf.Variable(0.0)
    raw_beta = tf.Variable(0.3)
    alpha = tfp.util.DeferredTensor(raw_alpha, tf.math.softplus)
    # The reparametrisation suggested in Radial's docstring: beta = -alpha + softplus(raw_beta).
    beta = tfp.util.DeferredTensor(raw_beta, lambda t: -tf.math.softplus(raw_alpha) + tf.math.softplus(t))
    bijector = Radial(tf.constant([0.1, 0.2]), alpha, beta, validate_args=True)
    dist = tfd.TransformedDistribution(tfd.MultivariateNormalDiag(tf.zeros(2)), bijector)
    with tf.GradientTape() as tape:
        loss = -tf.reduce_mean(dist.log_prob(tf.constant([[0.5, -1.0], [2.0, 0.3]])))
    grads = tape.gradient(loss, [raw_alpha, raw_beta])
    assert all(g is not None and np.isfinite(g.numpy()) and g.numpy() != 0 for g in grads)
    assert {v.ref() for v in bijector.trainable_variables} == {raw_alpha.ref(), raw_beta.ref()}


def test_bijectors_compose_in_a_two_bijector_chain_inside_a_transformed_distribution():
    planar = Planar(tf.constant([1.0, -0.5]), tf.constant([-2.0, 0.3]), tf.constant(0.1))
    radial = Radial(tf.constant([0.5, -0.5]), tf.constant(1.0), tf.constant(-0.7))
    base = tfd.MultivariateNormalDiag(tf.zeros(2))
    dist = tfd.TransformedDistribution(base, tfb.Chain([radial, planar]))  # planar first, then radial
    y = tf.constant(np.random.default_rng(4).standard_normal([7, 2]).astype(np.float32))
    x_mid = planar.inverse(tf.identity(radial.inverse(tf.identity(y))))
    expected = (base.log_prob(x_mid) + radial.inverse_log_det_jacobian(tf.identity(y), event_ndims=1)
                + planar.inverse_log_det_jacobian(radial.inverse(tf.identity(y)), event_ndims=1))
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


def test_prelu_with_a_tfp_scale_in_a_chain_round_trips_under_xla():
    chain = tfb.Chain([tfb.Scale(tf.constant([2.0, -1.0, 0.5])), PReLU(tf.constant([0.2, 0.5, 3.0]))])
    x = tf.constant([[-1.0, 2.0, -3.0], [0.0, -0.5, 4.0]])
    y = tf.function(chain.forward, jit_compile=True)(x)
    np.testing.assert_allclose(chain.inverse(tf.identity(y)), x, rtol=1e-6)
    expected_ldj = np.log([2.0, 1.0, 0.5]).sum() + np.log([[0.2, 1.0, 3.0], [1.0, 0.5, 1.0]]).sum(-1)
    np.testing.assert_allclose(chain.forward_log_det_jacobian(x, event_ndims=1), expected_ldj, rtol=1e-6)


def test_planar_inverse_under_xla_never_returns_nan():
    # Regression: a zero value tolerance let the XLA-compiled root search stall (its tanh is not bit-identical
    # to the eager one) and return NaN for one row of this batch.
    planar = Planar(w=tf.constant([1.293874, 0.6211898]), u=tf.constant([0.31886613, -0.009196484]),
                              b=tf.constant(-0.17898594))
    y = tf.constant([[0.8430802, 0.22478794], [1.8001704, -0.18726681], [-0.6628666, 0.83528906],
                     [0.114790164, 0.02495369]])
    x = tf.function(planar.inverse, jit_compile=True)(y).numpy()
    assert np.all(np.isfinite(x)), x
    np.testing.assert_allclose(planar.forward(tf.constant(x)).numpy(), y.numpy(), atol=1e-5)
