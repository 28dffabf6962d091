"""`sample_and_log_prob`, the one-pass sampler with its density."""
import numpy as np
import tensorflow as tf

from keras_models import RealNVP


def _perturb(model, scale=0.3, seed=1):
    """Random trainable weights, so no coupling is the identity (fresh models start with zero output layers)."""
    rng = np.random.default_rng(seed)
    for weight in model.trainable_weights:
        weight.assign(weight.numpy() + rng.normal(scale=scale, size=weight.shape).astype(weight.dtype))
    return model


def test_sample_and_log_prob_matches_log_prob_of_the_samples_without_an_inverse():
    model = _perturb(RealNVP((2,), num_couplings=2, hidden_units=(8,)))
    x, log_prob = model.sample_and_log_prob(64, seed=3)
    np.testing.assert_array_equal(x.numpy(), model.sample(64, seed=3).numpy())     # the same draw as `sample`
    np.testing.assert_allclose(log_prob.numpy(), model.log_prob(tf.identity(x)).numpy(), rtol=1e-5, atol=1e-5)
    # At T != 1 it is still the model's density at the returned points (documented), not the tempered sampler's.
    x, log_prob = model.sample_and_log_prob(16, temperature=0.5, seed=4)
    np.testing.assert_allclose(log_prob.numpy(), model.log_prob(tf.identity(x)).numpy(), rtol=1e-5, atol=1e-5)

