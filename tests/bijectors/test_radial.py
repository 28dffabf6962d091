"""Radial (Rezende & Mohamed 2015): the paper's formulas, the finite and analytic centre, validate_args
errors, gradients behind deferred tensors, and property tests.
"""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from elementwise_support import DTYPES, ERRORS, SETTINGS, arrays, check_invariants, const64, floats
from hypothesis import given
from hypothesis import strategies as st

from tfp_flows import Radial

tfd = tfp.distributions


def test_radial_is_finite_and_analytic_at_its_centre():
    z0, alpha, beta = np.array([0.3, -0.7, 1.1]), 0.8, -0.5
    bijector = Radial(const64(z0), const64(alpha), const64(beta))
    z = const64(z0[None])
    with tf.GradientTape() as tape:
        tape.watch(z)
        y = bijector.forward(z)
    jacobian = tape.batch_jacobian(y, z).numpy()[0]
    # At r = 0, f(z) ~ z0 + (1 + beta / alpha)(z - z0): the Jacobian is a multiple of the identity.
    np.testing.assert_allclose(jacobian, (1.0 + beta / alpha) * np.eye(3), atol=1e-12)
    np.testing.assert_allclose(
        bijector.forward_log_det_jacobian(z, event_ndims=1), [3 * np.log1p(beta / alpha)], rtol=1e-12
    )
    np.testing.assert_allclose(bijector.inverse(const64(z0[None])), z0[None], atol=1e-15)
    np.testing.assert_allclose(
        bijector.inverse_log_det_jacobian(const64(z0[None]), event_ndims=1), [-3 * np.log1p(beta / alpha)], rtol=1e-12
    )


def test_radial_forward_and_log_det_match_the_paper_formula():
    rng = np.random.default_rng(3)
    z0, alpha, beta = rng.standard_normal(4), 0.6, 1.7
    z = rng.standard_normal([10, 4]) * 3.0
    r = np.linalg.norm(z - z0, axis=-1)
    h, h_prime = 1.0 / (alpha + r), -1.0 / (alpha + r) ** 2
    expected_y = z + (beta * h)[:, None] * (z - z0)
    expected_ldj = 3 * np.log1p(beta * h) + np.log1p(beta * h + beta * h_prime * r)
    bijector = Radial(const64(z0), const64(alpha), const64(beta))
    np.testing.assert_allclose(bijector.forward(const64(z)), expected_y, rtol=1e-12)
    np.testing.assert_allclose(bijector.forward_log_det_jacobian(const64(z), event_ndims=1), expected_ldj, rtol=1e-10)


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


# ---- Radial ------------------------------------------------------------------------------------------------------


@st.composite
def _radial_setups(draw):
    size = draw(st.integers(1, 4))
    z0 = draw(arrays([size], 10.0))
    alpha = draw(st.one_of(floats(1e-3, 1e2), floats(-1.0, 0.0)))
    # beta = -alpha (1 - gap): gap > 0 keeps f's contraction at z0, alpha / (alpha + beta) = 1 / gap, bounded;
    # gap < 0 breaks beta >= -alpha and must be rejected.
    gap = draw(st.one_of(floats(1e-2, 1e3), floats(-1.0, -1e-3)))
    beta = -abs(alpha) * (1.0 - gap)
    offsets = draw(arrays([3, size], 1e3))
    near_centre = draw(st.booleans())
    z = z0 + (1e-6 * offsets / 1e3 if near_centre else offsets)  # points within 1e-6 of z0, or anywhere
    return z0, alpha, beta, gap, z


@SETTINGS
@given(setup=_radial_setups(), dtype_name=st.sampled_from(sorted(DTYPES)))
def test_radial_invariants_or_clear_error(setup, dtype_name):
    z0, alpha, beta, gap, z = setup
    dtype, rtol = DTYPES[dtype_name]

    def make():
        return Radial(
            tf.constant(z0, dtype),
            tf.constant(alpha, dtype),
            tf.constant(beta, dtype),
            validate_args=True,
        )

    if alpha <= 0:
        with pytest.raises(ERRORS, match="`alpha`"):
            make()
        return
    if gap < 0:
        with pytest.raises(ERRORS, match="`beta`"):
            make()
        return
    # Rounding of y (of size |z| + |beta|) reaches r amplified by the inverse's radial condition number, at most
    # 1 / gap (at z0); the log-det changes with r at a rate of at most D (2 / (alpha gap) + 2 / alpha).
    r_error = rtol * (1.0 + np.max(np.abs(z)) + abs(beta)) / min(gap, 1.0)
    check_invariants(
        make(),
        z,
        1,
        x_tol=r_error * (1.0 + abs(beta) / alpha),
        ldj_tol=rtol * 10 + r_error * len(z0) * (2.0 / (alpha * min(gap, 1.0)) + 2.0 / alpha),
    )
