"""Speed and memory cases with a TFP peer: vector RealNVP, MAF and Glow, ours against TFP's built-ins.

Ours train with exactly the step `fit` runs: Keras 3's `model.train_step` inside
`tf.function(reduce_retracing=True, jit_compile=xla)` (what `Model.make_train_function` builds), the optimizer
built beforehand as `fit` does. TFP's contenders train with the same Keras 3 Adam (learning rate 1e-3), either
through the same `train_step` (RealNVP: `benchmarks.tfp_peers.TFPRealNVPModel` is a Keras 3 model) or in a
`tf.function` with a GradientTape (MAF, Glow: their variables live in tf_keras layers, which a Keras 3 model
does not train). Sampling and log_prob are `tf.function`s with the same `jit_compile` setting on both sides;
sampling uses stateless seeds. The pair builders (`realnvp_pair`, `nsf_pair`, `maf_pair`, `glow_pair`) are shared
with `scaling.py`, which times the same contenders over a range of sizes.
"""

import contextlib
import functools

import keras
import numpy as np
import plain_tfp
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


def timing_records(case, xla, device, timing, pairs, batch, note=""):
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
                ours_min=1e3 * timing_result.ours_min,
                theirs_min=None if t_theirs is None else 1e3 * timing_result.theirs_min,
            )
        )
    return records


# ------------------------------------------------------------------------------------------------------------
# The contenders of each family, built to compute the same function (the scaling benchmark builds them too).
def vector_batch(batch: int, dim: int, seed: int = 0) -> tf.Tensor:
    """A [batch, dim] standard normal batch: the vector cases' data."""
    return tf.constant(np.random.default_rng(seed).normal(size=(batch, dim)).astype(np.float32))


def weights_of(contender) -> list:
    """The trainable weights of either side: a Keras model's, or a `tfp_peers.TFPFlow`'s variables."""
    return contender.trainable_weights if isinstance(contender, keras.Model) else contender.trainable_variables


def train_function(contender, xla: bool | None):
    """The training step of either side: `fit`'s step for a Keras model, the `TFPFlow`'s GradientTape step else."""
    if isinstance(contender, keras.Model):
        return keras_train_step(contender, xla)
    return compiled(contender.train_step, xla)


def _same_size(family, ours, theirs):
    """The number of weights of each side, which must agree: the two compute the same function."""
    n_ours, n_theirs = _num_weights(weights_of(ours)), _num_weights(weights_of(theirs))
    if n_ours != n_theirs:
        raise AssertionError(f"{family} contenders differ in size: ours {n_ours} weights, theirs {n_theirs}")
    return n_ours


@contextlib.contextmanager
def keras_policy(policy: str):
    """Keras' global dtype policy is `policy` inside the block (ours are built there; TFP's sides outside it, in
    float32: TFP's built-in flows have no mixed-precision path, and its bijectors refuse mixed dtypes)."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _compiled_model(build, policy):
    with keras_policy(policy):
        model = build()
        model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE))
    return model


def realnvp_pair(dim: int, num_couplings: int, hidden_units, policy: str = "float32") -> tuple:
    """keras_models.RealNVP (under `policy`) and tfb.RealNVP with the same Keras 3 MLPs, both compiled."""
    # No ActNorm (on by default for vectors): tfb.RealNVP's side has none, and the two compute the same function.
    ours = _compiled_model(
        lambda: keras_models.RealNVP(
            event_shape=(dim,), num_couplings=num_couplings, hidden_units=hidden_units, actnorm=False
        ),
        policy,
    )
    theirs = _compiled_model(lambda: tfp_peers.TFPRealNVPModel(dim, num_couplings, hidden_units), "float32")
    _same_size("RealNVP", ours, theirs)
    return ours, theirs


def nsf_pair(
    dim: int, num_layers: int, hidden_units, policy: str = "float32", num_bins: int = 8, bound: float = 3.0
) -> tuple:
    """keras_models.NSF (coupling, under `policy`) and K x [tfb.RealNVP(bijector_fn -> tfb.RationalQuadraticSpline),
    tfb.Permute] (`plain_tfp.PlainNSF`, TFP's docstring recipe), both compiled: the same splines and widths."""
    ours = _compiled_model(
        lambda: keras_models.NSF(
            event_shape=(dim,),
            variant="coupling",
            num_layers=num_layers,
            hidden_units=hidden_units,
            num_bins=num_bins,
            bound=bound,
            actnorm=False,  # the TFP side has none
        ),
        policy,
    )
    theirs = _compiled_model(
        lambda: plain_tfp.PlainNSF(dim, num_layers, hidden_units, num_bins=num_bins, bound=bound), "float32"
    )
    _same_size("NSF", ours, theirs)
    return ours, theirs


def maf_pair(dim: int, num_layers: int, hidden_units, policy: str = "float32") -> tuple:
    """keras_models.MAF (compiled, under `policy`) and tfb.MaskedAutoregressiveFlow + tfb.AutoregressiveNetwork."""
    # No ActNorm (on by default for MAF): TFP's MAF has none, and the two compute the same function.
    ours = _compiled_model(
        lambda: keras_models.MAF(event_shape=(dim,), num_layers=num_layers, hidden_units=hidden_units, actnorm=False),
        policy,
    )
    theirs = tfp_peers.tfp_maf(dim, num_layers, hidden_units)
    _same_size("MAF", ours, theirs)
    return ours, theirs


def glow_pair(x: tf.Tensor, num_levels: int, num_steps: int, width: int, policy: str = "float32") -> tuple:
    """keras_models.Glow (compiled, under `policy`) and tfb.Glow (`TFPFlow`), both initialised from the images `x`."""
    shape = tuple(x.shape[1:])

    def build():
        model = keras_models.Glow(
            event_shape=shape, num_levels=num_levels, num_steps=num_steps, hidden_channels=width, seed=0
        )
        model.initialize_from_data(x)
        return model

    ours = _compiled_model(build, policy)
    theirs = tfp_peers.tfp_glow(shape, num_levels, num_steps, width, init_batch=x)
    return ours, theirs


def train_and_log_prob_calls(ours, theirs, x: tf.Tensor, xla: bool | None) -> list:
    """[(metric, ours Call, theirs Call)] of the training step and log_prob on the batch `x`."""
    return [
        ("train_step", Call(train_function(ours, xla), x), Call(train_function(theirs, xla), x)),
        ("log_prob", Call(compiled(ours.log_prob, xla), x), Call(compiled(theirs.log_prob, xla), x)),
    ]


def sample_calls(ours, theirs, batch: int, xla: bool | None) -> tuple:
    """("sample", ours Call, theirs Call): `batch` samples with a stateless seed on either side."""
    return (
        "sample",
        Call(compiled(lambda s: ours.sample(batch, seed=s), xla), _seed()),
        Call(compiled(lambda s: theirs.sample(batch, seed=s), xla), _seed()),
    )


# ------------------------------------------------------------------------------------------------------------
# Vector cases: case name -> (pair builder, its depth argument, how the case's name says depth and network, data seed).
VECTOR_CASES = {
    "realnvp": (realnvp_pair, "num_couplings", "couplings MLP", 0),
    "maf": (maf_pair, "num_layers", "layers MADE", 1),
}


def vector_case(name: str, mode: str, xla: bool | None, device: str) -> list[Record]:
    """Train step, log_prob and sample of a vector case: "realnvp", keras_models.RealNVP against tfb.RealNVP with the
    same Keras 3 MLPs in a Keras 3 model, or "maf", keras_models.MAF against tfb.MaskedAutoregressiveFlow +
    tfb.AutoregressiveNetwork."""
    build, depth, words, seed = VECTOR_CASES[name]
    size = SIZES[mode][name]
    dim, batch = size["event_size"], size["batch"]
    x = vector_batch(batch, dim, seed=seed)
    ours, theirs = build(dim, size[depth], size["hidden_units"])
    pairs = train_and_log_prob_calls(ours, theirs, x, xla) + [sample_calls(ours, theirs, batch, xla)]
    note = f"{_num_weights(ours.trainable_weights)} weights each"
    case = f"{name} D={dim} {size[depth]} {words} {'x'.join(map(str, size['hidden_units']))}"
    return timing_records(case, xla, device, SIZES[mode]["timing"], pairs, batch, note)


# ------------------------------------------------------------------------------------------------------------
def glow_images(shape, batch, seed=2):
    """8-bit-like images in [0, 1]: (pixel + u) / 256 with random pixels (a real, non-constant batch)."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(batch,) + tuple(shape))
    return tf.constant(((pixels + rng.uniform(size=pixels.shape)) / 256.0).astype(np.float32))


def peak_memory_record(
    case: str, ours: "Call", theirs: "Call", xla: bool | None, device: str, warm: bool = True, note: str = ""
) -> Record:
    """A "train_step_peak_memory" Record (MiB) of the Calls `ours` and `theirs` (`harness.step_peak_bytes`)."""
    mem_ours, mem_theirs = step_peak_bytes(ours, warm=warm), step_peak_bytes(theirs, warm=warm)
    return Record(
        case,
        "train_step_peak_memory",
        mem_ours / 2**20,
        mem_theirs / 2**20,
        ratio(mem_ours, mem_theirs),
        "MiB",
        xla,
        device,
        "allocator peak during one step minus memory in use before it" + (f"; {note}" if note else ""),
    )


def glow_case(mode, xla, device):
    """Glow: keras_models.Glow against tfb.Glow (tf_keras conditioners) in a tf.function step; peak memory too."""
    size = SIZES[mode]["glow"]
    shape, batch = size["image_shape"], size["batch"]
    x = glow_images(shape, batch)
    ours, theirs = glow_pair(x, size["num_levels"], size["num_steps"], size["width"])
    n_ours, n_theirs = _num_weights(weights_of(ours)), _num_weights(weights_of(theirs))
    # Sanity check of both initialisations on the batch they were initialised from (nats per dimension).
    dims = float(np.prod(shape))
    nll_ours = float(-tf.reduce_mean(ours.log_prob(x))) / dims
    nll_theirs = float(theirs.loss(x)) / dims
    case = f"glow {'x'.join(map(str, shape))} L={size['num_levels']} K={size['num_steps']} width {size['width']}"
    note = (
        f"weights: ours {n_ours}, theirs {n_theirs}; NLL/dim after data-dependent init: ours {nll_ours:.2f}, "
        f"theirs {nll_theirs:.2f}"
    )
    train = train_and_log_prob_calls(ours, theirs, x, xla)[0]
    pairs = [train, sample_calls(ours, theirs, batch, xla)]
    records = timing_records(case, xla, device, SIZES[mode]["timing"], pairs, batch, note)
    # One call before the measure keeps tracing and the allocator's growth out of it (a dry run is eager: none).
    records.append(peak_memory_record(case, train[1], train[2], xla, device, warm=mode != "dry", note=note))
    return records


CASES = {
    "realnvp": functools.partial(vector_case, "realnvp"),
    "maf": functools.partial(vector_case, "maf"),
    "glow": glow_case,
}
