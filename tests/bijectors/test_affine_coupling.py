"""AffineCoupling: equal to TFP's RealNVP (unbounded and tanh-bounded), the log-scale bounds'
formulas and limits, pass-through entries, constructor errors, and property tests.
"""

import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from bijector_cases.couplings import DenseConditioner
from coupling_support import (
    MAGNITUDES,
    PROPERTY_SETTINGS,
    SEEDS,
    FlatConditioner,
    assert_near,
    assert_same_bijection,
    fresh,
    mask_and_shape,
    normal,
    random_inputs,
    realnvp_fn,
)
from hypothesis import given
from hypothesis import strategies as st

from tfp_flows import AdditiveCoupling, AffineCoupling, masks
from tfp_flows.testing import jacobian_log_det

tfb = tfp.bijectors


# --- Equivalence with TFP built-ins -------------------------------------------------------------------------


@pytest.mark.parametrize("event_size", [6, 7])
def test_affine_coupling_half_mask_unbounded_equals_realnvp(event_size):
    conditioner = DenseConditioner(event_size, 2, tf.float32, seed=1, linear_skip=True)
    num_masked = event_size // 2
    ours = AffineCoupling(masks.half(event_size), conditioner, log_scale_bound=None)
    reference = tfb.RealNVP(num_masked=num_masked, shift_and_log_scale_fn=realnvp_fn(conditioner, num_masked))
    assert_same_bijection(ours, reference, normal((5, event_size), 2), event_ndims=1)


def test_affine_coupling_tanh_bound_equals_realnvp_with_bounded_log_scale():
    conditioner = DenseConditioner(6, 2, tf.float32, seed=3, linear_skip=True)

    def bounded(x):  # the documented bound, applied by hand
        shift, raw = conditioner(x)
        return shift, 1.5 * tf.math.tanh(raw / 1.5)

    ours = AffineCoupling(masks.half(6), conditioner, log_scale_bound="tanh", log_scale_limit=1.5)
    reference = tfb.RealNVP(num_masked=3, shift_and_log_scale_fn=realnvp_fn(bounded, 3))
    assert_same_bijection(ours, reference, normal((4, 6), 4, scale=5.0), event_ndims=1)


def test_pass_through_entries_are_unchanged_and_conditioner_sees_only_them():
    mask = masks.checkerboard(4, 4, 2)
    seen = []

    def fn(x_masked):
        seen.append(x_masked)
        return tf.ones_like(x_masked), tf.ones_like(x_masked)

    x = normal((2, 4, 4, 2), 23)
    y = AffineCoupling(mask, fn, log_scale_bound=None).forward(fresh(x)).numpy()
    np.testing.assert_array_equal(y[..., mask == 1], x[..., mask == 1])
    np.testing.assert_allclose(y[..., mask == 0], x[..., mask == 0] * np.e + 1.0, rtol=1e-6)
    np.testing.assert_array_equal(seen[0].numpy(), x * mask)


# --- The log-scale bounds ------------------------------------------------------------------------------------


def _constant_conditioner(raw_log_scale):
    return lambda x: (tf.zeros_like(x), tf.fill(tf.shape(x), tf.constant(raw_log_scale, x.dtype)))


@pytest.mark.parametrize("raw", [-1e4, -3.0, 0.0, 2.5, 1e4])
def test_tanh_bound_formula_and_limit(raw):
    bijector = AffineCoupling(masks.half(4), _constant_conditioner(raw), log_scale_limit=2.0)
    x = normal((3, 4), 24)
    y = bijector.forward(fresh(x)).numpy()
    expected_s = 2.0 * np.tanh(raw / 2.0)
    np.testing.assert_allclose(y[:, 2:], x[:, 2:] * np.exp(expected_s), rtol=1e-5)
    fldj = bijector.forward_log_det_jacobian(fresh(x), event_ndims=1).numpy()
    np.testing.assert_allclose(fldj, 2 * expected_s, rtol=1e-5, atol=1e-6)
    assert np.all(np.abs(fldj) <= 2 * 2.0)


@pytest.mark.parametrize("raw", [-20.0, -2.0, 0.0, 3.0, 1e4])
def test_sigmoid_bound_without_floor_is_glows_density_direction_scale(raw):
    bijector = AffineCoupling(
        masks.half(4), _constant_conditioner(raw), log_scale_bound="sigmoid", log_scale_limit=math.inf
    )
    y = normal((3, 4), 25)
    x = bijector.inverse(fresh(y)).numpy()
    sigmoid = 1.0 / (1.0 + np.exp(-(raw + 2.0)))
    np.testing.assert_allclose(x[:, 2:], y[:, 2:] * sigmoid, rtol=1e-5)
    np.testing.assert_array_equal(x[:, :2], y[:, :2])
    ildj = bijector.inverse_log_det_jacobian(fresh(y), event_ndims=1).numpy()
    np.testing.assert_allclose(ildj, 2 * np.log(sigmoid), rtol=1e-5, atol=1e-6)
    assert np.all(ildj <= 0.0)  # the density direction never expands volume


@pytest.mark.parametrize("limit", [0.5, 2.0, 6.0, 60.0])
@pytest.mark.parametrize("raw", [-1e4, -20.0, -2.0, 0.0, 3.0, 1e4])
def test_sigmoid_bound_floor_limits_the_sampling_expansion(raw, limit):
    """g = exp(-c) + (1 - exp(-c)) sigmoid(r + 2): the density direction multiplies by g, sampling divides by it,
    so one coupling expands samples by at most exp(c) whatever the conditioner outputs."""
    bijector = AffineCoupling(
        masks.half(4), _constant_conditioner(raw), log_scale_bound="sigmoid", log_scale_limit=limit
    )
    floor = np.exp(-limit)
    g = floor + (1.0 - floor) * 0.5 * (1.0 + np.tanh((raw + 2.0) / 2.0))  # sigmoid, without exp overflow
    y = normal((3, 4), 25)
    x = bijector.inverse(fresh(y)).numpy()
    np.testing.assert_allclose(x[:, 2:], y[:, 2:] * g, rtol=1e-5)
    ildj = bijector.inverse_log_det_jacobian(fresh(y), event_ndims=1).numpy()
    np.testing.assert_allclose(ildj, 2 * np.log(g), rtol=1e-5, atol=1e-6)
    z = normal((3, 4), 26)
    forward = bijector.forward(fresh(z)).numpy()
    np.testing.assert_allclose(forward[:, 2:], z[:, 2:] / g, rtol=1e-5)
    fldj = bijector.forward_log_det_jacobian(fresh(z), event_ndims=1).numpy()
    assert np.all(np.isfinite(forward)) and np.all((fldj >= 0.0) & (fldj <= 2 * limit * (1 + 1e-6)))


def test_bounded_coupling_stays_finite_where_unbounded_overflows():
    conditioner = DenseConditioner(6, 2, tf.float32, seed=26, linear_skip=True)
    x = np.full((2, 6), 1e3, np.float32)
    unbounded = AffineCoupling(masks.half(6), conditioner, log_scale_bound=None).forward(fresh(x))
    bounded = AffineCoupling(masks.half(6), conditioner, log_scale_bound="tanh").forward(fresh(x))
    assert not np.all(np.isfinite(unbounded))  # the edge case really is extreme for this conditioner
    assert np.all(np.isfinite(bounded))


def test_coupling_constructor_errors_name_the_argument():
    with pytest.raises(ValueError, match="log_scale_bound"):
        AffineCoupling(masks.half(4), lambda x: (x, x), log_scale_bound="exp")
    with pytest.raises(ValueError, match="log_scale_limit"):
        AffineCoupling(masks.half(4), lambda x: (x, x), log_scale_limit=0.0)
    with pytest.raises(ValueError, match="log_scale_limit"):
        AffineCoupling(masks.half(4), lambda x: (x, x), log_scale_limit=float("nan"), log_scale_bound="sigmoid")
    with pytest.raises(ValueError, match="log_scale_limit"):  # c tanh(r / c) has no infinite limit
        AffineCoupling(masks.half(4), lambda x: (x, x), log_scale_limit=math.inf, log_scale_bound="tanh")
    with pytest.raises(ValueError, match="<= 60"):  # exp(-c) would underflow float32: use math.inf
        AffineCoupling(masks.half(4), lambda x: (x, x), log_scale_limit=100.0, log_scale_bound="sigmoid")
    with pytest.raises(TypeError, match="shift_and_log_scale_fn"):
        AffineCoupling(masks.half(4), None)
    with pytest.raises(TypeError, match="shift_fn"):
        AdditiveCoupling(masks.half(4), "not callable")
    with pytest.raises(ValueError, match="mask"):
        AdditiveCoupling(np.ones(4), lambda x: x)


@PROPERTY_SETTINGS
@given(
    setup=mask_and_shape(),
    seed=SEEDS,
    magnitude=MAGNITUDES,
    weight_scale=st.sampled_from([0.1, 1.0, 3.0]),
    limit=st.sampled_from([0.5, 2.0, 5.0]),
)
@pytest.mark.slow
def test_tanh_affine_coupling_is_finite_invertible_and_bounded(setup, seed, magnitude, weight_scale, limit):
    mask, shape = setup
    coupling = AffineCoupling(mask, FlatConditioner(mask.shape, 2, seed, weight_scale), log_scale_limit=limit)
    event_ndims = mask.ndim
    x = random_inputs(shape, seed, magnitude)
    y = coupling.forward(fresh(x)).numpy()
    assert np.all(np.isfinite(y))
    np.testing.assert_array_equal(y[..., mask == 1], x[..., mask == 1])  # pass-through is exact
    assert_near(coupling.inverse(fresh(y)), x, magnitude * np.exp(limit), "inverse(forward(x)) != x")
    fldj = coupling.forward_log_det_jacobian(fresh(x), event_ndims=event_ndims).numpy()
    ildj = coupling.inverse_log_det_jacobian(fresh(y), event_ndims=event_ndims).numpy()
    assert np.all(np.abs(fldj) <= limit * np.sum(mask == 0) * (1 + 1e-6))
    assert_near(ildj, -fldj, 0.0, "ildj(f(x)) != -fldj(x)")
    if magnitude <= 10.0:
        expected = jacobian_log_det(coupling.forward, fresh(x), event_ndims).numpy()
        assert_near(fldj, expected, 0.0, "fldj != log|det| of the autodiff Jacobian", rtol=1e-3)


@PROPERTY_SETTINGS
@given(
    setup=mask_and_shape(),
    seed=SEEDS,
    magnitude=MAGNITUDES,
    weight_scale=st.sampled_from([0.1, 1.0, 3.0]),
    limit=st.sampled_from([1.0, 2.0, math.inf]),
)
def test_sigmoid_affine_coupling_density_direction_is_bounded(setup, seed, magnitude, weight_scale, limit):
    """Glow's bound: the inverse multiplies by g = exp(-c) + (1 - exp(-c)) sigmoid(r + 2) <= 1, so it is finite
    for any finite data and its log-det is <= 0. The forward scale 1/g is at most exp(c); without the floor
    (c = inf) it is unbounded above, and the round trip is checked only where the forward log-det (the sum of the
    non-negative log-scales) stays below 60."""
    mask, shape = setup
    coupling = AffineCoupling(
        mask, FlatConditioner(mask.shape, 2, seed, weight_scale), log_scale_bound="sigmoid", log_scale_limit=limit
    )
    y = random_inputs(shape, seed, magnitude)
    x = coupling.inverse(fresh(y)).numpy()
    ildj = coupling.inverse_log_det_jacobian(fresh(y), event_ndims=mask.ndim).numpy()
    assert np.all(np.isfinite(x)) and np.all(np.isfinite(ildj))
    assert np.all(ildj <= 0.0)
    assert np.all(-ildj <= limit * np.sum(mask == 0) * (1 + 1e-6))
    if np.any(-ildj > 60.0):
        assert math.isinf(limit)
        return  # some forward scale exceeds exp(60): beyond what the sampling direction can represent
    y_back = coupling.forward(fresh(x)).numpy()
    assert_near(y_back, y, magnitude, "forward(inverse(y)) != y")
    fldj = coupling.forward_log_det_jacobian(fresh(x), event_ndims=mask.ndim).numpy()
    assert_near(fldj, -ildj, 0.0, "fldj(f^-1(y)) != -ildj(y)")


@PROPERTY_SETTINGS
@given(setup=mask_and_shape(), seed=SEEDS, magnitude=MAGNITUDES, weight_scale=st.sampled_from([0.1, 1.0, 3.0]))
@pytest.mark.slow
def test_unbounded_affine_coupling_is_invertible_where_finite(setup, seed, magnitude, weight_scale):
    mask, shape = setup
    coupling = AffineCoupling(mask, FlatConditioner(mask.shape, 2, seed, weight_scale), log_scale_bound=None)
    x = random_inputs(shape, seed, magnitude)
    y = coupling.forward(fresh(x)).numpy()
    fldj = coupling.forward_log_det_jacobian(fresh(x), event_ndims=mask.ndim).numpy()
    if not (np.all(np.isfinite(y)) and np.all(np.abs(fldj) < 20)):
        return  # unbounded scales may overflow at large inputs: that is what the bounds are for
    assert_near(coupling.inverse(fresh(y)), x, magnitude * np.exp(20.0), "inverse(forward(x)) != x")
    ildj = coupling.inverse_log_det_jacobian(fresh(y), event_ndims=mask.ndim).numpy()
    assert_near(ildj, -fldj, 0.0, "ildj(f(x)) != -fldj(x)")
