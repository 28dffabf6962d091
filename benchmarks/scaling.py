"""How cost grows with size: step time and peak memory of our flows and TFP's built-ins, one size at a time.

    python benchmarks/scaling.py [--quick] [--dry-run] [--policy float32|mixed_bfloat16|both] [--xla auto|on|off]
                                 [--axes AXIS ...] [--models MODEL ...] [--out FILE] [--figure FILE]
    python benchmarks/scaling.py --from-json FILE [--figure FILE]    # the tables and figure of an earlier run

Four axes; along each, one size varies and the others stay at the mode's centre point:
  - event size D (full: 2 to 3,072) for RealNVP, NSF and MAF (the vector presets);
  - batch (full: 32 to 1,024) for RealNVP, NSF, MAF and Glow;
  - depth: couplings (RealNVP, NSF), MADE layers (MAF), steps per level (Glow);
  - image size (full: 8x8 to 64x64 RGB) for Glow; its size is the number of pixels H x W.
At every point ours (the `keras_models` preset, without ActNorm on vectors) and TFP's built-in flow of the same
function (`speed_cases.realnvp_pair`, `nsf_pair`, `maf_pair`, `glow_pair`: `tfb.RealNVP`, `tfb.RealNVP` with
`tfb.RationalQuadraticSpline`, `tfb.MaskedAutoregressiveFlow`, `tfb.Glow`) are built in this one process and timed
alternately as `run.py` times them (`harness.time_alternating`: warm-up, rounds in flipping order): the training
step `fit` runs and `log_prob`, in ms per batch. The tables, exponents and figure use each side's fastest round
(`Record.ours_min`; load from other jobs only adds time, and a curve needs the cost of each point, not of the
machine's moment); the JSON keeps the medians too. Peak memory is that of one training step above what is
in use before it (`harness.step_peak_bytes`: TensorFlow's allocator statistics; on CPU this module sets
TF_CPU_ALLOCATOR_USE_BFC=true before TensorFlow loads, as `run.py` does, so CPU tensors come from the BFC allocator
and are counted as on a GPU).

Growth exponent: the least-squares slope b of log t = a + b log n over an axis' points, per model, side and metric
(n the axis' size). b = 1: cost proportional to the size; b < 1: a fixed cost per step (Python, kernel launches,
small matmuls that do not fill the cores) still weighs; b > 1: faster than proportional.

Output: a Markdown table per axis (cells "ours / TFP"), a table of the exponents, a log-log figure with one panel
per axis (training step time; ours solid, TFP dashed) and JSON (the `run.py` header, then one record per axis,
model, size and metric: `harness.Record` with `axis`, `model`, `size` and `policy`).

Policy (`--policy`): Keras' global dtype policy under which ours are built; TFP's side stays float32 (its built-in
flows have no mixed-precision path). Default: both float32 and mixed_bfloat16 where TensorFlow sees a GPU, float32
on CPU, where bfloat16 has no fast kernels: the CPU numbers in benchmarks/README.md are float32 only.
XLA (`--xla`): auto = on where a GPU is present and off on CPU, as Keras' `jit_compile="auto"` does.

Modes: full (default; the issue's ranges, widths 256 and Glow's speed-benchmark layout: 57 points per policy, not
run yet; from the quick run's costs, 30-60 minutes on 2 CPU cores, most of it tracing the deep NSF and Glow steps;
on a GPU, split it with --axes into calls of under 10 minutes), --quick (three points per axis at small widths, few
rounds: 4.8 minutes on 2 CPU cores shared at load 7-8, 2.1 minutes of CPU after the imports), --dry-run (two tiny
points per axis, eager, one call each: builds every kind of case; its numbers mean nothing).
"""

import argparse
import dataclasses
import json
import math
import os
import sys
import time
import traceback

# Before TensorFlow loads: the BFC allocator on CPU gives allocator statistics (peak memory), as on GPU.
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness
import numpy as np
import speed_cases
import tensorflow as tf
from harness import Record

BENCHMARKS = os.path.dirname(os.path.abspath(__file__))
FIGURE = os.path.join(os.path.dirname(BENCHMARKS), "docs", "figures", "scaling.png")

VECTOR_MODELS = ("RealNVP", "NSF", "MAF")
MODELS = VECTOR_MODELS + ("Glow",)
AXES = {  # axis -> (what its size counts, the models it covers)
    "event size": ("event size D", VECTOR_MODELS),
    "batch": ("examples per batch", MODELS),
    "depth": ("couplings / MADE layers / Glow steps per level", MODELS),
    "image size": ("pixels H x W (RGB images)", ("Glow",)),
}
METRICS = {"train_step": "train step (ms)", "log_prob": "log_prob (ms)", "train_step_peak_memory": "peak memory (MiB)"}

# Per mode: the centre point of the vector models and of Glow (`size` = D, or the image side), the sizes along
# each axis (the image axis lists sides), the networks' widths and the timing protocol.
GRIDS = {
    "full": dict(
        vector=dict(size=64, batch=128, depth=4, hidden_units=(256, 256)),
        glow=dict(size=16, batch=32, depth=4, num_levels=3, width=128),
        axes={
            "event size": (2, 8, 32, 128, 512, 2048, 3072),
            "batch": (32, 64, 128, 256, 512, 1024),
            "depth": (2, 4, 8, 16),
            "image size": (8, 16, 32, 64),
        },
        timing=dict(warmup=3, repeats=11, inner=1, min_measure_seconds=0.05),
    ),
    "quick": dict(
        vector=dict(size=16, batch=128, depth=1, hidden_units=(64, 64)),
        glow=dict(size=8, batch=32, depth=1, num_levels=1, width=16),
        axes={
            "event size": (2, 16, 1024),
            "batch": (32, 128, 1024),
            "depth": (1, 2, 4),
            "image size": (8, 16, 32),
        },
        timing=dict(warmup=1, repeats=7, inner=1, min_measure_seconds=0.03),
    ),
    "dry": dict(
        vector=dict(size=2, batch=4, depth=1, hidden_units=(8,)),
        glow=dict(size=8, batch=4, depth=1, num_levels=2, width=8),
        axes={"event size": (2, 4), "batch": (4, 8), "depth": (1, 2), "image size": (8, 16)},
        timing=dict(warmup=0, repeats=1, inner=1),
    ),
}


@dataclasses.dataclass
class ScalingRecord(Record):
    """A `harness.Record` of one point of one axis: `size` is the axis' size there (pixels on the image axis)."""

    axis: str = ""
    model: str = ""
    size: int = 0
    policy: str = "float32"


@dataclasses.dataclass(frozen=True)
class Point:
    """One configuration of one model: `size` is D for vectors and the image side for Glow."""

    model: str
    size: int
    batch: int
    depth: int

    def axis_size(self, axis: str) -> int:
        return {"event size": self.size, "batch": self.batch, "depth": self.depth, "image size": self.size**2}[axis]

    def describe(self, grid: dict) -> str:
        if self.model == "Glow":
            g = grid["glow"]
            shape = f"{self.size}x{self.size}x3 L={g['num_levels']} K={self.depth} width {g['width']}"
            return f"Glow {shape}, batch {self.batch}"
        widths = "x".join(map(str, grid["vector"]["hidden_units"]))
        return f"{self.model} D={self.size} depth {self.depth} MLP {widths}, batch {self.batch}"


def axis_points(grid: dict, axis: str, model: str) -> list[Point]:
    """The points of `model` along `axis`: the centre point with that axis' size varied."""
    centre = grid["glow" if model == "Glow" else "vector"]
    field = {"event size": "size", "image size": "size"}.get(axis, axis)
    points = []
    for value in grid["axes"][axis]:
        config = dict(size=centre["size"], batch=centre["batch"], depth=centre["depth"])
        points.append(Point(model, **{**config, field: value}))
    return points


def build(point: Point, grid: dict, policy: str) -> tuple:
    """(ours, theirs, x): the contenders of `point` (ours under `policy`) and a batch of data for them."""
    if point.model == "Glow":
        g = grid["glow"]
        x = speed_cases.glow_images((point.size, point.size, 3), point.batch)
        return (*speed_cases.glow_pair(x, g["num_levels"], point.depth, g["width"], policy), x)
    pair = {"RealNVP": speed_cases.realnvp_pair, "NSF": speed_cases.nsf_pair, "MAF": speed_cases.maf_pair}
    ours, theirs = pair[point.model](point.size, point.depth, grid["vector"]["hidden_units"], policy)
    return ours, theirs, speed_cases.vector_batch(point.batch, point.size)


def measure(point: Point, grid: dict, policy: str, xla: bool | None, device: str) -> list[Record]:
    """The records (train step, log_prob, peak memory) of one point; xla None: eager, one call each (dry run)."""
    ours, theirs, x = build(point, grid, policy)
    case = point.describe(grid)
    pairs = speed_cases.train_and_log_prob_calls(ours, theirs, x, xla)
    records = speed_cases.timing_records(case, xla, device, grid["timing"], pairs, point.batch)
    # One call before the measure keeps tracing and the allocator's growth out of it (a dry run is eager: none).
    train = pairs[0]
    records.append(speed_cases.peak_memory_record(case, train[1], train[2], xla, device, warm=xla is not None))
    return records


def cost(record: Record, side: str) -> float | None:
    """What the tables, exponents and figure show of `side` ("ours" or "theirs"): a timing's fastest round (the
    least disturbed on a shared machine: load only adds time), or the measured value (memory)."""
    fastest = getattr(record, f"{side}_min")
    return getattr(record, side) if fastest is None else fastest


def measured_axes(records: list[ScalingRecord]) -> list[str]:
    """The axes that `records` cover, in `AXES` order."""
    return [axis for axis in AXES if any(r.axis == axis for r in records)]


def series(records: list[ScalingRecord], axis: str, model: str, metric: str, policy: str) -> list[ScalingRecord]:
    """The records of one model, metric and policy along `axis`, by size."""
    chosen = [r for r in records if (r.axis, r.model, r.metric, r.policy) == (axis, model, metric, policy)]
    return sorted(chosen, key=lambda r: r.size)


def exponent(sizes: list[float], values: list[float | None]) -> float | None:
    """Least-squares slope of log(values) against log(sizes); None with fewer than two positive values."""
    pairs = [(s, v) for s, v in zip(sizes, values) if v is not None and v > 0]
    if len(pairs) < 2:
        return None
    logs = np.log(np.array(pairs, dtype=float))
    return float(np.polyfit(logs[:, 0], logs[:, 1], 1)[0])


def exponents(records: list[ScalingRecord]) -> dict[tuple[str, str, str, str], tuple[float | None, float | None]]:
    """{(axis, model, metric, policy): (ours' exponent, theirs')} over the records of each axis."""
    grouped = {}
    for r in records:
        grouped.setdefault((r.axis, r.model, r.metric, r.policy), []).append(r)
    found = {}
    for key, group in grouped.items():
        sizes = [r.size for r in group]
        found[key] = tuple(exponent(sizes, [cost(r, side) for r in group]) for side in ("ours", "theirs"))
    return found


def _cell(ours, theirs):
    return f"{harness._fmt(ours)} / {harness._fmt(theirs)}"


def axis_table(records: list[ScalingRecord], axis: str, fitted: dict) -> str:
    """A Markdown table of one axis: a row per model, policy and metric, a column per size ("ours / TFP")."""
    rows = [r for r in records if r.axis == axis]
    sizes = sorted({r.size for r in rows})
    lines = [
        f"**{axis}** ({AXES[axis][0]}); cells: ours / TFP",
        "",
        "| model | policy | metric | " + " | ".join(str(s) for s in sizes) + " | exponent |",
        "|---|---|---|" + "---|" * (len(sizes) + 1),
    ]
    for model in MODELS:
        for policy in sorted({r.policy for r in rows}):
            for metric, label in METRICS.items():
                at = {r.size: r for r in series(rows, axis, model, metric, policy)}
                if not at:
                    continue
                cells = [_cell(cost(at[s], "ours"), cost(at[s], "theirs")) if s in at else "-" for s in sizes]
                slope = fitted[(axis, model, metric, policy)]
                lines.append(f"| {model} | {policy} | {label} | " + " | ".join(cells) + f" | {_cell(*slope)} |")
    return "\n".join(lines)


def exponent_table(fitted: dict) -> str:
    """A Markdown table of the time exponents: a row per model, policy, metric and side, a column per axis."""
    lines = ["| model | policy | metric | side | " + " | ".join(AXES) + " |", "|---|---|---|---|" + "---|" * len(AXES)]
    policies = sorted({key[3] for key in fitted})
    for model in MODELS:
        for policy in policies:
            for metric in ("train_step", "log_prob"):
                for side, name in ((0, "ours"), (1, "TFP")):
                    cells = [fitted.get((axis, model, metric, policy), (None, None))[side] for axis in AXES]
                    if any(c is not None for c in cells):
                        formatted = " | ".join("-" if c is None else f"{c:.2f}" for c in cells)
                        lines.append(f"| {model} | {policy} | {METRICS[metric]} | {name} | {formatted} |")
    return "\n".join(lines)


def plot(records: list[ScalingRecord], path: str, head: dict) -> None:
    """Log-log training step time against each axis' size, one panel per axis: ours solid, TFP dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    colours = dict(zip(MODELS, ("tab:blue", "tab:orange", "tab:green", "tab:red")))
    styles = {"float32": "-", "mixed_bfloat16": ":"}
    axes = measured_axes(records)
    fig, panels = plt.subplots(1, len(axes), figsize=(4.2 * len(axes), 3.8), squeeze=False)
    panels = panels[0]
    for panel, axis in zip(panels, axes):
        for model in AXES[axis][1]:
            for policy in sorted({r.policy for r in records}):
                rows = series(records, axis, model, "train_step", policy)
                if not rows:
                    continue
                sizes, colour = [r.size for r in rows], colours[model]
                label = model if policy == "float32" else f"{model} {policy}"
                ours = [cost(r, "ours") for r in rows]
                panel.plot(sizes, ours, styles[policy], marker="o", color=colour, label=label)
                if policy == "float32":  # TFP's side is float32 whatever the policy
                    theirs = [cost(r, "theirs") for r in rows]
                    panel.plot(sizes, theirs, "--", marker="x", color=colour, alpha=0.7)
        panel.set(xscale="log", yscale="log", xlabel=AXES[axis][0], title=axis)
        # Ticks at the measured sizes (images: H x W) and at 1, 2, 5 x 10^k ms, in plain numbers.
        sizes = sorted({r.size for r in records if r.axis == axis})
        panel.set_xticks(sizes, [f"{math.isqrt(n)}x{math.isqrt(n)}" if axis == "image size" else str(n) for n in sizes])
        panel.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        panel.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda value, _: f"{value:g}"))
        for ticks in (panel.xaxis, panel.yaxis):
            ticks.set_minor_formatter(matplotlib.ticker.NullFormatter())
        panel.grid(True, which="both", alpha=0.3)
    panels[0].set_ylabel("train step (ms per batch)")
    handles = {label: handle for panel in panels for handle, label in zip(*panel.get_legend_handles_labels())}
    fig.legend(handles.values(), handles.keys(), loc="upper right", fontsize="small", title="ours solid, TFP dashed")
    fig.suptitle(f"How cost grows with size ({head['mode']}; {head['device']})", fontsize="medium")
    fig.tight_layout(rect=(0, 0, 0.9, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="three points per axis, small widths (< 5 min on CPU)")
    parser.add_argument("--dry-run", action="store_true", help="two tiny points per axis, eager, one call each")
    parser.add_argument(
        "--policy",
        choices=("float32", "mixed_bfloat16", "both"),
        default=None,
        help="ours' Keras dtype policy (default: both on a GPU, float32 on CPU); TFP's side is float32",
    )
    parser.add_argument("--xla", choices=("auto", "on", "off"), default="auto", help="jit_compile of both sides")
    parser.add_argument("--out", default=None, help="JSON output (default: benchmarks/results-scaling-<mode>.json)")
    parser.add_argument(
        "--axes",
        nargs="+",
        choices=[axis.replace(" ", "-") for axis in AXES],
        default=None,
        metavar="AXIS",
        help="axes to run (default: all): " + ", ".join(axis.replace(" ", "-") for axis in AXES),
    )
    parser.add_argument("--models", nargs="+", choices=MODELS, default=None, metavar="MODEL", help="default: all")
    parser.add_argument(
        "--from-json",
        default=None,
        metavar="FILE",
        help="measure nothing: print the tables and draw the figure of an earlier run's JSON",
    )
    parser.add_argument("--figure", default=None, help="PNG figure (default: docs/figures/scaling.png; none if dry)")
    return parser.parse_args(argv)


def run(args: argparse.Namespace, mode: str) -> tuple[dict, list[ScalingRecord]]:
    """Measure every point of the mode's grid: (header, records); the header lists the points that failed."""
    grid = GRIDS[mode]
    gpu = bool(tf.config.list_physical_devices("GPU"))
    policy = args.policy or ("both" if gpu else "float32")
    policies = ("float32", "mixed_bfloat16") if policy == "both" else (policy,)
    xla = None if mode == "dry" else {"auto": gpu, "on": True, "off": False}[args.xla]
    command = " ".join(["python", "benchmarks/scaling.py"] + args.argv)
    head = harness.header(mode, (xla,), args.axes or list(AXES), command)
    head.update(policies=list(policies), grid={key: grid[key] for key in ("vector", "glow", "axes")})
    head["theirs"] = "TFP's built-in flows, float32 whatever the policy"
    print(f"# scaling, {mode} run on {head['device']}; {head['versions']}; load {head['load_average_at_start']}")

    tf.get_logger().setLevel("ERROR")  # every point traces new functions: TensorFlow's retracing warnings say so
    start_wall, start_cpu = time.perf_counter(), harness.cpu_seconds()
    measured, records, failures = {}, [], []
    axes = [axis.replace("-", " ") for axis in args.axes] if args.axes else list(AXES)
    for policy in policies:
        for axis in axes:
            for model in [m for m in AXES[axis][1] if args.models is None or m in args.models]:
                for point in axis_points(grid, axis, model):
                    key = (point, policy)
                    if key not in measured:  # the centre point serves every axis
                        begin = time.perf_counter()
                        try:
                            measured[key] = measure(point, grid, policy, xla, head["device"])
                        except Exception as error:
                            traceback.print_exc()
                            failures.append(f"{point.describe(grid)} ({policy}): {type(error).__name__}: {error}")
                            measured[key] = []
                        print(f"{point.describe(grid)} ({policy}): {time.perf_counter() - begin:.1f} s", flush=True)
                    size = point.axis_size(axis)
                    records += [
                        ScalingRecord(**dataclasses.asdict(r), axis=axis, model=model, size=size, policy=policy)
                        for r in measured[key]
                    ]
    head.update(
        wall_seconds=round(time.perf_counter() - start_wall, 1),
        cpu_seconds=round(harness.cpu_seconds() - start_cpu, 1),
        failures=failures,
    )
    return head, records


def report(head: dict, records: list[ScalingRecord], figure: str | None) -> dict:
    """Print the tables (one per axis, then the exponents) and draw the figure; returns the fitted exponents."""
    fitted = exponents(records)
    for axis in measured_axes(records):
        print("\n" + axis_table(records, axis, fitted))
    print("\nGrowth exponents (least-squares slope of log time against log size):\n\n" + exponent_table(fitted))
    if figure:
        plot(records, figure, head)
    return fitted


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.from_json:
        with open(args.from_json, encoding="utf-8") as saved:
            head, *rows = json.load(saved)
        report(head, [ScalingRecord(**row) for row in rows], args.figure or FIGURE)
        return 0
    mode = "dry" if args.dry_run else ("quick" if args.quick else "full")
    head, records = run(args, mode)
    out = args.out or os.path.join(BENCHMARKS, f"results-scaling-{mode}.json")
    figure = args.figure or (None if mode == "dry" else FIGURE)
    fitted = report(head, records, figure)
    head["exponents"] = [
        dict(axis=a, model=m, metric=k, policy=p, ours=_rounded(o), theirs=_rounded(t))
        for (a, m, k, p), (o, t) in fitted.items()
    ]
    harness.write_json(out, head, records)
    failures = head["failures"]
    print(
        f"\n{len(records)} records written to {out}"
        + (f", figure {figure}" if figure else "")
        + f"; {head['wall_seconds']} s wall, {head['cpu_seconds']} s CPU"
        + (f"; FAILED: {failures}" if failures else "")
    )
    return 1 if failures else 0


def _rounded(value):
    return None if value is None or not math.isfinite(value) else round(value, 3)


if __name__ == "__main__":
    sys.exit(main())
