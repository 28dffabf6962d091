"""Property tests: random parameters and inputs (extreme magnitudes included) either satisfy the invariants or
raise a clear ValueError / InvalidArgumentError (validate_args=True) - never a silent NaN in the documented domain.

Invariants checked per example: values and log-dets are finite; the round trip x -> y -> x holds through a fresh
tensor (no cache); fldj(x) == -ildj(f(x)). Tolerances scale with the input's magnitude and, for Planar and
Radial, with the inverse's condition number, which the generated parameters bound (see each strategy).
"""
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tfp_flows import LogitTransform, Planar, PReLU, Radial, Squeeze

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
DTYPES = {"float32": (tf.float32, 2e-6), "float64": (tf.float64, 1e-13)}  # (dtype, relative tolerance)
ERRORS = (ValueError, tf.errors.InvalidArgumentError)


def _floats(low, high):
    # TensorFlow flushes subnormal numbers to zero on CPU, so a subnormal input is not the number the test sees.
    return st.floats(low, high, allow_subnormal=False)


def _magnitudes(max_abs):
    """Floats from all scales: zero, tiny, order one and up to max_abs, either sign."""
    return st.one_of(
        st.sampled_from([0.0, max_abs, -max_abs]),
        _floats(-1.0, 1.0),
        _floats(-max_abs, max_abs),
    )


def _arrays(shape, max_abs):
    size = int(np.prod(shape))
    return st.lists(_magnitudes(max_abs), min_size=size, max_size=size).map(lambda v: np.reshape(v, shape))


def _check_invariants(bijector, x, event_ndims, x_tol, ldj_tol):
    """Finite values; |inverse(forward(x)) - x| <= x_tol; |fldj(x) + ildj(f(x))| <= ldj_tol."""
    dtype = bijector.dtype or tf.as_dtype(x.dtype)
    x = tf.constant(x, dtype)
    y = bijector.forward(x)
    x_back = bijector.inverse(tf.constant(y.numpy()))
    fldj = bijector.forward_log_det_jacobian(tf.constant(x.numpy()), event_ndims=event_ndims)
    ildj = bijector.inverse_log_det_jacobian(tf.constant(y.numpy()), event_ndims=event_ndims)
    for what, value in (("forward", y), ("inverse", x_back), ("fldj", fldj), ("ildj", ildj)):
        assert np.all(np.isfinite(value.numpy())), f"{what} is not finite: {value.numpy()}"
    error = np.abs(x_back.numpy() - x.numpy())
    assert np.all(error <= x_tol), f"inverse(forward(x)) != x: errors {error} above {x_tol} at x = {x.numpy()}"
    fldj, ildj = np.broadcast_arrays(fldj.numpy(), ildj.numpy())
    np.testing.assert_allclose(fldj, -ildj, rtol=0, atol=ldj_tol, err_msg="fldj(x) != -ildj(f(x))")
    return fldj


# ---- PReLU -------------------------------------------------------------------------------------------------------

@SETTINGS
@given(alpha=st.one_of(_floats(1e-4, 1e4), _floats(-1.0, 0.0)), x=_arrays([4, 3], 1e6),
       dtype_name=st.sampled_from(sorted(DTYPES)))
def test_prelu_invariants_or_clear_error(alpha, x, dtype_name):
    dtype, rtol = DTYPES[dtype_name]
    if alpha <= 0:
        with pytest.raises(ERRORS, match="`alpha`"):
            PReLU(tf.constant(alpha, dtype), validate_args=True)
        return
    # TensorFlow flushes subnormal results to zero on CPU: alpha * x for a tiny negative x becomes 0 and lands
    # on the other side of the kink, where the slope is ambiguous anyway. Keep alpha * x normal (or exactly 0).
    tiny = np.finfo(dtype.as_numpy_dtype).tiny
    assume(np.all((x == 0) | (np.abs(x) * min(alpha, 1.0) > 2 * tiny)))
    _check_invariants(PReLU(tf.constant(alpha, dtype), validate_args=True), x, 0,
                      x_tol=rtol * np.abs(x), ldj_tol=rtol * (1.0 + abs(np.log(alpha))))


# ---- Planar ------------------------------------------------------------------------------------------------------

@st.composite
def _planar_setups(draw):
    size = draw(st.integers(1, 4))
    w = draw(st.one_of(st.just(np.zeros(size)), _arrays([size], 3.0)))
    u = draw(_arrays([size], 5.0))
    b = draw(_floats(-3.0, 3.0))
    z = draw(_arrays([3, size], 1e3))
    return w, u, b, z


@SETTINGS
@given(setup=_planar_setups(), dtype_name=st.sampled_from(sorted(DTYPES)))
def test_planar_invariants_or_clear_error(setup, dtype_name):
    w, u, b, z = setup
    dtype, rtol = DTYPES[dtype_name]
    make = lambda: Planar(tf.constant(w, dtype), tf.constant(u, dtype), tf.constant(b, dtype),  # noqa: E731
                          validate_args=True)
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
    _check_invariants(make(), z, 1, x_tol=rtol * scale + size_u_hat * a_error,
                      ldj_tol=rtol * 10 + a_error * 2 * (2.0 + abs(w_dot_u)) / min_slope)


# ---- Radial ------------------------------------------------------------------------------------------------------

@st.composite
def _radial_setups(draw):
    size = draw(st.integers(1, 4))
    z0 = draw(_arrays([size], 10.0))
    alpha = draw(st.one_of(_floats(1e-3, 1e2), _floats(-1.0, 0.0)))
    # beta = -alpha (1 - gap): gap > 0 keeps f's contraction at z0, alpha / (alpha + beta) = 1 / gap, bounded;
    # gap < 0 breaks beta >= -alpha and must be rejected.
    gap = draw(st.one_of(_floats(1e-2, 1e3), _floats(-1.0, -1e-3)))
    beta = -abs(alpha) * (1.0 - gap)
    offsets = draw(_arrays([3, size], 1e3))
    near_centre = draw(st.booleans())
    z = z0 + (1e-6 * offsets / 1e3 if near_centre else offsets)  # points within 1e-6 of z0, or anywhere
    return z0, alpha, beta, gap, z


@SETTINGS
@given(setup=_radial_setups(), dtype_name=st.sampled_from(sorted(DTYPES)))
def test_radial_invariants_or_clear_error(setup, dtype_name):
    z0, alpha, beta, gap, z = setup
    dtype, rtol = DTYPES[dtype_name]
    make = lambda: Radial(tf.constant(z0, dtype), tf.constant(alpha, dtype), tf.constant(beta, dtype),  # noqa: E731
                          validate_args=True)
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
    _check_invariants(make(), z, 1, x_tol=r_error * (1.0 + abs(beta) / alpha),
                      ldj_tol=rtol * 10 + r_error * len(z0) * (2.0 / (alpha * min(gap, 1.0)) + 2.0 / alpha))


# ---- LogitTransform ----------------------------------------------------------------------------------------------

@SETTINGS
@given(alpha=st.one_of(_floats(1e-6, 0.49), st.sampled_from([0.0, 0.5, 0.7, -1e-3])),
       data=st.lists(st.one_of(st.sampled_from([0.0, 1.0, 1e-30]), _floats(0.0, 1.0), _floats(-5.0, 5.0)),
                     min_size=4, max_size=4),
       dtype_name=st.sampled_from(sorted(DTYPES)))
def test_logit_transform_data_side_invariants_or_clear_error(alpha, data, dtype_name):
    """Data x in [0, 1] (the inverse's domain): z = inverse(x) finite, forward(z) == x, ildj(x) == -fldj(z)."""
    dtype, rtol = DTYPES[dtype_name]
    if not 0.0 < alpha < 0.5:
        with pytest.raises(ValueError, match="`alpha`"):
            LogitTransform(alpha, validate_args=True)
        return
    bijector = LogitTransform(alpha, validate_args=True)
    data = np.asarray(data).astype(dtype.as_numpy_dtype)  # what the bijector sees (-1e-228 is -0.0 in float32)
    data[np.abs(data) < np.finfo(data.dtype).tiny] = 0.0  # and TensorFlow flushes subnormals to zero
    if np.any((data < 0) | (data > 1)):
        with pytest.raises(tf.errors.InvalidArgumentError, match="`y` must lie in \\[0, 1\\]"):
            bijector.inverse(tf.constant(data, dtype))
        return
    x = tf.constant(data, dtype)
    z = bijector.inverse(x)
    ildj = bijector.inverse_log_det_jacobian(x, event_ndims=0)
    x_back = bijector.forward(tf.constant(z.numpy()))
    fldj = bijector.forward_log_det_jacobian(tf.constant(z.numpy()), event_ndims=0)
    for what, value in (("inverse", z), ("ildj", ildj), ("forward", x_back), ("fldj", fldj)):
        assert np.all(np.isfinite(value.numpy())), f"{what} is not finite: {value.numpy()}"
    # forward(z) is computed from sigmoid(z), whose absolute resolution is the dtype's epsilon: the data
    # round trip is accurate to a few epsilons in absolute terms, amplified by 1 / (1 - 2 alpha).
    np.testing.assert_allclose(x_back, data, rtol=0, atol=4 * rtol / (1 - 2 * alpha))
    np.testing.assert_allclose(ildj, -fldj.numpy(), rtol=0, atol=10 * rtol * (1 + np.max(np.abs(ildj))))


@SETTINGS
@given(alpha=_floats(1e-6, 0.49), z=_arrays([5], 60.0), dtype_name=st.sampled_from(sorted(DTYPES)))
def test_logit_transform_latent_side_is_finite_for_any_latent(alpha, z, dtype_name):
    """Any latent z in R gives a finite forward value and log-det, even where sigmoid saturates."""
    dtype, _ = DTYPES[dtype_name]
    bijector = LogitTransform(alpha)
    x = bijector.forward(tf.constant(z, dtype)).numpy()
    fldj = bijector.forward_log_det_jacobian(tf.constant(z, dtype), event_ndims=0).numpy()
    assert np.all(np.isfinite(x)) and np.all(np.isfinite(fldj))
    bound = alpha / (1 - 2 * alpha)  # the forward image is (-bound, 1 + bound); allow float32 rounding
    assert np.all((x >= -bound * (1 + 1e-5) - 1e-6) & (x <= (1 + bound) * (1 + 1e-5)))


# ---- Squeeze -----------------------------------------------------------------------------------------------------

@SETTINGS
@given(factor=st.integers(1, 3), height=st.integers(1, 6), width=st.integers(1, 6), channels=st.integers(1, 3),
       batch=st.lists(st.integers(1, 2), max_size=2), scale=st.sampled_from([0.0, 1.0, 1e30]))
def test_squeeze_round_trips_or_rejects_the_shape(factor, height, width, channels, batch, scale):
    squeeze = Squeeze(factor, validate_args=True)
    rng = np.random.default_rng(height * 100 + width * 10 + channels)
    data = (scale * rng.standard_normal(batch + [height, width, channels])).astype(np.float32)
    if height % factor or width % factor:
        with pytest.raises(ValueError, match="height H and width W of `y` must be divisible"):
            squeeze.inverse(tf.constant(data))
        return
    latent = squeeze.inverse(tf.constant(data))
    assert latent.shape == tuple(batch) + (height // factor, width // factor, channels * factor ** 2)
    np.testing.assert_array_equal(squeeze.forward(tf.constant(latent.numpy())), data)
    np.testing.assert_array_equal(np.sort(latent.numpy(), axis=None), np.sort(data, axis=None))  # a permutation
    assert float(squeeze.inverse_log_det_jacobian(tf.constant(data), event_ndims=3)) == 0.0
