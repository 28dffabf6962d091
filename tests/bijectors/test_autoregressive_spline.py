"""MaskedAutoregressiveSpline: the density direction equals hand-built `tfb.RationalQuadraticSpline`s from one
network pass, sampling takes D passes, keyword arguments reach the network, the identity outside [-B, B], and
argument errors. Round trips, log-dets vs autodiff, edges and XLA are in the conformance registry."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from bijector_cases.autoregressive import MaskedNetwork

from tfp_flows import MaskedAutoregressiveSpline

tfb = tfp.bijectors

K, D = 4, 5


class CountingNetwork:
    """A MaskedNetwork (theta [..., D, 3K - 1]) that records its calls and the keyword arguments it got."""

    def __init__(self, dtype=tf.float64, seed=21):
        self.network = MaskedNetwork(dtype, seed, params=3 * K - 1, stacked=True)
        self.calls = []

    def __call__(self, y, **kwargs):
        self.calls.append(kwargs)
        return self.network(y)


def _fresh(x, dtype=tf.float64):
    return tf.constant(np.asarray(x), dtype)


def test_density_direction_equals_hand_built_splines_from_one_network_pass():
    network = CountingNetwork()
    ours = MaskedAutoregressiveSpline(network, num_bins=K, bound=2.0)
    y = np.random.default_rng(22).normal(size=(6, D)) * 2
    theta = network.network(_fresh(y))
    scale = 4.0 - K * 1e-3
    spline = tfb.RationalQuadraticSpline(
        bin_widths=tf.nn.softmax(theta[..., :K], -1) * scale + 1e-3,
        bin_heights=tf.nn.softmax(theta[..., K : 2 * K], -1) * scale + 1e-3,
        knot_slopes=tf.nn.softplus(theta[..., 2 * K :]) + 1e-3,
        range_min=-2.0,
    )
    y_tensor = _fresh(y)
    x = ours.inverse(y_tensor)
    ildj = ours.inverse_log_det_jacobian(y_tensor, event_ndims=1)
    assert len(network.calls) == 1  # the inverse and its log-det share one pass
    np.testing.assert_allclose(x, spline.inverse(y), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ildj, spline.inverse_log_det_jacobian(y, event_ndims=1), rtol=1e-12, atol=1e-12)


def test_sampling_direction_takes_one_pass_per_dimension():
    network = CountingNetwork()
    ours = MaskedAutoregressiveSpline(network, num_bins=K, bound=2.0)
    x = np.random.default_rng(23).normal(size=(3, D))
    y = ours.forward(_fresh(x))
    assert len(network.calls) == D
    np.testing.assert_allclose(ours.inverse(tf.identity(y)), x, rtol=1e-9, atol=1e-9)


def test_keyword_arguments_reach_the_network():
    network = CountingNetwork()
    ours = MaskedAutoregressiveSpline(network, num_bins=K, bound=2.0)
    context = tf.ones([3, 2], tf.float64)
    ours.inverse(_fresh(np.zeros((3, D))), conditional_input=context)
    ours.forward(_fresh(np.zeros((3, D))), conditional_input=context)
    assert network.calls and all(call.get("conditional_input") is context for call in network.calls)


def test_identity_outside_the_bound():
    ours = MaskedAutoregressiveSpline(CountingNetwork(tf.float32), num_bins=K, bound=1.0)
    y = np.array([[1.0, -3.0, 50.0, -1.0, 1.2]], np.float32)
    np.testing.assert_array_equal(ours.inverse(_fresh(y, tf.float32)), y)
    np.testing.assert_array_equal(ours.inverse_log_det_jacobian(_fresh(y, tf.float32), event_ndims=1), [0.0])
    inside = np.array([[0.5, -0.3, 0.2, 0.9, -0.6]], np.float32)
    assert not np.allclose(ours.inverse(_fresh(inside, tf.float32)), inside)  # not the identity inside


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_bins": 1}, "`num_bins` must be an int >= 2"),
        ({"bound": -1.0}, "`bound` must be a finite number > 0"),
        ({"min_bin_width": 0.7}, r"`min_bin_width` must be < 2 \* bound / num_bins"),
        ({"min_derivative": 0.0}, "`min_derivative` must be a finite number > 0"),
    ],
    ids=["num_bins", "bound", "min_bin_width", "min_derivative"],
)
def test_bad_settings_raise_naming_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MaskedAutoregressiveSpline(CountingNetwork(), **{"num_bins": 3, "bound": 1.0, **kwargs})


def test_a_network_output_of_the_wrong_width_raises():
    ours = MaskedAutoregressiveSpline(lambda y: tf.zeros(tf.concat([tf.shape(y), [3 * K]], 0)), num_bins=K)
    with pytest.raises(
        ValueError,
        match=r"theta of shape \[\.\.\., D, 3 \* num_bins - 1\] = \[\.\.\., 5, 11\]; "
        r"received shape \[2, 5, 12\]",
    ):
        ours.inverse(tf.zeros([2, D]))
