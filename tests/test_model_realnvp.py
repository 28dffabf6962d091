"""RealNVP preset: fits on two moons and 8x8 digits, bounded log-scales, ActNorm initialisation, the multi-scale
structure, the exact density at initialisation, float64 (the shared checklist runs in tests/model_checklist.py)."""

import math

import keras
import model_checks
import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_digits, make_moons

from keras_models import NSF, RealNVP
from keras_models.flows.realnvp import default_num_scales
from keras_models.layers import ActNormLayer, AffineCouplingLayer, ChannelSliceLayer, SequentialFlow


def two_moons(n=1000, seed=0):
    x, _ = make_moons(n, noise=0.05, random_state=seed)
    return x.astype(np.float32)


def digits(seed=0):
    """scikit-learn's 8x8 digits (levels 0..16) as 8-bit pixels dequantized to [0, 1]: (pixel + u) / 256."""
    images = load_digits().images[..., np.newaxis] * (255.0 / 16.0)
    u = np.random.default_rng(seed).uniform(size=images.shape)
    return ((np.round(images) + u) / 256.0).astype(np.float32)


MOONS = two_moons()
DIGITS = digits()


def small_vector_model(**kwargs):
    return RealNVP(event_shape=(2,), num_couplings=4, hidden_units=(32, 32), **kwargs)


def tiny_image_model(event_shape=(8, 8, 1), **kwargs):
    return RealNVP(event_shape=event_shape, width=8, num_blocks=1, **kwargs)


def couplings_of(model):
    """The affine coupling layers, data side first, looking inside factor-outs and sub-sequences."""

    def walk(layers):
        for layer in layers:
            if isinstance(layer, AffineCouplingLayer):
                yield layer
            elif isinstance(layer, ChannelSliceLayer):
                yield from walk([layer.inner])
            elif isinstance(layer, SequentialFlow):
                yield from walk(layer.steps)

    return list(walk(model.flow_layers))


# ------------------------------------------------------------------------------------------------------------
# Vector data.
@pytest.mark.slow
def test_fit_beats_a_gaussian_on_two_moons():
    model_checks.assert_fit_beats_gaussian(small_vector_model(), MOONS, steps=300, learning_rate=3e-3)


def test_log_scales_stay_bounded_whatever_the_weights():
    """Each coupling's log-det is a sum of tanh-bounded log-scales: |log det| <= c per transformed entry."""
    model = model_checks.perturb(small_vector_model(), scale=5.0)
    limit = model.log_scale_limit
    x = tf.constant(MOONS[:128])
    largest = 0.0
    for coupling in couplings_of(model):  # D = 2: each coupling transforms one entry
        log_det = coupling.bijector().inverse_log_det_jacobian(x, event_ndims=1).numpy()
        assert np.all(np.isfinite(log_det)) and np.all(np.abs(log_det) <= limit)
        largest = max(largest, float(np.abs(log_det).max()))
    assert largest > 0.75 * limit  # the weights are large enough to push against the bound
    assert np.all(np.isfinite(model.log_prob(x).numpy()))


def test_actnorm_standardises_its_input_from_the_first_batch():
    model = model_checks.perturb(small_vector_model(actnorm=True))
    model.initialize_from_data(MOONS[:512])
    h = tf.constant(MOONS[:512])
    for layer in model.flow_layers:
        h = layer.bijector().inverse(h)
        if isinstance(layer, ActNormLayer):
            np.testing.assert_allclose(h.numpy().mean(0), 0.0, atol=1e-4)
            np.testing.assert_allclose(h.numpy().std(0), 1.0, atol=1e-3)
    assert not any(layer.needs_initialization() for layer in model.flow_layers if isinstance(layer, ActNormLayer))


def test_float64_option_reaches_every_weight_and_agrees_with_float32():
    model32 = model_checks.perturb(small_vector_model())
    model64 = small_vector_model(dtype="float64")
    assert all(w.dtype == "float64" for w in model64.weights)
    model64.set_weights([w.astype(np.float64) for w in model32.get_weights()])
    log_prob64 = model64.log_prob(MOONS[:32].astype(np.float64))
    assert log_prob64.dtype == tf.float64
    np.testing.assert_allclose(log_prob64.numpy(), model32.log_prob(MOONS[:32]).numpy(), rtol=1e-5, atol=1e-5)
    assert model64.sample(3, seed=0).dtype == tf.float64  # (training in float64: see test_model_nice.py)


# ------------------------------------------------------------------------------------------------------------
# Image data.
@pytest.mark.parametrize(
    "size, scales", [((8, 8), 2), ((32, 32), 4), ((28, 28), 3), ((4, 4), 1), ((6, 6), 1), ((16, 8), 2)]
)
def test_default_number_of_scales_follows_the_image_size(size, scales):
    assert default_num_scales(*size) == scales


def test_image_model_has_the_multi_scale_structure_and_keeps_the_data_shape():
    model = tiny_image_model()
    assert model.num_scales == 2 and model.latent_shape == (8, 8, 1)
    # Scale 1: 3 checkerboard + 3 channel couplings; scale 2 (inside the factor-out): 4 checkerboard couplings.
    masks_seen = [tuple(c.mask.shape) for c in couplings_of(model)]
    assert masks_seen == [(8, 8, 1)] * 3 + [(4, 4, 4)] * 3 + [(4, 4, 2)] * 4
    assert model.encode(DIGITS[:3]).shape == (3, 8, 8, 1)


def test_image_model_at_initialisation_is_the_logit_normal_density():
    """Zero-initialised conditioners make every coupling the identity; squeezes and slices are permutations.

    So log p(x) = sum_i [log N(logit(p_i)) + log(1 - 2 alpha) - log p_i - log(1 - p_i)], p = alpha + (1 - 2 alpha) x.
    """
    alpha = 0.05
    model = tiny_image_model(logit_alpha=alpha)
    x = DIGITS[:16].astype(np.float64)
    p = alpha + (1 - 2 * alpha) * x
    z = np.log(p) - np.log1p(-p)
    expected = (
        (-0.5 * z**2 - 0.5 * math.log(2 * math.pi) + math.log(1 - 2 * alpha) - np.log(p) - np.log1p(-p))
        .reshape(16, -1)
        .sum(-1)
    )
    np.testing.assert_allclose(model.log_prob(DIGITS[:16]).numpy(), expected, rtol=1e-5)


@pytest.mark.slow
def test_image_fit_trains_every_weight_and_beats_the_uniform_density_in_bits_per_dim():
    """A uniform density on [0, 1]^D scores exactly 8 bits/dim; a few dozen steps on digits must do better."""
    model = tiny_image_model()
    x = DIGITS[:512]
    model_checks.assert_every_weight_trains(model, x, steps=3, learning_rate=3e-3)  # compiles with Adam
    history = model.fit(model_checks.dataset_of(x, 16), epochs=2, steps_per_epoch=25, verbose=0).history
    bits, nll = np.array(history["bits_per_dim"]), np.array(history["nll"])
    assert np.all(np.isfinite(bits))
    np.testing.assert_allclose(bits, nll / (64 * math.log(2.0)) + 8.0, rtol=1e-4)  # the 8-bit scale, every Jacobian
    assert bits[-1] < 8.0, bits
    held_in_bits = float(model.bits_per_dim(model.log_prob(x)).numpy().mean())
    assert held_in_bits < 8.0, held_in_bits


# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(event_shape=(4, 4)), "event_shape"),
        (dict(event_shape=(1,)), "D >= 2"),
        (dict(event_shape=(2,), num_couplings=0), "num_couplings"),
        (dict(event_shape=(2,), hidden_units=[]), "hidden_units"),
        (dict(event_shape=(6, 6, 1), num_scales=3), "num_scales"),
        (dict(event_shape=(2, 2, 1), num_scales=2), "1 x 1"),
        (dict(event_shape=(8, 8, 1), width=0), "width"),
        (dict(event_shape=(8, 8, 1), num_scales=0), "num_scales"),
        (dict(event_shape=(8, 8, 1), logit_alpha=0.5), "logit_alpha"),
        (dict(event_shape=(2,), dropout=1.0), r"`dropout` must be a number in \[0, 1\); received 1.0"),
        (dict(event_shape=(2,), dropout=-0.1), "`dropout`"),
        (dict(event_shape=(8, 8, 1), dropout=0.1), "`dropout` is for the MLP conditioners of vectors"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RealNVP(**kwargs)


@pytest.mark.parametrize("model_class", [RealNVP, NSF])
def test_dropout_is_active_while_training_only_and_kept_in_the_config(model_class):
    """The conditioners' Dropout changes the density in training mode (so `fit` regularises) and never in
    `log_prob`, which must stay an exact, deterministic density; reloads keep the rate."""
    model = model_class(event_shape=(4,), hidden_units=(16,), dropout=0.5)
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    model.compile(optimizer="adam")
    model.fit(x, epochs=1, batch_size=16, verbose=0)
    np.testing.assert_array_equal(model.log_prob(x).numpy(), model.log_prob(x).numpy())
    with_dropout = [model(x, training=True).numpy() for _ in range(2)]
    assert np.abs(with_dropout[0] - with_dropout[1]).max() > 1e-3
    assert model_class.from_config(model.get_config()).dropout == 0.5
    plain = model_class(event_shape=(4,), hidden_units=(16,), dropout=0.0)  # trained, so its conditioners are
    plain.compile(optimizer="adam")  # not at their zero start: without dropout, training mode is deterministic too
    plain.fit(x, epochs=1, batch_size=16, verbose=0)
    np.testing.assert_array_equal(plain(x, training=True).numpy(), plain(x, training=True).numpy())


@pytest.mark.slow
def test_jit_compile_trains_with_a_ragged_last_batch():
    # Regression: the conditioner padded its output with zeros whose shape came from tf.shape, which XLA
    # rejects ("Fill must be a compile-time constant") when the batch size is not static.
    x = np.random.default_rng(3).normal(size=[50, 4]).astype(np.float32)
    model = RealNVP(event_shape=(4,), num_couplings=2, hidden_units=(8,), actnorm=True)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=True)
    history = model.fit(tf.data.Dataset.from_tensor_slices(x).batch(16), epochs=1, verbose=0)  # 16, 16, 16, 2
    assert np.isfinite(history.history["loss"][-1])
