"""What `mixing="lu"` costs per training step against each vector preset's default mixing, in one run.

    python benchmarks/mixing_cost.py [--dim 8] [--batch 256] [--hidden 64] [--layers 5] [--xla]

For RealNVP, NSF (coupling) and MAF: the default model (RealNVP: alternating masks; NSF, MAF: reversals) and the
same model with `mixing="lu"` (a learned W = P L U between steps, keras_models/flows/mixing.py), the same widths
and steps, trained on the same batch of D-dimensional correlated Gaussian data. Timed with the suite's protocol
(benchmarks/harness.py: the step `fit` runs, `model.train_step` in a `tf.function`, warmed up, then timed in
alternating rounds; medians). Prints seconds per step and the ratio lu / default (above 1: lu is slower).
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras
import numpy as np
import tensorflow as tf
from harness import device_description, time_alternating
from speed_cases import keras_train_step

from keras_models import MAF, NSF, RealNVP


def presets(args):
    hidden = (args.hidden, args.hidden)
    return {
        "RealNVP": lambda **kw: RealNVP((args.dim,), num_couplings=args.layers, hidden_units=hidden, **kw),
        "NSF": lambda **kw: NSF((args.dim,), num_layers=args.layers, hidden_units=hidden, **kw),
        "MAF": lambda **kw: MAF((args.dim,), num_layers=args.layers, hidden_units=hidden, **kw),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dim", type=int, default=8)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--xla", action="store_true", help="compile the train steps with XLA")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(args.batch, args.dim)) @ rng.normal(size=(args.dim, args.dim)), tf.float32)
    print(f"device: {device_description()}; D={args.dim}, batch {args.batch}, {args.layers} steps, xla={args.xla}")
    print(f"{'preset':8} {'default s/step':>15} {'lu s/step':>12} {'ratio lu/default':>17} {'min-ratio':>10}")
    for name, make in presets(args).items():
        keras.utils.set_random_seed(0)
        default, lu = make(), make(mixing="lu")
        steps = []
        for model in (default, lu):
            model.compile(optimizer=keras.optimizers.Adam(1e-3))
            model.initialize_from_data(x)
            steps.append(keras_train_step(model, args.xla))
        timing = time_alternating(
            lambda lu_step=steps[1]: lu_step(x),
            lambda default_step=steps[0]: default_step(x),
            warmup=3,
            repeats=args.repeats,
            min_measure_seconds=0.05,
        )
        print(
            f"{name:8} {timing.theirs:15.5f} {timing.ours:12.5f} {timing.ratio:17.2f} {timing.min_ratio:10.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
