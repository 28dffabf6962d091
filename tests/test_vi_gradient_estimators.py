"""`VariationalFlow(gradient_estimator=...)`: "stl" and "dreg" estimate the same gradient as "reparameterized"
(their means over repeated estimates agree within a few standard errors) with less variance at a fitted flow on a
Gaussian target (Roeder et al. 2017; Tucker et al. 2019). Small flows, a few hundred draws."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_models import RealNVP, VariationalFlow

MEAN, SCALE, LOG_Z = np.array([0.5, -0.5]), np.array([0.8, 1.3]), 1.5


def gaussian_target(z):
    """log p~ = log N(z; MEAN, diag SCALE^2) + LOG_Z: a Gaussian a 2-coupling RealNVP represents exactly."""
    standard = (z - tf.constant(MEAN, z.dtype)) / tf.constant(SCALE, z.dtype)
    log_norm = -0.5 * tf.reduce_sum(standard**2, axis=-1) - np.sum(np.log(SCALE)) - np.log(2 * np.pi)
    return log_norm + LOG_Z


def _flow():
    return RealNVP((2,), num_couplings=2, hidden_units=(8,), actnorm=False, activation="tanh")


def _gradient_samples(flow, estimators, repeats, batch_size, **kwargs):
    """{estimator: [repeats, num_weights]} gradients of the loss, the same draws for every estimator."""
    models = {
        e: VariationalFlow(flow, gradient_estimator=e, seed=3, batch_size=batch_size, **kwargs) for e in estimators
    }
    dummy = tf.zeros([batch_size])

    def gradient(model):
        with tf.GradientTape() as tape:
            loss = model.compute_loss(x=dummy, y_pred=model(dummy, training=True))
        return tf.concat([tf.reshape(g, [-1]) for g in tape.gradient(loss, flow.trainable_weights)], axis=0)

    functions = {e: tf.function(lambda m=m: gradient(m)) for e, m in models.items()}
    return {e: np.stack([functions[e]().numpy() for _ in range(repeats)]) for e in estimators}


def _perturbed_flow():
    keras.utils.set_random_seed(0)
    flow = _flow()
    rng = np.random.default_rng(0)
    for weight in flow.trainable_weights:
        weight.assign(weight.numpy() + rng.normal(scale=0.3, size=weight.shape).astype(weight.dtype))
    return flow


@pytest.fixture(scope="module")
def fitted_flow():
    keras.utils.set_random_seed(0)
    flow = _flow()
    vi = VariationalFlow(flow, target_log_prob=gaussian_target, batch_size=128, seed=0)
    vi.compile(optimizer=keras.optimizers.Adam(0.03))
    vi.fit(epochs=1, steps_per_epoch=250, verbose=0)
    assert abs(float(vi.elbo(4096, seed=1)) - LOG_Z) < 0.05  # q is close to the target
    return flow


@pytest.mark.parametrize(
    "plain, low_variance, kwargs",
    [
        ("reparameterized", "stl", dict(objective="elbo")),
        ("reparameterized", "dreg", dict(objective="iw-elbo", num_importance_samples=4)),
    ],
    ids=["stl", "dreg"],
)
@pytest.mark.slow
def test_estimators_have_the_same_expectation(plain, low_variance, kwargs):
    # Away from the optimum (perturbed weights), where the gradients are large: paired differences average to 0.
    samples = _gradient_samples(
        _perturbed_flow(), (plain, low_variance), 60, 8, target_log_prob=gaussian_target, **kwargs
    )
    difference = samples[low_variance] - samples[plain]
    standard_error = difference.std(axis=0, ddof=1) / np.sqrt(len(difference))
    mean_plain = samples[plain].mean(axis=0)
    assert np.max(np.abs(mean_plain) / (samples[plain].std(axis=0, ddof=1) / np.sqrt(60) + 1e-12)) > 5  # power
    t = np.abs(difference.mean(axis=0)) / np.maximum(standard_error, 1e-12)
    assert np.max(t) < 5.0, (np.max(t), np.argmax(t))


@pytest.mark.parametrize(
    "plain, low_variance, kwargs",
    [
        ("reparameterized", "stl", dict(objective="elbo")),
        ("reparameterized", "dreg", dict(objective="iw-elbo", num_importance_samples=4)),
    ],
    ids=["stl", "dreg"],
)
@pytest.mark.slow
def test_low_variance_estimators_have_lower_variance_at_a_fitted_flow(fitted_flow, plain, low_variance, kwargs):
    samples = _gradient_samples(fitted_flow, (plain, low_variance), 40, 8, target_log_prob=gaussian_target, **kwargs)
    total_variance = {e: float(np.sum(samples[e].var(axis=0, ddof=1))) for e in samples}
    assert total_variance[low_variance] < 0.5 * total_variance[plain], total_variance


@pytest.mark.slow
def test_training_with_stl_fits_and_reloads(tmp_path):
    keras.utils.set_random_seed(0)
    vi = VariationalFlow(_flow(), target_log_prob="U1", batch_size=32, seed=0, gradient_estimator="stl")
    vi.compile(optimizer=keras.optimizers.Adam(0.01))
    history = vi.fit(epochs=1, steps_per_epoch=5, verbose=0)
    np.testing.assert_allclose(history.history["loss"], -np.asarray(history.history["elbo"]), rtol=1e-5)
    vi.save(tmp_path / "vi.keras")
    reloaded = keras.saving.load_model(tmp_path / "vi.keras")
    assert reloaded.gradient_estimator == "stl"
    np.testing.assert_allclose(float(reloaded.elbo(256, seed=1)), float(vi.elbo(256, seed=1)), rtol=1e-5)


def test_path_log_weights_have_the_plain_values():
    vi = VariationalFlow(_perturbed_flow(), target_log_prob=gaussian_target, gradient_estimator="stl")
    np.testing.assert_allclose(
        vi.path_elbo_terms(16, seed=4).numpy(), vi.elbo_terms(16, seed=4).numpy(), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(gradient_estimator="score"), r"`gradient_estimator` must be one of \('reparameterized', 'stl', 'dreg'\)"),
        (
            dict(gradient_estimator="stl", objective="iw-elbo", num_importance_samples=4),
            "use gradient_estimator='dreg'",
        ),
        (dict(gradient_estimator="dreg"), "use gradient_estimator='stl'"),
    ],
    ids=["unknown", "stl-with-iw-elbo", "dreg-with-elbo"],
)
def test_invalid_gradient_estimators_say_what_to_use(kwargs, message):
    with pytest.raises(ValueError, match=message):
        VariationalFlow(_flow(), target_log_prob="U1", **kwargs)


def test_a_run_config_passes_the_estimator_to_variational_runs_only():
    from keras_models.train.config import resolve_config

    base = dict(epochs=1, steps_per_epoch=1, batch_size=8, learning_rate=1e-3, seed=0, model_args=None, name=None)
    assert resolve_config(dict(base, dataset="U1", gradient_estimator="stl"))["gradient_estimator"] == "stl"
    with pytest.raises(ValueError, match=r"`gradient_estimator` \(--gradient-estimator\) applies only to variational"):
        resolve_config(dict(base, dataset="two_moons", gradient_estimator="stl"))
