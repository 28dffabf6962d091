"""Conditional flows against their unconditional twins: does knowing c make p(x | c) the better model of x?

    python benchmarks/conditional_vs_unconditional.py [--quick] [--seeds 0 1 2] [--data spiral_arms ...]
                                                      [--models RealNVP MAF NSF] [--out results.json]

For each data set, model kind and seed, two models of the same architecture, budget and initialisation seed:
  - conditional: `context_shape=(K,)`, trained with `fit` on (x, c) pairs, scored by the held-out NLL of x
    given its own class, -E log q(x | c);
  - unconditional: the same preset without a context, trained on x alone, scored by -E log q(x).
The truth bounds both: NLL(x) - NLL(x | c) of the true densities is the mutual information I(X; C) <= log K,
which the table prints, with each model's KL gap to its own target (E log p(x | c) - log q(x | c), and
E log p(x) - log q(x)). Data (`unseen_data.build_conditional`, new draws per seed): spiral_arms (the spiral
mixture in 4 arms, not shipped) and the shipped conditional two_moons and eight_gaussians.

The check (exit 1 when it fails): on every (data, model) row the conditional model's median held-out NLL over
seeds is below the unconditional one's. `--quick`: 3 seeds, small networks, 500 steps, about 5 minutes on 2 cores.
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
import tensorflow as tf
import unseen_data

import keras_models

FULL = dict(num_layers=6, hidden=(64, 64), batch=256, steps=3000, lr=1e-3, num_train=10_000, num_test=20_000)
QUICK = dict(num_layers=4, hidden=(32, 32), batch=256, steps=500, lr=1e-3, num_train=5000, num_test=5000)
DRY = dict(QUICK, steps=3, num_train=256, num_test=256)
MODELS = ("RealNVP", "MAF", "NSF")


def build_model(kind, size, budget, context_shape):
    layers, hidden = budget["num_layers"], budget["hidden"]
    common = dict(event_shape=(size,), hidden_units=hidden, context_shape=context_shape)
    if kind == "RealNVP":
        return keras_models.RealNVP(num_couplings=layers, **common)
    if kind == "MAF":
        return keras_models.MAF(num_layers=layers, **common)
    if kind == "NSF":
        return keras_models.NSF(variant="coupling", num_layers=layers, **common)
    raise ValueError(f"`kind` must be one of {MODELS}; received {kind!r}")


def fit_and_score(kind, data, budget, seed, conditional):
    """(held-out NLL, held-out KL gap to the matching true density) of one model."""
    keras.utils.set_random_seed(seed)
    x, c = data.train
    model = build_model(kind, x.shape[1], budget, (data.num_classes,) if conditional else None)
    model.compile(optimizer=keras.optimizers.Adam(budget["lr"]))
    train = (x, c) if conditional else x
    batches = tf.data.Dataset.from_tensor_slices(train).shuffle(len(x), seed=seed).repeat()
    model.fit(
        batches.batch(budget["batch"], drop_remainder=True).prefetch(2),
        epochs=1,
        steps_per_epoch=budget["steps"],
        verbose=0,
    )
    x_test, c_test = data.test
    log_q = (model.log_prob(x_test, c_test) if conditional else model.log_prob(x_test)).numpy().astype(np.float64)
    x64 = x_test.astype(np.float64)
    log_p = data.log_prob_given(x64, c_test) if conditional else data.log_prob(x64)
    return float(-np.mean(log_q)), float(np.mean(log_p - log_q))


def _median(values):
    """Median over seeds, a failed fit (NaN or infinite) counting as the worst."""
    return statistics.median([v if np.isfinite(v) else math.inf for v in values])


def run(names, seeds, budget, models):
    rows = []
    for name in names:
        per_seed = []
        for seed in seeds:
            data = unseen_data.build_conditional(name, seed, num_train=budget["num_train"], num_test=budget["num_test"])
            x64, c = data.test[0].astype(np.float64), data.test[1]
            info = float(np.mean(data.log_prob_given(x64, c) - data.log_prob(x64)))  # I(X; C), estimated
            per_seed.append((data, info))
        for kind in models:
            result = {"conditional": [], "unconditional": []}
            for seed, (data, _) in zip(seeds, per_seed):
                for side in result:
                    nll, gap = fit_and_score(kind, data, budget, seed, conditional=side == "conditional")
                    result[side].append((nll, gap))
                    print(f"{name} seed {seed} {kind} {side}: NLL {nll:.4f}, KL gap {gap:.4f}", flush=True)
            row = dict(
                data=name,
                model=kind,
                seeds=list(seeds),
                num_classes=per_seed[0][0].num_classes,
                mutual_information=statistics.median([i for _, i in per_seed]),
            )
            for side, values in result.items():
                row[f"{side}_nll"] = [v for v, _ in values]
                row[f"{side}_kl_gap"] = [g for _, g in values]
                row[f"{side}_nll_median"] = _median(row[f"{side}_nll"])
                row[f"{side}_kl_gap_median"] = _median(row[f"{side}_kl_gap"])
            rows.append(row)
    return rows


def failures(rows):
    """The rows where the conditional model's median held-out NLL is not below the unconditional one's."""
    return [r for r in rows if not r["conditional_nll_median"] < r["unconditional_nll_median"]]


def print_table(rows, budget):
    print(
        f"\n{budget['steps']} steps, {budget['num_layers']} layers of {budget['hidden']} units, batch "
        f"{budget['batch']}; held-out medians over seeds (min-max)\n"
    )
    print(
        "| data | model | NLL(x given c) | NLL(x) | difference (true I(X;C)) | KL gap: conditional | "
        "unconditional |\n|---|---|---|---|---|---|---|"
    )
    for r in rows:

        def spread(key, r=r):
            values = r[key]
            return f"{r[key + '_median']:.3f} ({min(values):.3f}-{max(values):.3f})"

        difference = r["unconditional_nll_median"] - r["conditional_nll_median"]
        print(
            f"| {r['data']} | {r['model']} | {spread('conditional_nll')} | {spread('unconditional_nll')} | "
            f"{difference:.3f} ({r['mutual_information']:.3f}) | {spread('conditional_kl_gap')} | "
            f"{spread('unconditional_kl_gap')} |"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small networks, 500 steps (about 5 minutes)")
    parser.add_argument("--dry-run", action="store_true", help="one seed, a few steps, tiny data (no verdict)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--data", nargs="+", default=list(unseen_data.CONDITIONAL_NAMES))
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--out", default=None, help="JSON file for the rows (default: none written)")
    args = parser.parse_args(argv)
    budget = DRY if args.dry_run else QUICK if args.quick else FULL
    seeds = args.seeds[:1] if args.dry_run else args.seeds
    start = time.perf_counter()
    rows = run(args.data, seeds, budget, args.models)
    print_table(rows, budget)
    print(f"\n{time.perf_counter() - start:.0f} s")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(
                dict(budget={k: list(v) if isinstance(v, tuple) else v for k, v in budget.items()}, rows=rows),
                f,
                indent=1,
            )
    if args.dry_run:
        return 0
    lost = failures(rows)
    for r in lost:
        print(
            f"FAIL {r['data']} {r['model']}: conditional NLL {r['conditional_nll_median']:.4f} is not below the "
            f"unconditional {r['unconditional_nll_median']:.4f}",
            file=sys.stderr,
        )
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
