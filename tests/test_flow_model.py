"""FlowModel itself: loss-free compile, metrics, bits/dim accounting, argument checks, data-dependent init."""

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from model_checks import dataset_of

from keras_models import FlowModel
from keras_models.layers import ActNormLayer, BijectorLayer

tfb = tfp.bijectors


class SigmoidTestLayer(BijectorLayer):
    """No weights: sigmoid pushes the standard logistic to Uniform(0, 1) exactly."""

    def build(self, input_shape):
        self.built = True

    def bijector(self):
        return tfb.Sigmoid()


@keras.saving.register_keras_serializable(package="tfp_flows_tests")
class UniformTestModel(FlowModel):
    def __init__(self, event_shape=(4, 4, 1), **kwargs):
        super().__init__(event_shape, base_distribution="logistic", num_bits=8, **kwargs)
        self._set_flow_layers([SigmoidTestLayer()])


@keras.saving.register_keras_serializable(package="tfp_flows_tests")
class ActNormTestModel(FlowModel):
    def __init__(self, event_shape=(3,), **kwargs):
        super().__init__(event_shape, **kwargs)
        self._set_flow_layers([ActNormLayer()])


def _pixels(shape, seed=0):
    rng = np.random.default_rng(seed)
    return ((rng.integers(0, 256, size=shape) + rng.uniform(size=shape)) / 256.0).astype(np.float32)


def test_uniform_model_scores_exactly_8_bits_per_dim():
    model = UniformTestModel()
    x = _pixels([32, 4, 4, 1])
    np.testing.assert_allclose(model.log_prob(x).numpy(), 0.0, atol=1e-5)
    np.testing.assert_allclose(model.bits_per_dim(model.log_prob(x)).numpy(), 8.0, atol=1e-5)


def test_fit_reports_nll_and_bits_per_dim_without_a_loss_argument():
    model = UniformTestModel()
    model.compile(optimizer="adam")
    history = model.fit(dataset_of(_pixels([32, 4, 4, 1]), batch_size=8), epochs=1, steps_per_epoch=2, verbose=0)
    assert set(history.history) >= {"loss", "nll", "bits_per_dim"}
    np.testing.assert_allclose(history.history["bits_per_dim"][-1], 8.0, atol=1e-4)
    np.testing.assert_allclose(history.history["nll"][-1], 0.0, atol=1e-3)


def test_compile_refuses_a_loss():
    with pytest.raises(ValueError, match="loss"):
        UniformTestModel().compile(optimizer="adam", loss="mse")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(event_shape=()), "event_shape"),
        (dict(event_shape=(0, 2)), "event_shape"),
        (dict(event_shape=(2,), base_distribution="cauchy"), "base_distribution"),
        (dict(event_shape=(2,), num_bits=0), "num_bits"),
    ],
)
def test_constructor_arguments_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        FlowModel(**kwargs)


def test_wrong_event_shape_and_dtype_are_named():
    model = ActNormTestModel()
    with pytest.raises(ValueError, match=r"`x` must have shape \[batch, 3\]"):
        model.log_prob(tf.zeros([2, 4]))
    with pytest.raises(TypeError, match="`x` must be floating point"):
        model.log_prob(tf.zeros([2, 3], tf.int32))
    with pytest.raises(ValueError, match="num_samples"):
        model.sample(0)
    with pytest.raises(ValueError, match="temperature"):
        model.sample(2, temperature=-1.0)


def test_actnorm_initialises_once_from_the_first_batch_and_survives_reload(tmp_path):
    rng = np.random.default_rng(1)
    x = (rng.normal(size=[64, 3]) * [1.0, 5.0, 0.2] + [3.0, -2.0, 0.5]).astype(np.float32)
    model = ActNormTestModel()
    model.compile(optimizer=keras.optimizers.Adam(0.0))  # lr 0: only the init can change the weights
    model.fit(dataset_of(x, batch_size=64), epochs=1, steps_per_epoch=1, verbose=0)
    z = model.encode(x).numpy()
    np.testing.assert_allclose(z.mean(0), 0.0, atol=1e-4)
    np.testing.assert_allclose(z.std(0), 1.0, atol=1e-3)
    path = str(tmp_path / "actnorm.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    reloaded.compile(optimizer=keras.optimizers.Adam(0.0))
    reloaded.fit(dataset_of(x[:16] * 10.0, batch_size=16), epochs=1, steps_per_epoch=1, verbose=0)
    np.testing.assert_allclose(reloaded.encode(x).numpy(), z, atol=1e-5)  # no second initialisation


def test_actnorm_initialisation_on_a_constant_batch_is_finite():
    model = ActNormTestModel()
    model.initialize_from_data(tf.zeros([8, 3]))
    assert np.all(np.isfinite(model.log_prob(tf.zeros([2, 3])).numpy()))


def test_sample_with_a_seed_is_reproducible_and_temperature_scales_the_base():
    model = ActNormTestModel()
    a, b = model.sample(5, seed=11), model.sample(5, seed=11)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    cold = model.sample(5, temperature=0.5, seed=11)
    np.testing.assert_allclose(cold.numpy(), 0.5 * a.numpy(), rtol=1e-6)


@pytest.mark.parametrize("method", ["sample", "sample_and_log_prob"])
def test_temperature_and_seed_are_keyword_only_and_a_number_is_never_a_context(method):
    """One call, one meaning: c is the only positional argument after n, and a number there is refused."""
    model = ActNormTestModel()
    draw = getattr(model, method)
    with pytest.raises(TypeError, match=r"takes from 2 to 3 positional arguments but 4 were given"):
        draw(3, None, 0.5)
    for number in (0.5, 2, np.float32(0.5), tf.constant(0.5)):
        with pytest.raises(TypeError, match=r"`c` is the context of a conditional model.*keyword-only"):
            draw(3, number)
    by_keyword = draw(3, temperature=0.5, seed=4)
    again = draw(3, None, temperature=0.5, seed=4)
    np.testing.assert_array_equal(np.asarray(tf.nest.flatten(by_keyword)[0]), np.asarray(tf.nest.flatten(again)[0]))


def test_sample_at_temperature_one_skips_the_scaling_and_draws_the_same():
    model = ActNormTestModel()
    model.initialize_from_data(tf.constant(np.random.default_rng(1).normal(size=(8, 3)), tf.float32))

    def multiplies(temperature):
        graph = tf.function(lambda: model.sample(4, temperature=temperature, seed=2)).get_concrete_function().graph
        return sum(op.type == "Mul" for op in graph.get_operations())

    assert multiplies(1.0) == multiplies(np.float32(1)) == multiplies(0.5) - 1  # a Python 1 skips the product
    assert multiplies(tf.constant(1.0)) == multiplies(0.5)  # a tensor temperature is always applied
    reference = model.sample(4, temperature=tf.constant(1.0), seed=2).numpy()
    for temperature in (1.0, 1, np.float32(1.0)):
        np.testing.assert_array_equal(model.sample(4, temperature=temperature, seed=2).numpy(), reference)


def test_distribution_is_a_plain_tfp_transformed_distribution():
    model = ActNormTestModel()
    dist = model.distribution
    # TFP returns its non-composite-tensor variant when the bijector is not a CompositeTensor.
    assert isinstance(dist, tfp.distributions.Distribution)
    assert "TransformedDistribution" in type(dist).__name__
    x = tf.random.normal([4, 3])
    np.testing.assert_allclose(dist.log_prob(x).numpy(), model.log_prob(x).numpy(), rtol=1e-6)
    np.testing.assert_allclose(
        dist.log_prob(x).numpy(), tfp.distributions.Normal(0.0, 1.0).log_prob(x).numpy().sum(-1), rtol=1e-5
    )
