"""Glow preset (Kingma & Dhariwal 2018): fits on digits and a banana, ActNorm's one-time data-dependent
initialisation, temperature, latent interpolation and the architecture (the shared checklist runs in
tests/model_checklist.py)."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from model_checks import assert_fit_beats_gaussian, dataset_of
from sklearn.datasets import load_digits

from keras_models import Glow
from keras_models.layers import (
    ActNormLayer,
    AffineCouplingLayer,
    ChannelSliceLayer,
    InvertibleConv1x1Layer,
    SequentialFlow,
    SqueezeLayer,
)
from keras_models.layers.split_prior import SplitPriorLayer

DIGITS_SHAPE = (8, 8, 1)


def _image_glow(event_shape=DIGITS_SHAPE, hidden_channels=8, **kwargs):
    return Glow(event_shape, num_levels=2, num_steps=2, hidden_channels=hidden_channels, seed=0, **kwargs)


def _small_image_glow(num_steps=1):
    """Two levels (so a split with its learned prior) on a [4, 4, 2] image: cheap to trace and to compile."""
    return Glow((4, 4, 2), num_levels=2, num_steps=num_steps, hidden_channels=4, seed=0)


def _vector_glow(num_steps=4):
    return Glow((2,), num_steps=num_steps, hidden_channels=16, seed=0)


def _small_images(n, seed=0):
    """[n, 4, 4, 2] values in [0, 1] whose two channels have different means and spreads."""
    u = np.random.default_rng(seed).uniform(size=(n, 4, 4, 2))
    return (u * [1.0, 0.3] + [0.0, 0.6]).astype(np.float32)


def _digits(seed=0):
    """sklearn's 8x8 digits (0..16) on the 8-bit scale, dequantised to [0, 1]: (pixel * 255/16 + u) / 256."""
    pixels = load_digits().images.astype(np.float64)[..., np.newaxis]
    u = np.random.default_rng(seed).uniform(size=pixels.shape)
    return ((pixels * 255.0 / 16.0 + u) / 256.0).astype(np.float32)


def _banana(n=1024, seed=0):
    """x2 ~ N(0, 4^2), x1 ~ N(x2^2 / 4, 1): curved, so a Gaussian fits it badly."""
    rng = np.random.default_rng(seed)
    x2 = rng.normal(0.0, 4.0, n)
    x1 = rng.normal(x2**2 / 4.0, 1.0)
    return np.stack([x1, x2], axis=-1).astype(np.float32)


def _perturb_weights(model, scale=0.05, seed=0):
    """Move every trainable weight off its initial value, so zero-initialised convs stop being trivial."""
    rng = np.random.default_rng(seed)
    for weight in model.trainable_weights:
        weight.assign(np.asarray(weight) + scale * rng.normal(size=weight.shape).astype(np.float32))


def _layers_of(model, kind):
    return [layer for layer in model._flatten_layers(include_self=False) if isinstance(layer, kind)]


def _actnorm_outputs(layer, h, outputs):
    """Walk the flow from the data side like `encode`, collecting each ActNorm's output on the batch h."""
    if isinstance(layer, SequentialFlow):
        for step in layer.steps:
            h = _actnorm_outputs(step, h, outputs)
        return h
    if isinstance(layer, ChannelSliceLayer):
        k = layer.num_channels
        return tf.concat([_actnorm_outputs(layer.inner, h[..., :k], outputs), h[..., k:]], axis=-1)
    h = layer.bijector().inverse(h)
    if isinstance(layer, ActNormLayer):
        outputs.append(h.numpy())
    return h


def _all_actnorm_outputs(model, x):
    outputs, h = [], tf.constant(x)
    for layer in model.flow_layers:
        h = _actnorm_outputs(layer, h, outputs)
    np.testing.assert_allclose(h.numpy(), model.encode(x).numpy(), atol=1e-5)  # the walk is the real encoder
    return outputs


@pytest.fixture(scope="module")
def digits():
    return _digits()


@pytest.fixture(scope="module")
def fitted_image_glow(digits):
    """A tiny Glow fitted to the digits, shared by the read-only checks below."""
    model = _image_glow(hidden_channels=16)
    # The full-covariance Gaussian is a strong baseline on digits (-69 nats); 1e-2 makes the sharp density
    # on the near-constant border pixels oscillate, 5e-3 descends steadily and passes it by ~10 nats.
    nll, baseline = assert_fit_beats_gaussian(model, digits, steps=700, learning_rate=5e-3)
    return model, nll, baseline


@pytest.fixture(scope="module")
def fitted_vector_glow():
    x = _banana()
    model = _vector_glow()
    nll, baseline = assert_fit_beats_gaussian(model, x, steps=300, learning_rate=1e-2, batch_size=128)
    return model, x, nll, baseline


# ---------------------------------------------------------------------------------------------------------------
# Fits.
@pytest.mark.slow
def test_image_glow_fits_digits_better_than_a_gaussian(fitted_image_glow, digits):
    model, nll, baseline = fitted_image_glow
    assert nll < baseline
    bits = float(tf.reduce_mean(model.bits_per_dim(model.log_prob(digits))))
    assert 0.0 < bits < 8.0  # better than the uniform model on 8-bit data, which scores exactly 8


@pytest.mark.slow
def test_vector_glow_fits_a_banana_better_than_a_gaussian(fitted_vector_glow):
    model, _, nll, baseline = fitted_vector_glow
    assert nll < baseline
    assert model.num_bits is None and "bits_per_dim" not in [m.name for m in model.metrics]


# ---------------------------------------------------------------------------------------------------------------
# ActNorm's data-dependent initialisation.
def _assert_every_actnorm_output_is_normalised(model, x):
    outputs = _all_actnorm_outputs(model, x)
    assert len(outputs) == model.num_steps * model.num_levels
    for index, out in enumerate(outputs):
        flat = out.reshape(-1, out.shape[-1])
        np.testing.assert_allclose(flat.mean(0), 0.0, atol=1e-4, err_msg=f"ActNorm {index}: channel means")
        np.testing.assert_allclose(flat.std(0), 1.0, atol=1e-3, err_msg=f"ActNorm {index}: channel stds")


@pytest.mark.slow
def test_fit_initialises_every_actnorm_to_zero_mean_unit_variance_on_the_first_batch():
    x = _small_images(256)
    model = _small_image_glow(num_steps=2)
    model.compile(optimizer=keras.optimizers.Adam(0.0))  # learning rate 0: only the initialisation moves weights
    model.fit(dataset_of(x, batch_size=len(x)), epochs=1, steps_per_epoch=1, verbose=0)  # one batch = all of x
    _assert_every_actnorm_output_is_normalised(model, x)


def test_vector_actnorm_initialisation_normalises_every_actnorm_output():
    x = _banana(256)
    model = _vector_glow()
    model.initialize_from_data(x)  # what fit runs on its first batch
    _assert_every_actnorm_output_is_normalised(model, x)


@pytest.mark.slow
def test_actnorm_init_is_saved_and_not_repeated_after_reload(fitted_image_glow, digits, tmp_path):
    model = fitted_image_glow[0]  # initialised by fit from its first batch, then trained
    x = digits[:64]
    assert not model._layers_needing_init()
    path = str(tmp_path / "glow.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert not reloaded._layers_needing_init()  # the saved `initialized` flags: fit will not initialise again
    other = np.clip(x * 0.2 + 0.6, 0.0, 1.0)  # a batch with other statistics: would move a re-initialisation
    reloaded.initialize_from_data(other)  # what fit runs on its first batch
    np.testing.assert_allclose(reloaded.encode(x).numpy(), model.encode(x).numpy(), atol=1e-5)


@pytest.mark.slow
def test_all_zeros_batch_never_gives_nan_nor_initialises(digits):
    model = _image_glow()
    zeros = tf.zeros([4] + list(DIGITS_SHAPE))
    assert np.all(np.isfinite(model(zeros).numpy()))  # building/calling on zeros: no init, no NaN
    assert np.all(np.isfinite(model.log_prob(zeros).numpy()))
    assert len(model._layers_needing_init()) == len(_layers_of(model, ActNormLayer))
    model.initialize_from_data(digits[:128])  # the first real batch still initialises every ActNorm
    for out in _all_actnorm_outputs(model, digits[:128]):
        np.testing.assert_allclose(out.reshape(-1, out.shape[-1]).std(0), 1.0, atol=1e-3)

    blank = _image_glow()
    blank.initialize_from_data(zeros)  # a constant batch: the std floor keeps every log-scale finite
    for layer in _layers_of(blank, ActNormLayer):
        assert np.all(np.isfinite(np.asarray(layer.log_scale)))
    assert np.all(np.isfinite(blank.log_prob(zeros).numpy()))
    assert np.all(np.isfinite(blank.sample(2, seed=1).numpy()))


# ---------------------------------------------------------------------------------------------------------------
# Temperature and interpolation.
@pytest.mark.slow
def test_lower_temperature_gives_samples_with_smaller_latent_norm(fitted_image_glow):
    model = fitted_image_glow[0]
    warm = model.encode(model.sample(16, temperature=1.0, seed=7)).numpy().reshape(16, -1)
    cool = model.encode(model.sample(16, temperature=0.7, seed=7)).numpy().reshape(16, -1)
    warm_norm, cool_norm = np.linalg.norm(warm, axis=1), np.linalg.norm(cool, axis=1)
    assert np.all(cool_norm < warm_norm)
    # Same seed, same base draw: the latent of a T-sample is T times the draw (temperature acts on N(0, I)).
    np.testing.assert_allclose(cool_norm / warm_norm, 0.7, rtol=1e-3)


@pytest.mark.slow
def test_interpolation_starts_at_x1_ends_at_x2_and_is_straight_in_latent_space(fitted_image_glow, digits):
    model = fitted_image_glow[0]
    x1, x2 = digits[0], digits[5]
    path = model.interpolate(x1, x2, num_steps=5).numpy()
    assert path.shape == (5,) + DIGITS_SHAPE and np.all(np.isfinite(path))
    np.testing.assert_allclose(path[0], x1, atol=1e-4)
    np.testing.assert_allclose(path[-1], x2, atol=1e-4)
    z1, z2 = model.encode(x1[None]).numpy()[0], model.encode(x2[None]).numpy()[0]
    t = np.linspace(0.0, 1.0, 5).reshape(5, 1, 1, 1)
    np.testing.assert_allclose(model.encode(path).numpy(), (1 - t) * z1 + t * z2, atol=1e-3)
    batched = model.interpolate(digits[:3], digits[3:6], num_steps=4).numpy()
    assert batched.shape == (4, 3) + DIGITS_SHAPE
    np.testing.assert_allclose(batched[-1], digits[3:6], atol=1e-4)


def test_interpolation_arguments_are_checked(fitted_image_glow, digits):
    model = fitted_image_glow[0]
    with pytest.raises(ValueError, match="num_steps"):
        model.interpolate(digits[0], digits[1], num_steps=1)
    with pytest.raises(ValueError, match="`x1` and `x2`"):
        model.interpolate(digits[0], digits[:2], num_steps=3)


# ---------------------------------------------------------------------------------------------------------------
# Architecture and arguments.
@pytest.mark.parametrize("levels, steps", [(1, 3), (2, 2), (3, 1)])
def test_image_architecture_has_levels_steps_splits_and_keeps_the_data_shape(levels, steps):
    model = Glow((8, 8, 2), num_levels=levels, num_steps=steps, hidden_channels=4)
    assert model.latent_shape == (8, 8, 2)
    for kind in (ActNormLayer, InvertibleConv1x1Layer):
        assert len(_layers_of(model, kind)) == levels * steps
    couplings = [c for c in _layers_of(model, AffineCouplingLayer) if not isinstance(c, SplitPriorLayer)]
    assert len(couplings) == levels * steps and all(c.log_scale_bound == "sigmoid" for c in couplings)
    assert len(_layers_of(model, SplitPriorLayer)) == levels - 1
    squeezes = _layers_of(model, SqueezeLayer)
    assert sum(not s.unsqueeze for s in squeezes) == sum(s.unsqueeze for s in squeezes) == levels
    assert model.num_bits == 8


def test_split_prior_starts_as_the_identity_and_is_affine_in_the_factored_out_half():
    prior = SplitPriorLayer((2, 2, 8))
    prior.build((None, 2, 2, 8))
    y = tf.random.normal([3, 2, 2, 8])
    np.testing.assert_allclose(prior.bijector().inverse(tf.identity(y)).numpy(), y.numpy(), atol=1e-6)
    _perturb_weights(prior, scale=0.3)
    z = prior.bijector().inverse(tf.identity(y)).numpy()
    np.testing.assert_allclose(z[..., :4], y.numpy()[..., :4])  # the kept half passes through
    assert not np.allclose(z[..., 4:], y.numpy()[..., 4:])
    # z_out = (y_out - mu(h)) / sigma(h): doubling y_out's deviation from mu doubles z_out.
    mu = prior.bijector().forward(tf.concat([y[..., :4], tf.zeros_like(y[..., 4:])], -1)).numpy()[..., 4:]
    y2 = np.concatenate([y.numpy()[..., :4], mu + 2.0 * (y.numpy()[..., 4:] - mu)], -1)
    np.testing.assert_allclose(
        prior.bijector().inverse(tf.constant(y2)).numpy()[..., 4:], 2.0 * z[..., 4:], rtol=1e-4, atol=1e-5
    )


@pytest.mark.slow
def test_benchmark_configuration_builds():
    model = Glow((32, 32, 3), num_levels=3, num_steps=8, hidden_channels=128)
    assert model.latent_shape == (32, 32, 3)
    assert len(_layers_of(model, ActNormLayer)) == 24 and len(_layers_of(model, SplitPriorLayer)) == 2
    log_prob = model.log_prob(tf.random.uniform([1, 32, 32, 3]))
    assert log_prob.shape == (1,) and np.isfinite(log_prob.numpy()).all()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(event_shape=(6, 6, 1), num_levels=2), "divisible by 2\\*\\*num_levels"),
        (dict(event_shape=(4, 4)), "event_shape"),
        (dict(event_shape=(1,)), "D >= 2"),
        (dict(event_shape=(2,), num_levels=2), "num_levels"),
        (dict(event_shape=(8, 8, 1), num_steps=0), "num_steps"),
        (dict(event_shape=(8, 8, 1), hidden_channels=2.5), "hidden_channels"),
        (dict(event_shape=(8, 8, 1), log_scale_limit=0.0), "log_scale_limit"),
        (dict(event_shape=(2,), log_scale_limit="2"), "log_scale_limit"),
        (dict(event_shape=(2,), log_scale_limit=100.0), "log_scale_limit"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Glow(**kwargs)


def test_config_rebuilds_the_same_architecture():
    model = _image_glow(name="tiny_glow")
    clone = Glow.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    assert [tuple(w.shape) for w in clone.weights] == [tuple(w.shape) for w in model.weights]


@pytest.mark.parametrize(
    "make_model, data", [(_small_image_glow, _small_images(16)), (_vector_glow, _banana(16))], ids=["image", "vector"]
)
@pytest.mark.slow
def test_float64_reaches_every_weight_and_agrees_with_float32(make_model, data):
    model32 = make_model()
    model32.log_prob(data)  # builds
    _perturb_weights(model32)
    model64 = Glow.from_config({**model32.get_config(), "dtype": "float64"})
    model64.log_prob(data.astype(np.float64))
    assert all(w.dtype == "float64" for w in model64.weights if w.dtype != "int32")
    model64.set_weights(model32.get_weights())
    log_prob64 = model64.log_prob(data.astype(np.float64))
    assert log_prob64.dtype == tf.float64
    np.testing.assert_allclose(log_prob64.numpy(), model32.log_prob(data).numpy(), rtol=1e-4, atol=1e-4)
    samples = model64.sample(4, seed=1)
    assert samples.dtype == tf.float64 and np.all(np.isfinite(samples.numpy()))
    np.testing.assert_allclose(model64.decode(model64.encode(data.astype(np.float64))).numpy(), data, atol=1e-6)


def _contract_every_coupling(model, raw_log_scale):
    """Make every coupling's conditioner output a constant raw log-scale (and shift), whatever its input."""
    for coupling in _layers_of(model, AffineCouplingLayer):
        if isinstance(coupling, SplitPriorLayer):
            continue
        last_conv = coupling.conditioner.network.layers[-1]
        last_conv.kernel.assign(np.zeros(last_conv.kernel.shape, np.float32))
        last_conv.bias.assign(np.full(last_conv.bias.shape, raw_log_scale, np.float32))


@pytest.mark.parametrize("log_scale_limit", [0.5, 2.0])
@pytest.mark.slow
def test_coupling_scale_floor_keeps_samples_finite_however_the_couplings_contract(log_scale_limit):
    """Glow's sampling divides by each coupling's density-direction scale g; the floor g >= exp(-c) bounds that,
    where Glow's bare sigmoid(r + 2) reaches 0 (float32) for very negative raw log-scales and samples overflow."""
    floored = Glow((4, 4, 2), num_levels=2, num_steps=2, hidden_channels=4, seed=0, log_scale_limit=log_scale_limit)
    bare = Glow.from_config({**floored.get_config(), "log_scale_limit": float("inf")})
    for model in (floored, bare):
        model.log_prob(_small_images(4))  # builds
        _contract_every_coupling(model, -1e3)
    assert np.all(np.isfinite(floored.sample(16, seed=2).numpy()))
    assert not np.all(np.isfinite(bare.sample(16, seed=2).numpy()))
    log_prob = floored.log_prob(_small_images(8)).numpy()
    assert np.all(np.isfinite(log_prob))
