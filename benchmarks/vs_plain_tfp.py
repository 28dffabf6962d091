"""Fit quality on unseen data: our presets against the strongest plain TFP build and BayesFlow, over paired seeds.

    python benchmarks/vs_plain_tfp.py [--quick] [--seeds 0 1 2 3 4] [--data NAME ...] [--models NAME ...]
                                      [--variants NAME ...] [--keep-best] [--no-noise] [--no-peers] [--scale C]
                                      [--ours-args JSON] [--out benchmarks/results-vs-plain-<mode>.json]
    python benchmarks/vs_plain_tfp.py --table FILE [FILE ...]    # judge earlier runs, one comparison's seeds merged

For every data set of `unseen_data` (drawn anew from each seed: new points, new mixing matrices, new
train/test splits, new folds) and every seed, ours and each plain TFP build of the same architecture (`plain_tfp`:
Keras-default, zero-initialised and bounded forms) and, on the RealNVP and NSF rows, BayesFlow's `CouplingFlow`
(`bayesflow_peer`) are trained with `fit` for the same steps on the same batches (same seed, batch, Adam learning
rate, XLA), then scored on the held-out split: the KL gap E_p[log p - log q] where the density is known, the NLL
for tabular data, bits/dim for images. The training-split score is reported beside it. Lower is better.

How a row is judged (paired seeds; "theirs" is the plain form with the best median over seeds, as a user settles
on one build): d is the median over seeds of (ours - theirs), n the noise, the median over seeds of the absolute
difference between theirs and the same build trained again with another seed (initialisation and batch order;
the same data). **won** when d < -n, **lost** when d > n, **tied** otherwise. A row that looks lost on 5 seeds is
rerun to 11 before it counts as lost. BayesFlow is judged against ours the same way, with the same n. The command
exits 1 when any row is lost, so a regression fails loudly.

`--keep-best` trains every side the way `tfp-flows train` does by default: the same steps, each keeping the
weights of its best validation checkpoint (one every tenth of the steps; the data set's own validation split
picks it where it has one (tabular), else the first half of the held-out split picks it and the second half
scores it). The verdicts then go by those scores; the table also names the rows ours loses at the last step.

`--quick` (three seeds; spiral_mixture and wine13; RealNVP and MAF; 400 steps of small networks without XLA;
the bounded plain form only, which is the strongest on every full row): under 5 minutes on 2 cores.

Memory grows by about 0.14 GB per fit (XLA programs compiled per fit are kept; 0.5 GB per NSF, BayesFlow or Glow-2D
fit on the 2-D spiral), so run long studies one data set at a time, and those rows one model at a time.
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

import bayesflow_peer
import keras
import numpy as np
import plain_tfp
import tensorflow as tf
import unseen_data

import keras_models

# The noise n of a row whose result file predates the noise fits (or a --no-noise run): the old fixed tolerance.
TOLERANCE = 0.002
# --keep-best: validation checkpoints per fit (every budget's step count is a multiple of it).
CHECKPOINTS = 10
# The noise fit trains the chosen plain form again with seed + this (initialisation and batch order).
NOISE_SEED_OFFSET = 1000
MODELS = ("RealNVP", "NICE", "MAF", "NSF", "Glow-2D")


def _contenders(size, hidden, ours_args=None, peer_args=None):
    """model name -> (ours, {plain form: constructor}, {peer: constructor}) for events of `size` dimensions;
    `peer_args` go to BayesFlow's `CouplingFlow` (its ablations in bayesflow_ablation.py)."""
    extra = dict(ours_args or {})

    def forms(build):
        return {
            "keras-default-init": lambda: build(),
            "zero-init": lambda: build(zero_init=True),
            "bounded": lambda: build(bounded=True),
        }

    def bayesflow(num_couplings, transform):
        if not bayesflow_peer.available():
            return {}
        return {
            "BayesFlow": lambda: bayesflow_peer.BayesFlowCoupling(
                size, bayesflow_peer.depth_for(num_couplings), hidden, transform, network_kwargs=peer_args
            )
        }

    return {
        "RealNVP": (
            lambda: keras_models.RealNVP(event_shape=(size,), num_couplings=8, hidden_units=hidden, **extra),
            forms(lambda **form: plain_tfp.PlainRealNVP(size, 8, hidden, **form)),
            bayesflow(8, "affine"),
        ),
        "NICE": (
            lambda: keras_models.NICE(event_shape=(size,), num_couplings=4, hidden_units=hidden, **extra),
            {"keras-default-init": lambda: plain_tfp.PlainNICE(size, 4, hidden)},  # additive: nothing overflows
            {},
        ),
        "MAF": (
            lambda: keras_models.MAF(event_shape=(size,), num_layers=5, hidden_units=hidden, **extra),
            forms(lambda **form: plain_tfp.PlainMAF(size, 5, hidden, **form)),
            {},
        ),
        "NSF": (
            lambda: keras_models.NSF(
                event_shape=(size,), variant="coupling", num_layers=6, hidden_units=hidden, **extra
            ),
            {
                "keras-default-init": lambda: plain_tfp.PlainNSF(size, 6, hidden),
                "zero-init": lambda: plain_tfp.PlainNSF(size, 6, hidden, zero_init=True),
            },
            bayesflow(6, "spline"),
        ),
        "Glow-2D": (
            lambda: keras_models.Glow(event_shape=(size,), num_steps=8, hidden_channels=hidden[0], seed=0, **extra),
            forms(lambda **form: plain_tfp.PlainGlow2D(size, 8, hidden, **form)),
            {},
        ),
    }


# Per data set: hidden widths, batch, steps, learning rate (Adam, constant, as a user would start).
BUDGETS = {
    "spiral_mixture": dict(hidden=(64, 64), batch=256, steps=3000, lr=1e-3),
    "banana_t": dict(hidden=(64, 64), batch=256, steps=3000, lr=1e-3),
    "ica8": dict(hidden=(128, 128), batch=256, steps=3000, lr=1e-3),
    "ica32": dict(hidden=(256, 256), batch=256, steps=3000, lr=1e-3),
    "digits64": dict(hidden=(256, 256), batch=128, steps=1200, lr=1e-3),
    "mnist784": dict(hidden=(512, 512), batch=128, steps=310, lr=1e-3),  # 10 epochs of 4,000 digits
    "wine13": dict(hidden=(64, 64), batch=64, steps=200, lr=1e-3),  # 114 training rows a fold: ~110 epochs
    "cancer30": dict(hidden=(64, 64), batch=64, steps=200, lr=1e-3),  # 364 training rows a fold: ~35 epochs
}
BUDGETS.update({name + unseen_data.ONCE: BUDGETS[name] for name in unseen_data.IMAGE_BUILDERS})
# --quick: two data sets, RealNVP and MAF, small widths and budgets, no XLA (compiling costs more than it saves),
# and only the bounded plain form (the strongest plain form on the full rows).
QUICK = dict(
    data=("spiral_mixture", "wine13"),
    models=("RealNVP", "MAF"),
    variants=("bounded",),
    hidden=(32, 32),
    steps=400,
    num_train=5000,
    num_test=5000,
)


def _train_batches(data, batch, seed):
    dataset = tf.data.Dataset.from_tensor_slices(data.train).shuffle(len(data.train), seed=seed).repeat()
    dataset = dataset.batch(batch, drop_remainder=True)
    if data.dequantize_per_batch:
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
        # Keras runs whole blocks of `steps_per_execution` steps, rounding each epoch up to a multiple of it; a
        # divisor of the epoch keeps the count exact.
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
    """KL gap (known log p), NLL (tabular) or bits/dim (images) of the model behind `log_q` on `points`."""
    values = _log_q(log_q, points)
    if data.image:
        return float(np.mean(unseen_data.to_bits_per_dim(values, points)))
    if data.log_prob is None:
        return float(-np.mean(values))
    return float(np.mean(data.log_prob(points.astype(np.float64)) - values))


def build_data(name, seed, quick, rotate=True, scale=1.0):
    """The data set `name` drawn with `seed`, at the quick or full size."""
    return unseen_data.build(
        name,
        seed,
        num_train=QUICK["num_train"] if quick else 10_000,
        num_test=QUICK["num_test"] if quick else 20_000,
        rotate=rotate,
        scale=scale,
    )


def run_fit(
    name,
    model_name,
    seed,
    quick,
    data=None,
    ours_args=None,
    plain=True,
    rotate=True,
    keep_best=False,
    scale=1.0,
    variants=None,
    peers=True,
    include_ours=True,
    train_seed=None,
    peer_args=None,
):
    """{"ours": scores, "variants": {plain form: scores}, "peers": {peer: scores}} for one data set, model and
    seed, where scores are (test, train, seconds) at the last step, and with `keep_best` also (best test, best
    step). `variants` limits the plain forms (None: all), `train_seed` (default `seed`) seeds the initialisation
    and the batch order while `seed` draws the data: the noise fit trains a plain form again on the same data."""
    data = data or build_data(name, seed, quick, rotate, scale)
    train_seed = seed if train_seed is None else train_seed
    budget = dict(BUDGETS[name], **({"hidden": QUICK["hidden"]} if quick else {}))
    steps = min(QUICK["steps"], budget["steps"]) if quick else budget["steps"]
    size = data.train.shape[1]
    if data.dequantize_per_batch:
        rng = np.random.default_rng(seed)
        train_points = unseen_data.to_logit_space(data.train[:1000], rng).astype(np.float32)
    else:
        train_points = data.train[:5000]
    if not keep_best:
        validation, test = None, data.test
    elif data.validation is not None:
        validation, test = data.validation, data.test
    else:
        validation, test = np.array_split(data.test, 2)
    ours, plain_forms, peer_builds = _contenders(size, budget["hidden"], ours_args, peer_args)[model_name]
    if quick and variants is None:
        variants = QUICK["variants"]
    plain_forms = {k: v for k, v in plain_forms.items() if plain and (variants is None or k in variants)}

    def score(build):
        return fit_and_score(build, data, budget, steps, train_seed, quick, keep_best, validation, test, train_points)

    return {
        "ours": score(ours) if include_ours else None,
        "variants": {form: score(build) for form, build in plain_forms.items()},
        "peers": {peer: score(build) for peer, build in peer_builds.items()} if peers else {},
    }


def fit_and_score(build, data, budget, steps, train_seed, quick, keep_best, validation, test, train_points):
    """(test, train, seconds) of the model `build()` makes, trained `steps` steps; with `keep_best` also (best
    test, best step), the weights kept at the best of the validation checkpoints (every tenth of the steps)."""
    keras.utils.set_random_seed(train_seed)
    model = build()
    best = dict(loss=math.inf, weights=None, step=0, checkpoints=0)
    log_q = tf.function(model.log_prob, jit_compile=True)  # one per fit: the checkpoints and the scores

    def checkpoint():  # the training loss (mean NLL) on the validation split; NaN never counts as best
        best["checkpoints"] += 1
        loss = -float(np.mean(_log_q(log_q, validation)))
        if loss < best["loss"]:
            best.update(loss=loss, weights=model.get_weights(), step=best["checkpoints"] * steps // CHECKPOINTS)

    seconds = _train(
        model, data, budget, steps, train_seed, jit_compile=not quick, on_chunk=checkpoint if keep_best else None
    )
    scores = (_score(log_q, data, test), _score(log_q, data, train_points), seconds)
    if not keep_best:
        return scores
    if best["weights"] is None:  # every checkpoint NaN: the last weights are all there is
        return scores + (scores[0], steps)
    model.set_weights(best["weights"])
    return scores + (_score(log_q, data, test), best["step"])


def _failed_as_worst(score):
    """A failed fit (NaN or infinite score) counts as the worst score: +inf."""
    return score if np.isfinite(score) else math.inf


def _median(values):
    """Median over seeds, a failed fit counting as the worst."""
    return statistics.median([_failed_as_worst(v) for v in values])


def best_variant(variants):
    """The plain form (per-seed dicts form -> test score) with the lowest median over seeds, or None.

    One form for all seeds of a data set, as a user would settle on one build; taking the better form seed by
    seed would hand the plain side the minimum of several noisy draws on every seed.
    """
    if not variants or not variants[0]:
        return None
    return min(variants[0], key=lambda k: _median([v[k] for v in variants]))


def _paired_difference(a, b):
    """a - b for one seed, a failed fit counting as the worst (two failed fits: no difference)."""
    a, b = _failed_as_worst(a), _failed_as_worst(b)
    return 0.0 if a == b else a - b


def noise_of(theirs, repeat):
    """n: the median over seeds of |theirs - the same build trained with another seed|, over the seeds where
    both fits are finite (a failed fit says nothing of the spread); None without repeats."""
    if not repeat:
        return None
    spread = [abs(t - r) for t, r in zip(theirs, repeat) if np.isfinite(t) and np.isfinite(r)]
    return statistics.median(spread) if spread else None


def judge(ours, theirs, noise):
    """(verdict, d, n): d the median over seeds of ours - theirs, won / lost beyond the noise n, tied within."""
    d = statistics.median([_paired_difference(o, t) for o, t in zip(ours, theirs)])
    n = TOLERANCE if noise is None else noise
    return ("won" if d < -n else "lost" if d > n else "tied"), d, n


def make_row(
    name,
    model_name,
    seeds,
    ours,
    variants,
    variants_train,
    plain=True,
    best=None,
    scale=1.0,
    ours_args=None,
    peers=None,
    noise=None,
):
    """One comparison over `seeds`: `ours` [(test, train)], `variants` / `variants_train` [{form: score}],
    `peers` [{peer: test}] (BayesFlow), `noise` {"variant": form, "repeat": [test], "repeat_best": [test] or
    None} (the chosen form trained again with another seed); `best` (--keep-best runs): {"ours": [(test, step)],
    "variants": [{form: (test, step)}], "peers": [{peer: (test, step)}]}, judged the same way with its own choice
    of plain form. `scale` and `ours_args` say which data and which of our settings (--scale, --ours-args), so rows
    of other settings are never merged with these."""
    variant = best_variant(variants) if plain else None
    theirs = [v[variant] if variant else math.nan for v in variants]
    theirs_train = None if variants_train is None else [v.get(variant, math.nan) for v in variants_train]
    row = dict(
        data=name,
        model=model_name,
        scale=scale,
        ours_args=ours_args,
        seeds=list(seeds),
        metric=unseen_data.metric(name),
        ours=[o[0] for o in ours],
        ours_train=[o[1] for o in ours],
        theirs=theirs,
        theirs_train=theirs_train,
        theirs_variant=variant,
        variants=variants,
        variants_train=variants_train,
        peers=peers or [{} for _ in seeds],
        noise=noise,
    )
    row["ours_median"], row["theirs_median"] = _median(row["ours"]), _median(theirs)
    same_form = noise is not None and noise.get("variant") == variant
    if plain:
        n = noise_of(theirs, noise["repeat"]) if same_form else None
        row["verdict"], row["difference"], row["noise_n"] = judge(row["ours"], theirs, n)
    else:
        row["verdict"], row["difference"], row["noise_n"] = "(ours only)", math.nan, math.nan
    row["peer_verdicts"] = {
        peer: judge(row["ours"], [p[peer] for p in row["peers"]], row["noise_n"] if plain else None)[0]
        for peer in row["peers"][0]
    }
    if best is not None:
        scores = [{k: v[0] for k, v in per_seed.items()} for per_seed in best["variants"]]
        best_name = best_variant(scores) if plain else None
        row.update(
            best=best,
            ours_best=[o[0] for o in best["ours"]],
            theirs_best_variant=best_name,
            theirs_best=[v[best_name] if best_name else math.nan for v in scores],
        )
        row["ours_best_median"], row["theirs_best_median"] = _median(row["ours_best"]), _median(row["theirs_best"])
        if plain:
            repeat = noise.get("repeat_best") if noise and noise.get("variant") == best_name else None
            n = noise_of(row["theirs_best"], repeat)
            row["verdict_best"], row["difference_best"], row["noise_n_best"] = judge(
                row["ours_best"], row["theirs_best"], n
            )
        else:
            row["verdict_best"], row["difference_best"], row["noise_n_best"] = "(ours only)", math.nan, math.nan
        peers_best = best.get("peers") or [{} for _ in seeds]
        row["peer_verdicts_best"] = {
            peer: judge(row["ours_best"], [p[peer][0] for p in peers_best], row["noise_n_best"] if plain else None)[0]
            for peer in peers_best[0]
        }
    return row


def _label(row):
    """The data and model columns: --scale and --ours-args runs say so."""
    scale, args = row.get("scale", 1.0), row.get("ours_args")
    return (
        f"{row['data']}{f' x{scale:g}' if scale != 1.0 else ''}",
        f"{row['model']}{f' {json.dumps(args)}' if args else ''}",
    )


def _seeds_won(ours, theirs):
    """'k/n': on how many of the n seeds ours scored lower than the plain form (a failed fit counts as worst)."""
    return f"{sum(_failed_as_worst(o) < _failed_as_worst(t) for o, t in zip(ours, theirs))}/{len(ours)}"


def _spread(values):
    return f"{_median(values):.4f} ({min(values):.4f}-{max(values):.4f})"


def _peer_cell(peers, verdicts):
    """'BayesFlow 0.1234 (won)' per peer, or '-'."""
    if not peers or not peers[0]:
        return "-"
    return "; ".join(f"{peer} {_median([p[peer] for p in peers]):.4f} ({verdicts[peer]})" for peer in peers[0])


def print_table(rows):
    header = (
        "| data | model | metric | ours: median (min-max) | plain TFP: median (min-max), form | d | n | "
        "ours better on | verdict | BayesFlow |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    print("\nLast step:\n\n" + header)
    for r in rows:
        print(
            f"| {' | '.join(_label(r))} | {r['metric']} | {_spread(r['ours'])} | {_spread(r['theirs'])}, "
            f"{r['theirs_variant']} | {r['difference']:+.4f} | {r['noise_n']:.4f} | "
            f"{_seeds_won(r['ours'], r['theirs']) if r['theirs_variant'] else '-'} | {r['verdict']} | "
            f"{_peer_cell(r['peers'], r['peer_verdicts'])} |"
        )
    kept = [r for r in rows if "verdict_best" in r]
    if kept:
        print("\nBest validation checkpoint (--keep-best):\n\n" + header)
    for r in kept:
        peers = [{k: v[0] for k, v in p.items()} for p in (r["best"].get("peers") or [{} for _ in r["seeds"]])]
        print(
            f"| {' | '.join(_label(r))} | {r['metric']} | {_spread(r['ours_best'])} | {_spread(r['theirs_best'])}, "
            f"{r['theirs_best_variant']} | {r['difference_best']:+.4f} | {r['noise_n_best']:.4f} | "
            f"{_seeds_won(r['ours_best'], r['theirs_best']) if r['theirs_best_variant'] else '-'} | "
            f"{r['verdict_best']} | {_peer_cell(peers, r['peer_verdicts_best'])} |"
        )
    if kept:
        last = [" ".join(_label(r)) for r in kept if r["verdict"] == "lost"]
        print(f"\nJudged on the best checkpoints; at the last step ours loses on: {last or 'none'}")
    counts = {v: sum(r.get("verdict_best", r["verdict"]) == v for r in rows) for v in ("won", "tied", "lost")}
    print(f"\nRows: {counts['won']} won, {counts['tied']} tied, {counts['lost']} lost")


def _merge_noise(into, noise):
    """Join one file's noise fits to the merged row's; a file without them leaves the merged row without."""
    if into.get("noise", {}) is None or noise is None:
        into["noise"] = None
        return
    merged = into.setdefault("noise", {"variant": noise["variant"], "repeat": [], "repeat_best": []})
    if merged["variant"] != noise["variant"]:
        into["noise"] = None  # repeats of different forms cannot be compared with one theirs
        return
    merged["repeat"] += noise["repeat"]
    merged["repeat_best"] = (
        merged["repeat_best"] + noise["repeat_best"]
        if merged["repeat_best"] is not None and noise.get("repeat_best") is not None
        else None
    )


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
                into = merged.setdefault(key, dict(seeds=[], ours=[], variants=[], variants_train=[], peers=[]))
                repeated = sorted(set(into["seeds"]) & set(r["seeds"]))
                if repeated:
                    raise ValueError(
                        f"--table: seeds {repeated} of {' '.join(_label(r))} appear in more than one "
                        f"row (the second in {path}); pass each seed's run once"
                    )
                into["seeds"] += r["seeds"]
                into["ours"] += list(zip(r["ours"], r["ours_train"]))
                into["variants"] += r["variants"]
                into["peers"] += r.get("peers") or [{} for _ in r["seeds"]]
                has_train = into["variants_train"] is not None and r.get("variants_train") is not None
                into["variants_train"] = into["variants_train"] + r["variants_train"] if has_train else None
                _merge_noise(into, r.get("noise"))
                if "best" in r:
                    into["best"] = into.get("best") or {"ours": [], "variants": [], "peers": []}
                    into["best"]["ours"] += r["best"]["ours"]
                    into["best"]["variants"] += r["best"]["variants"]
                    into["best"]["peers"] += r["best"].get("peers") or [{} for _ in r["seeds"]]
    _borrow_plain_side(merged)
    rows = []
    for (data, model, scale, args, plain, _), m in merged.items():
        if m["peers"] and any(set(p) != set(m["peers"][0]) for p in m["peers"]):
            m["peers"] = [{} for _ in m["seeds"]]  # a peer missing from some seeds is left out of the row
            if m.get("best"):
                m["best"]["peers"] = [{} for _ in m["seeds"]]
        rows.append(
            make_row(
                data,
                model,
                m["seeds"],
                m["ours"],
                m["variants"],
                m["variants_train"],
                plain,
                m.get("best"),
                scale,
                json.loads(args),
                m["peers"],
                m.get("noise"),
            )
        )
    return rows, _losses(rows)


def _borrow_plain_side(merged):
    """Judge each study of our own settings (`--no-plain --ours-args`) against the plain forms, noise fits and peers
    that another run trained on the same data, model, scale and seeds: none of them depends on our settings, so the
    study need not train them again. A study whose seeds the other runs do not all cover stays ours-only."""
    for key, m in list(merged.items()):
        data, model, scale, args, plain, best = key
        if plain or args == "null":
            continue
        donors = [
            d for (d2, m2, s2, _, p2, b2), d in merged.items() if p2 and (d2, m2, s2, b2) == (data, model, scale, best)
        ]
        donor = next((d for d in donors if set(m["seeds"]) <= set(d["seeds"])), None)
        if donor is None:
            continue
        pick = [donor["seeds"].index(seed) for seed in m["seeds"]]
        m["variants"] = [donor["variants"][i] for i in pick]
        m["variants_train"] = None if donor["variants_train"] is None else [donor["variants_train"][i] for i in pick]
        m["peers"] = [donor["peers"][i] for i in pick]
        noise = donor.get("noise")
        if noise and len(noise["repeat"]) == len(donor["seeds"]):
            repeat_best = noise.get("repeat_best")
            m["noise"] = {
                "variant": noise["variant"],
                "repeat": [noise["repeat"][i] for i in pick],
                "repeat_best": None if repeat_best is None else [repeat_best[i] for i in pick],
            }
        else:
            m["noise"] = None
        if best and donor.get("best"):
            m["best"]["variants"] = [donor["best"]["variants"][i] for i in pick]
            m["best"]["peers"] = [donor["best"]["peers"][i] for i in pick]
        del merged[key]
        merged[(data, model, scale, args, True, best)] = m


def _losses(rows):
    """The rows ours loses: on the best checkpoints where a row has them (--keep-best), else at the last step."""
    return [" ".join(_label(r)) for r in rows if r.get("verdict_best", r["verdict"]) == "lost"]


def _describe(scores):
    """One fit's printed scores: test (train, seconds)[, best checkpoint's test at its step]."""
    text = f"{scores[0]:.4f} (train {scores[1]:.4f}, {scores[2]:.0f} s)"
    return text + (f", best {scores[3]:.4f} at step {scores[4]}" if len(scores) > 3 else "")


def applicable(model_name, name):
    """Glow-2D is compared on the low-dimensional sets only (its 1x1 'conv' is a dense D x D matrix)."""
    return not (model_name == "Glow-2D" and name.startswith("mnist784"))


def _positive_float(text):
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0; received {text!r}")
    return value


def _write(out, mode, seeds, rows, wall):
    with open(out + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(
            {
                "mode": mode,
                "seeds": seeds,
                "wall_seconds": round(wall, 1),
                "rows": rows,
                "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
            },
            handle,
            indent=1,
        )
    os.replace(out + ".tmp", out)


def _run_rows(args, names, on_row=None):
    """Every (data set, model) row of the run; `on_row(rows)` after each (the result file grows as rows finish)."""
    rows = []
    for name in names:
        for model_name in args.models:
            if not applicable(model_name, name):
                continue
            common = dict(ours_args=args.ours_args, rotate=args.rotate, keep_best=args.keep_best, scale=args.scale)
            fits, drawn = [], {}
            for seed in args.seeds:
                # Drawn once per seed: the noise fits below train on the very same data.
                drawn[seed] = build_data(name, seed, args.quick, args.rotate, args.scale)
                fit = run_fit(
                    name,
                    model_name,
                    seed,
                    args.quick,
                    data=drawn[seed],
                    plain=args.plain,
                    variants=args.variants,
                    peers=args.peers,
                    **common,
                )
                fits.append(fit)
                others = {**fit["variants"], **fit["peers"]}
                print(
                    f"  {name} {model_name} seed {seed}: ours {_describe(fit['ours'])}; others: "
                    f"{', '.join(f'{k} {_describe(v)}' for k, v in others.items()) or '-'}",
                    flush=True,
                )
            index = 3 if args.keep_best else 0  # the noise repeats the form the verdict will judge against
            form = best_variant([{k: v[index] for k, v in f["variants"].items()} for f in fits])
            noise = None
            if form and args.noise:
                repeats = []
                for seed in args.seeds:
                    fit = run_fit(
                        name,
                        model_name,
                        seed,
                        args.quick,
                        data=drawn[seed],
                        variants=[form],
                        peers=False,
                        include_ours=False,
                        train_seed=seed + NOISE_SEED_OFFSET,
                        **common,
                    )
                    repeats.append(fit["variants"][form])
                    print(f"  {name} {model_name} seed {seed}: noise fit of {form}: {_describe(repeats[-1])}")
                noise = {
                    "variant": form,
                    "repeat": [r[0] for r in repeats],
                    "repeat_best": [r[3] for r in repeats] if args.keep_best else None,
                }
            best = None
            if args.keep_best:
                best = {
                    "ours": [f["ours"][3:] for f in fits],
                    "variants": [{k: v[3:] for k, v in f["variants"].items()} for f in fits],
                    "peers": [{k: v[3:] for k, v in f["peers"].items()} for f in fits],
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
                    [{k: v[0] for k, v in f["peers"].items()} for f in fits],
                    noise,
                )
            )
            if on_row is not None:
                on_row(rows)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--data", nargs="+", choices=unseen_data.NAMES, default=None)
    parser.add_argument("--models", nargs="+", choices=MODELS, default=None)
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=["keras-default-init", "zero-init", "bounded"],
        default=None,
        help="train only these plain forms (default: all; --quick: bounded). Theirs is the best of those run.",
    )
    parser.add_argument(
        "--ours-args",
        type=json.loads,
        default=None,
        metavar="JSON",
        help='extra arguments of our models, e.g. \'{"actnorm": false, "log_scale_limit": 4}\' (studies)',
    )
    parser.add_argument(
        "--no-plain", dest="plain", action="store_false", help="train ours only (studies of our own settings)"
    )
    parser.add_argument("--no-peers", dest="peers", action="store_false", help="leave BayesFlow out")
    parser.add_argument(
        "--no-noise",
        dest="noise",
        action="store_false",
        help="skip the noise fits (the plain form trained again): rows are then judged with the fixed tolerance",
    )
    parser.add_argument(
        "--no-rotation",
        dest="rotate",
        action="store_false",
        help="2-D densities in their fixed orientation (not turned per seed)",
    )
    parser.add_argument(
        "--scale",
        type=_positive_float,
        default=1.0,
        metavar="C",
        help="the 2-D to 32-D densities' points times C, their log p adjusted (how a build depends "
        "on the data's spread; pixels and tables keep their units)",
    )
    parser.add_argument(
        "--keep-best",
        action="store_true",
        help="also score every side at its best validation checkpoint, and judge on that",
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
            print(f"FAIL: ours loses: {losses}", file=sys.stderr)
        return 1 if losses else 0
    names = args.data or (QUICK["data"] if args.quick else unseen_data.NAMES)
    fixed_units = [name for name in names if name not in unseen_data.DENSITY_BUILDERS]
    if args.scale != 1.0 and fixed_units:  # before any fit: a run must not die halfway, results unwritten
        parser.error(
            f"--scale applies to the densities only (pixels and tables have fixed units); received --scale "
            f"{args.scale:g} with {fixed_units}: pass --data with densities only"
        )
    args.models = args.models or list(QUICK["models"] if args.quick else MODELS)
    if args.peers and not bayesflow_peer.available():
        print("BayesFlow is not installed (pip install '.[bench]'): its column stays empty", file=sys.stderr)
    mode = "quick" if args.quick else "full"
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), f"results-vs-plain-{mode}.json")
    start = time.perf_counter()
    rows = _run_rows(args, names, lambda rows: _write(out, mode, args.seeds, rows, time.perf_counter() - start))
    losses = _losses(rows)
    print_table(rows)
    wall = time.perf_counter() - start
    _write(out, mode, args.seeds, rows, wall)
    print(f"\n{len(rows)} comparisons in {wall:.0f} s; written to {out}")
    if losses:
        print(f"FAIL: ours loses: {losses}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
