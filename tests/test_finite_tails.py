"""Finite in the tails: the couplings whose users meet NaN far outside the data (flowjax #239, BayesFlow #721,
nflows #23) give finite log-densities, samples and weight gradients for inputs 10 to 10^4 times outside the
spline's bound (the typical range, for the affine and mixture couplings), also with float16 conditioners.

Each case is a Keras step as the presets build it (ReLU conditioner, so its outputs grow with its inputs, weights
moved off their zero initialisation), at a small shape. Density direction: x far out, log p = log N(z) + log|dz/dx|
and its gradients. Sampling direction: z far out, x = f(z) and log|df/dz| (what sample_and_log_prob returns) and
the gradients of log N(z) - log|df/dz|.
"""

import keras
import model_checks
import numpy as np
import pytest
import tensorflow as tf

from keras_models.layers import (
    AffineCouplingLayer,
    AutoregressiveSplineLayer,
    MixtureCouplingLayer,
    RationalQuadraticCouplingLayer,
    mlp,
)
from tfp_flows import masks

BOUND = 3.0  # the splines' bound, and the typical range of the other couplings' inputs
SIZE = 4


def make_step(kind, policy):
    def network(units):
        return mlp((8,), units, dtype=policy)

    if kind == "spline-coupling":
        return RationalQuadraticCouplingLayer(masks.half(SIZE), network, num_bins=4, bound=BOUND, dtype=policy)
    if kind == "autoregressive-spline":
        return AutoregressiveSplineLayer((8,), num_bins=4, bound=BOUND, dtype=policy)
    if kind == "mixture-coupling":
        return MixtureCouplingLayer(masks.half(SIZE), network, num_components=3, dtype=policy)
    return AffineCouplingLayer(masks.half(SIZE), network, dtype=policy)


@pytest.fixture(params=["float32", "mixed_float16"])
def policy(request):
    with model_checks.global_policy(request.param) as name:
        yield name


def far_out(factor):
    """Rows mixing typical values with values `factor` times the bound, of both signs, in every position."""
    v = BOUND * factor
    return tf.constant([[v, -v, v, -v], [0.5, v, -v, 0.3], [v, 0.1, 0.2, v], [-v, -v, -v, -v]], tf.float32)


def assert_all_finite(what, values):
    for value in values:
        value = np.asarray(value)
        assert np.all(np.isfinite(value)), f"{what}: {value}"


@pytest.mark.parametrize("factor", [10.0, 1e2, 1e3, 1e4])
@pytest.mark.parametrize("kind", ["spline-coupling", "autoregressive-spline", "mixture-coupling", "affine-coupling"])
@pytest.mark.slow_params(
    "float32-autoregressive-spline-10.0",
    "mixed_float16-autoregressive-spline-10.0",
    "mixed_float16-autoregressive-spline-100.0",
    "mixed_float16-autoregressive-spline-1000.0",
    "mixed_float16-autoregressive-spline-10000.0",
)
def test_log_prob_sample_and_gradients_stay_finite_far_outside_the_data(kind, factor, policy):
    keras.utils.set_random_seed(0)
    step = make_step(kind, policy)
    step.build((None, SIZE))
    rng = np.random.default_rng(0)
    for weight in step.trainable_weights:
        weight.assign(np.asarray(weight) + rng.normal(scale=0.5, size=weight.shape).astype("float32"))

    def log_normal(t):
        return tf.reduce_sum(-0.5 * tf.square(t) - 0.5 * np.log(2.0 * np.pi), axis=-1)

    x = far_out(factor)
    with tf.GradientTape() as tape:
        bijector = step.bijector()
        z = bijector.inverse(tf.identity(x))
        log_prob = log_normal(z) + bijector.inverse_log_det_jacobian(tf.identity(x), event_ndims=1)
        loss = -tf.reduce_mean(log_prob)
    assert_all_finite("z and log p(x)", [z, log_prob])
    check_gradients("d log p(x) / d weights", step, tape.gradient(loss, step.trainable_weights), policy)

    z = far_out(factor)
    with tf.GradientTape() as tape:
        bijector = step.bijector()
        x = bijector.forward(tf.identity(z))
        log_prob = log_normal(z) - bijector.forward_log_det_jacobian(tf.identity(z), event_ndims=1)
        loss = -tf.reduce_mean(log_prob)
    assert_all_finite("sample x and its log p", [x, log_prob])
    check_gradients("d log p(sample) / d weights", step, tape.gradient(loss, step.trainable_weights), policy)


def check_gradients(what, step, gradients, policy):
    """float32: every gradient is finite. mixed_float16: the networks' backward pass runs in float16, whose range
    (65504) gradients this far out exceed: Keras' LossScaleOptimizer (what compile uses under the policy) then
    skips the step, so the weights stay finite; a finite gradient is applied."""
    if policy == "float32":
        assert_all_finite(what, gradients)
        return
    optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.SGD(1e-3))
    optimizer.apply(gradients, step.trainable_weights)
    assert_all_finite(f"weights after a loss-scaled step on {what}", step.trainable_weights)
