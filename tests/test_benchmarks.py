"""benchmarks/: the dry run builds every case and writes well-formed records; the timing protocol alternates.

Nothing here is timed: the dry run's numbers are meaningless (tiny shapes, eager, one call each). The test
checks structure (every case, both contenders, the header) and the protocol (alternation, medians, ratios).
"""

import importlib.util
import json
import math
import os
import pathlib
import subprocess
import sys
import types

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
RECORD_KEYS = {"case", "metric", "ours", "theirs", "ratio", "unit", "xla", "device"}

# Case name (run.py --cases) -> a word every one of its records' "case" strings contains, and whether a TFP
# peer must be present ("theirs" filled in by a different implementation).
EXPECTED_CASES = {
    "realnvp": ("realnvp", ("train_step", "log_prob", "sample")),
    "maf": ("maf", ("train_step", "log_prob", "sample")),
    "glow": ("glow", ("train_step", "sample", "train_step_peak_memory")),
    "mixture": ("logistic-mixture", ("forward_root_solve_vs_inverse_closed_form", "max_forward_root_solve_error")),
    "planar_radial": ("flow K=", ("inverse_vs_forward", "max_inverse_error")),
    "fit_quality": ("fit ", ("kl_gap RealNVP", "kl_gap Glow-2D", "kl_gap NICE", "kl_gap MAF", "kl_gap FlowPlusPlus")),
}


def _load_harness():
    # Loaded from its file under a private name: the benchmarks folder is not a package and must not be put on
    # sys.path here (its module names could shadow others in the test process).
    spec = importlib.util.spec_from_file_location("_benchmarks_harness", BENCHMARKS / "harness.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "dry.json"
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "run.py"), "--quick", "--dry-run", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"dry run failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    return json.loads(out.read_text()), result.stdout


@pytest.mark.slow
def test_dry_run_writes_a_header_then_records(dry_run):
    data, _ = dry_run
    assert isinstance(data, list) and data
    head = data[0]
    assert head["header"] is True
    assert head["mode"] == "dry"
    assert head["failures"] == []
    assert head["device"].startswith(("CPU", "GPU"))
    for package in ("python", "tensorflow", "tensorflow_probability", "keras"):
        assert head["versions"][package]
    assert head["date"] and head["command"].startswith("python benchmarks/run.py")
    assert "xla" in head
    for record in data[1:]:
        assert set(record) >= RECORD_KEYS, record
        assert record["device"] == head["device"]


def test_dry_run_covers_every_case_and_metric(dry_run):
    data, _ = dry_run
    records = data[1:]
    for name, (word, metrics) in EXPECTED_CASES.items():
        found = {r["metric"] for r in records if word in r["case"]}
        missing = set(metrics) - found
        assert not missing, f"case {name}: metrics {sorted(missing)} missing; found {sorted(found)}"


def test_records_have_consistent_numbers(dry_run):
    data, _ = dry_run
    for record in data[1:]:
        ours, theirs, ratio = record["ours"], record["theirs"], record["ratio"]
        assert ours is not None and math.isfinite(ours), record
        if record["unit"].startswith("ms") or record["unit"] == "MiB":
            assert ours >= 0 and theirs is not None and theirs >= 0, record
        if ratio is not None:
            assert ratio == pytest.approx(ours / theirs, rel=1e-9), record


def test_peer_cases_measure_both_contenders(dry_run):
    data, _ = dry_run
    for record in data[1:]:
        if any(word in record["case"] for word in ("realnvp", "maf", "glow")):
            assert record["theirs"] is not None and record["ratio"] is not None, record
        if record["metric"].startswith("kl_gap"):
            assert record["theirs"] is not None and math.isfinite(record["theirs"]), record


def test_the_printed_table_lists_every_record(dry_run):
    data, stdout = dry_run
    rows = [line for line in stdout.splitlines() if line.startswith("| ") and not line.startswith("| case")]
    # Each record is printed twice: after its case, and in the final table.
    assert len(rows) == 2 * (len(data) - 1)


SCALING_AXES = {
    "event size": {"RealNVP", "NSF", "MAF"},
    "batch": {"RealNVP", "NSF", "MAF", "Glow"},
    "depth": {"RealNVP", "NSF", "MAF", "Glow"},
    "image size": {"Glow"},
}
SCALING_METRICS = {"train_step", "log_prob", "train_step_peak_memory"}


@pytest.mark.slow
def test_scaling_dry_run_covers_every_axis_model_and_side_and_fits_the_exponents(tmp_path):
    """benchmarks/scaling.py --dry-run builds ours and TFP's side at two points of every axis, writes the run.py
    header and a record per point and metric, fits each exponent by least squares on log-log, prints a table per
    axis and draws the figure."""
    out, figure = tmp_path / "scaling.json", tmp_path / "scaling.png"
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "scaling.py"), "--dry-run", "--out", str(out), "--figure", str(figure)],
        cwd=ROOT,
        env=dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"dry run failed:\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
    head, *records = json.loads(out.read_text())
    assert head["mode"] == "dry" and head["failures"] == [] and head["policies"] == ["float32"]
    assert head["command"].startswith("python benchmarks/scaling.py") and head["wall_seconds"] > 0
    assert head["versions"]["tensorflow"] and head["date"] and head["cpu_seconds"] > 0
    found = {}
    for record in records:
        assert set(record) >= RECORD_KEYS | {"axis", "model", "size", "policy"}, record
        assert record["ours"] > 0 and record["theirs"] > 0, record
        found.setdefault((record["axis"], record["model"], record["metric"]), []).append(record)
    assert set(found) == {(a, m, k) for a, models in SCALING_AXES.items() for m in models for k in SCALING_METRICS}
    fitted = {(e["axis"], e["model"], e["metric"]): e for e in head["exponents"]}
    for key, group in found.items():
        sizes = np.log([r["size"] for r in group])
        assert len(set(sizes)) == 2, key
        for side in ("ours", "theirs"):
            fastest = [r[side] if r[side + "_min"] is None else r[side + "_min"] for r in group]
            slope = np.polyfit(sizes, np.log(fastest), 1)[0]
            assert fitted[key][side] == pytest.approx(slope, abs=1e-3), (key, side)
    for axis in SCALING_AXES:
        assert f"**{axis}**" in result.stdout
    assert "Growth exponents" in result.stdout and figure.stat().st_size > 10_000


def test_timing_alternates_and_reports_medians(monkeypatch):
    harness = _load_harness()
    calls = []
    ours_times = iter([5.0, 1.0, 3.0, 2.0, 4.0])

    def ours():
        calls.append("ours")
        return None

    def theirs():
        calls.append("theirs")
        return None

    clock = {"now": 0.0}

    # Drive the timer with a fake clock: each call of ours advances it by the next value, theirs by 10.
    def fake_perf_counter():
        return clock["now"]

    def timed(fn, step):
        def run():
            fn()
            clock["now"] += step() if callable(step) else step

        return run

    monkeypatch.setattr(harness.time, "perf_counter", fake_perf_counter)
    timing = harness.time_alternating(
        timed(ours, lambda: next(ours_times)), timed(theirs, 10.0), warmup=0, repeats=5, inner=1
    )
    monkeypatch.undo()
    t_ours, t_theirs = timing.ours, timing.theirs
    assert calls == ["ours", "theirs", "theirs", "ours", "ours", "theirs", "theirs", "ours", "ours", "theirs"]
    assert t_ours == 3.0  # the median of 5, 1, 3, 2, 4
    assert t_theirs == 10.0
    assert timing.ours_min == 1.0 and timing.ratio == 0.3 and timing.min_ratio == 0.1


def test_warmup_calls_are_not_timed():
    harness = _load_harness()
    calls = []
    timing = harness.time_alternating(lambda: calls.append(1), None, warmup=3, repeats=2, inner=2)
    assert len(calls) == 3 + 2 * 2
    assert timing.theirs is None and timing.ours >= 0 and timing.ratio is None


def test_both_contenders_are_warmed_up_and_fast_calls_are_repeated():
    harness = _load_harness()
    calls = {"ours": 0, "theirs": 0}

    def count(who):
        def fn():
            calls[who] += 1

        return fn

    # The warm-up calls take next to no time, so min_measure_seconds asks for many calls per timing.
    timing = harness.time_alternating(
        count("ours"), count("theirs"), warmup=2, repeats=3, inner=1, min_measure_seconds=0.01
    )
    assert timing.inner > 1
    assert calls == {"ours": 2 + 3 * timing.inner, "theirs": 2 + 3 * timing.inner}


def test_ratio_and_json_conversion():
    harness = _load_harness()
    assert harness.ratio(1.0, 4.0) == 0.25
    assert harness.ratio(1.0, None) is None and harness.ratio(None, 2.0) is None and harness.ratio(1.0, 0.0) is None
    record = harness.Record("c", "m", float("nan"), 2.0, None, "ms", True, "CPU")
    as_dict = record.as_dict()
    assert as_dict["ours"] is None  # NaN is not valid JSON: written as null
    json.dumps(as_dict)


def _load_unseen_data():
    spec = importlib.util.spec_from_file_location("_benchmarks_unseen_data", BENCHMARKS / "unseen_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["spiral_mixture", "banana_t", "ica2", "spiral_mixture x0.5"])
@pytest.mark.slow_params("spiral_mixture x0.5", "spiral_mixture")
def test_unseen_densities_are_normalised(name):
    """The fit-quality benchmark's exact log-densities integrate to 1 (a wrong Jacobian or constant would not),
    also on data shrunk by --scale (its log p must gain D log 2)."""
    import numpy as np

    unseen = _load_unseen_data()
    rng = np.random.default_rng(0)
    if name == "ica2":
        _, sample, log_prob = unseen._ica(2, 10, rng)
    elif name.endswith("x0.5"):
        data = unseen.build("spiral_mixture", 0, num_train=10, num_test=20_000, scale=0.5)
        assert np.max(np.abs(data.test)) < 3.0  # the spiral reaches a radius of about 5 unscaled
        sample, log_prob = (lambda m: data.test), data.log_prob
    else:
        _, sample, log_prob = unseen.DENSITY_BUILDERS[name](10, rng)
    # Integrate on a grid covering the samples' range; the Student-t's tails beyond it hold < 1% of the mass.
    points = sample(20_000)
    low, high = np.percentile(points, 0.05, axis=0) - 1.0, np.percentile(points, 99.95, axis=0) + 1.0
    axes = [np.linspace(lo, hi, 700) for lo, hi in zip(low, high)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 2)
    cell = np.prod([a[1] - a[0] for a in axes])
    mass = np.exp(log_prob(grid)).sum() * cell
    assert abs(mass - 1.0) < 0.02, mass


def test_2d_densities_turn_per_seed_and_keep_their_density():
    """Each seed turns a 2-D set by its own angle; the density follows the points (log p is rotation-invariant
    up to the turn: a transposed rotation or a forgotten inverse would not match)."""
    import numpy as np

    unseen = _load_unseen_data()

    def draw(seed, rotate=True):
        return unseen.build("banana_t", seed, num_train=50, num_test=200, rotate=rotate)

    def turn(seed):  # the angle seed `seed` turns its points by
        point, turned_point = draw(seed, rotate=False).test[0], draw(seed).test[0]
        return np.arctan2(turned_point[1], turned_point[0]) - np.arctan2(point[1], point[0])

    plain, turned = draw(0, rotate=False), draw(0)
    np.testing.assert_allclose(np.linalg.norm(turned.test, axis=1), np.linalg.norm(plain.test, axis=1), rtol=1e-5)
    assert not np.allclose(turned.test, plain.test, atol=0.1)
    np.testing.assert_allclose(
        turned.log_prob(turned.test.astype(np.float64)),
        plain.log_prob(plain.test.astype(np.float64)),
        rtol=1e-4,
        atol=1e-4,
    )
    assert not np.isclose(turn(0), turn(1), atol=1e-3)


@pytest.fixture
def vs_plain(monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))  # the module puts benchmarks/ on sys.path: undo afterwards
    spec = importlib.util.spec_from_file_location("_benchmarks_vs_plain", BENCHMARKS / "vs_plain_tfp.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_plain_side_is_one_variant_chosen_by_median(tmp_path, vs_plain):
    """vs_plain_tfp judges ours against ONE plain variant per data set (the better median), not the per-seed
    minimum of two noisy draws; a failed fit (NaN) counts as the worst; --table exits 1 when ours loses."""
    variants = [{"a": 1.0, "b": 3.0}, {"a": 1.0, "b": 0.5}, {"a": 1.0, "b": 0.5}, {"a": 1.0, "b": math.nan}]
    ours = [(0.9, 0.8)] * 4  # beats variant "a" everywhere; the per-seed minimum (1.0, 0.5, 0.5, 1.0) would win
    row = vs_plain.make_row("spiral_mixture", "RealNVP", [0, 1, 2, 3], ours, variants, None)
    assert row["theirs_variant"] == "a" and row["theirs_median"] == 1.0 and row["verdict"] == "won"
    losing = vs_plain.make_row("spiral_mixture", "MAF", [0, 1, 2, 3], [(1.5, 1.0)] * 4, variants, None)
    assert losing["verdict"] == "lost"
    path = tmp_path / "rows.json"
    path.write_text(json.dumps({"rows": [row, losing]}))
    assert vs_plain.main(["--table", str(path)]) == 1


def test_keep_best_judges_the_best_checkpoints_against_their_own_best_variant(tmp_path, vs_plain):
    """--keep-best rows are judged on the best validation checkpoints, with the plain variant whose best
    checkpoints have the better median (not the one that was better at the last step)."""
    variants = [{"a": 1.0, "b": 5.0}] * 3
    best = {"ours": [(0.8, 300)] * 3, "variants": [{"a": (1.0, 3000), "b": (0.9, 600)}] * 3}
    row = vs_plain.make_row("spiral_mixture", "MAF", [0, 1, 2], [(2.0, 1.0)] * 3, variants, None, best=best)
    assert row["verdict"] == "lost" and row["theirs_best_variant"] == "b" and row["verdict_best"] == "won"
    losing = vs_plain.make_row(
        "spiral_mixture", "MAF", [0, 1, 2], [(0.5, 0.4)] * 3, variants, None, best=dict(best, ours=[(0.95, 300)] * 3)
    )
    assert losing["verdict"] == "won" and losing["verdict_best"] == "lost"
    for rows, status in (([row], 0), ([losing], 1)):
        path = tmp_path / "rows.json"
        path.write_text(json.dumps({"rows": rows}))
        assert vs_plain.main(["--table", str(path)]) == status


def test_table_merges_one_comparisons_seeds_across_files_and_nowhere_else(tmp_path, vs_plain):
    """--table joins the seeds of one comparison run in several files (then judges the median of all), keeps rows
    of another --scale apart, and refuses a seed given twice."""
    variants = [{"a": 1.0}]

    def write(name, seeds, ours, scale=1.0):
        path = tmp_path / name
        row = vs_plain.make_row(
            "spiral_mixture",
            "MAF",
            seeds,
            [(ours, ours)] * len(seeds),
            variants * len(seeds),
            variants * len(seeds),
            scale=scale,
        )
        path.write_text(json.dumps({"rows": [row]}))
        return str(path)

    first, second = write("0-1.json", [0, 1], 0.5), write("2-4.json", [2, 3, 4], 2.0)
    (merged,), _ = vs_plain.table_from_files([first, second])
    assert merged["seeds"] == [0, 1, 2, 3, 4] and merged["ours_median"] == 2.0 and merged["verdict"] == "lost"
    rows, losses = vs_plain.table_from_files([first, write("half.json", [2], 2.0, scale=0.5)])
    assert [r["seeds"] for r in rows] == [[0, 1], [2]] and losses == ["spiral_mixture x0.5 MAF"]
    with pytest.raises(ValueError, match=r"seeds \[1\]"):
        vs_plain.table_from_files([first, write("again.json", [1], 0.5)])


@pytest.mark.slow
def test_both_sides_train_exactly_the_budget_and_checkpoint_every_tenth(vs_plain):
    """310 steps are 310 optimizer steps on either side (Keras rounds an epoch up to whole blocks of
    steps_per_execution: 310 at 50 per block once ran 350), with a validation checkpoint after every 31."""
    import numpy as np

    import keras_models

    data = types.SimpleNamespace(
        train=np.random.default_rng(0).normal(size=(256, 2)).astype("float32"), image=False, dequantize_per_batch=False
    )
    for model in (
        keras_models.MAF(event_shape=(2,), num_layers=1, hidden_units=(4,)),
        vs_plain.plain_tfp.PlainMAF(2, num_layers=1, hidden_units=(4,)),
    ):
        steps_seen = []
        vs_plain._train(
            model,
            data,
            dict(batch=32, lr=1e-3),
            310,
            0,
            jit_compile=False,
            on_chunk=lambda model=model, seen=steps_seen: seen.append(int(model.optimizer.iterations.numpy())),
        )
        assert steps_seen == list(range(31, 311, 31)), type(model).__name__


@pytest.mark.slow
def test_conditional_spiral_arms_mixes_back_to_the_spiral():
    """spiral_arms' exact densities agree: sum_c p(c) p(x | c) = p(x) (the benchmark's mutual information and
    both KL gaps rest on it), each p(x | c) integrates to 1, and each class's points lie on its own arm."""
    import numpy as np
    from scipy import special

    unseen = _load_unseen_data()
    data = unseen.build_conditional("spiral_arms", seed=0, num_train=2000, num_test=10)
    x, c = data.train[0].astype(np.float64), data.train[1]
    k = data.num_classes
    per_class = np.stack([data.log_prob_given(x, np.eye(k)[[j] * len(x)]) for j in range(k)], axis=1)
    np.testing.assert_allclose(special.logsumexp(per_class, axis=1) - np.log(k), data.log_prob(x), rtol=1e-10)
    assert np.mean(np.argmax(per_class, axis=1) == np.argmax(c, axis=1)) > 0.95
    axes = [np.linspace(-6, 6, 800)] * 2
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 2)
    cell = (axes[0][1] - axes[0][0]) ** 2
    for j in range(k):
        mass = np.exp(data.log_prob_given(grid, np.eye(k)[[j] * len(grid)])).sum() * cell
        assert abs(mass - 1.0) < 0.01, (j, mass)


def test_a_row_is_tied_within_the_plain_builds_own_seed_noise_and_decided_beyond_it(vs_plain):
    """d = median over seeds of (ours - theirs); n = median |theirs - theirs trained with another seed|: won when
    d < -n, lost when d > n, tied otherwise; the noise counts only for the form the row is judged against."""
    seeds = [0, 1, 2, 3, 4]
    variants = [{"bounded": t, "zero-init": 9.0} for t in (1.0, 1.2, 0.8, 1.1, 0.9)]
    noise = {"variant": "bounded", "repeat": [1.1, 1.0, 0.9, 1.0, 1.0], "repeat_best": None}  # |diffs| median 0.1

    def row(shift, noise=noise):
        ours = [(v["bounded"] + shift, 0.0) for v in variants]
        return vs_plain.make_row("wine13", "RealNVP", seeds, ours, variants, None, noise=noise)

    assert (row(-0.05)["verdict"], row(0.05)["verdict"]) == ("tied", "tied")
    assert row(-0.05)["noise_n"] == pytest.approx(0.1) and row(0.05)["difference"] == pytest.approx(0.05)
    assert (row(-0.2)["verdict"], row(0.2)["verdict"]) == ("won", "lost")
    # Repeats of another form say nothing of this one's spread: the fixed tolerance then decides.
    assert row(0.05, dict(noise, variant="zero-init"))["verdict"] == "lost"
    # A failed plain fit counts as its worst, so ours wins that seed; two failed fits are no difference.
    failed = vs_plain.make_row("wine13", "RealNVP", [0], [(math.nan, 0.0)], [{"bounded": math.nan}], None)
    assert failed["difference"] == 0.0 and failed["verdict"] == "tied"


def test_bayesflow_is_judged_against_ours_with_the_rows_noise(vs_plain):
    variants = [{"bounded": 1.0}] * 3
    noise = {"variant": "bounded", "repeat": [1.05] * 3, "repeat_best": None}
    peers = [{"BayesFlow": 0.7}, {"BayesFlow": 0.8}, {"BayesFlow": 0.98}]
    row = vs_plain.make_row("wine13", "NSF", [0, 1, 2], [(0.9, 0.0)] * 3, variants, None, peers=peers, noise=noise)
    assert row["verdict"] == "won" and row["peer_verdicts"] == {"BayesFlow": "lost"}


def test_tabular_seeds_are_the_folds_of_a_cross_validation_standardised_by_their_training_rows():
    unseen = _load_unseen_data()
    rows = np.random.default_rng(0).normal(loc=[100.0, -3.0], scale=[50.0, 0.01], size=(23, 2))
    tested = []
    for seed in range(unseen.NUM_FOLDS):
        train, validation, test = unseen.tabular_fold(rows, seed)
        fit = np.concatenate([train, validation])
        np.testing.assert_allclose(fit.mean(axis=0), 0.0, atol=1e-5)  # the training rows' own statistics
        np.testing.assert_allclose(fit.std(axis=0), 1.0, atol=1e-5)
        assert len(fit) + len(test) == len(rows) and len(validation) == round(0.2 * len(fit))
        tested.append(test * fit.std(axis=0))
    assert sum(len(t) for t in tested) == len(rows)  # the held-out folds cover every row once
    other = unseen.tabular_fold(rows, unseen.NUM_FOLDS)[2]  # seed 5: fold 0 of another row order
    assert not np.array_equal(other, unseen.tabular_fold(rows, 0)[2])
    wine = unseen.build("wine13", 3)
    assert wine.train.shape[1] == 13 and wine.log_prob is None and wine.validation is not None
    assert unseen.metric("wine13") == "NLL (nats)" and unseen.metric("mnist784-once") == "bits/dim"


def test_the_fixed_noise_regime_dequantizes_the_training_pixels_once():
    unseen = _load_unseen_data()
    fresh, once = unseen.build("digits64", 0), unseen.build("digits64-once", 0)
    assert fresh.dequantize_per_batch and not once.dequantize_per_batch and once.image
    assert np.array_equal(fresh.train, np.round(fresh.train))  # integer pixels, noised per batch
    assert not np.array_equal(once.train, np.round(once.train))  # logit-space values, fixed
    pixels = (unseen.special.expit(once.train) - unseen.LOGIT_ALPHA) / (1 - 2 * unseen.LOGIT_ALPHA) * 256.0
    # The same images with noise in [0, 1) (float32 logits: within 1e-3 of a level's edges).
    assert np.all(np.abs(pixels - (fresh.train + 0.5)) <= 0.5 + 1e-3)
    np.testing.assert_array_equal(once.test, fresh.test)


@pytest.mark.parametrize("model", ["PlainRealNVP", "PlainGlow2D"])
def test_the_bounded_plain_forms_keep_every_log_scale_inside_one(vs_plain, model):
    """The bounded form (zero-initialised last layer, tanh on the log-scale) starts as the identity and, whatever
    its weights, scales no transformed entry by more than e per coupling."""
    import tensorflow as tf

    flow_class = getattr(vs_plain.plain_tfp, model)
    flow = flow_class(4, 2, (8,), bounded=True)
    x = tf.constant(np.random.default_rng(0).normal(size=(16, 4)).astype("float32"))
    if model == "PlainRealNVP":
        np.testing.assert_allclose(flow.flow().inverse(x), x, atol=1e-6)  # zero last layer: the identity
    for weight in flow.trainable_weights:
        if "lower_upper" not in weight.path:
            weight.assign(tf.random.normal(weight.shape, stddev=30.0))
    couplings = [b for b in flow.flow().bijectors if "real_nvp" in b.name]
    assert couplings
    for coupling in couplings:
        log_det = coupling.forward_log_det_jacobian(x, event_ndims=1).numpy()
        assert np.all(np.abs(log_det) <= 2.0 + 1e-4), log_det  # two transformed entries, |s| < 1 each
    unbounded = flow_class(4, 2, (8,), zero_init=True)
    for weight, value in zip(unbounded.trainable_weights, flow.trainable_weights):
        weight.assign(value)
    log_dets = [
        b.forward_log_det_jacobian(x, event_ndims=1).numpy() for b in unbounded.flow().bijectors if "real_nvp" in b.name
    ]
    assert max(np.abs(d).max() for d in log_dets) > 2.0  # the same weights unbounded: the bound is what holds


@pytest.mark.slow
def test_bayesflow_peer_trains_with_fit_and_scores_by_its_exact_density(vs_plain):
    pytest.importorskip("bayesflow")
    import tensorflow as tf

    peer = vs_plain.bayesflow_peer.BayesFlowCoupling(3, depth=2, hidden_units=(8,), transform="spline")
    x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    peer.compile(optimizer="adam")
    history = peer.fit(tf.data.Dataset.from_tensor_slices(x).batch(32), epochs=1, verbose=0)
    log_q = peer.log_prob(x).numpy()
    assert log_q.shape == (64,) and np.all(np.isfinite(log_q)) and peer.trainable_weights
    assert np.isfinite(history.history["loss"][0])


def test_bayesflow_peer_gets_as_many_couplings_as_ours(vs_plain):
    """BayesFlow's depth counts DualCouplings (two couplings each): K of ours meet depth K / 2, not depth K."""
    pytest.importorskip("bayesflow")
    ours, _, peers = vs_plain._contenders(4, (8,))["RealNVP"]
    peer = peers["BayesFlow"]()
    dual = [layer for layer in peer.network.invertible_layers if type(layer).__name__ == "DualCoupling"]
    couplings = [layer for layer in ours().flow_layers if type(layer).__name__ == "AffineCouplingLayer"]
    assert 2 * len(dual) == len(couplings) == 8
    with pytest.raises(ValueError, match="num_couplings"):
        vs_plain.bayesflow_peer.depth_for(5)


def test_table_judges_a_study_of_our_settings_against_the_plain_side_of_the_same_seeds(tmp_path, vs_plain):
    """An ours-only study (--no-plain --ours-args) borrows the plain forms another run trained on the same data and
    seeds, picked seed by seed; a study with a seed no plain run has stays ours-only."""

    def write(name, seeds, ours, plain=True, ours_args=None):
        row = vs_plain.make_row(
            "wine13",
            "RealNVP",
            seeds,
            [(o, o) for o in ours],
            [{"bounded": 10.0 + s} for s in seeds] if plain else [{} for _ in seeds],
            None,
            plain=plain,
            ours_args=ours_args,
        )
        (tmp_path / name).write_text(json.dumps({"rows": [row]}))
        return str(tmp_path / name)

    plain = write("plain.json", [0, 1, 2], [11.0, 11.0, 11.0])
    study = write("lu.json", [2, 0], [1.0, 13.0], plain=False, ours_args={"mixing": "lu"})
    rows, _ = vs_plain.table_from_files([plain, study])
    (lu,) = [r for r in rows if r["ours_args"]]
    assert lu["theirs_variant"] == "bounded" and lu["theirs"] == [12.0, 10.0]
    assert lu["difference"] == pytest.approx(-4.0) and lu["verdict"] == "won"  # median of 1 - 12 and 13 - 10
    unpaired = write("lu-5.json", [5], [1.0], plain=False, ours_args={"mixing": "lu"})
    (row,) = [r for r in vs_plain.table_from_files([plain, unpaired])[0] if r["ours_args"]]
    assert row["verdict"] == "(ours only)"
