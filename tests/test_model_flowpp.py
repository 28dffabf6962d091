"""FlowPlusPlus preset: fits on two moons and tiny digits, and variational dequantization (the shared checklist runs
in tests/model_checklist.py).

Dequantization checks: q(u | x) is a normalised density on (0, 1)^D whose two directions agree, its noise lies in
(0, 1), the trained ELBO is a lower bound of the discrete log-likelihood (estimated independently with uniform
noise), every input encoding of the same pixels gives the same bound, and the uniform ablation trains.
"""

import model_checks
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from sklearn.datasets import load_digits, make_moons

from keras_models import FlowPlusPlus
from keras_models.flows.dequantization import VariationalDequantizer, quantize

tfd = tfp.distributions

MOONS = make_moons(512, noise=0.05, random_state=0)[0].astype(np.float32)


def digit_pixels():
    """scikit-learn's 8x8 digits as 8-bit pixels, 2x2-averaged to 4x4 to keep the module fast: [N, 4, 4, 1]."""
    pixels = np.round(load_digits().images * (255.0 / 16.0))
    return np.round(pixels.reshape(-1, 4, 2, 4, 2).mean(axis=(2, 4)))[..., np.newaxis]


PIXELS = digit_pixels()
DISCRETE = ((PIXELS + 0.5) / 256.0).astype(np.float32)  # make_dataset(dequantize=None)
UNIFORM = ((PIXELS + np.random.default_rng(0).uniform(size=PIXELS.shape)) / 256.0).astype(np.float32)


def vector_model(**kwargs):
    return FlowPlusPlus((2,), num_components=4, num_couplings=2, hidden_channels=32, num_blocks=1, **kwargs)


def image_model(**kwargs):
    # One coupling per kind: checkerboard at full resolution, squeeze, channel mask on [2, 2, 4], unsqueeze.
    options = dict(
        num_components=2,
        num_couplings=(1, 1, 0),
        hidden_channels=8,
        num_blocks=1,
        use_attention=True,
        num_heads=2,
        dequantizer_couplings=2,
        dequantizer_channels=8,
        seed=0,
    )
    options.update(kwargs)
    return FlowPlusPlus((4, 4, 1), **options)


def perturb(model, scale=0.2, seed=1):
    """Random weights everywhere, so no coupling is the identity (a fresh model's output layers are zero)."""
    rng = np.random.default_rng(seed)
    for weight in model.trainable_weights:
        weight.assign(rng.normal(scale=scale, size=weight.shape).astype(weight.dtype))
    return model


@pytest.fixture(scope="module")
def trained_image_model():
    """The variational model after 30 fit steps on the discrete digits (the dequantizer included)."""
    model = image_model()
    dequantizer_weights = {id(w) for w in model.dequantizer.trainable_weights}
    assert dequantizer_weights and dequantizer_weights <= {id(w) for w in model.trainable_weights}
    model_checks.assert_every_weight_trains(model, DISCRETE, steps=30, learning_rate=5e-3, batch_size=64)
    return model


# ------------------------------------------------------------------------------------------------------------
# Fits.
@pytest.mark.slow
def test_fit_beats_a_gaussian_on_two_moons():
    model_checks.assert_fit_beats_gaussian(vector_model(), MOONS, steps=150, learning_rate=1e-2, batch_size=128)


@pytest.mark.slow
def test_variational_elbo_beats_a_gaussian_on_digits_and_every_weight_trains(trained_image_model):
    """The trained ELBO (a bound on the discrete data) beats a Gaussian's uniform-dequantization bound."""
    elbo = np.mean([trained_image_model.dequantization_elbo(DISCRETE, seed=s).numpy().mean() for s in range(3)])
    baseline = model_checks.gaussian_baseline_nll(UNIFORM)
    assert np.isfinite(elbo)
    assert -elbo < baseline, f"-ELBO {-elbo:.3f} is not below the Gaussian baseline {baseline:.3f}"


# ------------------------------------------------------------------------------------------------------------
# Variational dequantization.
def test_dequantizer_is_a_normalised_density_on_the_unit_cube():
    """On a 2-pixel image, q(u | x) integrates to 1 over (0, 1)^2 (midpoint grid) and both directions agree."""
    dequantizer = VariationalDequantizer(num_couplings=2, hidden_channels=4, seed=0)
    dequantizer.build((None, 1, 2, 1))
    perturb(dequantizer, scale=0.5, seed=3)
    x = tf.constant([[[[10.0], [200.0]]]]) / 256.0
    u, log_q = dequantizer.sample_and_log_prob(tf.tile(x, [256, 1, 1, 1]), seed=5)
    assert np.all((u.numpy() > 0.0) & (u.numpy() < 1.0))
    np.testing.assert_allclose(
        dequantizer.log_prob(tf.identity(u), tf.tile(x, [256, 1, 1, 1])).numpy(), log_q.numpy(), atol=2e-4, rtol=1e-4
    )
    n = 400
    grid = (np.arange(n) + 0.5) / n
    u1, u2 = np.meshgrid(grid, grid, indexing="ij")
    points = np.stack([u1.ravel(), u2.ravel()], axis=-1).reshape(-1, 1, 2, 1).astype(np.float32)
    density = np.exp(dequantizer.log_prob(points, tf.tile(x, [len(points), 1, 1, 1])).numpy())
    np.testing.assert_allclose(density.mean(), 1.0, atol=1e-2)


def test_elbo_lower_bounds_the_discrete_log_likelihood(trained_image_model):
    """E_q[ELBO] <= log P(x) + D b log 2, with log P estimated without q: log mean_u p(x + u/256), u ~ U(0, 1)^D."""
    model, x = trained_image_model, DISCRETE[:4]
    draws = 256
    tiled = np.repeat(x, draws, axis=0)
    elbo = model.dequantization_elbo(tiled, seed=7).numpy().reshape(len(x), draws)
    u = np.random.default_rng(1).uniform(size=(len(x) * 4 * draws,) + x.shape[1:]).astype(np.float32)
    log_p = model.log_prob(quantize(np.repeat(x, 4 * draws, axis=0), 256) + u / 256.0).numpy()
    log_likelihood = tf.reduce_logsumexp(log_p.reshape(len(x), -1), axis=1).numpy() - np.log(4 * draws)
    assert np.all(np.isfinite(elbo)) and np.all(np.isfinite(log_likelihood))
    assert np.all(elbo.mean(axis=1) <= log_likelihood + 0.05), (elbo.mean(axis=1), log_likelihood)
    bits = model.bits_per_dim(elbo).numpy()
    assert np.all(np.isfinite(bits)) and np.all(bits >= 0.0)
    assert np.all(bits.mean(axis=1) >= model.bits_per_dim(log_likelihood).numpy() - 1e-3)


def test_elbo_is_log_p_of_the_dequantized_point_minus_log_q(trained_image_model):
    """ELBO sample = log p(x + u / 256) - log q(u | x) for the same draw u (the 1/256 enters once, through x)."""
    model, x = trained_image_model, quantize(tf.constant(DISCRETE[:8]), 256)
    u, log_q = model.dequantizer.sample_and_log_prob(x, seed=9)
    expected = model.log_prob(x + u / 256.0) - log_q
    np.testing.assert_allclose(
        model.dequantization_elbo(DISCRETE[:8], seed=9).numpy(), expected.numpy(), rtol=1e-5, atol=1e-4
    )
    assert np.all(log_q.numpy() != 0.0)


def test_dequantizer_noise_lies_in_the_unit_interval_and_depends_on_x(trained_image_model):
    x = quantize(tf.constant(DISCRETE[:16]), 256)
    u, log_q = trained_image_model.dequantizer.sample_and_log_prob(x, seed=4)
    assert np.all((u.numpy() > 0.0) & (u.numpy() < 1.0))
    assert np.all(np.isfinite(log_q.numpy()))
    other, _ = trained_image_model.dequantizer.sample_and_log_prob(tf.reverse(x, axis=[0]), seed=4)
    assert not np.allclose(u.numpy(), tf.reverse(other, axis=[0]).numpy()), "q(u | x) ignores x"


@pytest.mark.slow
def test_every_encoding_of_the_same_pixels_gives_the_same_bound():
    """pixel / 256, (pixel + 1/2) / 256 (make_dataset), already-noisy and pixel / 255 inputs: one discrete x."""
    model = perturb(image_model())
    reference = model.dequantization_elbo(DISCRETE[:8], seed=11).numpy()
    for encoded in (PIXELS[:8] / 256.0, (PIXELS[:8] + 0.999) / 256.0, PIXELS[:8] / 255.0):
        np.testing.assert_allclose(
            model.dequantization_elbo(encoded.astype(np.float32), seed=11).numpy(), reference, rtol=1e-5, atol=1e-4
        )


@pytest.mark.slow
def test_uniform_dequantization_ablation_trains():
    model = image_model(dequantization="uniform", use_attention=False)
    assert model.dequantizer is None and model.num_bits == 8
    np.testing.assert_allclose(model(UNIFORM[:8]).numpy(), model.log_prob(UNIFORM[:8]).numpy())
    model_checks.assert_fit_beats_gaussian(model, UNIFORM, steps=30, learning_rate=5e-3)
    elbo = model.dequantization_elbo(DISCRETE[:8], seed=0).numpy()  # log q = 0: the uniform bound
    assert np.all(np.isfinite(elbo))


# ------------------------------------------------------------------------------------------------------------
# Construction.
def test_a_fresh_vector_model_is_a_rotated_standard_normal():
    """ActNorm and couplings start as the identity and the 1x1 convolution as a rotation: log p = log N(x)."""
    x = MOONS[:16]
    expected = tfd.Normal(0.0, 1.0).log_prob(x).numpy().sum(-1)
    np.testing.assert_allclose(vector_model(seed=0).log_prob(x).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_fresh_image_model_is_finite():
    model = image_model()
    assert np.all(np.isfinite(model.log_prob(UNIFORM[:8]).numpy()))
    assert np.all(np.isfinite(model(DISCRETE[:8]).numpy()))
    assert model.latent_shape == (4, 4, 1)


def test_float64_reaches_every_weight_and_agrees_with_float32():
    model32 = perturb(vector_model(seed=0))
    model64 = vector_model(seed=0, dtype="float64")
    assert all(w.dtype == "float64" for w in model64.weights if w.dtype != "int32")
    model64.set_weights(model32.get_weights())
    np.testing.assert_allclose(
        model64.log_prob(MOONS[:16].astype(np.float64)).numpy(),
        model32.log_prob(MOONS[:16]).numpy(),
        rtol=1e-4,
        atol=1e-4,
    )


def test_continuous_images_without_dequantization():
    model = image_model(dequantization=None, num_couplings=1)
    assert model.num_bits is None and model.dequantizer is None
    np.testing.assert_allclose(model(UNIFORM[:4]).numpy(), model.log_prob(UNIFORM[:4]).numpy())
    with pytest.raises(ValueError, match="dequantization"):
        model.dequantization_elbo(DISCRETE[:4])


@pytest.mark.parametrize(
    "event_shape, kwargs, match",
    [
        ((2,), dict(dequantization="variational"), "vector events"),
        ((2,), dict(dequantization="uniform"), "vector events"),
        ((2,), dict(num_bits=8), "num_bits"),
        ((4, 4, 1), dict(dequantization="logistic"), "dequantization"),
        ((4, 4, 1), dict(num_couplings=(1, 2)), "num_couplings"),
        ((4, 4, 1), dict(num_couplings=(0, 0, 0)), "num_couplings"),
        ((5, 4, 1), dict(num_couplings=(1, 1, 0)), "even height"),
        ((4, 4, 1), dict(use_attention=True, hidden_channels=6, num_heads=4), "num_heads"),
        ((4, 4, 1), dict(num_components=0), "num_components"),
        ((4, 4), dict(), "event_shape"),
        ((1,), dict(), "D >= 2"),
    ],
)
def test_bad_arguments_raise_clear_errors(event_shape, kwargs, match):
    with pytest.raises(ValueError, match=match):
        FlowPlusPlus(event_shape, **kwargs)


def test_quantize_maps_every_encoding_to_pixel_over_256():
    pixels = np.arange(256, dtype=np.float32)
    for encoded in (pixels / 256, (pixels + 0.5) / 256, (pixels + 0.999) / 256, pixels / 255):
        np.testing.assert_array_equal(quantize(tf.constant(encoded.astype(np.float32)), 256).numpy(), pixels / 256)
