"""RationalQuadraticCoupling: equality with a hand-built `tfb.RationalQuadraticSpline` on the transformed
entries, pass-through entries untouched, the identity outside [-B, B] and at the identity initialisation, and
argument errors. Round trips, log-dets vs autodiff, edges and XLA are in the conformance registry."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from bijector_cases.splines import SplineConditioner

from tfp_flows import RationalQuadraticCoupling, masks
from tfp_flows.rational_quadratic_coupling import identity_raw_derivative

tfb = tfp.bijectors


def _fresh(x, dtype=tf.float64):
    return tf.constant(np.asarray(x), dtype)


def _hand_built_spline(widths, heights, derivatives, bound, minimum=1e-3):
    """The paper's normalisation written out (softmax bins tiling [-B, B], softplus derivatives)."""
    k = widths.shape[-1]
    scale = 2 * bound - k * minimum
    return tfb.RationalQuadraticSpline(
        bin_widths=tf.nn.softmax(widths, axis=-1) * scale + minimum,
        bin_heights=tf.nn.softmax(heights, axis=-1) * scale + minimum,
        knot_slopes=tf.nn.softplus(derivatives) + minimum,
        range_min=-bound,
    )


@pytest.mark.parametrize("block", [False, True], ids=["full-shape-conditioner", "block-conditioner"])
def test_transformed_entries_equal_a_hand_built_spline_and_the_rest_pass_through(block):
    mask = masks.half(6)  # entries 0..2 pass through, 3..5 are transformed
    conditioner = SplineConditioner(mask, 5, tf.float64, seed=11, block=block)
    ours = RationalQuadraticCoupling(mask, conditioner, num_bins=5, bound=2.5)
    x = np.random.default_rng(12).normal(size=(7, 6)) * 2
    raw = conditioner(_fresh(x[:, :3] if block else x * mask))
    spline = _hand_built_spline(*(r if block else r[:, 3:] for r in raw), bound=2.5)
    y = ours.forward(_fresh(x)).numpy()
    np.testing.assert_array_equal(y[:, :3], x[:, :3])
    np.testing.assert_allclose(y[:, 3:], spline.forward(x[:, 3:]), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        ours.forward_log_det_jacobian(_fresh(x), event_ndims=1),
        spline.forward_log_det_jacobian(x[:, 3:], event_ndims=1),
        rtol=1e-12,
        atol=1e-12,
    )
    z = ours.inverse(_fresh(x)).numpy()
    np.testing.assert_array_equal(z[:, :3], x[:, :3])
    np.testing.assert_allclose(z[:, 3:], spline.inverse(x[:, 3:]), rtol=1e-12, atol=1e-12)


def test_identity_outside_the_bound():
    mask = masks.half(4)
    ours = RationalQuadraticCoupling(mask, SplineConditioner(mask, 4, tf.float32, seed=13), num_bins=4, bound=1.5)
    x = np.array([[0.3, -0.2, 1.5, -7.0], [2.0, 0.1, -1.5001, 40.0]], np.float32)  # entries 2, 3: |x| >= B
    for method in ("forward", "inverse"):
        np.testing.assert_array_equal(getattr(ours, method)(_fresh(x, tf.float32)), x, err_msg=method)
        np.testing.assert_array_equal(
            getattr(ours, f"{method}_log_det_jacobian")(_fresh(x, tf.float32), event_ndims=1), [0.0, 0.0]
        )
    inside = x.copy()
    inside[:, 2:] = [[0.7, -1.2], [0.0, 1.0]]
    assert not np.allclose(ours.forward(_fresh(inside, tf.float32))[:, 2:], inside[:, 2:])  # not the identity


def test_zero_logits_with_the_identity_derivative_are_the_identity():
    num_bins, min_derivative = 6, 1e-2

    def conditioner(h):
        zeros = tf.zeros_like(h)[..., None]
        return (
            tf.repeat(zeros, num_bins, -1),
            tf.repeat(zeros, num_bins, -1),
            tf.repeat(zeros, num_bins - 1, -1) + identity_raw_derivative(min_derivative),
        )

    ours = RationalQuadraticCoupling(
        masks.half(4), conditioner, num_bins=num_bins, bound=3.0, min_derivative=min_derivative
    )
    x = np.random.default_rng(14).uniform(-3, 3, size=(20, 4))
    np.testing.assert_allclose(ours.forward(_fresh(x)), x, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours.forward_log_det_jacobian(_fresh(x), event_ndims=1), np.zeros(20), atol=1e-12)


def _zeros_conditioner(sizes=(3, 3, 2)):
    return lambda h: tuple(tf.zeros(tf.concat([tf.shape(h), [n]], 0), h.dtype) for n in sizes)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_bins": 1}, "`num_bins` must be an int >= 2"),
        ({"num_bins": 2.5}, "`num_bins` must be an int >= 2"),
        ({"bound": 0.0}, "`bound` must be a finite number > 0"),
        ({"bound": float("inf")}, "`bound` must be a finite number > 0"),
        ({"min_bin_width": 0.0}, "`min_bin_width` must be a finite number > 0"),
        ({"min_bin_height": 2.0}, r"`min_bin_height` must be < 2 \* bound / num_bins = 2"),
        ({"min_derivative": 1.0}, "`min_derivative` must be < 1"),
        ({"min_derivative": -1e-3}, "`min_derivative` must be a finite number > 0"),
    ],
    ids=lambda v: str(v) if isinstance(v, dict) else "",
)
def test_bad_settings_raise_naming_the_argument(kwargs, match):
    settings = {"num_bins": 3, "bound": 3.0, **kwargs}
    with pytest.raises(ValueError, match=match):
        RationalQuadraticCoupling(masks.half(4), _zeros_conditioner(), **settings)


def test_a_conditioner_that_is_not_callable_raises():
    with pytest.raises(TypeError, match="`conditioner` must be callable"):
        RationalQuadraticCoupling(masks.half(4), "not a function", num_bins=3)


@pytest.mark.parametrize(
    "sizes, match",
    [
        ((3, 3, 3), r"`derivatives` must have a last axis of 2 \(num_bins = 3\)"),
        ((3, 4, 2), r"`heights` must have a last axis of 3"),
    ],
    ids=["derivatives-K", "heights-K+1"],
)
def test_conditioner_outputs_of_the_wrong_size_raise(sizes, match):
    coupling = RationalQuadraticCoupling(masks.half(4), _zeros_conditioner(sizes), num_bins=3)
    with pytest.raises(ValueError, match=match):
        coupling.forward(tf.zeros([2, 4]))


def test_a_conditioner_returning_two_outputs_raises():
    coupling = RationalQuadraticCoupling(masks.half(4), lambda h: (h, h), num_bins=3)
    with pytest.raises(ValueError, match=r"must return 3 tensors \(widths, heights, derivatives\); received 2"):
        coupling.forward(tf.zeros([2, 4]))
