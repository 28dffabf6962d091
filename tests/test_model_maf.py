"""MAF / IAF: the fit on two moons, agreement with TFP's own MADE, and the IAF = MAF^-1 relation (the shared
checklist runs in tests/model_checklist.py)."""

import keras
import model_checks as checks
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from sklearn.datasets import make_moons

from keras_models.flows.maf import IAF, MAF
from keras_models.layers.networks.made import MADE

tfb = tfp.bijectors
tfd = tfp.distributions

SMALL = dict(num_layers=3, hidden_units=(16, 16))
TINY = dict(num_layers=2, hidden_units=(8,))  # for IAF under XLA, whose density loop compiles slowly


def moons(num_points=512, seed=0):
    return make_moons(num_points, noise=0.05, random_state=seed)[0].astype(np.float32)


def randomize(model, seed=0, scale=0.3):
    """Random values in every weight (the last MADE layers start at zero, which would make checks trivial)."""
    rng = np.random.default_rng(seed)
    for weight in model.trainable_weights:
        weight.assign(scale * rng.normal(size=weight.shape).astype(np.float32))


@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(0)
    x = moons()
    model = MAF(event_shape=(2,), **SMALL)
    nll, baseline = checks.assert_fit_beats_gaussian(model, x, steps=150, learning_rate=1e-2, margin=0.2)
    return model, x, nll, baseline


@pytest.mark.slow
def test_fit_beats_the_gaussian_baseline_on_two_moons(trained):
    _, _, nll, baseline = trained
    assert nll < baseline - 0.2


def made_jacobians(made, x):
    """[batch, out d, in i] Jacobians of MADE's shift and raw log-scale outputs at the points `x`."""
    x = tf.constant(np.asarray(x, np.float32))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        outputs = made(x)
    return [tape.batch_jacobian(output, x).numpy() for output in outputs]


def test_made_outputs_depend_only_on_earlier_inputs():
    """The autoregressive property from the Jacobian itself: d out_d / d x_i = 0 for every i >= d."""
    made = MADE(event_size=5, hidden_units=(7, 9))
    made.build((None, 5))
    rng = np.random.default_rng(5)
    for weight in made.weights:
        weight.assign(rng.normal(size=weight.shape).astype(np.float32))
    for jacobian in made_jacobians(made, rng.normal(size=[64, 5])):
        np.testing.assert_array_equal(np.triu(jacobian, k=0), 0.0)
        assert np.all(np.abs(np.tril(jacobian, k=-1)).sum(axis=0)[np.tril_indices(5, -1)] > 0)  # and really uses them


def _tfp_made_like(made):
    """TFP's own `tfb.AutoregressiveNetwork` (tf_keras) carrying a copy of `made`'s weights."""
    network = tfb.AutoregressiveNetwork(
        params=2,
        event_shape=[made.event_size],
        hidden_units=list(made.hidden_units),
        activation="relu",
        input_order="left-to-right",
        hidden_degrees="equal",
    )
    network.build((None, made.event_size))
    # TFP masks kernels only through their initializer and constraint: hand it the masked (effective) kernels.
    network.set_weights(
        [
            w
            for kernel, bias, mask in zip(made.kernels, made.biases, made.masks)
            for w in (kernel.numpy() * mask, bias.numpy())
        ]
    )
    limit = made.log_scale_limit

    def shift_and_log_scale(x):
        shift, raw = tf.unstack(network(x), num=2, axis=-1)
        return shift, limit * tf.math.tanh(raw / limit)

    return shift_and_log_scale


def test_maf_equals_a_hand_composed_tfp_chain_with_tfp_made():
    """Same weights in TFP's AutoregressiveNetwork + tfb.MaskedAutoregressiveFlow + tfb.Permute, and each ActNorm
    as tfb.Shift after tfb.Scale (x = z exp(log_scale) + loc): same log_prob."""
    model = MAF(event_shape=(4,), num_layers=3, hidden_units=(8, 8))
    randomize(model, seed=6)
    layers = []  # data side first, like model.flow_layers
    for layer in model.flow_layers:
        if hasattr(layer, "made"):
            layers.append(tfb.MaskedAutoregressiveFlow(shift_and_log_scale_fn=_tfp_made_like(layer.made)))
        elif hasattr(layer, "log_scale"):
            layers.append(tfb.Chain([tfb.Shift(layer.loc.numpy()), tfb.Scale(log_scale=layer.log_scale.numpy())]))
        else:
            layers.append(tfb.Permute(permutation=np.arange(4)[::-1].tolist()))
    reference = tfd.TransformedDistribution(tfd.Sample(tfd.Normal(0.0, 1.0), [4]), tfb.Chain(layers))
    x = np.random.default_rng(7).normal(size=[16, 4]).astype(np.float32)
    np.testing.assert_allclose(model.log_prob(x).numpy(), reference.log_prob(x).numpy(), rtol=1e-5, atol=1e-5)
    assert sum(isinstance(b, tfb.Permute) for b in layers) == 2
    assert sum(isinstance(b, tfb.Chain) for b in layers) == 3  # MAF's default: an ActNorm before every step


def test_iaf_is_the_inverse_of_a_maf_with_its_steps_in_reverse_order():
    """IAF f_K^-1 o P o ... o f_1^-1 is the inverse of the MAF f_1 o P o ... o f_K (P = reversal, P^-1 = P).

    So with the steps' weights copied in reverse order, log q_IAF(x) = log N(g(x)) + log|det dg/dx| with g the
    MAF's forward (sampling) map.
    """
    maf = MAF(event_shape=(3,), actnorm=False, **SMALL)  # the same steps as the IAF's (which has no ActNorm)
    randomize(maf, seed=8)
    iaf = IAF(event_shape=(3,), **SMALL)
    maf_steps = [layer for layer in maf.flow_layers if hasattr(layer, "made")]
    iaf_steps = [layer for layer in iaf.flow_layers if hasattr(layer, "made")]
    for iaf_step, maf_step in zip(iaf_steps, maf_steps[::-1]):
        for target, source in zip(iaf_step.made.weights, maf_step.made.weights):
            target.assign(source.numpy())
    x = tf.constant(np.random.default_rng(9).normal(size=[16, 3]).astype(np.float32))
    g_x = maf.bijector.forward(tf.identity(x))
    np.testing.assert_allclose(iaf.encode(tf.identity(x)).numpy(), g_x.numpy(), rtol=1e-4, atol=1e-5)
    expected = tfd.Sample(tfd.Normal(0.0, 1.0), [3]).log_prob(g_x) + maf.bijector.forward_log_det_jacobian(
        tf.identity(x), event_ndims=1
    )
    np.testing.assert_allclose(iaf.log_prob(x).numpy(), expected.numpy(), rtol=1e-4, atol=1e-4)
    samples = iaf.sample(5, seed=1)
    assert samples.shape == (5, 3) and np.all(np.isfinite(samples.numpy()))


def test_float64_option_runs_in_double_precision():
    model = MAF(event_shape=(2,), num_layers=2, hidden_units=(8,), dtype="float64")
    assert all(w.dtype == "float64" for w in model.weights)
    assert model.log_prob(moons(4).astype(np.float64)).dtype == tf.float64


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(event_shape=(2, 2)), "event_shape"),
        (dict(event_shape=(2,), num_layers=0), "num_layers"),
        (dict(event_shape=(2,), permutation="shuffle"), "permutation"),
        (dict(event_shape=(2,), hidden_units=(0,)), "hidden_units"),
        (dict(event_shape=(2,), log_scale_limit=-1.0), "log_scale_limit"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MAF(**kwargs)


# --- MADE stores its kernels masked (no mask product per call): the autoregressive property must survive ------
# --- training, reloading and weights written by hand --------------------------------------------------------


def made_layers(model):
    return [layer.made for layer in model.flow_layers if hasattr(layer, "made")]


def assert_autoregressive(made, seed=0):
    """Kernels are exactly zero off their masks, and d out_d / d x_i = 0 for every i >= d (strict triangle)."""
    for kernel, mask in zip(made.kernels, made.masks):
        off_mask = np.abs(kernel.numpy()[mask == 0])
        assert off_mask.max(initial=0.0) == 0.0, f"{kernel.path}: {np.sum(off_mask != 0)} entries off the mask"
    for jacobian in made_jacobians(made, np.random.default_rng(seed).normal(size=[32, made.event_size])):
        np.testing.assert_array_equal(np.triu(jacobian, k=0), 0.0)


@pytest.mark.parametrize("jit_compile", [False, True])
@pytest.mark.slow
def test_made_stays_autoregressive_after_fit_and_keras_reload(jit_compile, tmp_path):
    """Adam moves masked-out kernel entries too (their gradient is not zero without a per-call mask product);
    the optimizer's constraint step re-masks them after every update, with and without XLA."""
    keras.utils.set_random_seed(3)
    model = MAF(event_shape=(4,), num_layers=2, hidden_units=(8, 8))
    model.compile(optimizer=keras.optimizers.Adam(0.1), jit_compile=jit_compile)
    x = np.random.default_rng(3).normal(size=[64, 4]).astype(np.float32) * [1.0, 2.0, 0.5, 1.0] + [0, 1, 0, -1]
    model.fit(checks.dataset_of(x, 16), epochs=1, steps_per_epoch=5, verbose=0)
    assert all(np.any(made.kernels[-1].numpy() != 0) for made in made_layers(model))  # it really trained
    for made in made_layers(model):
        assert_autoregressive(made)
    reloaded = checks.assert_keras_round_trip(model, x[:8], tmp_path)
    for made in made_layers(reloaded):
        assert_autoregressive(made)


def _unmasked(made, seed):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=w.shape).astype(np.float32) for w in made.weights]


@pytest.mark.parametrize(
    "how",
    [
        "made.set_weights",
        "model.set_weights",
        "kernel.assign",
        "kernel.assign_add",
        "load_own_variables",
        "tf.train.Checkpoint",
    ],
)
def test_weights_written_by_hand_are_masked(how, tmp_path):
    model = MAF(event_shape=(5,), num_layers=2, hidden_units=(7, 9))
    made = made_layers(model)[0]
    values = _unmasked(made, seed=10)
    if how == "made.set_weights":
        made.set_weights(values)
    elif how == "model.set_weights":
        made_ids = [id(w) for w in made.weights]
        model.set_weights([values[made_ids.index(id(w))] if id(w) in made_ids else w.numpy() for w in model.weights])
    elif how == "kernel.assign":
        for weight, value in zip(made.weights, values):
            weight.assign(value)
    elif how == "kernel.assign_add":
        for weight, value in zip(made.weights, values):
            weight.assign_add(value)
    elif how == "load_own_variables":  # what .keras / .weights.h5 loading calls, here with an unmasked store
        made.load_own_variables({str(i): value for i, value in enumerate(values)})
    else:  # a checkpoint of the variables holding unmasked kernels (written behind Keras' back)
        for weight, value in zip(made.weights, values):
            weight.value.assign(value)
        path = tf.train.Checkpoint(**{f"w{i}": w for i, w in enumerate(made.weights)}).write(str(tmp_path / "c"))
        made = made_layers(MAF(event_shape=(5,), num_layers=2, hidden_units=(7, 9)))[0]
        tf.train.Checkpoint(**{f"w{i}": w for i, w in enumerate(made.weights)}).read(path).assert_consumed()
    assert any(np.any(k.numpy() != 0) for k in made.kernels[-1:])  # the values did arrive
    assert_autoregressive(made, seed=11)


@pytest.mark.slow
def test_log_prob_and_training_run_each_made_once_per_step(monkeypatch):
    """One MADE pass per step in the density direction (TFP's MaskedAutoregressiveFlow runs two)."""
    calls = []
    original = MADE.call
    monkeypatch.setattr(MADE, "call", lambda self, x: calls.append(1) or original(self, x))
    model = MAF(event_shape=(3,), num_layers=3, hidden_units=(8,))
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.optimizer.build(model.trainable_variables)
    x = tf.constant(np.random.default_rng(12).normal(size=[8, 3]).astype(np.float32))
    calls.clear()
    tf.function(model.log_prob)(x)
    assert len(calls) == 3
    calls.clear()
    tf.function(model.train_step)(x)
    assert len(calls) == 3
