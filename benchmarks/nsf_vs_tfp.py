"""Neural spline flows side by side: our NSF (coupling) vs the same spline coupling flow in plain TFP vs RealNVP.

    python benchmarks/nsf_vs_tfp.py [--quick] [--seeds 0 1 2] [--data spiral_mixture banana_t]
                                    [--bound 3.0] [--num-bins 8] [--models NAME ...] [--out results.json]

Contenders, all trained with `fit` for the same steps on the same batches (seed, batch, Adam learning rate):
  - "NSF": `keras_models.NSF(variant="coupling")` (ActNorm before every step, the default);
  - "NSF-no-actnorm": the same without ActNorm (what the ActNorms are worth);
  - "plain TFP spline": K x [`tfb.RealNVP(bijector_fn=...)` returning `tfb.RationalQuadraticSpline` from a
    Keras-default MLP, as TFP's RationalQuadraticSpline docstring builds it, then `tfb.Permute` (reversal)];
  - "RealNVP": `keras_models.RealNVP` with the same number of couplings and widths.
Data: `unseen_data`'s spiral_mixture (16 Gaussians on a spiral) and banana_t (heavy-tailed Student-t banana),
drawn anew per seed, which no preset was tuned on. Score: the KL gap E_p[log p - log q] on the held-out split
(lower is better), median (min-max) over seeds; step time: the median over seeds of the seconds per training
step (the fastest of the blocks of `WARMUP` steps after the first, tracing excluded), as a ratio to the plain TFP
spline flow in the same run. `--quick`: 3 seeds, small networks, 400 steps without XLA, no NSF-no-actnorm:
about 3 minutes on 2 cores.
"""

import argparse
import json
import math
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras
import numpy as np
import plain_tfp
import tensorflow as tf
import tensorflow_probability as tfp
import unseen_data

import keras_models

tfb = tfp.bijectors

WARMUP = 50  # steps (one `steps_per_execution` block) before the clock starts: tracing and compilation
NUM_BINS, BOUND = 8, 3.0
FULL = dict(
    num_layers=6,
    hidden=(64, 64),
    batch=256,
    steps=3000,
    lr=1e-3,
    num_train=10_000,
    num_test=20_000,
    jit_compile=True,
    score_chunk=2000,
)
QUICK = dict(
    num_layers=4,
    hidden=(32, 32),
    batch=256,
    steps=400,
    lr=1e-3,
    num_train=5000,
    num_test=5000,
    jit_compile=False,
    score_chunk=5000,
)
DRY = dict(QUICK, steps=2 * WARMUP, num_train=512, num_test=512, score_chunk=512)


PlainSplineRealNVP = plain_tfp.PlainNSF  # the same build, shared with vs_plain_tfp


QUICK_MODELS = ("NSF", "plain TFP spline", "RealNVP")  # --quick leaves out NSF-no-actnorm (the time limit)


def contenders(size, budget):
    layers, hidden = budget["num_layers"], budget["hidden"]
    spline = dict(num_bins=budget["num_bins"], bound=budget["bound"])
    nsf = dict(event_shape=(size,), variant="coupling", num_layers=layers, hidden_units=hidden, **spline)
    return {
        "NSF": lambda: keras_models.NSF(**nsf),
        "NSF-no-actnorm": lambda: keras_models.NSF(**nsf, actnorm=False),
        "plain TFP spline": lambda: PlainSplineRealNVP(size, layers, hidden, **spline),
        "RealNVP": lambda: keras_models.RealNVP(event_shape=(size,), num_couplings=layers, hidden_units=hidden),
    }


def _batches(data, batch, seed):
    dataset = tf.data.Dataset.from_tensor_slices(data.train).shuffle(len(data.train), seed=seed).repeat()
    return dataset.batch(batch, drop_remainder=True).prefetch(2)


class BlockTimer(keras.callbacks.Callback):
    """Seconds of every block of `steps_per_execution` (= WARMUP) training steps; the fastest block after the
    first is the one least disturbed by other load on the machine."""

    def __init__(self):
        super().__init__()
        self.seconds, self._start = [], None

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        float((logs or {}).get("loss", 0.0))  # waits for the block to finish
        self.seconds.append(time.perf_counter() - self._start)


def fit_and_score(build, data, budget, seed):
    """(held-out KL gap, seconds per step after the warm-up) of one contender on one data set and seed."""
    keras.utils.set_random_seed(seed)
    model = build()
    model.compile(
        optimizer=keras.optimizers.Adam(budget["lr"]), jit_compile=budget["jit_compile"], steps_per_execution=WARMUP
    )
    timer = BlockTimer()
    model.fit(
        _batches(data, budget["batch"], seed), epochs=1, steps_per_epoch=budget["steps"], verbose=0, callbacks=[timer]
    )
    seconds_per_step = min(timer.seconds[1:]) / WARMUP  # the first block traces (and compiles)
    # Equal chunks: one trace (and, with XLA, one compilation) of log_prob.
    log_q = tf.function(model.log_prob, jit_compile=budget["jit_compile"])
    chunk = budget["score_chunk"]
    values = np.concatenate(
        [
            log_q(tf.constant(data.test[i : i + chunk])).numpy().astype(np.float64)
            for i in range(0, len(data.test), chunk)
        ]
    )
    return float(np.mean(data.log_prob(data.test.astype(np.float64)) - values)), seconds_per_step


def _median(values):
    """Median over seeds, a failed fit (NaN or infinite) counting as the worst."""
    return statistics.median([v if np.isfinite(v) else math.inf for v in values])


def run(names, seeds, budget, models, rotate=True):
    rows = []
    for name in names:
        results = {}
        for seed in seeds:
            data = unseen_data.build(
                name, seed, num_train=budget["num_train"], num_test=budget["num_test"], rotate=rotate
            )
            for model_name, build in contenders(data.train.shape[1], budget).items():
                if model_name not in models:
                    continue
                gap, step = fit_and_score(build, data, budget, seed)
                results.setdefault(model_name, []).append((gap, step))
                print(f"{name} seed {seed} {model_name}: KL gap {gap:.4f}, {1e3 * step:.2f} ms/step", flush=True)
        plain_step = _median([s for _, s in results["plain TFP spline"]])
        for model_name, values in results.items():
            gaps, steps = [g for g, _ in values], [s for _, s in values]
            rows.append(
                dict(
                    data=name,
                    model=model_name,
                    seeds=list(seeds),
                    kl_gaps=gaps,
                    seconds_per_step=steps,
                    kl_gap_median=_median(gaps),
                    step_time_ratio=_median(steps) / plain_step,
                )
            )
    return rows


def print_table(rows, budget):
    print(
        f"\n{budget['steps']} steps, {budget['num_layers']} couplings of {budget['hidden']} units, K = "
        f"{budget['num_bins']} bins on [-{budget['bound']:g}, {budget['bound']:g}], XLA {budget['jit_compile']}\n"
    )
    print("| data | model | held-out KL gap: median (min-max) | step time / plain TFP spline |\n|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['data']} | {r['model']} | {r['kl_gap_median']:.4f} ({min(r['kl_gaps']):.4f}-"
            f"{max(r['kl_gaps']):.4f}) | {r['step_time_ratio']:.2f} |"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small networks, 400 steps, no XLA (< 3 minutes)")
    parser.add_argument("--dry-run", action="store_true", help="one seed, a few steps, tiny data (tests only)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--data", nargs="+", default=["spiral_mixture", "banana_t"])
    parser.add_argument("--bound", type=float, default=BOUND, help="B: the splines act on [-B, B]")
    parser.add_argument("--num-bins", type=int, default=NUM_BINS, help="K, bins per spline")
    parser.add_argument(
        "--models", nargs="+", default=None, help="contenders (default: all; --quick: " + ", ".join(QUICK_MODELS) + ")"
    )
    parser.add_argument(
        "--no-rotation",
        dest="rotate",
        action="store_false",
        help="2-D densities in their fixed orientation (the tables before 2026-12-06)",
    )
    parser.add_argument("--out", default=None, help="JSON file for the rows (default: none written)")
    args = parser.parse_args(argv)
    budget = dict(DRY if args.dry_run else QUICK if args.quick else FULL, bound=args.bound, num_bins=args.num_bins)
    seeds = args.seeds[:1] if args.dry_run else args.seeds
    start = time.perf_counter()
    models = args.models or (
        QUICK_MODELS if args.quick or args.dry_run else ("NSF", "NSF-no-actnorm", "plain TFP spline", "RealNVP")
    )
    if "plain TFP spline" not in models:
        parser.error("--models must include 'plain TFP spline' (the step times are ratios to it)")
    rows = run(args.data, seeds, budget, models, rotate=args.rotate)
    print_table(rows, budget)
    print(f"\n{time.perf_counter() - start:.0f} s")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(
                dict(budget={k: list(v) if isinstance(v, tuple) else v for k, v in budget.items()}, rows=rows),
                f,
                indent=1,
            )
    return rows


if __name__ == "__main__":
    main()
