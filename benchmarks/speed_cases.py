"""Speed and memory cases with a TFP peer: vector RealNVP, MAF and Glow, ours against TFP's built-ins.

Ours train with exactly the step `fit` runs: Keras 3's `model.train_step` inside
`tf.function(reduce_retracing=True, jit_compile=xla)` (what `Model.make_train_function` builds), the optimizer
built beforehand as `fit` does. TFP's contenders train with the same Keras 3 Adam (learning rate 1e-3), either
through the same `train_step` (RealNVP: `benchmarks.tfp_peers.TFPRealNVPModel` is a Keras 3 model) or in a
`tf.function` with a GradientTape (MAF, Glow: their variables live in tf_keras layers, which a Keras 3 model
does not train). Sampling and log_prob are `tf.function`s with the same `jit_compile` setting on both sides;
sampling uses stateless seeds.
"""

import keras
import numpy as np
import tensorflow as tf
import tfp_peers
from harness import Record, ratio, step_peak_bytes, time_alternating

import keras_models

LEARNING_RATE = 1e-3

# Sizes per mode. "full" is the configuration; "quick" keeps every case's shape where the CPU allows it
# and shrinks the repeats; "dry" is the smallest thing that still builds both contenders and runs a step.
SIZES = {
    "full": dict(
        realnvp=dict(event_size=784, num_couplings=8, hidden_units=(512, 512), batch=128),
        maf=dict(event_size=64, num_layers=5, hidden_units=(256, 256), batch=128),
        glow=dict(image_shape=(32, 32, 3), num_levels=3, num_steps=8, width=128, batch=32),
        timing=dict(warmup=3, repeats=21, inner=1, min_measure_seconds=0.05),
    ),
    "quick": dict(
        realnvp=dict(event_size=784, num_couplings=8, hidden_units=(512, 512), batch=128),
        maf=dict(event_size=64, num_layers=5, hidden_units=(256, 256), batch=128),
        glow=dict(image_shape=(16, 16, 3), num_levels=2, num_steps=4, width=64, batch=16),
        timing=dict(warmup=2, repeats=9, inner=1, min_measure_seconds=0.02),
    ),
    "dry": dict(
        realnvp=dict(event_size=8, num_couplings=2, hidden_units=(8,), batch=4),
        maf=dict(event_size=4, num_layers=2, hidden_units=(8,), batch=4),
        glow=dict(image_shape=(8, 8, 3), num_levels=2, num_steps=1, width=8, batch=4),
        timing=dict(warmup=0, repeats=1, inner=1),
    ),
}


def keras_train_step(model, xla):
    """The step `fit` runs, as `Model.make_train_function` compiles it (optimizer built first, as `fit` does).

    xla=None: the eager step (dry runs: everything is built and run once, nothing is traced).
    """
    model.optimizer.build(model.trainable_variables)
    if xla is None:
        return model.train_step
    return tf.function(model.train_step, reduce_retracing=True, jit_compile=xla)


def compiled(body, xla):
    """`body` as a tf.function with jit_compile=xla, or `body` itself (eager) when xla is None."""
    return body if xla is None else tf.function(body, jit_compile=xla)


def _num_weights(variables):
    return int(sum(np.prod(v.shape) for v in variables))


def _seed():
    return tf.constant([1, 2], tf.int32)


def _min_note(timing):
    """The least-disturbed view, next to the medians: ratio of the fastest rounds, and the protocol used."""
    text = f"{timing.repeats} rounds x {timing.inner} calls"
    if timing.min_ratio is not None:
        text += f", ratio of minima {timing.min_ratio:.2f}"
    return text


class Call:
    """`fn(*args)` where `fn` is a `tf.function`: callable, and it can tell how often `fn` was traced."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __call__(self):
        return self.fn(*self.args)

    @property
    def traces(self):
        count = getattr(self.fn, "experimental_get_tracing_count", None)
        return count() if count else 0


def _timing_records(case, xla, device, timing, pairs, batch, note=""):
    """Alternating timings of each (metric, ours Call, theirs Call) in `pairs`, as ms per batch of `batch`.

    A function traced more than once while being timed would time Python tracing, not the flow: the record's
    note says so (it should never happen).
    """
    records = []
    for metric, ours, theirs in pairs:
        timing_result = time_alternating(ours, theirs, **timing)
        t_ours, t_theirs = timing_result.ours, timing_result.theirs
        notes = [
            f"ours {batch / t_ours:.0f}/s" + ("" if t_theirs is None else f", theirs {batch / t_theirs:.0f}/s"),
            _min_note(timing_result),
        ]
        retraced = [who for who, call in (("ours", ours), ("theirs", theirs)) if call is not None and call.traces > 1]
        if retraced:
            notes.append(f"RETRACED: {', '.join(retraced)}")
        if note:
            notes.append(note)
        records.append(
            Record(
                case,
                metric,
                1e3 * t_ours,
                None if t_theirs is None else 1e3 * t_theirs,
                ratio(t_ours, t_theirs),
                f"ms per batch of {batch}",
                xla,
                device,
                "; ".join(notes),
            )
        )
    return records


# ------------------------------------------------------------------------------------------------------------
def realnvp_case(mode, xla, device):
    """Vector RealNVP: keras_models.RealNVP against tfb.RealNVP with the same Keras 3 MLPs in a Keras 3 model."""
    size = SIZES[mode]["realnvp"]
    dim, batch = size["event_size"], size["batch"]
    x = tf.constant(np.random.default_rng(0).normal(size=(batch, dim)).astype(np.float32))

    # No ActNorm (on by default for vectors): tfb.RealNVP's side has none, and the two compute the same function.
    ours = keras_models.RealNVP(
        event_shape=(dim,), num_couplings=size["num_couplings"], hidden_units=size["hidden_units"], actnorm=False
    )
    theirs = tfp_peers.TFPRealNVPModel(dim, size["num_couplings"], size["hidden_units"])
    for model in (ours, theirs):
        model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE))
    n_ours, n_theirs = _num_weights(ours.trainable_weights), _num_weights(theirs.trainable_weights)
    if n_ours != n_theirs:
        raise AssertionError(f"RealNVP contenders differ in size: ours {n_ours} weights, theirs {n_theirs}")
    train_ours, train_theirs = keras_train_step(ours, xla), keras_train_step(theirs, xla)
    pairs = [
        ("train_step", Call(train_ours, x), Call(train_theirs, x)),
        ("log_prob", Call(compiled(ours.log_prob, xla), x), Call(compiled(theirs.log_prob, xla), x)),
        (
            "sample",
            Call(compiled(lambda s: ours.sample(batch, seed=s), xla), _seed()),
            Call(compiled(lambda s: theirs.sample(batch, seed=s), xla), _seed()),
        ),
    ]
    case = f"realnvp D={dim} {size['num_couplings']} couplings MLP {'x'.join(map(str, size['hidden_units']))}"
    return _timing_records(case, xla, device, SIZES[mode]["timing"], pairs, batch, f"{n_ours} weights each")


# ------------------------------------------------------------------------------------------------------------
def maf_case(mode, xla, device):
    """MAF: keras_models.MAF against tfb.MaskedAutoregressiveFlow + tfb.AutoregressiveNetwork."""
    size = SIZES[mode]["maf"]
    dim, batch = size["event_size"], size["batch"]
    x = tf.constant(np.random.default_rng(1).normal(size=(batch, dim)).astype(np.float32))

    # No ActNorm (on by default for MAF): TFP's MAF has none, and the two compute the same function.
    ours = keras_models.MAF(
        event_shape=(dim,), num_layers=size["num_layers"], hidden_units=size["hidden_units"], actnorm=False
    )
    ours.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE))
    theirs = tfp_peers.tfp_maf(dim, size["num_layers"], size["hidden_units"])
    n_ours, n_theirs = _num_weights(ours.trainable_weights), _num_weights(theirs.trainable_variables)
    if n_ours != n_theirs:
        raise AssertionError(f"MAF contenders differ in size: ours {n_ours} weights, theirs {n_theirs}")
    train_ours, train_theirs = keras_train_step(ours, xla), compiled(theirs.train_step, xla)
    pairs = [
        ("train_step", Call(train_ours, x), Call(train_theirs, x)),
        ("log_prob", Call(compiled(ours.log_prob, xla), x), Call(compiled(theirs.log_prob, xla), x)),
        (
            "sample",
            Call(compiled(lambda s: ours.sample(batch, seed=s), xla), _seed()),
            Call(compiled(lambda s: theirs.sample(batch, seed=s), xla), _seed()),
        ),
    ]
    case = f"maf D={dim} {size['num_layers']} layers MADE {'x'.join(map(str, size['hidden_units']))}"
    return _timing_records(case, xla, device, SIZES[mode]["timing"], pairs, batch, f"{n_ours} weights each")


# ------------------------------------------------------------------------------------------------------------
def glow_images(shape, batch, seed=2):
    """8-bit-like images in [0, 1]: (pixel + u) / 256 with random pixels (a real, non-constant batch)."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(batch,) + tuple(shape))
    return tf.constant(((pixels + rng.uniform(size=pixels.shape)) / 256.0).astype(np.float32))


def glow_case(mode, xla, device):
    """Glow: keras_models.Glow against tfb.Glow (tf_keras conditioners) in a tf.function step; peak memory too."""
    size = SIZES[mode]["glow"]
    shape, batch = size["image_shape"], size["batch"]
    x = glow_images(shape, batch)

    ours = keras_models.Glow(
        event_shape=shape,
        num_levels=size["num_levels"],
        num_steps=size["num_steps"],
        hidden_channels=size["width"],
        seed=0,
    )
    ours.initialize_from_data(x)
    ours.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE))
    theirs = tfp_peers.tfp_glow(shape, size["num_levels"], size["num_steps"], size["width"], init_batch=x)
    n_ours, n_theirs = _num_weights(ours.trainable_weights), _num_weights(theirs.trainable_variables)
    # Sanity check of both initialisations on the batch they were initialised from (nats per dimension).
    dims = float(np.prod(shape))
    nll_ours = float(-tf.reduce_mean(ours.log_prob(x))) / dims
    nll_theirs = float(theirs.loss(x)) / dims
    train_ours, train_theirs = keras_train_step(ours, xla), compiled(theirs.train_step, xla)
    case = f"glow {'x'.join(map(str, shape))} L={size['num_levels']} K={size['num_steps']} width {size['width']}"
    note = (
        f"weights: ours {n_ours}, theirs {n_theirs}; NLL/dim after data-dependent init: ours {nll_ours:.2f}, "
        f"theirs {nll_theirs:.2f}"
    )
    pairs = [
        ("train_step", Call(train_ours, x), Call(train_theirs, x)),
        (
            "sample",
            Call(compiled(lambda s: ours.sample(batch, seed=s), xla), _seed()),
            Call(compiled(lambda s: theirs.sample(batch, seed=s), xla), _seed()),
        ),
    ]
    records = _timing_records(case, xla, device, SIZES[mode]["timing"], pairs, batch, note)
    warm = mode != "dry"  # the timings above already traced both steps
    mem_ours = step_peak_bytes(Call(train_ours, x), warm=warm)
    mem_theirs = step_peak_bytes(Call(train_theirs, x), warm=warm)
    records.append(
        Record(
            case,
            "train_step_peak_memory",
            mem_ours / 2**20,
            mem_theirs / 2**20,
            ratio(mem_ours, mem_theirs),
            "MiB",
            xla,
            device,
            "allocator peak during one step minus memory in use before it; " + note,
        )
    )
    return records


CASES = {"realnvp": realnvp_case, "maf": maf_case, "glow": glow_case}
