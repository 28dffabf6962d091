"""Checks every FlowModel preset must pass: tests/model_checklist.py runs them over every case of
tests/model_cases.py (a new preset costs one case, not a copy of the checklist); per-preset modules reuse them.

Data is an array x, or for a conditional model (`context_shape`) the pair (x, c): `split` takes it apart, and
every check hands c on (`log_prob(x, c)`, `sample(n, c)`, datasets of (x, c) pairs).
"""

import contextlib
import json

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows.testing import assert_bijector_invariants, with_fixed_kwargs

tfd = tfp.distributions


def perturb(model, scale=0.3, seed=1):
    """Noise added to every trainable weight, so no coupling is the identity (fresh models' output layers are zero)."""
    rng = np.random.default_rng(seed)
    for weight in model.trainable_weights:
        weight.assign(weight.numpy() + rng.normal(scale=scale, size=weight.shape).astype(weight.dtype))
    return model


def split(data):
    """(x, c) from a case's data: x alone (c None) or the pair (x, c) of a conditional case, as float32 tensors."""
    if isinstance(data, tuple):
        x, c = data
        return tf.constant(x, tf.float32), tf.constant(c, tf.float32)
    return tf.constant(data, tf.float32), None


def first(c, n):
    """The first n contexts (None stays None)."""
    return None if c is None else c[:n]


def dataset_of(x, batch_size=64, seed=0):
    """A shuffled, repeated tf.data pipeline of x alone (no labels), or of (x, c) pairs, as fit expects."""
    slices = tuple(np.asarray(t, np.float32) for t in x) if isinstance(x, tuple) else np.asarray(x, np.float32)
    size = len(slices[0]) if isinstance(slices, tuple) else len(slices)
    return (
        tf.data.Dataset.from_tensor_slices(slices)
        .shuffle(size, seed=seed)
        .batch(batch_size, drop_remainder=True)
        .repeat()
    )


def gaussian_baseline_nll(x):
    """Mean NLL of the maximum-likelihood full-covariance Gaussian fitted to x (flattened)."""
    flat = np.asarray(x, np.float64).reshape(len(x), -1)
    mean = flat.mean(0)
    cov = np.cov(flat, rowvar=False) + 1e-6 * np.eye(flat.shape[1])
    dist = tfd.MultivariateNormalTriL(mean, tf.linalg.cholesky(cov))
    return float(-tf.reduce_mean(dist.log_prob(flat)))


def assert_fit_beats_gaussian(model, x, steps, learning_rate=1e-2, batch_size=64, margin=0.0):
    """`fit` for `steps` steps lowers the held-in NLL below a Gaussian fitted to the same data."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    model.fit(dataset_of(x, batch_size), epochs=1, steps_per_epoch=steps, verbose=0)
    nll = float(-tf.reduce_mean(model.log_prob(tf.constant(x, tf.float32))))
    baseline = gaussian_baseline_nll(x)
    assert np.isfinite(nll), nll
    assert nll < baseline - margin, f"model NLL {nll:.4f} is not below the Gaussian baseline {baseline:.4f}"
    return nll, baseline


def assert_every_weight_trains(
    model, x, steps=3, learning_rate=1e-2, batch_size=16, jit_compile=False, every_weight=True
):
    """A few fit steps (with `jit_compile`: compiled by XLA, forced on, since Keras' "auto" is off on CPU) give finite
    losses and change every trainable weight (unless `every_weight` is False), and no variable hides inside a TFP
    object."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), jit_compile=jit_compile)
    before = [np.array(w) for w in model.trainable_weights]
    assert before, "the model has no trainable weights"
    history = model.fit(dataset_of(x, batch_size), epochs=1, steps_per_epoch=steps, verbose=0)
    assert model.jit_compile is jit_compile
    assert np.all(np.isfinite(history.history["loss"])), history.history
    if getattr(model, "objective", None) != "flow_matching":  # a flow-matching step has no likelihood to report
        assert np.all(np.isfinite(history.history["nll"])), history.history
    if every_weight:
        unchanged = [w.path for w, b in zip(model.trainable_weights, before) if np.array_equal(np.array(w), b)]
        assert not unchanged, f"weights unchanged by fit: {unchanged}"
    tracked = {id(getattr(w, "value", w)) for w in model.trainable_weights} | {id(w) for w in model.trainable_weights}
    hidden = [v.name for v in model.bijector.trainable_variables if id(v) not in tracked]
    assert not hidden, f"tf.Variables inside the bijector that the model does not track: {hidden}"


def assert_sample_encode_decode(model, data, atol=1e-4):
    """`sample` has the event shape and finite values; decode(encode(x)) returns x; seeds reproduce. A
    conditional model samples given contexts, and differently given other contexts."""
    x, c = split(data)
    samples = model.sample(7, first(c, 7), seed=3)
    assert tuple(samples.shape) == (7,) + tuple(model.event_shape), f"sample: shape {samples.shape}"
    assert np.all(np.isfinite(samples.numpy())), "sample: values are not finite"
    np.testing.assert_allclose(
        model.sample(7, first(c, 7), seed=3).numpy(), samples.numpy(), rtol=0, atol=0, err_msg="sample: same seed"
    )
    cooler = model.sample(7, first(c, 7), temperature=0.5, seed=3)
    assert tuple(cooler.shape) == tuple(samples.shape)
    if c is not None:
        other = model.sample(7, tf.reverse(c[:7], [0]), seed=3)
        assert np.max(np.abs(other.numpy() - samples.numpy())) > 1e-4, "the context does not change the samples"
    z = model.encode(x, c) if c is not None else model.encode(x)
    decoded = model.decode(tf.identity(z), c) if c is not None else model.decode(tf.identity(z))
    np.testing.assert_allclose(decoded.numpy(), x.numpy(), atol=atol, rtol=1e-4, err_msg="decode(encode(x)) != x")


def assert_log_prob_per_example(model, data):
    """`log_prob` gives one finite value per example (calling the model need not: Flow++ with variational
    dequantization returns its ELBO), and it is the log-density of the model's TFP distribution (base and
    bijector: log p(x) = log p_Z(f^{-1}(x)) + log|det df^{-1}(x)/dx|)."""
    x, c = split(data)
    log_prob = (model.log_prob(x, c) if c is not None else model.log_prob(x)).numpy()
    assert log_prob.shape == (len(x),), f"log_prob: shape {log_prob.shape}, expected ({len(x)},)"
    assert np.all(np.isfinite(log_prob)), f"log_prob: values are not finite: {log_prob}"
    if c is None:
        expected = model.distribution.log_prob(x)
    else:
        expected = model.conditional_distribution(c).log_prob(x, bijector_kwargs=model.bijector_kwargs(c))
    np.testing.assert_allclose(
        log_prob, expected.numpy(), rtol=1e-5, atol=1e-4, err_msg="log_prob != the distribution's log_prob"
    )


def as_saved_config(config):
    """`config` as a `.keras` file stores it (JSON): tuples, such as a layer's `build_config` input shape
    `(None, 2)`, come back as lists, which a strict comparison of the live configs would count as a change."""
    return json.loads(json.dumps(config))


def assert_keras_round_trip(model, x, tmp_path, atol=1e-6):
    """`.keras` save and load: the same class and config, the same log_prob (to 1e-6) and seeded samples, and no
    data-dependent initialisation left to redo (ActNorm's is stored with the weights)."""
    path = str(tmp_path / f"{model.name}.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert type(reloaded) is type(model)
    assert as_saved_config(reloaded.get_config()) == as_saved_config(model.get_config())
    x, c = split(x)
    args = () if c is None else (c,)
    np.testing.assert_allclose(
        reloaded.log_prob(x, *args).numpy(), model.log_prob(x, *args).numpy(), atol=atol, rtol=1e-6
    )
    np.testing.assert_allclose(
        reloaded.sample(3, first(c, 3), temperature=0.7, seed=4).numpy(),
        model.sample(3, first(c, 3), temperature=0.7, seed=4).numpy(),
        atol=1e-5,
    )
    if not model._layers_needing_init():
        assert not reloaded._layers_needing_init()
    return reloaded


def assert_bijector_conforms(model, x, rtol=1e-3, atol=1e-3, check_jacobian=True, check_xla=True):
    """The model's whole bijector passes the conformance kit on a small input (latent-side points); a
    conditional model's at the data's contexts, held fixed (`check_xla`: also compiled by XLA)."""
    x, c = split(x)
    z = model.encode(x) if c is None else model.encode(x, c)
    event_ndims = len(model.event_shape)
    bijector = model.bijector
    if c is not None:
        bijector = with_fixed_kwargs(bijector, model.bijector_kwargs(c, bijector))  # c embedded if the model does
    assert_bijector_invariants(
        bijector,
        tf.constant(z.numpy()),
        event_ndims,
        rtol=rtol,
        atol=atol,
        check_jacobian=check_jacobian,
        check_xla=check_xla,
        name=model.name,
    )


def assert_mixed_precision(make, data, policy, tmp_path, rtol=0.05, atol=0.05, export=True):
    """Under the global `policy` ("mixed_float16", "mixed_bfloat16", set by the caller): the networks compute in
    the policy's compute dtype and the weights stay float32; `fit` (with Keras' loss scaling under float16) trains
    to a finite loss; log_prob, sample, encode and decode give finite float32 values, log_prob close to the same
    weights' in float32 and decode(encode(x)) close to x; `.keras` files and SavedModels reload with the same
    log-densities (the SavedModel only if `export`). `make()` builds the model, as the case does."""
    from keras_models.core.precision import ComputesInVariableDtype
    from keras_models.serving.export import export_saved_model, load_serving_model

    compute = keras.mixed_precision.global_policy().compute_dtype
    model = make()
    assert model.dtype_policy.name == policy
    float_weights = {w.path: w.dtype for w in model.weights if "int" not in w.dtype}
    assert set(float_weights.values()) == {"float32"}, float_weights
    # Flow steps, the base and the model compute in float32; every other layer is a network, in `compute`.
    networks = [layer for layer in model._flatten_layers() if not isinstance(layer, ComputesInVariableDtype)]
    assert all(layer.compute_dtype == compute for layer in networks), {n.name: n.compute_dtype for n in networks}
    assert model.compute_dtype == "float32"
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    if policy == "mixed_float16":
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    history = model.fit(dataset_of(data, 16), epochs=1, steps_per_epoch=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"])), history.history
    perturb(model, scale=0.05)

    x, c = split(data)
    args = () if c is None else (c,)
    log_prob = model.log_prob(x, *args)
    assert log_prob.dtype == tf.float32 and np.all(np.isfinite(log_prob.numpy())), log_prob
    samples = model.sample(5, first(c, 5), seed=3)
    assert samples.dtype == tf.float32 and np.all(np.isfinite(samples.numpy())), samples
    z = model.encode(x, *args)
    assert z.dtype == tf.float32
    np.testing.assert_allclose(model.decode(tf.identity(z), *args).numpy(), x.numpy(), rtol=rtol, atol=atol)

    # The same weights with every layer in float32: the conditioners' rounding moves log p(x) only a little.
    keras.mixed_precision.set_global_policy("float32")
    try:
        reference = make()
        reference.set_weights(model.get_weights())
    finally:
        keras.mixed_precision.set_global_policy(policy)
    np.testing.assert_allclose(log_prob.numpy(), reference.log_prob(x, *args).numpy(), rtol=rtol, atol=atol)

    path = str(tmp_path / f"{model.name}.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert reloaded.dtype_policy.name == policy
    np.testing.assert_allclose(reloaded.log_prob(x, *args).numpy(), log_prob.numpy(), rtol=1e-5, atol=1e-5)
    if export and c is None:  # conditional export is tests/test_export_conditional.py's
        signatures = load_serving_model(export_saved_model(model, base_dir=str(tmp_path), name="mixed")).signatures
        served = signatures["log_prob"](x=x)["log_prob"].numpy()
        # A graph fuses a network's MatMul/Conv, BiasAdd and ReLU, rounding to half precision once where eager
        # ops round after each: the served values differ from eager ones by the policy's rounding.
        np.testing.assert_allclose(served, log_prob.numpy(), rtol=rtol, atol=atol)


@contextlib.contextmanager
def global_policy(name):
    """Keras' global dtype policy set to `name` inside the block, and the previous one back after it (other tests
    build their models under it)."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield name
    finally:
        keras.mixed_precision.set_global_policy(previous)
