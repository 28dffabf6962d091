"""Why the timings come out as they do: conditioner passes per log_prob, and what XLA makes of them.

    python benchmarks/diagnose.py

1. Counts the conditioner-network calls made while tracing one `log_prob` (RealNVP: the Keras MLPs; MAF: our
   MADE and TFP's AutoregressiveNetwork), ours and TFP's. A count of twice the number of steps means the
   network runs twice per step: once for the inverse and once for its log-det.
2. Compiles both RealNVP `log_prob`s with XLA and counts the optimised HLO's dot products and instructions:
   XLA's common-subexpression elimination merges TFP's duplicate conditioner passes, so with XLA both sides
   run the same program; without XLA, TFP pays for the second pass.
Sizes are small (the counts do not depend on them); the whole script takes well under a minute on 2 cores.
"""
import collections
import os
import re
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_probability as tfp  # noqa: E402

from keras_models import _backend  # noqa: E402,F401
import keras  # noqa: E402

import keras_models  # noqa: E402
from keras_models.layers.made import MADE  # noqa: E402
import tfp_peers  # noqa: E402


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
    ours_nvp = keras_models.RealNVP(event_shape=(size,), num_couplings=steps, hidden_units=(32,))
    theirs_nvp = tfp_peers.TFPRealNVPModel(size, steps, (32,))
    ours_maf = keras_models.MAF(event_shape=(size,), num_layers=steps, hidden_units=(32,))
    theirs_maf = tfp_peers.tfp_maf(size, steps, (32,))
    rows = [
        ("RealNVP", "ours", count_calls(keras.Sequential, lambda: tf.function(ours_nvp.log_prob)(x))),
        ("RealNVP", "tfb.RealNVP", count_calls(keras.Sequential, lambda: tf.function(theirs_nvp.log_prob)(x))),
        ("MAF", "ours", count_calls(MADE, lambda: tf.function(ours_maf.log_prob)(x))),
        ("MAF", "tfb.MaskedAutoregressiveFlow",
         count_calls(tfp.bijectors.AutoregressiveNetwork, lambda: tf.function(theirs_maf.log_prob)(x))),
    ]
    print(f"Conditioner passes per log_prob ({steps} steps):")
    for model, who, calls in rows:
        print(f"  {model:8s} {who:30s} {calls:3d}  ({calls / steps:.0f} per step)")


def xla_programs(size=784, steps=8, hidden=(512, 512), batch=128):
    x = tf.constant(np.random.default_rng(0).normal(size=(batch, size)).astype(np.float32))
    print(f"\nXLA-optimised HLO of RealNVP log_prob (D={size}, {steps} couplings, MLP {hidden}):")
    for who, model in (("ours", keras_models.RealNVP(event_shape=(size,), num_couplings=steps,
                                                      hidden_units=hidden)),
                       ("tfb.RealNVP", tfp_peers.TFPRealNVPModel(size, steps, hidden))):
        hlo = tf.function(model.log_prob, jit_compile=True).experimental_get_compiler_ir(x)(stage="optimized_hlo")
        entry = hlo[hlo.index("ENTRY"):]
        ops = collections.Counter(re.findall(r"= \S+ ([\w-]+)\(", entry))
        dots = len(re.findall(r" dot\(", hlo))
        print(f"  {who:12s} dots {dots:3d}, entry instructions {dict(ops.most_common(5))}")


if __name__ == "__main__":
    conditioner_passes()
    xla_programs()
