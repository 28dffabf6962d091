"""Planar (Rezende & Mohamed 2015): the paper's formulas in NumPy, the exact inverse (float32, XLA,
batched parameters), validate_args errors, and property tests (random parameters and inputs satisfy the
invariants or raise a clear error).
"""

import numpy as np
import pytest
import tensorflow as tf
from elementwise_support import DTYPES, ERRORS, SETTINGS, arrays, check_invariants, const64, floats
from hypothesis import assume, given
from hypothesis import strategies as st

from tfp_flows import Planar

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
    bijector = Planar(const64(w), const64(u), const64(b))
    expected_y, expected_ldj = _planar_numpy(z, w, u, b)
    np.testing.assert_allclose(bijector.forward(const64(z)), expected_y, rtol=1e-12)
    np.testing.assert_allclose(
        bijector.forward_log_det_jacobian(const64(z), event_ndims=1), expected_ldj, rtol=1e-10, atol=1e-12
    )


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
    np.testing.assert_allclose(
        bijector.inverse_log_det_jacobian(tf.constant(y.numpy()), event_ndims=1), -ldj64, atol=1e-4
    )


@pytest.mark.slow
def test_planar_inverse_under_xla_matches_eager():
    bijector = Planar(tf.constant([0.6, -0.4]), tf.constant([-5.0, 4.0]), tf.constant(0.5))
    y = tf.random.normal([64, 2], seed=3) * 5.0
    eager = bijector.inverse(y)
    compiled = tf.function(bijector.inverse, jit_compile=True)(tf.identity(y))
    np.testing.assert_allclose(compiled, eager, atol=1e-5)


def test_planar_broadcasts_a_batch_of_parameters_against_a_batch_of_inputs():
    rng = np.random.default_rng(2)
    w, u, b = rng.standard_normal([3, 4]), rng.standard_normal([3, 4]), rng.standard_normal([3])
    bijector = Planar(const64(w), const64(u), const64(b))
    z = rng.standard_normal([5, 3, 4])
    y = bijector.forward(const64(z)).numpy()
    ldj = bijector.forward_log_det_jacobian(const64(z), event_ndims=1).numpy()
    assert ldj.shape == (5, 3)
    for k in range(3):
        expected_y, expected_ldj = _planar_numpy(z[:, k], w[k], u[k], b[k])
        np.testing.assert_allclose(y[:, k], expected_y, rtol=1e-12)
        np.testing.assert_allclose(ldj[:, k], expected_ldj, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(bijector.inverse(const64(y)), z, atol=1e-10)


def test_planar_rejects_zero_w_and_mismatched_sizes():
    with pytest.raises(tf.errors.InvalidArgumentError, match="`w`"):
        Planar(tf.zeros([3]), tf.ones([3]), tf.constant(0.0), validate_args=True)
    with pytest.raises(ValueError, match="`u`"):
        Planar(tf.ones([3]), tf.ones([2]), tf.constant(0.0))


@pytest.mark.slow
def test_planar_inverse_under_xla_never_returns_nan():
    # Regression: a zero value tolerance let the XLA-compiled root search stall (its tanh is not bit-identical
    # to the eager one) and return NaN for one row of this batch.
    planar = Planar(
        w=tf.constant([1.293874, 0.6211898]), u=tf.constant([0.31886613, -0.009196484]), b=tf.constant(-0.17898594)
    )
    y = tf.constant(
        [[0.8430802, 0.22478794], [1.8001704, -0.18726681], [-0.6628666, 0.83528906], [0.114790164, 0.02495369]]
    )
    x = tf.function(planar.inverse, jit_compile=True)(y).numpy()
    assert np.all(np.isfinite(x)), x
    np.testing.assert_allclose(planar.forward(tf.constant(x)).numpy(), y.numpy(), atol=1e-5)


# ---- Planar ------------------------------------------------------------------------------------------------------


@st.composite
def _planar_setups(draw):
    size = draw(st.integers(1, 4))
    w = draw(st.one_of(st.just(np.zeros(size)), arrays([size], 3.0)))
    u = draw(arrays([size], 5.0))
    b = draw(floats(-3.0, 3.0))
    z = draw(arrays([3, size], 1e3))
    return w, u, b, z


@SETTINGS
@given(setup=_planar_setups(), dtype_name=st.sampled_from(sorted(DTYPES)))
def test_planar_invariants_or_clear_error(setup, dtype_name):
    w, u, b, z = setup
    dtype, rtol = DTYPES[dtype_name]

    def make():
        return Planar(
            tf.constant(w, dtype),
            tf.constant(u, dtype),
            tf.constant(b, dtype),
            validate_args=True,
        )

    if not np.any(np.square(w.astype(dtype.as_numpy_dtype))):  # w = 0 (or underflowing to it)
        with pytest.raises(ERRORS, match="`w`"):
            make()
        return
    # Documented conditioning: the inverse amplifies rounding of y by up to 1 / min slope = 1 / softplus(w . u)
    # along w, and u_hat has a component (m(w . u) - w . u) / ||w|| along w (huge for tiny w). Keep both bounded,
    # and scale the tolerance with them.
    assume(w @ u > -5.0 and np.linalg.norm(w) >= 0.1)
    w_dot_u = w @ u
    u_hat = u + (np.log1p(np.exp(-w_dot_u)) - 1.0) * w / (w @ w)
    size_u_hat, size_w, min_slope = np.linalg.norm(u_hat), np.linalg.norm(w), np.log1p(np.exp(w_dot_u))
    scale = 1.0 + np.max(np.abs(z)) + size_u_hat
    a_error = rtol * size_w * scale / min_slope  # rounding of w . y, through the root of the 1-D equation
    # d log(slope) / da = -2 tanh sech^2 c / slope, |c| = |w . u_hat| <= 1 + |w . u|.
    check_invariants(
        make(),
        z,
        1,
        x_tol=rtol * scale + size_u_hat * a_error,
        ldj_tol=rtol * 10 + a_error * 2 * (2.0 + abs(w_dot_u)) / min_slope,
    )
