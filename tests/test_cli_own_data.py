"""`tfp-flows train --data`, `score`, `evaluate --data` and `sample` on a user's own table."""

import csv
import json
import pathlib

import numpy as np
import pytest
from test_cli import tfp_flows

from keras_models.cli import main

MEANS, STDS = np.array([5.0, -1.0, 0.3]), np.array([100.0, 1.0, 0.01])


def _gaussian_csv(path, n, seed=0):
    rows = np.random.default_rng(seed).normal(MEANS, STDS, size=(n, 3))
    np.savetxt(path, rows, delimiter=",", header="big,mid,small", comments="", fmt="%.17g")
    return rows


def _read_scores(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_three_columns_in_very_different_units_train_to_the_true_held_out_log_density(tmp_path):
    """Standard deviations 100, 1 and 0.01: the mean test-row log-density is within 0.1 nats of the true one,
    so the units and every Jacobian are right (a missing log 100 or log 0.01 would be off by 4.6 nats)."""
    from scipy import stats

    from tfp_flows.datasets import from_source

    _gaussian_csv(tmp_path / "gauss.csv", 3000)
    tfp_flows("train", "--data", "gauss.csv", "--epochs", "3", "--steps-per-epoch", "50", "--quiet", cwd=tmp_path)
    run_dir = next((tmp_path / "runs").iterdir())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert run_dir.name.startswith("realnvp-gauss-") and metrics["columns"] == ["big", "mid", "small"]
    test_rows = from_source(str(tmp_path / "gauss.csv")).test  # the run's split: same seed, same fractions
    true_nll = -stats.norm.logpdf(test_rows, MEANS, STDS).sum(axis=1).mean()
    assert metrics["test_examples"] == len(test_rows) == 300
    assert abs(metrics["test_nll"] - true_nll) < 0.1, (metrics["test_nll"], true_nll)
    assert (run_dir / "pairwise.png").is_file()


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A run of a few steps on a CSV with a log column, trained in this process."""
    from keras_models.train import run

    work = tmp_path_factory.mktemp("own")
    rows = _gaussian_csv(work / "train.csv", 400)
    rows[:, 0] = np.abs(rows[:, 0]) + 1.0
    np.savetxt(work / "train.csv", rows, delimiter=",", header="big,mid,small", comments="", fmt="%.17g")
    result = run.train(
        dict(
            data=str(work / "train.csv"),
            log_columns="big",
            epochs=1,
            steps_per_epoch=5,
            batch_size=64,
            model_args={"num_couplings": 2, "hidden_units": [8]},
            run_dir=str(work / "runs"),
            export_dir=str(work / "saved"),
            verbose=0,
        )
    )
    return work, pathlib.Path(result["run_dir"]), result["metrics"]


@pytest.mark.slow
def test_score_from_the_run_and_from_the_bare_savedmodel_agree(tiny_run, capsys):
    work, run_dir, metrics = tiny_run
    # Rows in another column order: scoring reads the model's columns by name.
    rows = np.random.default_rng(5).normal(MEANS, STDS, size=(130, 3))
    rows[:, 0] = np.abs(rows[:, 0]) + 1.0
    np.savetxt(work / "new.csv", rows[:, [2, 0, 1]], delimiter=",", header="small,big,mid", comments="", fmt="%.17g")
    export = metrics["export_path"]
    for model, out in ((run_dir, "from_run.csv"), (export, "from_export.csv")):
        args = ["score", "--model", str(model), "--data", str(work / "new.csv"), "--out", str(work / out)]
        assert main([*args, "--batch-size", "50", "--threshold-quantile", "0.2"]) == 0
    from_run, from_export = _read_scores(work / "from_run.csv"), _read_scores(work / "from_export.csv")
    assert [r["index"] for r in from_run] == [str(i) for i in range(130)] and list(from_run[0]) == [
        "index",
        "log_prob",
        "is_outlier",
    ]
    a = np.array([float(r["log_prob"]) for r in from_run])
    b = np.array([float(r["log_prob"]) for r in from_export])
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-5)
    assert [r["is_outlier"] for r in from_run] == [r["is_outlier"] for r in from_export]
    quantiles = metrics["train_log_prob_quantiles"]
    assert [int(r["is_outlier"]) for r in from_run] == [int(v < quantiles["0.2"]) for v in a]
    # evaluate --data: the mean of the same scores.
    capsys.readouterr()
    assert main(["evaluate", "--model", str(export), "--data", str(work / "new.csv")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["examples"] == 130 and report["nll"] == pytest.approx(-a.mean(), rel=1e-5)


def test_sample_writes_csv_with_the_column_names_from_a_run_and_an_export(tiny_run):
    work, run_dir, metrics = tiny_run
    for model, out in ((run_dir, work / "s_run"), (metrics["export_path"], work / "s_export")):
        assert main(["sample", "--model", str(model), "--num-samples", "20", "--out", str(out)]) == 0
        with open(out / "samples.csv", newline="") as handle:
            table = list(csv.reader(handle))
        assert table[0] == ["big", "mid", "small"] and len(table) == 21
        assert all(float(row[0]) > 0 for row in table[1:])  # the log column comes back positive


HEADER = "big,mid,small\n"
BAD_FILES = {
    "missing": (None, "no file or folder"),
    "empty": ("", "empty"),
    "ragged": (HEADER + "1,2,3\n3,4,5,6\n4,5,6\n", "line 3 has 4 fields"),
    "text_column": (HEADER + "1,x,3\n2,y,4\n3,z,5\n", "column 'mid' is not numeric"),
    "constant_column": (HEADER + "1,7,1\n2,7,3\n3,7,2\n4,7,0\n", "column 'mid' is constant"),
    "nan": (HEADER + "1,2,3\n2,nan,4\n3,5,1\n4,1,2\n", "column 'mid' holds nan"),
    # The tiny run takes the log of `big`.
    "log_of_zero": (HEADER + "1,2,3\n0,1,4\n", "column 'big' holds 0.0 (row 1)"),
}
# Scoring takes a constant column (only training standardises); a log column's zero is the model's, not train's.
CASES = [("train", case) for case in sorted(BAD_FILES) if case != "log_of_zero"] + [
    ("score", case) for case in sorted(BAD_FILES) if case != "constant_column"
]


@pytest.mark.parametrize("command, case", CASES)
def test_bad_files_exit_2_with_one_line_and_write_nothing(tmp_path, capsys, case, command, tiny_run):
    text, message = BAD_FILES[case]
    if text is not None:
        (tmp_path / "bad.csv").write_text(text)
    data = str(tmp_path / ("bad.csv" if text is not None else "missing.csv"))
    if command == "train":
        args = ["train", "--data", data, "--run-dir", str(tmp_path / "runs"), "--export-dir", str(tmp_path / "sm")]
    else:
        args = ["score", "--model", str(tiny_run[1]), "--data", data, "--out", str(tmp_path / "out" / "s.csv")]
    capsys.readouterr()
    assert main(args) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith(f"tfp-flows {command}: error:"), lines
    assert sorted(p.name for p in tmp_path.iterdir()) == ([] if text is None else ["bad.csv"])


def test_data_and_dataset_together_are_refused(tmp_path, capsys):
    assert main(["train", "--data", "x.csv", "--dataset", "rings", "--run-dir", str(tmp_path / "runs")]) == 2
    assert "expected one of them" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """40 grey 8x8 PNGs in two class subfolders (dark, light), and a folder of mixed sizes."""
    import tensorflow as tf

    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for name, level in (("dark", 60), ("light", 190)):
        (root / "classes" / name).mkdir(parents=True)
        for i in range(20):
            pixels = np.clip(rng.normal(level, 25, (8, 8, 1)), 0, 255).astype(np.uint8)
            tf.io.write_file(str(root / "classes" / name / f"{i}.png"), tf.io.encode_png(pixels))
    (root / "mixed").mkdir()
    for i, size in enumerate((8, 8, 10, 8)):
        tf.io.write_file(str(root / "mixed" / f"{i}.png"), tf.io.encode_png(np.full((size, size, 1), i, np.uint8)))
    return root


@pytest.mark.slow  # ~30 s each on 2 busy cores: a Glow is traced, trained a few steps, plotted and exported
@pytest.mark.parametrize("conditional", [False, True])
def test_a_folder_of_pngs_trains_a_glow_and_a_conditional_glow(tmp_path, image_folder, conditional, capsys):
    from keras_models.train import run

    result = run.train(
        dict(
            data=str(image_folder / "classes"),
            preset="glow",
            conditional=conditional,
            epochs=1,
            steps_per_epoch=4,
            batch_size=8,
            validation_batches=1,
            model_args={"num_levels": 2, "num_steps": 1, "hidden_channels": 8},
            run_dir=str(tmp_path / "runs"),
            export_dir=str(tmp_path / "saved"),
            verbose=0,
        )
    )
    metrics = result["metrics"]
    assert metrics["stop_reason"] == "completed" and np.isfinite(metrics["validation_bits_per_dim"])
    assert metrics.get("context_shape") == ([2] if conditional else None)
    assert (pathlib.Path(result["run_dir"]) / "samples.png").is_file()
    if conditional:
        return
    # Scoring the folder: one line per file with its bits/dim, the same from the run and from the bare export.
    tables = []
    for model in (result["run_dir"], metrics["export_path"]):
        out = str(tmp_path / f"scores{len(tables)}.csv")
        args = ["score", "--model", model, "--data", str(image_folder / "classes"), "--out", out]
        assert main([*args, "--threshold-quantile", "0.1"]) == 0
        tables.append(_read_scores(out))
    assert len(tables[0]) == 40 and tables[0][0]["file"] == "dark/0.png"
    for name in ("log_prob", "bits_per_dim"):
        a, b = ([float(row[name]) for row in table] for table in tables)
        np.testing.assert_allclose(a, b, rtol=1e-5)
    log_prob, bits = float(tables[0][0]["log_prob"]), float(tables[0][0]["bits_per_dim"])
    assert bits == pytest.approx(8 - log_prob / (64 * np.log(2)), rel=1e-5)  # 8-bit images, D = 8 * 8 * 1
    capsys.readouterr()
    assert main(["evaluate", "--model", metrics["export_path"], "--data", str(image_folder / "classes")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["examples"] == 40
    assert report["bits_per_dim"] == pytest.approx(np.mean([float(row["bits_per_dim"]) for row in tables[0]]))


def test_mixed_image_sizes_without_image_size_exit_2_and_write_nothing(tmp_path, image_folder, capsys):
    args = ["train", "--data", str(image_folder / "mixed"), "--preset", "glow", "--run-dir", str(tmp_path / "r")]
    capsys.readouterr()
    assert main(args) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "different sizes" in lines[0] and "image_size" in lines[0], lines
    assert list(tmp_path.iterdir()) == []
