"""Memory over a sweep of fits in one process: ours (RealNVP) against a plain Keras model of about the same size.

    python benchmarks/memory_sweep.py [--full] [--fits 50] [--out FILE]

Each side runs in its own fresh process (so neither inherits the other's memory), one after the other, in one
run: `--fits` times it builds its model, compiles it, fits it for 2 epochs, evaluates it on a few rows
(`log_prob` for ours, `predict` for the plain model), deletes it (`del model`, no `gc.collect()`: Python's cycle
collector runs when it decides to) and reads the process's resident memory (RSS, psutil). A `weakref.finalize`
on every model tells whether it died at `del` (reference counting alone) or later (the cycle collector).

Quick (default): `RealNVP(event_shape=(4,), num_couplings=4, hidden_units=(32, 32))` against a Dense stack
4 -> 32 -> ... -> 4 with the same number of weights (+-15 %), 1,024 examples, batch 64. `--full`: the speed
benchmark's MNIST size, RealNVP D = 784, 8 couplings, MLP 512x512, batch 128, against a Dense stack
784 -> 512 -> ... -> 784 of the same size.

Reported per side: RSS after each fit, the per-fit growth (the Theil-Sen slope, a line fit robust to the
collector's drops, over the last 40 fits: the first fits pay for one-off imports and caches) and how many models
died at `del`; then the ratio ours / plain of the growth. The JSON (`--out`) holds the header and both sides.
"""

import argparse
import json
import os
import subprocess
import sys
import time
import weakref

BENCHMARKS = os.path.dirname(os.path.abspath(__file__))
CONFIGS = {
    "quick": {"event_size": 4, "num_couplings": 4, "hidden_units": (32, 32), "examples": 1024, "batch": 64},
    "full": {"event_size": 784, "num_couplings": 8, "hidden_units": (512, 512), "examples": 1024, "batch": 128},
}
EPOCHS = 2
TAIL = 40  # the fits the growth is fitted over


def _ours(config):
    from keras_models import RealNVP

    model = RealNVP(
        event_shape=(config["event_size"],),
        num_couplings=config["num_couplings"],
        hidden_units=config["hidden_units"],
    )
    model.compile(optimizer="adam")
    return model


def _plain_widths(config, target_weights):
    """Hidden widths of a Dense stack event -> width x k -> event whose weight count is nearest `target_weights`."""
    size, width = config["event_size"], config["hidden_units"][0]

    def count(k):
        return (size + 1) * width + (k - 1) * (width + 1) * width + (width + 1) * size

    k = min(range(1, 200), key=lambda k: abs(count(k) - target_weights))
    return (width,) * k


def _plain(config, widths):
    import keras

    size = config["event_size"]
    layers = [keras.Input((size,))] + [keras.layers.Dense(w, activation="relu") for w in widths]
    model = keras.Sequential(layers + [keras.layers.Dense(size)])
    model.compile(optimizer="adam", loss="mse")
    return model


def _fit_once(kind, config, data, widths):
    """Build, fit, evaluate and delete one model; True if it died at `del` (before any cycle collection)."""
    if kind == "ours":
        model = _ours(config)
        model.fit(data, epochs=EPOCHS, batch_size=config["batch"], verbose=0)
        model.log_prob(data[:64]).numpy()
    else:
        model = _plain(config, widths)
        model.fit(data, data, epochs=EPOCHS, batch_size=config["batch"], verbose=0)
        model.predict(data[:64], verbose=0)
    dead = []
    weakref.finalize(model, dead.append, True)
    del model
    return bool(dead)


def worker(kind, mode, fits):
    """One side of the sweep, in this process: prints one JSON object."""
    import numpy as np
    import psutil

    config = CONFIGS[mode]
    data = np.random.default_rng(0).normal(size=(config["examples"], config["event_size"])).astype("float32")
    widths = _plain_widths(config, _ours(config).count_params())
    process = psutil.Process()
    rss, died_at_del, start = [], 0, time.time()
    for _ in range(fits):
        dead = _fit_once(kind, config, data, widths)
        died_at_del += dead
        rss.append(process.memory_info().rss / 2**20)
    weights = _ours(config).count_params() if kind == "ours" else _plain(config, widths).count_params()
    json.dump(
        {
            "kind": kind,
            "model": "RealNVP" if kind == "ours" else f"Dense stack, hidden widths {list(widths)}",
            "weights": int(weights),
            "rss_mib": [round(value, 1) for value in rss],
            "died_at_del": died_at_del,
            "seconds": round(time.time() - start, 1),
        },
        sys.stdout,
    )


def growth_per_fit(rss):
    """MiB per fit: the Theil-Sen slope (median of pairwise slopes) over the last `TAIL` fits."""
    from scipy.stats import theilslopes

    tail = rss[-TAIL:]
    return float(theilslopes(tail, range(len(tail)))[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="the MNIST size (D = 784) instead of the quick one")
    parser.add_argument("--fits", type=int, default=50)
    parser.add_argument("--out", default=None, help="JSON file (default benchmarks/results-memory-sweep-MODE.json)")
    parser.add_argument("--worker", choices=("ours", "plain"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    mode = "full" if args.full else "quick"
    if args.worker:
        worker(args.worker, mode, args.fits)
        return
    sys.path.insert(0, BENCHMARKS)
    import harness

    head = harness.header(mode, ["off"], ["memory_sweep"])
    head["memory_measure"] = "process resident memory (RSS, psutil) after each fit and `del model`; no gc.collect()"
    head["config"] = {**CONFIGS[mode], "epochs": EPOCHS, "fits": args.fits, "growth": f"Theil-Sen, last {TAIL}"}
    sides = {}
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    for kind in ("ours", "plain"):
        command = [sys.executable, os.path.abspath(__file__), "--worker", kind, "--fits", str(args.fits)]
        result = subprocess.run(command + (["--full"] if args.full else []), env=env, capture_output=True, text=True)
        if result.returncode:
            raise SystemExit(f"the {kind} sweep failed:\n{result.stderr[-3000:]}")
        side = json.loads(result.stdout.strip().splitlines()[-1])
        side["growth_mib_per_fit"] = round(growth_per_fit(side["rss_mib"]), 3)
        sides[kind] = side
    ratio = sides["ours"]["growth_mib_per_fit"] / max(sides["plain"]["growth_mib_per_fit"], 1e-9)
    print(f"memory sweep ({mode}): {args.fits} fits per side, {EPOCHS} epochs each, `del model`, no gc.collect()")
    print("| side | model | weights | RSS first / last fit (MiB) | growth per fit (MiB) | died at del | seconds |")
    print("|---|---|---|---|---|---|---|")
    for side in sides.values():
        print(
            f"| {side['kind']} | {side['model']} | {side['weights']} | {side['rss_mib'][0]} / {side['rss_mib'][-1]} | "
            f"{side['growth_mib_per_fit']} | {side['died_at_del']}/{args.fits} | {side['seconds']} |"
        )
    print(f"growth ratio ours / plain: {ratio:.2f} (target <= 1.2)")
    out = args.out or os.path.join(BENCHMARKS, f"results-memory-sweep-{mode}.json")
    with open(out, "w", encoding="utf-8") as file:
        json.dump([head, {"ours": sides["ours"], "plain": sides["plain"], "growth_ratio": round(ratio, 3)}], file)
        file.write("\n")


if __name__ == "__main__":
    main()
