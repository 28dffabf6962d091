"""PReLUFlow: the TFP custom-bijector tutorial model: its fit and its own structure (the shared checklist runs in
tests/model_checklist.py)."""

import keras
import model_checks as checks
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from keras_models import PReLUFlow

tfd = tfp.distributions


def banana(num_points=1024, seed=0):
    """The tutorial's density: x2 ~ N(0, 4^2), x1 ~ N(x2^2 / 4, 1)."""
    rng = np.random.default_rng(seed)
    x2 = 4.0 * rng.normal(size=num_points)
    x1 = x2**2 / 4.0 + rng.normal(size=num_points)
    return np.stack([x1, x2], axis=1).astype(np.float32)


@pytest.fixture(scope="module")
def trained():
    """A PReLUFlow fitted briefly on the banana; returns (model, data, its NLL, the Gaussian baseline's)."""
    keras.utils.set_random_seed(0)
    x = banana()
    model = PReLUFlow(event_shape=(2,), num_layers=6)
    # A short budget on purpose: see the class docstring's caveat (biased gradients drift back to the Gaussian).
    nll, baseline = checks.assert_fit_beats_gaussian(model, x, steps=20, learning_rate=1e-2, batch_size=64, margin=0.15)
    return model, x, nll, baseline


@pytest.mark.slow
def test_fit_beats_the_gaussian_baseline_on_the_tutorial_banana(trained):
    _, _, nll, baseline = trained
    assert nll < baseline - 0.15


def test_one_affine_layer_is_exactly_a_gaussian_with_that_cholesky_factor():
    """K = 1 without data init: x = L z + b, so log p is MultivariateNormalTriL(b, L) (independent formula)."""
    model = PReLUFlow(event_shape=(3,), num_layers=1, data_init=False)
    affine = model.flow_layers[0]
    affine.shift.assign([0.5, -1.0, 2.0])
    affine.diagonal.assign([-0.3, 0.2, 1.5])
    affine.strictly_lower.assign([0.7, -0.4, 0.9])
    scale = affine.scale_tril().numpy()
    assert np.all(np.diag(scale) > 0) and np.allclose(np.triu(scale, 1), 0.0)
    x = np.random.default_rng(3).normal(size=[16, 3]).astype(np.float32)
    expected = tfd.MultivariateNormalTriL(affine.shift.numpy(), scale).log_prob(x)
    np.testing.assert_allclose(model.log_prob(x).numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)


def test_prelu_slopes_and_diagonals_stay_positive_for_any_raw_weight():
    model = PReLUFlow(event_shape=(2,), num_layers=3, min_alpha=0.01, data_init=False)
    for weight in model.trainable_weights:
        if weight.path.endswith("raw_alpha"):
            weight.assign(np.full(weight.shape, -200.0, np.float32))
        if weight.path.endswith("diagonal"):
            weight.assign(np.full(weight.shape, -5.0, np.float32))
    alphas = [layer.alpha().numpy() for layer in model.flow_layers if hasattr(layer, "alpha")]
    assert len(alphas) == 2 and all(np.all(a >= 0.01) for a in alphas)
    diagonals = [np.diag(layer.scale_tril().numpy()) for layer in model.flow_layers if hasattr(layer, "scale_tril")]
    assert len(diagonals) == 3 and all(np.all(d > 0) for d in diagonals)
    log_prob = model.log_prob(banana(16)).numpy()
    assert np.all(np.isfinite(log_prob))


def test_float64_option_runs_in_double_precision():
    model = PReLUFlow(event_shape=(2,), num_layers=2, dtype="float64")
    assert all(w.dtype == "float64" for w in model.weights)
    assert model.log_prob(banana(4).astype(np.float64)).dtype == tf.float64


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(event_shape=(2, 2)), "event_shape"),
        (dict(num_layers=0), "num_layers"),
        (dict(min_alpha=0.5, initial_alpha=0.4), "min_alpha"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PReLUFlow(**kwargs)
