"""Fit quality on unseen data: our presets against the same flows written plainly with TFP, median over seeds.

    python benchmarks/vs_plain_tfp.py [--quick] [--seeds 0 1 2] [--data NAME ...] [--models NAME ...]
                                      [--keep-best] [--scale C] [--out benchmarks/results-vs-plain-<mode>.json]
    python benchmarks/vs_plain_tfp.py --table FILE [FILE ...]    # judge earlier runs, one comparison's seeds merged

For every data set of `unseen_data` (drawn anew from each seed: new points, new mixing matrices, new
train/test splits) and every seed, each pair (ours, plain TFP build of the same architecture: `plain_tfp`) is
trained with `fit` for the same steps on the same batches (same seed, batch, Adam learning rate, XLA), then
scored on the held-out split: the KL gap E_p[log p - log q] where the density is known, else bits/dim (images).
The training-split score is reported beside it (the generalisation gap). Lower is better for both metrics.

Prints one line per fit, then per (data, model) the median and range over seeds for ours and theirs, and exits
with status 1 when ours is worse than theirs on the median of any pair (within `TOLERANCE` of the metric),
so a regression fails loudly. `--quick` (three seeds; spiral_mixture and ica8; RealNVP and MAF; 400 steps of
small networks without XLA, plain builds with zero-init only): under 5 minutes on 2 cores.

Memory grows by about 0.14 GB per fit (XLA programs compiled per fit are kept; `keras.backend.clear_session`
does not free them): a run of 30 spiral fits passed 15 GB, so run long studies one data set at a time.

`--keep-best` trains both sides the way `tfp-flows train` does by default: the same steps, but each keeps the
weights of its best validation checkpoint (one every tenth of the steps; the first half of the held-out split
picks it, the second half scores it). The verdict and the exit status then go by those scores, and the table
also says where ours loses at the last step. It is the fair test where a budget overfits a small training set
for both sides (digits64: 1,200 steps of 128 over 1,500 images), which then rewards the slower learner.
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
import unseen_data

import keras_models

# Absolute slack (nats for KL gaps, bits/dim for images) within which "ours >= theirs" counts as a tie.
TOLERANCE = 0.002
# --keep-best: validation checkpoints per fit (every budget's step count is a multiple of it).
CHECKPOINTS = 10


def _contenders(size, hidden, ours_args=None):
    """model name -> (ours, {variant: plain TFP constructor}), for an event of `size` dimensions.

    Each plain build comes in the two forms a user ends up with: Keras' default initialisation throughout (TFP's
    own examples), and, because that often overflows at the first step once several unbounded affine couplings
    compound, the same with a zero-initialised last layer. "Theirs" is the one with the better median over
    seeds (`best_variant`).
    """
    plain = lambda build: {"keras-default-init": lambda: build(False), "zero-init": lambda: build(True)}  # noqa: E731
    extra = dict(ours_args or {})
    return {
        "RealNVP": (
            lambda: keras_models.RealNVP(event_shape=(size,), num_couplings=8, hidden_units=hidden, **extra),
            plain(lambda zero: plain_tfp.PlainRealNVP(size, 8, hidden, zero_init=zero)),
        ),
        "NICE": (
            lambda: keras_models.NICE(event_shape=(size,), num_couplings=4, hidden_units=hidden, **extra),
            {"keras-default-init": lambda: plain_tfp.PlainNICE(size, 4, hidden)},
        ),  # additive: nothing overflows
        "MAF": (
            lambda: keras_models.MAF(event_shape=(size,), num_layers=5, hidden_units=hidden, **extra),
            plain(lambda zero: plain_tfp.PlainMAF(size, 5, hidden, zero_init=zero)),
        ),
        "Glow-2D": (
            lambda: keras_models.Glow(event_shape=(size,), num_steps=8, hidden_channels=hidden[0], seed=0, **extra),
            plain(lambda zero: plain_tfp.PlainGlow2D(size, 8, hidden, zero_init=zero)),
        ),
    }


# Per data set: hidden widths, batch, steps, learning rate (Adam, constant, as a user would start).
BUDGETS = {
    "spiral_mixture": dict(hidden=(64, 64), batch=256, steps=3000, lr=1e-3),
    "banana_t": dict(hidden=(64, 64), batch=256, steps=3000, lr=1e-3),
    "ica8": dict(hidden=(128, 128), batch=256, steps=3000, lr=1e-3),
    "ica32": dict(hidden=(256, 256), batch=256, steps=3000, lr=1e-3),
    "digits64": dict(hidden=(256, 256), batch=128, steps=1200, lr=1e-3),
    "mnist784": dict(hidden=(512, 512), batch=128, steps=310, lr=1e-3),  # the 10 epochs of 4,000
}
# --quick: two data sets, RealNVP and MAF, small widths and budgets, no XLA (compiling costs more than it saves),
# and only the zero-init plain builds (the Keras-default ones overflow on most data and lose elsewhere).
QUICK = dict(
    data=("spiral_mixture", "ica8"),
    models=("RealNVP", "MAF"),
    hidden=(32, 32),
    steps=400,
    num_train=5000,
    num_test=5000,
)


def _train_batches(data, batch, seed):
    dataset = tf.data.Dataset.from_tensor_slices(data.train).shuffle(len(data.train), seed=seed).repeat()
    dataset = dataset.batch(batch, drop_remainder=True)
    if data.image:
        alpha = unseen_data.LOGIT_ALPHA

        def dequantize(pixels):  # fresh uniform noise for every batch, then the logit (RealNVP sec. 4.1)
            x = (pixels + tf.random.uniform(tf.shape(pixels), seed=seed)) / 256.0
            s = alpha + (1 - 2 * alpha) * x
            return tf.math.log(s) - tf.math.log1p(-s)

        dataset = dataset.map(dequantize)
    return dataset.prefetch(2)


def _train(model, data, budget, steps, seed, jit_compile=True, on_chunk=None):
    """`steps` Adam steps of `model` on `data`'s training split; `on_chunk()` after every tenth of them."""
    dataset = _train_batches(data, budget["batch"], seed)
    optimizer = keras.optimizers.Adam(budget["lr"])
    every = steps // CHECKPOINTS if on_chunk else steps
    start = time.perf_counter()
    if isinstance(model, plain_tfp.PlainMAF):
        model.fit(dataset, steps, optimizer, jit_compile=jit_compile, every=every, on_chunk=on_chunk)
    else:
        # Keras runs whole blocks of `steps_per_execution` steps, rounding each epoch up to a multiple of it (310
        # steps at 50 per block ran 350 before 2026-12-06); a divisor of the epoch keeps the count exact.
        model.compile(optimizer=optimizer, jit_compile=jit_compile, steps_per_execution=math.gcd(every, 50))
        if hasattr(model, "initialize"):
            model.initialize(next(iter(dataset)))
        # Keras keeps one iterator over the repeated data set across these "epochs": the same batches as one
        # epoch of `steps`, with a look at the validation split in between.
        callbacks = [keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: on_chunk())] if on_chunk else []
        model.fit(dataset, epochs=steps // every, steps_per_epoch=every, verbose=0, callbacks=callbacks)
    return time.perf_counter() - start


def _log_q(log_q, points):
    """log q(points) in float64, in chunks of 2,000 (`log_q`: the fit's one compiled `log_prob`)."""
    return np.concatenate(
        [log_q(tf.constant(points[i : i + 2000])).numpy().astype(np.float64) for i in range(0, len(points), 2000)]
    )


def _score(log_q, data, points):
    """KL gap (densities with a known log p) or bits/dim (images) of the model behind `log_q` on `points`."""
    values = _log_q(log_q, points)
    if data.image:
        return float(np.mean(unseen_data.to_bits_per_dim(values, points)))
    return float(np.mean(data.log_prob(points.astype(np.float64)) - values))


def run_fit(
    name, model_name, seed, quick, data=None, ours_args=None, plain=True, rotate=True, keep_best=False, scale=1.0
):
    """{"ours": scores, "variants": {plain variant: scores}} for one data set, model and seed, where scores are
    (test, train, seconds) at the last step, and with `keep_best` also (best test, best step): the held-out split
    is then halved, its first half picks the checkpoint of lowest validation loss (every tenth of the steps, the
    way `tfp-flows train` keeps its best epoch), and both test scores come from the second half."""
    data = data or unseen_data.build(
        name,
        seed,
        num_train=QUICK["num_train"] if quick else 10_000,
        num_test=QUICK["num_test"] if quick else 20_000,
        rotate=rotate,
        scale=scale,
    )
    budget = dict(BUDGETS[name], **({"hidden": QUICK["hidden"]} if quick else {}))
    steps = QUICK["steps"] if quick else budget["steps"]
    size = data.train.shape[1]
    if data.image:
        rng = np.random.default_rng(seed)
        train_points = unseen_data.to_logit_space(data.train[:1000], rng).astype(np.float32)
    else:
        train_points = data.train[:5000]
    validation, test = np.array_split(data.test, 2) if keep_best else (None, data.test)
    ours, plain_variants = _contenders(size, budget["hidden"], ours_args)[model_name]
    if not plain:
        plain_variants = {}
    elif quick and "zero-init" in plain_variants:
        plain_variants = {"zero-init": plain_variants["zero-init"]}  # the default init mostly overflows anyway

    def fit_and_score(build):
        keras.utils.set_random_seed(seed)
        model = build()
        best = dict(loss=math.inf, weights=None, step=0, checkpoints=0)
        log_q = tf.function(model.log_prob, jit_compile=True)  # one per fit: the checkpoints and the scores

        def checkpoint():  # the training loss (mean NLL) on the validation half; NaN never counts as best
            best["checkpoints"] += 1
            loss = -float(np.mean(_log_q(log_q, validation)))
            if loss < best["loss"]:
                best.update(loss=loss, weights=model.get_weights(), step=best["checkpoints"] * steps // CHECKPOINTS)

        seconds = _train(
            model, data, budget, steps, seed, jit_compile=not quick, on_chunk=checkpoint if keep_best else None
        )
        scores = (_score(log_q, data, test), _score(log_q, data, train_points), seconds)
        if not keep_best:
            return scores
        if best["weights"] is None:  # every checkpoint NaN: the last weights are all there is
            return scores + (scores[0], steps)
        model.set_weights(best["weights"])
        return scores + (_score(log_q, data, test), best["step"])

    result = {"ours": fit_and_score(ours), "variants": {}}
    for variant, build in plain_variants.items():
        result["variants"][variant] = fit_and_score(build)
    return result


def _failed_as_worst(score):
    """A failed fit (NaN or infinite score) counts as the worst score: +inf."""
    return score if np.isfinite(score) else math.inf


def _median(values):
    """Median over seeds, a failed fit counting as the worst."""
    return statistics.median([_failed_as_worst(v) for v in values])


def best_variant(variants):
    """The plain variant (per-seed dicts variant -> test score) with the lowest median over seeds, or None.

    One variant for all seeds of a data set, as a user would settle on one build; taking the better variant
    seed by seed would hand the plain side the minimum of two noisy draws on every seed.
    """
    if not variants or not variants[0]:
        return None
    return min(variants[0], key=lambda k: _median([v[k] for v in variants]))


def _verdict(ours, theirs):
    return "ours >= plain" if ours <= theirs + TOLERANCE and np.isfinite(ours) else "LOSES"


def make_row(name, model_name, seeds, ours, variants, variants_train, plain=True, best=None, scale=1.0, ours_args=None):
    """One comparison: `ours` [(test, train)] per seed, `variants` / `variants_train` [{variant: score}];
    `best` (from --keep-best runs): {"ours": [(test, step)], "variants": [{variant: (test, step)}]} per seed,
    judged the same way with its own choice of plain variant. `scale` and `ours_args` say which data and which
    of our settings (--scale, --ours-args), so rows of other settings are never merged with these."""
    variant = best_variant(variants) if plain else None
    theirs = [v[variant] if variant else math.nan for v in variants]
    # Result files written before 2026-12-04 kept no training-split scores of the plain variants: None then.
    theirs_train = (
        None if variants_train is None else [v.get(variant, math.nan) if variant else math.nan for v in variants_train]
    )
    row = dict(
        data=name,
        model=model_name,
        scale=scale,
        ours_args=ours_args,
        seeds=list(seeds),
        metric="bits/dim" if name in unseen_data.IMAGE_BUILDERS else "KL gap (nats)",
        ours=[o[0] for o in ours],
        ours_train=[o[1] for o in ours],
        theirs=theirs,
        theirs_train=theirs_train,
        theirs_variant=variant,
        variants=variants,
        variants_train=variants_train,
    )
    row["ours_median"], row["theirs_median"] = _median(row["ours"]), _median(theirs)
    row["verdict"] = _verdict(row["ours_median"], row["theirs_median"]) if plain else "(ours only)"
    if best is not None:
        scores = [{k: v[0] for k, v in per_seed.items()} for per_seed in best["variants"]]
        best_variant_name = best_variant(scores) if plain else None
        row.update(
            best=best,
            ours_best=[o[0] for o in best["ours"]],
            theirs_best_variant=best_variant_name,
            theirs_best=[v[best_variant_name] if best_variant_name else math.nan for v in scores],
        )
        row["ours_best_median"], row["theirs_best_median"] = _median(row["ours_best"]), _median(row["theirs_best"])
        row["verdict_best"] = _verdict(row["ours_best_median"], row["theirs_best_median"]) if plain else "(ours only)"
    return row


def _label(row):
    """The data and model columns: --scale and --ours-args runs say so."""
    scale, args = row.get("scale", 1.0), row.get("ours_args")
    return (
        f"{row['data']}{f' x{scale:g}' if scale != 1.0 else ''}",
        f"{row['model']}{f' {json.dumps(args)}' if args else ''}",
    )


def _seeds_won(ours, theirs):
    """'k/n': on how many of the n seeds ours scored lower than the plain variant (a failed fit counts as worst)."""
    return f"{sum(_failed_as_worst(o) < _failed_as_worst(t) for o, t in zip(ours, theirs))}/{len(ours)}"


def print_table(rows):
    print(
        "\n| data | model | metric | ours: median (min-max) | plain TFP: median (min-max), variant | "
        "train (ours / plain) | ours better on | verdict |\n|---|---|---|---|---|---|---|---|"
    )
    for r in rows:
        print(
            f"| {' | '.join(_label(r))} | {r['metric']} | {r['ours_median']:.4f} ({min(r['ours']):.4f}-"
            f"{max(r['ours']):.4f}) | {r['theirs_median']:.4f} ({min(r['theirs']):.4f}-{max(r['theirs']):.4f}), "
            f"{r['theirs_variant']} | {_median(r['ours_train']):.4f} / "
            f"{'-' if r['theirs_train'] is None else format(_median(r['theirs_train']), '.4f')} | "
            f"{_seeds_won(r['ours'], r['theirs']) if r['theirs_variant'] else '-'} | {r['verdict']} |"
        )
    kept = [r for r in rows if "verdict_best" in r]
    if kept:
        print(
            "\nBest validation checkpoint (--keep-best; held-out second half):\n\n| data | model | metric | "
            "ours: median (min-max), steps | plain TFP: median (min-max), variant, steps | ours better on | "
            "verdict |\n|---|---|---|---|---|---|---|"
        )
    for r in kept:
        steps = [o[1] for o in r["best"]["ours"]]
        their_steps = (
            [v[r["theirs_best_variant"]][1] for v in r["best"]["variants"]] if r["theirs_best_variant"] else []
        )
        print(
            f"| {' | '.join(_label(r))} | {r['metric']} | {r['ours_best_median']:.4f} "
            f"({min(r['ours_best']):.4f}-{max(r['ours_best']):.4f}), {steps} | {r['theirs_best_median']:.4f} "
            f"({min(r['theirs_best']):.4f}-{max(r['theirs_best']):.4f}), {r['theirs_best_variant']}, "
            f"{their_steps} | {_seeds_won(r['ours_best'], r['theirs_best']) if r['theirs_best_variant'] else '-'} | "
            f"{r['verdict_best']} |"
        )
    if kept:
        last = [" ".join(_label(r)) for r in kept if r["verdict"] == "LOSES"]
        print(f"\nJudged on the best checkpoints; at the last step ours loses on: {last or 'none'}")


def table_from_files(paths):
    """Rows of earlier runs' JSON files, re-judged with `make_row`; ([rows], [losses]).

    Rows of the same comparison (data, model, --scale, --ours-args, plain or not, --keep-best or not) are merged
    across files, their seeds joined in file order: a study whose seeds ran in several runs (seeds 0-4, then
    5-10) is judged on all of them. A seed found twice for one comparison is an error, not a silent choice.
    """
    merged = {}
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            for r in json.load(handle)["rows"]:
                key = (
                    r["data"],
                    r["model"],
                    r.get("scale", 1.0),
                    json.dumps(r.get("ours_args"), sort_keys=True),
                    r["verdict"] != "(ours only)",
                    "best" in r,
                )
                into = merged.setdefault(key, dict(seeds=[], ours=[], variants=[], variants_train=[], best=None))
                repeated = sorted(set(into["seeds"]) & set(r["seeds"]))
                if repeated:
                    raise ValueError(
                        f"--table: seeds {repeated} of {' '.join(_label(r))} appear in more than one "
                        f"row (the second in {path}); pass each seed's run once"
                    )
                into["seeds"] += r["seeds"]
                into["ours"] += list(zip(r["ours"], r["ours_train"]))
                into["variants"] += r["variants"]
                # Files before 2026-12-04 kept no plain training scores: the merged row then has none either.
                has_train = into["variants_train"] is not None and r.get("variants_train") is not None
                into["variants_train"] = into["variants_train"] + r["variants_train"] if has_train else None
                if "best" in r:
                    into["best"] = into["best"] or {"ours": [], "variants": []}
                    into["best"]["ours"] += r["best"]["ours"]
                    into["best"]["variants"] += r["best"]["variants"]
    rows = [
        make_row(
            data,
            model,
            m["seeds"],
            m["ours"],
            m["variants"],
            m["variants_train"],
            plain,
            m["best"],
            scale,
            json.loads(args),
        )
        for (data, model, scale, args, plain, _), m in merged.items()
    ]
    return rows, _losses(rows)


def _losses(rows):
    """The rows ours loses: on the best checkpoints where a row has them (--keep-best), else at the last step."""
    return [" ".join(_label(r)) for r in rows if r.get("verdict_best", r["verdict"]) == "LOSES"]


def _describe(scores):
    """One fit's printed scores: test (train, seconds)[, best checkpoint's test at its step]."""
    text = f"{scores[0]:.4f} (train {scores[1]:.4f}, {scores[2]:.0f} s)"
    return text + (f", best {scores[3]:.4f} at step {scores[4]}" if len(scores) > 3 else "")


def applicable(model_name, name):
    """Glow-2D is compared on the low-dimensional sets only (its 1x1 'conv' is a dense D x D matrix)."""
    return not (model_name == "Glow-2D" and name in ("mnist784",))


def _positive_float(text):
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0; received {text!r}")
    return value


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--data", nargs="+", choices=unseen_data.NAMES, default=None)
    parser.add_argument("--models", nargs="+", choices=["RealNVP", "NICE", "MAF", "Glow-2D"], default=None)
    parser.add_argument(
        "--ours-args",
        type=json.loads,
        default=None,
        metavar="JSON",
        help='extra arguments of our models, e.g. \'{"actnorm": false, "log_scale_limit": 4}\' (studies)',
    )
    parser.add_argument(
        "--no-plain",
        dest="plain",
        action="store_false",
        help="train ours only (studies of our own settings; no verdict)",
    )
    parser.add_argument(
        "--no-rotation",
        dest="rotate",
        action="store_false",
        help="2-D densities in their fixed orientation (the runs before 2026-12-06)",
    )
    parser.add_argument(
        "--scale",
        type=_positive_float,
        default=1.0,
        metavar="C",
        help="the 2-D to 32-D densities' points times C, their log p adjusted (how a build depends "
        "on the data's spread; pixels keep their units)",
    )
    parser.add_argument(
        "--keep-best",
        action="store_true",
        help="also score both sides at their best validation checkpoint (half the held-out split "
        "picks it, the other half scores it), and judge on that",
    )
    parser.add_argument("--out", default=None)
    parser.add_argument(
        "--table",
        nargs="+",
        metavar="JSON",
        default=None,
        help="print the table of earlier runs' result files (e.g. one per data set) and exit",
    )
    args = parser.parse_args(argv)
    if args.table:
        rows, losses = table_from_files(args.table)
        print_table(rows)
        if losses:
            print(f"FAIL: ours loses on the median: {losses}", file=sys.stderr)
        return 1 if losses else 0
    names = args.data or (QUICK["data"] if args.quick else unseen_data.NAMES)
    pixels = [name for name in names if name in unseen_data.IMAGE_BUILDERS]
    if args.scale != 1.0 and pixels:  # before any fit: a run must not die at its first image set, results unwritten
        parser.error(
            f"--scale applies to the densities only (pixels have fixed units); received --scale "
            f"{args.scale:g} with {pixels}: pass --data with densities only"
        )
    args.models = args.models or list(QUICK["models"] if args.quick else ("RealNVP", "NICE", "MAF", "Glow-2D"))
    mode = "quick" if args.quick else "full"
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), f"results-vs-plain-{mode}.json")
    start = time.perf_counter()
    rows = []
    for name in names:
        for model_name in args.models:
            if not applicable(model_name, name):
                continue
            fits = []
            for seed in args.seeds:
                fit = run_fit(
                    name,
                    model_name,
                    seed,
                    args.quick,
                    ours_args=args.ours_args,
                    plain=args.plain,
                    rotate=args.rotate,
                    keep_best=args.keep_best,
                    scale=args.scale,
                )
                fits.append(fit)
                print(
                    f"  {name} {model_name} seed {seed}: ours {_describe(fit['ours'])}; plain TFP: "
                    f"{', '.join(f'{k} {_describe(v)}' for k, v in fit['variants'].items()) or '-'}",
                    flush=True,
                )
            best = None
            if args.keep_best:
                best = {
                    "ours": [f["ours"][3:] for f in fits],
                    "variants": [{k: v[3:] for k, v in f["variants"].items()} for f in fits],
                }
            rows.append(
                make_row(
                    name,
                    model_name,
                    args.seeds,
                    [f["ours"][:2] for f in fits],
                    [{k: v[0] for k, v in f["variants"].items()} for f in fits],
                    [{k: v[1] for k, v in f["variants"].items()} for f in fits],
                    args.plain,
                    best,
                    args.scale,
                    args.ours_args,
                )
            )
    losses = _losses(rows)
    print_table(rows)
    wall = time.perf_counter() - start
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(
            {
                "mode": mode,
                "seeds": args.seeds,
                "wall_seconds": round(wall, 1),
                "rows": rows,
                "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
            },
            handle,
            indent=1,
        )
    print(f"\n{len(rows)} comparisons in {wall:.0f} s; written to {out}")
    if losses:
        print(f"FAIL: ours loses on the median: {losses}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
