"""Why the timings come out as they do: conditioner passes per log_prob, and what XLA makes of them.

    python benchmarks/diagnose.py

1. Counts the conditioner-network calls made while tracing one `log_prob` (RealNVP: the Keras MLPs; MAF: our
   MADE and TFP's AutoregressiveNetwork), ours and TFP's. A count of twice the number of steps means the
   network runs twice per step: once for the inverse and once for its log-det.
2. Compiles both RealNVP `log_prob`s with XLA and counts the optimised HLO's dot products and instructions:
   XLA's common-subexpression elimination merges TFP's duplicate conditioner passes, so with XLA both sides
   run the same program; without XLA, TFP pays for the second pass.
3. What-if timings (no XLA, where the differences show): the same trained-shape models with one thing
   changed by patching a class for the experiment only, each timed against the unpatched model with the
   alternating protocol of `harness.py`:
   - RealNVP, "full-width conditioner I/O" (the code path before the block protocol, kept for plain
     callables): `MaskedConditioner.block_split` patched to None, so the coupling builds a zero-filled
     full-width input (tfp_flows/coupling.py `_split_input`) that `MaskedConditioner.call` slices again, and
     the conditioner pads the parameters to full width (`_pad_to_event`) for `_restrict` to slice them back.
     As-is, the coupling hands the conditioner its pass-through block and takes back the transformed block's
     parameters (`block_split`, tfp_flows/coupling.py). A ratio above 1 is what the block path saves.
   - MAF, "two MADE passes per step": `keras_models.MAF` builds TFP's own `tfb.MaskedAutoregressiveFlow`
     (whose `_inverse` and `_inverse_log_det_jacobian` each run the network) instead of
     `tfp_flows.OnePassMaskedAutoregressiveFlow` (one pass, the log-det kept in TFP's cache).
   The patched models compute the same numbers (checked); the ratio says what the change costs or saves.
Counts need no repeats; the timings take a minute or two on 2 cores.
"""

import collections
import os
import re
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tfp_peers
from harness import time_alternating

import keras_models
import keras_models.layers.masked_autoregressive
from keras_models.layers.networks.conditioners import MaskedConditioner
from keras_models.layers.networks.made import MADE


def count_calls(cls, fn):
    """Number of calls of `cls.call` while `fn()` runs (tracing included)."""
    counter = {"calls": 0}
    original = cls.call

    def counting(self, *args, **kwargs):
        counter["calls"] += 1
        return original(self, *args, **kwargs)

    cls.call = counting
    try:
        fn()
    finally:
        cls.call = original
    return counter["calls"]


def conditioner_passes(size=16, steps=4):
    x = tf.constant(np.random.default_rng(0).normal(size=(8, size)).astype(np.float32))
    ours_nvp = keras_models.RealNVP(event_shape=(size,), num_couplings=steps, hidden_units=(32,), actnorm=False)
    theirs_nvp = tfp_peers.TFPRealNVPModel(size, steps, (32,))
    ours_maf = keras_models.MAF(event_shape=(size,), num_layers=steps, hidden_units=(32,), actnorm=False)
    theirs_maf = tfp_peers.tfp_maf(size, steps, (32,))
    rows = [
        ("RealNVP", "ours", count_calls(keras.Sequential, lambda: tf.function(ours_nvp.log_prob)(x))),
        ("RealNVP", "tfb.RealNVP", count_calls(keras.Sequential, lambda: tf.function(theirs_nvp.log_prob)(x))),
        ("MAF", "ours", count_calls(MADE, lambda: tf.function(ours_maf.log_prob)(x))),
        (
            "MAF",
            "tfb.MaskedAutoregressiveFlow",
            count_calls(tfp.bijectors.AutoregressiveNetwork, lambda: tf.function(theirs_maf.log_prob)(x)),
        ),
    ]
    print(f"Conditioner passes per log_prob ({steps} steps):")
    for model, who, calls in rows:
        print(f"  {model:8s} {who:30s} {calls:3d}  ({calls / steps:.0f} per step)")


def xla_programs(size=784, steps=8, hidden=(512, 512), batch=128):
    x = tf.constant(np.random.default_rng(0).normal(size=(batch, size)).astype(np.float32))
    print(f"\nXLA-optimised HLO of RealNVP log_prob (D={size}, {steps} couplings, MLP {hidden}):")
    for who, model in (
        ("ours", keras_models.RealNVP(event_shape=(size,), num_couplings=steps, hidden_units=hidden, actnorm=False)),
        ("tfb.RealNVP", tfp_peers.TFPRealNVPModel(size, steps, hidden)),
    ):
        hlo = tf.function(model.log_prob, jit_compile=True).experimental_get_compiler_ir(x)(stage="optimized_hlo")
        entry = hlo[hlo.index("ENTRY") :]
        ops = collections.Counter(re.findall(r"= \S+ ([\w-]+)\(", entry))
        dots = len(re.findall(r" dot\(", hlo))
        print(f"  {who:12s} dots {dots:3d}, entry instructions {dict(ops.most_common(5))}")


class patched:
    """Context manager: set attributes of classes for the duration of an experiment, then restore them."""

    def __init__(self, *changes):
        self.changes = changes  # (class, attribute name, new value)

    def __enter__(self):
        self.saved = [(cls, name, cls.__dict__[name]) for cls, name, _ in self.changes]
        for cls, name, value in self.changes:
            setattr(cls, name, value)

    def __exit__(self, *exc):
        for cls, name, value in self.saved:
            setattr(cls, name, value)


class _TwoPassMAF(tfp.bijectors.MaskedAutoregressiveFlow):
    """TFP's class as it is (two network passes in the density direction), never sharing TFP's cache."""

    def _get_parameterization(self):
        return id(self)


def _timed_experiment(title, model, x, changes, repeats=21):
    """Time model.log_prob and model.train_step as they are against the same model with `changes` applied."""
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    model.optimizer.build(model.trainable_variables)
    plain = {"log_prob": tf.function(model.log_prob), "train_step": tf.function(model.train_step)}
    for _ in range(3):
        plain["train_step"](x)  # traced with the classes as they are; moves the weights off the identity
    reference = plain["log_prob"](x).numpy()
    with patched(*changes):
        lean = {"log_prob": tf.function(model.log_prob), "train_step": tf.function(model.train_step)}
        difference = float(np.max(np.abs(lean["log_prob"](x).numpy() - reference) / (1 + np.abs(reference))))
        lean["train_step"](x)
    print(f"\n{title}: patched log_prob differs by {difference:.1e} (relative)")
    for metric in ("log_prob", "train_step"):
        timing = time_alternating(
            lambda f=lean[metric]: f(x),
            lambda f=plain[metric]: f(x),
            warmup=2,
            repeats=repeats,
            min_measure_seconds=0.05,
        )
        print(
            f"  {metric:10s} patched / as-is: median {timing.ratio:.2f}, minima {timing.min_ratio:.2f} "
            f"({1e3 * timing.ours:.2f} vs {1e3 * timing.theirs:.2f} ms)"
        )


def what_if_timings():
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(128, 784)).astype(np.float32))
    _timed_experiment(
        "RealNVP D=784, full-width conditioner I/O (the pre-block path)",
        keras_models.RealNVP(event_shape=(784,), actnorm=False),
        x,
        [(MaskedConditioner, "block_split", property(lambda self: None))],
    )
    x = tf.constant(rng.normal(size=(128, 64)).astype(np.float32))
    _timed_experiment(
        "MAF D=64, two MADE passes per step (TFP's own class)",
        keras_models.MAF(event_shape=(64,), actnorm=False),
        x,
        [(keras_models.layers.masked_autoregressive, "OnePassMaskedAutoregressiveFlow", _TwoPassMAF)],
    )


if __name__ == "__main__":
    conditioner_passes()
    xla_programs()
    what_if_timings()
