"""Measurement machinery shared by every benchmark case: alternating timings, peak memory, records, the header.

Timing protocol (the machines here are shared and noisy, so only ratios from one run mean anything):
  1. warm-up: each contender runs `warmup` times (tracing, XLA compilation, allocator growth);
  2. `repeats` rounds, each timing ours and theirs back to back, the order flipping every round
     (ours-theirs, theirs-ours, ...), so slow drifts of the machine's load hit both sides alike;
  3. each timing is `inner` calls divided by `inner`; every call ends by copying its outputs to the host
     (`.numpy()`), so asynchronous devices are really done;
  4. the reported value is the median over the rounds; ratio = ours / theirs (below 1: we are faster).

Peak memory: `tf.config.experimental.get_memory_info(device)["peak"]` after `reset_memory_stats`, minus what
was in use just before the step (weights, optimizer slots, the batch), so it is the extra memory of one step:
activations kept for the backward pass, gradients and temporaries. On GPU that is TensorFlow's BFC allocator;
on CPU, `run.py` sets TF_CPU_ALLOCATOR_USE_BFC=true before TensorFlow loads, so CPU tensors (and XLA's
buffers) come from the same kind of allocator and are counted the same way.
"""

import dataclasses
import datetime
import json
import math
import os
import platform
import resource
import statistics
import sys
import time

import numpy as np
import tensorflow as tf

RECORD_KEYS = ("case", "metric", "ours", "theirs", "ratio", "unit", "xla", "device")


@dataclasses.dataclass
class Record:
    """One measured quantity. `ratio` = ours / theirs (None when there is no peer); `note` explains it.

    Timings also keep the fastest round of each side (`ours_min`, `theirs_min`, same unit): load from other jobs
    only ever adds time, so on a shared machine the minimum is the least disturbed estimate of a cost.
    """

    case: str
    metric: str
    ours: float
    theirs: float
    ratio: float
    unit: str
    xla: bool
    device: str
    note: str = ""
    ours_min: float | None = None
    theirs_min: float | None = None

    def as_dict(self):
        return {key: _json_number(value) for key, value in dataclasses.asdict(self).items()}


def _json_number(value):
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def ratio(ours, theirs):
    if ours is None or theirs is None or not theirs:
        return None
    return float(ours) / float(theirs)


def _block(outputs):
    """Copy every tensor of `outputs` to the host: the work behind them is finished afterwards."""
    for tensor in tf.nest.flatten(outputs):
        if tf.is_tensor(tensor):
            tensor.numpy()


def _time_once(fn, inner):
    start = time.perf_counter()
    for _ in range(inner):
        _block(fn())
    return (time.perf_counter() - start) / inner


@dataclasses.dataclass
class Timing:
    """Seconds per call: medians over the rounds (the reported numbers) and minima (the least disturbed)."""

    ours: float
    theirs: float
    ours_min: float
    theirs_min: float
    inner: int
    repeats: int

    @property
    def ratio(self):
        return ratio(self.ours, self.theirs)

    @property
    def min_ratio(self):
        return ratio(self.ours_min, self.theirs_min)


def time_alternating(ours, theirs, warmup=2, repeats=7, inner=1, min_measure_seconds=0.0):
    """Seconds per call of `ours()` and `theirs()`, timed alternately (module docstring); returns a `Timing`.

    `theirs` may be None (no peer): then only `ours` is timed, with the same protocol. Each timing averages
    `inner` calls, raised (from the last warm-up call) until it lasts about `min_measure_seconds`, so fast
    functions are not timed at the clock's resolution.
    """
    contenders = [ours] if theirs is None else [ours, theirs]
    last_warmup = []
    for fn in contenders:
        for _ in range(warmup):
            seconds = _time_once(fn, 1)
        if warmup:
            last_warmup.append(seconds)
    if last_warmup and min_measure_seconds:
        # Sized on the faster contender, so both timings last at least about min_measure_seconds.
        fastest = max(min(last_warmup), 1e-6)
        inner = max(inner, min(int(math.ceil(min_measure_seconds / fastest)), 1000))
    times = [[] for _ in contenders]
    for round_index in range(repeats):
        order = range(len(contenders)) if round_index % 2 == 0 else reversed(range(len(contenders)))
        for i in order:
            times[i].append(_time_once(contenders[i], inner))
    medians = [statistics.median(t) for t in times]
    minima = [min(t) for t in times]
    if theirs is None:
        return Timing(medians[0], None, minima[0], None, inner, repeats)
    return Timing(medians[0], medians[1], minima[0], minima[1], inner, repeats)


def memory_device():
    return "GPU:0" if tf.config.list_physical_devices("GPU") else "CPU:0"


def step_peak_bytes(fn, device=None, warm=True):
    """Extra bytes one call of `fn` needs above what is in use before it (peak - current), on `device`.

    `warm`: call `fn` once first, so tracing, compilation and the allocator's growth stay outside the measure.
    """
    device = device or memory_device()
    if warm:
        _block(fn())
    tf.config.experimental.reset_memory_stats(device)
    before = tf.config.experimental.get_memory_info(device)["current"]
    _block(fn())
    peak = tf.config.experimental.get_memory_info(device)["peak"]
    return max(peak - before, 0)


def memory_stats_available(device=None):
    """True when the allocator of `device` keeps statistics (GPU always; CPU only with the BFC allocator)."""
    device = device or memory_device()
    probe = tf.zeros([1024], tf.float32)
    info = tf.config.experimental.get_memory_info(device)
    del probe
    return info.get("peak", 0) > 0


# ------------------------------------------------------------------------------------------------------------
# The run's header: what, where, with which versions.
def _cpu_name():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_description():
    """A short human description of the device the benchmark runs on, e.g. 'GPU: NVIDIA H100 80GB HBM3'."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"GPU: {details.get('device_name', gpus[0].name)}"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"CPU: {_cpu_name()} ({cores} cores visible)"


def versions():
    import keras
    import tensorflow_probability as tfp

    found = {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "tensorflow_probability": tfp.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
    }
    try:
        import tf_keras

        found["tf_keras"] = tf_keras.__version__
    except ImportError:
        found["tf_keras"] = None
    return found


def cpu_seconds() -> float:
    """CPU seconds (user + system) this process has used so far: the header's `cpu_seconds` is a difference."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def header(mode, xla_settings, cases, command=None):
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "header": True,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": device_description(),
        "machine": f"{platform.node()} {platform.system()} {platform.release()}",
        "load_average_at_start": list(load) if load else None,
        "versions": versions(),
        "mode": mode,
        "xla": list(xla_settings),
        "cases": list(cases),
        "command": command or " ".join([os.path.basename(sys.executable)] + sys.argv),
        "memory_measure": (
            "extra bytes of one step above those in use before it, from TensorFlow's allocator "
            "statistics (BFC allocator; on CPU enabled by TF_CPU_ALLOCATOR_USE_BFC=true)"
        ),
        "ratio": "ours / theirs: below 1 means ours is faster (times) or smaller (memory)",
    }


def write_json(path, head, records):
    with open(path, "w", encoding="utf-8") as out:
        json.dump([head] + [r.as_dict() for r in records], out, indent=1)
        out.write("\n")


# ------------------------------------------------------------------------------------------------------------
# The printed table.
def _fmt(value):
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    value = float(value)
    if value == 0:
        return "0"
    if abs(value) >= 1e4 or abs(value) < 1e-3:
        return f"{value:.2e}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


def format_table(records):
    """A Markdown table of the records (the README pastes it)."""
    lines = ["| case | metric | xla | ours | theirs | ratio | unit | note |", "|---|---|---|---|---|---|---|---|"]
    for r in records:
        xla = "eager" if r.xla is None else ("on" if r.xla else "off")
        lines.append(
            f"| {r.case} | {r.metric} | {xla} | {_fmt(r.ours)} | {_fmt(r.theirs)} | "
            f"{_fmt(r.ratio)} | {r.unit} | {r.note} |"
        )
    return "\n".join(lines)
