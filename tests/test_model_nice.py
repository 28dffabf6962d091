"""NICE preset: the fit on two moons, NICE's scaling layer, float64, argument checks (the shared checklist runs in
tests/model_checklist.py)."""

import keras
import model_checks
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from sklearn.datasets import make_moons

from keras_models import NICE

tfd = tfp.distributions


def two_moons(n=1000, seed=0):
    x, _ = make_moons(n, noise=0.05, random_state=seed)
    return x.astype(np.float32)


MOONS = two_moons()


def small_nice(**kwargs):
    return NICE(event_shape=(2,), num_couplings=4, hidden_units=(32, 32), **kwargs)


@pytest.mark.slow
def test_fit_beats_a_gaussian_on_two_moons():
    model_checks.assert_fit_beats_gaussian(small_nice(), MOONS, steps=300, learning_rate=1e-2)


@pytest.mark.parametrize("base, base_dist", [("logistic", tfd.Logistic(0.0, 1.0)), ("normal", tfd.Normal(0.0, 1.0))])
def test_diagonal_scale_gives_nice_log_likelihood(base, base_dist):
    """With identity couplings (all conditioner weights zero: a fresh NICE starts with random shifts), h = exp(S) x
    and log p(x) = sum log p_H(h) + sum S (NICE eq. 3)."""
    model = small_nice(base_distribution=base)
    for layer in model.flow_layers:
        if "additive_coupling" in layer.name:
            for weight in layer.trainable_weights:
                weight.assign(np.zeros(weight.shape, np.float32))
    log_scale = np.array([0.7, -1.3], np.float32)
    model.get_layer("diagonal_scale").log_scale.assign(log_scale)
    x = MOONS[:32]
    h = np.exp(log_scale) * x
    np.testing.assert_allclose(model.encode(x).numpy(), h, rtol=1e-6)
    expected = base_dist.log_prob(h).numpy().sum(-1) + log_scale.sum()
    np.testing.assert_allclose(model.log_prob(x).numpy(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_float64_option_reaches_every_weight_and_agrees_with_float32():
    model32 = model_checks.perturb(small_nice())
    model64 = small_nice(dtype="float64")
    assert all(w.dtype == "float64" for w in model64.weights)
    model64.set_weights([w.astype(np.float64) for w in model32.get_weights()])
    x64 = MOONS[:32].astype(np.float64)
    log_prob64 = model64.log_prob(x64)
    assert log_prob64.dtype == tf.float64
    np.testing.assert_allclose(log_prob64.numpy(), model32.log_prob(MOONS[:32]).numpy(), rtol=1e-5, atol=1e-5)
    assert model64.sample(3, seed=0).dtype == tf.float64
    model64.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model64.fit(model_checks.dataset_of(MOONS, 64), epochs=1, steps_per_epoch=3, verbose=0)
    assert np.all(np.isfinite(history.history["nll"]))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(event_shape=(8, 8, 1)), "flatten images"),
        (dict(event_shape=(1,)), "D >= 2"),
        (dict(event_shape=(2,), num_couplings=0), "num_couplings"),
        (dict(event_shape=(2,), hidden_units=()), "hidden_units"),
        (dict(event_shape=(2,), hidden_units=(8, -1)), "hidden_units"),
        (dict(event_shape=(2,), base_distribution="cauchy"), "base_distribution"),
        (dict(event_shape=(2,), actnorm="yes"), "actnorm"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NICE(**kwargs)


def test_data_side_actnorm_starts_nice_at_the_data_mean_and_spread():
    """The default ActNorm meets the data first and standardises its first batch, and comes back from the config;
    actnorm=False is the paper's model, with no such layer."""
    x = MOONS[:256] * np.float32([3.0, 0.5]) + np.float32([10.0, -4.0])
    model = small_nice()
    assert model.flow_layers[0].name == "actnorm"
    model.initialize_from_data(x)
    h = model.flow_layers[0].bijector().inverse(x).numpy()
    np.testing.assert_allclose(h.mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(h.std(0), 1.0, rtol=1e-3)
    config = model.get_config()
    assert config["actnorm"] is True
    assert NICE.from_config(config).flow_layers[0].name == "actnorm"
    paper_model = small_nice(actnorm=False)
    assert [layer.name for layer in paper_model.flow_layers if "actnorm" in layer.name] == []
