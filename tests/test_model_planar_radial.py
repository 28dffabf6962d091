"""PlanarFlow / RadialFlow: fits on two moons (density estimation through the exact inverses) and their
parametrisations; the shared checklist runs in tests/model_checklist.py."""

import keras
import model_checks as checks
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from sklearn.datasets import make_moons

from keras_models import PlanarFlow, RadialFlow

tfd = tfp.distributions

MODELS = [PlanarFlow, RadialFlow]


def moons(num_points=512, seed=0):
    return make_moons(num_points, noise=0.05, random_state=seed)[0].astype(np.float32)


@pytest.fixture(scope="module", params=MODELS, ids=lambda cls: cls.__name__)
def trained(request):
    keras.utils.set_random_seed(0)
    x = moons()
    model = request.param(event_shape=(2,), num_layers=8)
    nll, baseline = checks.assert_fit_beats_gaussian(model, x, steps=100, learning_rate=5e-2, margin=0.15)
    return model, x, nll, baseline


@pytest.mark.slow
def test_fit_beats_the_gaussian_baseline_on_two_moons(trained):
    _, _, nll, baseline = trained
    assert nll < baseline - 0.15


@pytest.mark.parametrize("model_class", MODELS)
def test_an_untrained_model_is_its_base_distribution(model_class):
    """Every step starts as the identity (planar: u_hat = 0; radial: beta = 0)."""
    model = model_class(event_shape=(3,), num_layers=5)
    x = np.random.default_rng(3).normal(size=[16, 3]).astype(np.float32)
    expected = tfd.MultivariateNormalDiag(tf.zeros(3)).log_prob(x)
    np.testing.assert_allclose(model.log_prob(x).numpy(), expected.numpy(), rtol=1e-6, atol=1e-6)


def test_radial_keeps_alpha_positive_and_beta_at_least_minus_alpha_for_any_raw_weight():
    model = RadialFlow(event_shape=(2,), num_layers=3)
    rng = np.random.default_rng(4)
    for layer, (raw_alpha, raw_beta) in zip(model.flow_layers, [(-30.0, -30.0), (5.0, -40.0), (-3.0, 8.0)]):
        layer.raw_alpha.assign(raw_alpha)
        layer.raw_beta.assign(raw_beta)
        layer.z0.assign(rng.normal(size=2).astype(np.float32))
        alpha, beta = (t.numpy() for t in layer.alpha_beta())
        assert alpha > 0 and beta >= -alpha
    x = moons(64)
    assert np.all(np.isfinite(model.log_prob(x).numpy()))
    np.testing.assert_allclose(model.decode(tf.identity(model.encode(x))).numpy(), x, atol=1e-4)


@pytest.mark.parametrize("model_class", MODELS)
def test_float64_option_runs_in_double_precision(model_class):
    model = model_class(event_shape=(2,), num_layers=3, dtype="float64")
    assert all(w.dtype == "float64" for w in model.weights)
    assert model.log_prob(moons(4).astype(np.float64)).dtype == tf.float64


@pytest.mark.parametrize("model_class", MODELS)
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(event_shape=(2, 2)), "event_shape"),
        (dict(event_shape=(2,), num_layers=0), "num_layers"),
    ],
)
def test_bad_arguments_are_named(model_class, kwargs, match):
    with pytest.raises(ValueError, match=match):
        model_class(**kwargs)
