"""Benchmarks: our flows against TensorFlow Probability's built-in ones, side by side in one process.

    python benchmarks/run.py [--quick] [--dry-run] [--out results.json] [--cases realnvp maf ...] [--xla on|off|both]

Prints a Markdown table and writes JSON: a header record (device, versions, date, mode, XLA settings, the
command, run time) followed by one record per measurement,
    {"case", "metric", "ours", "theirs", "ratio", "unit", "xla", "device", "note"},
with ratio = ours / theirs (times and memory: below 1 = we are faster / smaller). Every comparison runs both
contenders in this process, alternating, after a warm-up, and reports medians (see `harness.py`).

Modes: full (default; the issue's sizes), --quick (smaller Glow and fit budgets, fewer repeats: a few minutes
on 2 CPU cores), --dry-run (tiny shapes, everything eager, one call each: checks that every case builds both
contenders and runs; its numbers mean nothing). The GPU is used when TensorFlow sees one.
"""

import argparse
import os
import sys
import time
import traceback

# Before TensorFlow loads: the BFC allocator on CPU gives allocator statistics (peak memory), as on GPU.
os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fit_quality
import harness
import numeric_cases
import speed_cases

CASES = {**speed_cases.CASES, **numeric_cases.CASES, **fit_quality.CASES}
XLA_CHOICES = {"on": (True,), "off": (False,), "both": (False, True)}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer repeats (minutes on 2 cores)")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="tiny shapes, eager, one call per contender: checks that every case builds and runs",
    )
    parser.add_argument("--out", default=None, help="JSON output path (default: benchmarks/results-<mode>.json)")
    parser.add_argument(
        "--cases",
        nargs="+",
        choices=sorted(CASES),
        default=list(CASES),
        metavar="CASE",
        help=f"cases to run (default: all): {', '.join(CASES)}",
    )
    parser.add_argument(
        "--xla",
        choices=sorted(XLA_CHOICES),
        default="both",
        help="jit_compile setting of both contenders (default: both; ignored by --dry-run)",
    )
    parser.add_argument(
        "--densities",
        nargs="+",
        choices=sorted(fit_quality.DENSITIES),
        default=None,
        metavar="NAME",
        help="fit_quality only: the 2-D densities (default: all in full mode, two_moons and eight_gaussians otherwise)",
    )
    parser.add_argument(
        "--fit-steps",
        type=int,
        default=None,
        metavar="N",
        help="fit_quality only: training steps per model (default: the mode's budget)",
    )
    parser.add_argument(
        "--fit-models",
        nargs="+",
        default=None,
        metavar="NAME",
        choices=[name for name in fit_quality.models(8) if name != "tfb.RealNVP"],
        help="fit_quality only: our models to train (default: all; tfb.RealNVP always runs)",
    )
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    mode = "dry" if args.dry_run else ("quick" if args.quick else "full")
    xla_settings = (None,) if mode == "dry" else XLA_CHOICES[args.xla]
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), f"results-{mode}.json")
    command = " ".join(["python", "benchmarks/run.py"] + list(sys.argv[1:] if argv is None else argv))
    head = harness.header(mode, xla_settings, args.cases, command)
    device = head["device"]
    print(f"# {mode} run on {device}; {head['versions']}; load average {head['load_average_at_start']}", flush=True)

    start_wall, start_cpu = time.perf_counter(), harness.cpu_seconds()
    records, failures = [], []
    for name in args.cases:
        # Fit quality trains with the mode's own XLA setting: run it once, not once per --xla setting.
        settings = xla_settings[:1] if name == "fit_quality" else xla_settings
        for xla in settings:
            case_start = time.perf_counter()
            try:
                kwargs = (
                    dict(densities=args.densities, steps=args.fit_steps, model_names=args.fit_models)
                    if name == "fit_quality"
                    else {}
                )
                new = CASES[name](mode, xla, device, **kwargs)
            except Exception as error:
                traceback.print_exc()
                failures.append(f"{name} (xla={xla}): {type(error).__name__}: {error}")
                continue
            records += new
            print(
                harness.format_table(new).split("\n", 2)[2],
                f"\n<!-- {name} xla={xla}: {time.perf_counter() - case_start:.0f} s -->",
                flush=True,
            )

    head.update(
        wall_seconds=round(time.perf_counter() - start_wall, 1),
        cpu_seconds=round(harness.cpu_seconds() - start_cpu, 1),
        failures=failures,
    )
    harness.write_json(out, head, records)
    print("\n" + harness.format_table(records))
    print(
        f"\n{len(records)} records written to {out}; {head['wall_seconds']} s wall, {head['cpu_seconds']} s CPU"
        + (f"; FAILED: {failures}" if failures else "")
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
