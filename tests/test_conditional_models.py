"""Conditional models p(x | c) (`FlowModel(context_shape=...)`): learning, the public maths, fit's (x, c) input.

The shared model checks run on the conditional cases of tests/model_cases.py (round trips, `.keras`, XLA, every
weight trains); this file checks what only a conditional model has.
"""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_models import MAF, NSF, RealNVP

NAN = float("nan")


def two_blobs(n, seed=0):
    """x ~ N(3 c (1, 1), 0.5^2 I) with c = +-1 equally likely: the mean is +-3 by the context."""
    rng = np.random.default_rng(seed)
    c = rng.choice([-1.0, 1.0], size=(n, 1)).astype(np.float32)
    x = (3.0 * c + 0.5 * rng.normal(size=(n, 2))).astype(np.float32)
    return x, c


MODELS = {
    "realnvp": lambda: RealNVP((2,), num_couplings=4, hidden_units=(32,), context_shape=(1,)),
    "maf": lambda: MAF((2,), num_layers=3, hidden_units=(32,), context_shape=(1,)),
    "nsf": lambda: NSF((2,), num_layers=2, hidden_units=(32,), num_bins=4, context_shape=(1,)),
}


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.slow
def test_fit_learns_the_conditional_density(name):
    keras.utils.set_random_seed(0)
    model = MODELS[name]()
    x, c = two_blobs(1024)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    dataset = tf.data.Dataset.from_tensor_slices((x, c)).shuffle(1024, seed=0).batch(128).repeat()
    model.fit(dataset, epochs=1, steps_per_epoch=150, verbose=0)
    x_test, c_test = two_blobs(256, seed=1)
    right = -float(tf.reduce_mean(model.log_prob(x_test, c_test)))
    wrong = -float(tf.reduce_mean(model.log_prob(x_test, -c_test)))
    # The true conditional NLL is 2 log(0.5 sqrt(2 pi)) ~ 0.45 nats; with the wrong c each point is 6 sigma off.
    assert right < 1.5, right
    assert wrong > right + 10.0, (right, wrong)
    samples = model.sample(200, np.ones([1], np.float32), seed=2).numpy()
    np.testing.assert_allclose(samples.mean(axis=0), [3.0, 3.0], atol=0.5)


def small_model(**kwargs):
    keras.utils.set_random_seed(3)
    # No dropout: compute_loss (training mode) is checked against log_prob to the last digit.
    model = RealNVP((2,), num_couplings=2, hidden_units=(8,), context_shape=(2,), dropout=0.0, **kwargs)
    rng = np.random.default_rng(4)
    for weight in model.trainable_weights:
        weight.assign(np.asarray(weight) + rng.normal(scale=0.3, size=weight.shape).astype(np.float32))
    return model


def test_the_model_density_is_its_tfp_distribution_with_bijector_kwargs():
    model = small_model()
    rng = np.random.default_rng(5)
    x, c = rng.normal(size=(6, 2)).astype(np.float32), rng.normal(size=(6, 2)).astype(np.float32)
    via_tfp = model.distribution.log_prob(x, bijector_kwargs=model.bijector_kwargs(c))
    np.testing.assert_allclose(via_tfp.numpy(), model.log_prob(x, c).numpy(), rtol=1e-6)
    np.testing.assert_allclose(model((x, c)).numpy(), model.log_prob(x, c).numpy(), rtol=1e-6)
    samples, log_prob = model.sample_and_log_prob(6, c, seed=7)
    np.testing.assert_allclose(log_prob.numpy(), model.log_prob(samples, c).numpy(), rtol=1e-4, atol=1e-4)


def test_one_context_is_broadcast_to_every_sample():
    model = small_model()
    c = np.array([0.5, -1.0], np.float32)
    np.testing.assert_array_equal(
        model.sample(4, c, seed=8).numpy(), model.sample(4, np.tile(c, (4, 1)), seed=8).numpy()
    )


@pytest.mark.slow
def test_actnorm_is_initialised_from_the_first_x_c_batch_and_fit_takes_arrays():
    x, c = two_blobs(64, seed=9)
    by_fit = RealNVP((2,), num_couplings=2, hidden_units=(8,), actnorm=True, context_shape=(1,))
    by_hand = RealNVP((2,), num_couplings=2, hidden_units=(8,), actnorm=True, context_shape=(1,))
    by_hand.set_weights(by_fit.get_weights())
    by_hand.initialize_from_data(x[:32], c[:32])
    by_fit.compile(optimizer=keras.optimizers.Adam(0.0))  # no step moves the weights: only the init
    by_fit.fit(tf.data.Dataset.from_tensor_slices((x, c)).batch(32), epochs=1, verbose=0)
    for got, expected in zip(by_fit.get_weights(), by_hand.get_weights()):
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    history = by_fit.fit(x, c, batch_size=32, epochs=1, verbose=0, validation_data=(x, c))
    assert np.isfinite(history.history["val_nll"]).all()


def test_nan_policy_omit_leaves_examples_with_a_bad_context_out():
    model = small_model(nan_policy="omit")
    rng = np.random.default_rng(10)
    x, c = rng.normal(size=(4, 2)).astype(np.float32), rng.normal(size=(4, 2)).astype(np.float32)
    c[3, 1] = NAN
    log_prob = model.log_prob(x, c).numpy()
    assert np.isfinite(log_prob[:3]).all() and np.isnan(log_prob[3])
    with tf.GradientTape() as tape:
        loss = model.compute_loss(x=(tf.constant(x), tf.constant(c)))
    np.testing.assert_allclose(loss.numpy(), -log_prob[:3].mean(), rtol=1e-5)
    assert all(np.isfinite(g.numpy()).all() for g in tape.gradient(loss, model.trainable_weights) if g is not None)


def test_unconditional_models_keep_their_weights_and_a_none_context_shape():
    model = RealNVP((2,), num_couplings=2, hidden_units=(8,))
    assert model.get_config()["context_shape"] is None
    conditional = RealNVP((2,), num_couplings=2, hidden_units=(8,), context_shape=(2,))
    shapes = [tuple(w.shape) for w in model.weights]
    conditional_shapes = [tuple(w.shape) for w in conditional.weights]
    assert len(shapes) == len(conditional_shapes)
    widened = [(plain, wide) for plain, wide in zip(shapes, conditional_shapes) if plain != wide]
    # Only the first layer of each conditioner reads the context: 1 pass-through + 2 context inputs.
    assert widened == [((1, 8), (3, 8))] * 2, widened


@pytest.mark.slow
def test_conditional_gaussian_base_starts_standard_and_learns_the_context_shift():
    from keras_models import ConditionalGaussianBase

    keras.utils.set_random_seed(11)
    model = RealNVP(
        (2,),
        num_couplings=1,
        hidden_units=(8,),
        actnorm=False,
        context_shape=(1,),
        base_distribution=ConditionalGaussianBase(hidden_units=(16,)),
    )
    x, c = two_blobs(512, seed=12)
    standard = -np.sum(x**2, axis=1) / 2 - np.log(2 * np.pi)
    np.testing.assert_allclose(model.log_prob(x, c).numpy(), standard, rtol=1e-5, atol=1e-5)  # N(0, I) at init
    model.compile(optimizer=keras.optimizers.Adam(3e-2))
    model.fit(tf.data.Dataset.from_tensor_slices((x, c)).batch(128).repeat(), epochs=1, steps_per_epoch=100, verbose=0)
    right = -float(tf.reduce_mean(model.log_prob(x, c)))
    wrong = -float(tf.reduce_mean(model.log_prob(x, -c)))
    assert wrong > right + 10.0, (right, wrong)
    mean = model.base_layer.distribution(np.ones([1, 1], np.float32)).mean().numpy()[0]
    assert np.all(np.abs(mean) > 1.0), mean  # the base moved its mean with c (the coupling cannot shift both dims)
    cooled = model.sample(300, np.ones([1], np.float32), temperature=0.0, seed=13).numpy()
    assert np.ptp(cooled, axis=0).max() < 1e-4  # T = 0: every sample is the decoded conditional mean
    with pytest.raises(ValueError, match="use conditional_distribution"):
        model.distribution  # noqa: B018


def test_conditional_model_round_trips_through_a_keras_file(tmp_path):
    from keras_models import ConditionalGaussianBase

    model = small_model(base_distribution=ConditionalGaussianBase(hidden_units=(4,)))
    rng = np.random.default_rng(14)
    for weight in model.base_layer.trainable_weights:
        weight.assign(rng.normal(scale=0.3, size=weight.shape).astype(np.float32))
    x, c = rng.normal(size=(5, 2)).astype(np.float32), rng.normal(size=(5, 2)).astype(np.float32)
    model.save(tmp_path / "conditional.keras")
    reloaded = keras.saving.load_model(tmp_path / "conditional.keras")
    as_json = lambda config: json.loads(json.dumps(config))  # noqa: E731 (build shapes reload as lists)
    assert as_json(reloaded.get_config()) == as_json(model.get_config()) and reloaded.context_shape == (2,)
    np.testing.assert_allclose(reloaded.log_prob(x, c).numpy(), model.log_prob(x, c).numpy(), rtol=1e-6)
    np.testing.assert_allclose(reloaded.sample(5, c, seed=15).numpy(), model.sample(5, c, seed=15).numpy(), atol=1e-6)
