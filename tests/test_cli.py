"""The `tfp-flows` command, run as a user runs it: in a subprocess, with a tiny budget for every subcommand."""

import json
import os
import pathlib
import subprocess
import sys

import matplotlib.image
import numpy as np
import pytest

METRIC_KEYS = {
    "train_nll",
    "validation_nll",
    "epochs",
    "steps",
    "wall_time_s",
    "device",
    "stop_reason",
    "export_path",
    "preset",
    "dataset",
    "validation_kl_gap",
}


def tfp_flows(*args, cwd, check=True):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        [sys.executable, "-m", "keras_models.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"tfp-flows {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr[-4000:]}"
        )
    return result


def assert_real_image(path, min_size=(100, 100), min_variance=1e-3):
    """The PNG opens, has a plausible size, and is not blank (pixel variance above a threshold)."""
    image = matplotlib.image.imread(str(path))
    assert image.ndim == 3 and image.shape[0] >= min_size[0] and image.shape[1] >= min_size[1], image.shape
    assert float(np.var(image[..., :3])) > min_variance, f"{path} looks blank"


def _only_run_dir(runs):
    dirs = [d for d in pathlib.Path(runs).iterdir() if d.is_dir()]
    assert len(dirs) == 1, dirs
    return dirs[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny two-moons run, configured partly through a YAML file whose keys mirror the flags."""
    work = tmp_path_factory.mktemp("cli")
    (work / "run.yaml").write_text(
        "epochs: 2\nsteps-per-epoch: 10\nmodel_args:\n  num_couplings: 2\n  hidden_units: [16, 16]\n"
    )
    result = tfp_flows("train", "--config", "run.yaml", "--batch-size", "64", "--quiet", cwd=work)
    return work, result


@pytest.mark.slow
def test_train_writes_the_run_folder(trained):
    work, result = trained
    run_dir = _only_run_dir(work / "runs")
    assert run_dir.name.startswith("realnvp-two_moons-")
    config = json.loads((run_dir / "config.json").read_text())
    assert config["epochs"] == 2 and config["steps_per_epoch"] == 10 and config["model_args"]["num_couplings"] == 2
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics) >= METRIC_KEYS, sorted(METRIC_KEYS - set(metrics))
    assert metrics["stop_reason"] == "completed" and metrics["epochs"] == 2 and metrics["steps"] == 20
    assert np.isfinite(metrics["train_nll"]) and np.isfinite(metrics["validation_nll"])
    assert (run_dir / "model.keras").is_file()
    assert list((run_dir / "tensorboard").rglob("events.out.tfevents.*"))
    for figure in ("density.png", "training_curve.png"):
        assert_real_image(run_dir / figure)
    export = pathlib.Path(metrics["export_path"])
    assert (
        export.parent == (work / "saved_models" / "realnvp-two_moons").resolve()
        or export.parent.name == "realnvp-two_moons"
    )
    assert (work / "saved_models" / "realnvp-two_moons" / "1" / "saved_model.pb").is_file()
    assert "run folder:" in result.stdout and "SavedModel:" in result.stdout


@pytest.mark.slow
def test_evaluate_a_checkpoint_and_an_export(trained):
    work, _ = trained
    run_dir = _only_run_dir(work / "runs")
    from_checkpoint = json.loads(
        tfp_flows("evaluate", "--model", str(run_dir), "--dataset", "two_moons", "--split", "test", cwd=work)
        .stdout.strip()
        .splitlines()[-1]
    )
    from_export = json.loads(
        tfp_flows(
            "evaluate",
            "--model",
            "saved_models/realnvp-two_moons",
            "--dataset",
            "two_moons",
            "--split",
            "test",
            cwd=work,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    assert from_checkpoint["examples"] > 0
    np.testing.assert_allclose(from_export["nll"], from_checkpoint["nll"], rtol=1e-5)


@pytest.mark.slow
def test_sample_from_an_export_writes_npy_and_png(trained):
    work, _ = trained
    tfp_flows(
        "sample",
        "--model",
        "saved_models/realnvp-two_moons",
        "--num-samples",
        "300",
        "--seed",
        "4",
        "--out",
        "drawn",
        cwd=work,
    )
    samples = np.load(work / "drawn" / "samples.npy")
    assert samples.shape == (300, 2) and np.all(np.isfinite(samples))
    assert_real_image(work / "drawn" / "samples.png")


@pytest.mark.slow
def test_export_a_checkpoint_as_the_next_version(trained):
    work, _ = trained
    run_dir = _only_run_dir(work / "runs")
    out = tfp_flows("export", "--model", str(run_dir / "model.keras"), "--name", "realnvp-two_moons", cwd=work)
    assert (work / "saved_models" / "realnvp-two_moons" / "2" / "saved_model.pb").is_file(), out.stdout


def test_list_names_presets_and_datasets(tmp_path):
    out = tfp_flows("list", cwd=tmp_path).stdout
    for name in ("realnvp", "glow", "flowpp", "maf", "planar", "two_moons", "digits", "U1"):
        assert name in out, out
    assert (
        "conditional datasets (context shape of c): cifar10 (10,), digits (10,), eight_gaussians (8,), "
        "mnist (10,), two_moons (2,)" in out
    ), out


@pytest.mark.slow
def test_variational_inference_run_on_an_energy(tmp_path):
    # The objective from a config file, K from its flag: both routes reach VariationalFlow and metrics.json.
    (tmp_path / "vi.yaml").write_text("objective: iw-elbo\n")
    tfp_flows(
        "train",
        "--config",
        "vi.yaml",
        "--preset",
        "planar",
        "--dataset",
        "U2",
        "--epochs",
        "1",
        "--steps-per-epoch",
        "5",
        "--batch-size",
        "64",
        "--num-importance-samples",
        "4",
        "--quiet",
        cwd=tmp_path,
    )
    run_dir = _only_run_dir(tmp_path / "runs")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["stop_reason"] == "completed" and np.isfinite(metrics["train_elbo"])
    assert (metrics["objective"], metrics["num_importance_samples"]) == ("iw-elbo", 4)
    assert metrics["train_iw_elbo"] >= metrics["train_elbo"]  # L_4 >= L_1 on the same draws (Jensen)
    # log Z by importance sampling from q: U2 has no finite log Z, so only the estimate's own consistency is checked
    assert metrics["log_z_num_samples"] == 100_000 and 1.0 <= metrics["ess"] <= metrics["log_z_num_samples"]
    assert metrics["log_z"] >= metrics["elbo_10k_samples"] - 0.1 and 0.0 <= metrics["log_z_standard_error"] < 1.0
    assert (tmp_path / "saved_models" / "planar-u2" / "1" / "saved_model.pb").is_file()
    assert_real_image(run_dir / "density.png")


@pytest.mark.slow
def test_image_run_writes_sample_grids_and_an_interpolation_strip(tmp_path):
    # The default batch (256) on digits, whose validation split (250) is smaller than one batch: the README's
    # `tfp-flows train --preset glow --dataset digits` used to stop there.
    tfp_flows(
        "train",
        "--preset",
        "glow",
        "--dataset",
        "digits",
        "--epochs",
        "1",
        "--steps-per-epoch",
        "2",
        "--model-args",
        '{"num_levels": 1, "num_steps": 1, "hidden_channels": 4}',
        "--no-export",
        "--quiet",
        cwd=tmp_path,
    )
    run_dir = _only_run_dir(tmp_path / "runs")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 0 < metrics["validation_bits_per_dim"] < 16 and np.isfinite(metrics["train_bits_per_dim"])
    for figure in ("samples.png", "interpolation.png", "training_curve.png"):
        assert_real_image(run_dir / figure)


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--epochs", "-1"], "positive integer"),
        (["train", "--strategy", "tpu-pod"], "invalid choice"),
        (["train", "--model-args", "[1, 2]"], "JSON object"),
        (["train", "--warmup-fraction", "1"], "argument --warmup-fraction: expected a number in [0, 1), received '1'"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_flags_give_a_usage_error_and_exit_code_2(capsys, args, message):
    from keras_models.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "usage: tfp-flows" in err and message in err, err


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--preset", "no-such-flow"], "unknown preset"),
        (["train", "--dataset", "no-such-data"], "unknown dataset"),
        (["train", "--objective", "iw-elbo"], "`objective` (--objective) applies only to variational inference"),
        (["train", "--dataset", "rings", "--conditional"], "needs a dataset with labels (a context_shape)"),
        (["sample", "--model", "nowhere/at/all"], "nowhere"),
    ],
)
def test_bad_names_exit_2_with_one_clear_line_and_no_traceback(tmp_path, monkeypatch, capsys, args, message):
    from keras_models.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"tfp-flows {args[0]}: error: "), lines
    assert not any(tmp_path.iterdir()), "a refused command wrote files"


@pytest.mark.slow
def test_a_bad_name_is_the_only_line_a_fresh_process_prints(tmp_path):
    """As a user runs it, in a process of its own: TensorFlow's start-up lines are off without --verbose, so the
    error is all there is on stderr."""
    result = tfp_flows("train", "--preset", "no-such-flow", cwd=tmp_path, check=False)
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown preset" in lines[0], lines


@pytest.mark.slow
def test_evaluate_reports_bits_per_dim_on_the_datas_own_levels(tmp_path, capsys):
    """Digits hold 17 grey levels: `evaluate` counts bits/dim on that scale, as training's metric does,
    bits/dim = (NLL / D + ln 17) / ln 2 (not ln 256, which would add 3.9 bits/dim)."""
    import keras

    from keras_models import RealNVP
    from keras_models.cli import main

    model = RealNVP(event_shape=(8, 8, 1), width=4, num_blocks=0, pixel_levels=17)
    model(np.full((1, 8, 8, 1), 0.5, np.float32))
    path = tmp_path / "model.keras"
    keras.saving.save_model(model, path)
    capsys.readouterr()
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(path),
                "--dataset",
                "digits",
                "--split",
                "test",
                "--max-batches",
                "1",
                "--batch-size",
                "16",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["examples"] == 16
    np.testing.assert_allclose(report["bits_per_dim"], (report["nll"] / 64 + np.log(17)) / np.log(2), rtol=1e-5)


def test_conditional_run_needs_a_preset_with_a_conditional_form():
    from keras_models.train.config import resolve_config

    with pytest.raises(
        ValueError,
        match=r"needs a preset with a conditional form; preset 'flowpp' \(FlowPlusPlus\) has none. "
        r"Expected one of \['cnf', 'glow', 'maf', 'nsf', 'realnvp'\]",
    ):
        resolve_config({"dataset": "digits", "preset": "flowpp", "conditional": True})
    assert resolve_config({"dataset": "digits", "conditional": True})["conditional"] is True


@pytest.mark.parametrize("name", ["prelu", "nice", "realnvp", "maf", "nsf", "glow", "flowpp", "planar", "radial"])
def test_preset_conditional_says_whether_the_model_takes_a_context(name):
    """`Preset.conditional` against the model itself: a preset without a conditional form refuses `context_shape`."""
    from keras_models.flows.presets import preset

    entry = preset(name)
    args = dict(entry.toy_args or entry.vi_args or {})
    if entry.conditional:
        assert entry.model((2,), context_shape=(2,), **args).context_shape == (2,)
    else:
        with pytest.raises(ValueError, match="has no conditional form"):
            entry.model((2,), context_shape=(2,), **args)


def test_the_catalog_list_prints_matches_the_registries():
    """`tfp-flows list` reads a TensorFlow-free table (keras_models/train/catalog.py): it must say what the
    registries say."""
    from keras_models.flows.presets import PRESETS
    from keras_models.flows.variational import GRADIENT_ESTIMATORS, OBJECTIVES
    from keras_models.train import catalog
    from keras_models.train.config import PRESET_RUN_DEFAULTS, RUN_DEFAULTS
    from tfp_flows.datasets import dataset_info, list_datasets
    from tfp_flows.datasets.energies import ENERGIES

    assert list(catalog.PRESETS) == list(PRESETS)
    for name, entry in PRESETS.items():
        summary = catalog.PRESETS[name]
        assert (summary.conditional, summary.variational) == (entry.conditional, entry.vi_args is not None), name
    assert sorted(catalog.DATASETS) == list_datasets()
    for name, summary in catalog.DATASETS.items():
        info = dataset_info(name)
        assert (summary.event_shape, summary.context_shape) == (info.event_shape, info.context_shape), name
    assert sorted(catalog.ENERGIES) == sorted(name.upper() for name in ENERGIES)
    assert catalog.OBJECTIVES == OBJECTIVES
    assert catalog.GRADIENT_ESTIMATORS == GRADIENT_ESTIMATORS
    # The per-preset schedule table (TensorFlow-free too, for --help) names registry presets and known keys.
    assert set(PRESET_RUN_DEFAULTS) <= set(PRESETS)
    assert all(set(values) <= set(RUN_DEFAULTS) for values in PRESET_RUN_DEFAULTS.values())


def test_help_and_list_answer_without_importing_tensorflow(tmp_path):
    script = (
        "import contextlib, io, json, sys\n"
        "from keras_models.cli import main\n"
        "for argv in (['--help'], ['train', '--help'], ['evaluate', '--help'], ['sample', '--help'], ['list']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "        main(argv)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tfp_flows'))))\n"
    )
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(result.stdout.splitlines()[-1]) == [], result.stdout


@pytest.mark.slow
def test_keras_models_registers_its_classes_when_keras_is_loaded(tmp_path):
    """`import keras` then `import keras_models` (isort's order) registers every class for `load_model`; the
    package alone stays light."""
    script = (
        "import sys, keras, keras_models\n"
        "assert keras.saving.get_registered_object('tfp_flows>PlanarFlow') is keras_models.PlanarFlow\n"
        "print('ok')\n"
    )
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.stdout.strip().endswith("ok"), result.stderr[-3000:]


def test_train_flags_and_their_help_come_from_train_config():
    """One source of defaults: every TrainConfig key is a flag (or --no-/--quiet form), its help shows the
    field's default, and `tfp-flows train` with no flags runs TrainConfig's defaults (the README's first command)."""
    import argparse
    import dataclasses

    from keras_models.cli import add_config_flags, build_parser
    from keras_models.train.config import DEFAULTS, PRESET_RUN_DEFAULTS, RUN_DEFAULTS, TrainConfig, resolve_config

    by_dest = {action.dest: action for action in add_config_flags(argparse.ArgumentParser())}
    for field in dataclasses.fields(TrainConfig):
        action = by_dest[field.name]
        assert action.default is None, field.name  # an unset flag leaves a config file's value alone
        assert field.metadata["help"] in action.help, field.name
        if field.metadata["kind"] != "flag" and "const" not in field.metadata and field.default is not None:
            default = field.default_factory() if field.default is dataclasses.MISSING else field.default
            assert f"(default {json.dumps(default) if isinstance(default, dict) else default})" in action.help
        if field.name in RUN_DEFAULTS:  # filled per preset: the help names every preset's own value
            assert f"(default {RUN_DEFAULTS[field.name]}" in action.help, action.help
            for name, values in PRESET_RUN_DEFAULTS.items():
                assert f"; {name}: {values[field.name]}" in action.help, action.help
    assert by_dest["export"].option_strings == ["--no-export"] and by_dest["verbose"].option_strings == ["--quiet"]
    parser = build_parser()
    args = parser.parse_args(["train"])
    flags = {field.name: getattr(args, field.name) for field in dataclasses.fields(TrainConfig)}
    assert set(flags.values()) == {None}
    resolved = resolve_config({})
    assert {key: resolved[key] for key in DEFAULTS if key != "name"} == {
        k: RUN_DEFAULTS.get(k, v) for k, v in DEFAULTS.items() if k != "name"
    }
    assert (resolved["preset"], resolved["dataset"], resolved["epochs"], resolved["steps_per_epoch"]) == (
        "realnvp",
        "two_moons",
        12,
        200,
    )
    assert (resolved["batch_size"], resolved["learning_rate"], resolved["name"]) == (256, 2e-3, "realnvp-two_moons")


def test_the_optimizer_reads_its_numbers_from_the_config():
    from keras_models.train.common import make_optimizer
    from keras_models.train.config import resolve_config

    default = make_optimizer(resolve_config({})).get_config()
    assert default["clipnorm"] == 10.0 and default["learning_rate"]["config"]["alpha"] == 0.05
    optimizer = make_optimizer(
        resolve_config({"clipnorm": 3.0, "final_learning_rate_fraction": 0.5, "learning_rate": 0.1})
    )
    schedule = optimizer.get_config()["learning_rate"]["config"]
    assert optimizer.clipnorm == 3.0
    assert (schedule["initial_learning_rate"], schedule["alpha"], schedule["decay_steps"]) == (0.1, 0.5, 12 * 200)
    with pytest.raises(ValueError, match=r"`final_learning_rate_fraction` must be a number in \[0, 1\]; received 2"):
        resolve_config({"final_learning_rate_fraction": 2})


SCHEDULE_KEYS = ("learning_rate", "final_learning_rate_fraction", "warmup_fraction")


@pytest.mark.parametrize(
    "preset, expected",
    [
        ("realnvp", (2e-3, 0.05, 0.0)),
        ("nsf", (2e-3, 0.05, 0.0)),
        ("cnf", (2e-2, 0.0, 0.02)),
        ("CNF", (2e-2, 0.0, 0.02)),  # an alias spelling gets the canonical preset's defaults
    ],
)
def test_the_schedule_defaults_per_preset(preset, expected):
    """CNF trains by its measured flow-matching recipe (benchmarks/README.md, "CNF against coupling flows at equal
    wall time"); every other preset by the shared schedule."""
    from keras_models.train.config import resolve_config

    resolved = resolve_config({"preset": preset})
    assert tuple(resolved[key] for key in SCHEDULE_KEYS) == expected


@pytest.mark.parametrize(
    "given, expected",
    [
        ({"preset": "cnf", "learning_rate": 1e-3}, (1e-3, 0.0, 0.02)),
        ({"preset": "cnf", "warmup_fraction": 0.0, "final_learning_rate_fraction": 0.05}, (2e-2, 0.05, 0.0)),
        ({"preset": "realnvp", "warmup_fraction": 0.1}, (2e-3, 0.05, 0.1)),
        ({"preset": "cnf", "learning_rate": None}, (2e-2, 0.0, 0.02)),  # a config file's null: not given
    ],
)
def test_an_explicit_schedule_value_wins_over_the_presets(given, expected):
    from keras_models.train.config import resolve_config

    resolved = resolve_config(given)
    assert tuple(resolved[key] for key in SCHEDULE_KEYS) == expected
    assert resolve_config(resolved) == resolved  # config.json's resolved values resolve to themselves (resume)


def test_a_flag_wins_over_the_config_file_and_both_over_the_presets(tmp_path):
    from keras_models.cli import build_parser, config_from_args
    from keras_models.train.config import resolve_config

    (tmp_path / "run.yaml").write_text("preset: cnf\nlearning_rate: 0.001\nwarmup_fraction: 0.1\n")
    parser = build_parser()
    from_file = resolve_config(config_from_args(parser.parse_args(["train", "--config", str(tmp_path / "run.yaml")])))
    assert tuple(from_file[key] for key in SCHEDULE_KEYS) == (1e-3, 0.0, 0.1)
    args = parser.parse_args(["train", "--config", str(tmp_path / "run.yaml"), "--warmup-fraction", "0"])
    assert tuple(resolve_config(config_from_args(args))[key] for key in SCHEDULE_KEYS) == (1e-3, 0.0, 0.0)


def test_the_schedule_warms_up_linearly_from_zero_then_decays_to_its_final_fraction():
    """lr(t) = peak t / W for t < W, then peak (a + (1 - a) (1 + cos(pi (t - W) / (T - W))) / 2): CNF's run
    (peak 2e-2, W = 2 % of T, a = 0); without warmup (RealNVP) the cosine decay starts at the peak."""
    import keras

    from keras_models.train.common import make_optimizer
    from keras_models.train.config import resolve_config

    def rates(config, steps):
        optimizer = make_optimizer(resolve_config(dict(config, epochs=2, steps_per_epoch=100)))
        schedule = keras.optimizers.schedules.deserialize(optimizer.get_config()["learning_rate"])
        return np.array([float(schedule(step)) for step in steps])

    total, warmup = 200, 4  # 2 % of 200 steps
    steps = [0, 1, 2, warmup, 50, 100, 150, total]
    peak = 2e-2
    decay = [peak * 0.5 * (1 + np.cos(np.pi * (t - warmup) / (total - warmup))) for t in steps[3:]]
    np.testing.assert_allclose(rates({"preset": "cnf"}, steps), [0.0, peak / 4, peak / 2, *decay], atol=1e-9)
    assert np.all(np.diff(rates({"preset": "cnf"}, range(warmup, total + 1))) < 0)  # decays after the peak
    plain = rates({"preset": "realnvp"}, [0, 100, total])
    np.testing.assert_allclose(plain, [2e-3, 2e-3 * (0.05 + 0.95 * 0.5), 2e-3 * 0.05], rtol=1e-5)


@pytest.mark.parametrize(
    "given, message",
    [
        ({"warmup_fraction": 1.0}, r"`warmup_fraction` must be a number in \[0, 1\); received 1.0$"),
        ({"warmup_fraction": 1.5}, r"`warmup_fraction` must be a number in \[0, 1\); received 1.5$"),
        ({"warmup_fraction": -0.1}, r"`warmup_fraction` must be a number in \[0, 1\); received -0.1$"),
        ({"preset": "cnf", "learning_rate": 0}, r"`learning_rate` must be a finite number > 0; received 0"),
        ({"learning_rate": "2e-2"}, r"`learning_rate` must be a finite number > 0; received '2e-2'"),
    ],
)
def test_bad_schedule_values_say_what_was_expected(given, message):
    from keras_models.train.config import resolve_config

    with pytest.raises(ValueError, match=message):
        resolve_config(given)


def test_resume_reads_the_schedule_config_json_recorded(tmp_path):
    """A resumed run trains on the schedule its config.json recorded, not on today's preset defaults."""
    from keras_models.train.config import resolve_config
    from keras_models.train.run import read_run_config

    recorded = resolve_config({"preset": "cnf", "learning_rate": 5e-3})
    (tmp_path / "config.json").write_text(json.dumps(recorded))
    assert read_run_config(tmp_path) == recorded


def test_conditional_image_figure_draws_one_row_per_class_with_c_fixed_along_it(tmp_path):
    """The figure code of a conditional image run, on a stand-in model with the conditional API (sample(n, c))."""
    import tensorflow as tf

    from keras_models.train import run
    from tfp_flows.datasets import dataset_info

    calls = []

    class StandIn:
        event_shape = (8, 8, 1)

        def sample(self, num_samples, c, temperature=1.0, seed=None):
            calls.append(np.asarray(c))
            shade = np.argmax(c, axis=-1)[:, None, None, None] / 9.0  # class k: a uniform image of grey k / 9
            return tf.constant(np.broadcast_to(shade, (num_samples, 8, 8, 1)).astype(np.float32))

    x, c = np.full((4, 8, 8, 1), 0.5, np.float32), np.eye(10, dtype=np.float32)[:4]
    history = {"nll": [2.0, 1.0], "val_nll": [2.1, 1.2]}
    paths = run._figures(StandIn(), str(tmp_path), (x, c), history, dataset_info("digits"))
    assert sorted(paths) == ["samples", "training_curve"]
    assert len(calls) == 10
    for k, given in enumerate(calls):
        np.testing.assert_array_equal(given, np.eye(10, dtype=np.float32)[[k] * len(given)])
    assert_real_image(paths["samples"])


@pytest.mark.slow
def test_evaluate_and_sample_a_conditional_model(tmp_path, capsys):
    """`evaluate` of a conditional checkpoint or export reports -mean log p(x | c) with c the dataset's own
    labels: the model's log_prob on the (x, c) pairs, checkpoint and export agreeing; `sample --context`."""
    import keras
    from model_checks import perturb

    from keras_models import RealNVP
    from keras_models.cli import main
    from keras_models.serving.export import export_saved_model
    from tfp_flows.datasets import make_dataset

    model = RealNVP(event_shape=(2,), num_couplings=2, hidden_units=(8,), context_shape=(2,))
    x, c = next(
        iter(make_dataset("two_moons", split="test", batch_size=16, shuffle=False, repeat=False, conditional=True))
    )
    model.log_prob(x, c)
    perturb(model)  # zero-initialised couplings would ignore c
    expected = -float(np.mean(model.log_prob(x, c)))
    assert abs(expected + float(np.mean(model.log_prob(x, c[:, ::-1])))) > 1e-3  # the label matters
    keras.saving.save_model(model, tmp_path / "model.keras")
    export = export_saved_model(model, base_dir=str(tmp_path / "saved_models"), name="cond")
    for path in (tmp_path / "model.keras", export):
        capsys.readouterr()
        assert (
            main(
                [
                    "evaluate",
                    "--model",
                    str(path),
                    "--dataset",
                    "two_moons",
                    "--split",
                    "test",
                    "--max-batches",
                    "1",
                    "--batch-size",
                    "16",
                ]
            )
            == 0
        )
        report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert report["examples"] == 16
        np.testing.assert_allclose(report["nll"], expected, rtol=1e-5)
    # `sample` hands the export its context: a class index (one-hot) or the vector itself, the same draws.
    drawn = {}
    for context in ("1", "[0, 1]", "0"):
        out = tmp_path / f"drawn-{context}"
        assert (
            main(["sample", "--model", str(export), "--num-samples", "8", "--context", context, "--out", str(out)]) == 0
        )
        drawn[context] = np.load(out / "samples.npy")
    assert drawn["1"].shape == (8, 2)
    np.testing.assert_array_equal(drawn["1"], drawn["[0, 1]"])
    assert not np.allclose(drawn["1"], drawn["0"])
    capsys.readouterr()
    assert main(["sample", "--model", str(export), "--out", str(tmp_path / "none")]) == 2
    assert "--context is required" in capsys.readouterr().err


@pytest.mark.parametrize(
    "preset, model_args",
    [
        ("realnvp", '{"num_couplings": 2, "hidden_units": [8]}'),
        ("nsf", '{"num_layers": 2, "hidden_units": [8], "num_bins": 3}'),  # conditional spline couplings
    ],
    ids=["realnvp", "nsf"],
)
@pytest.mark.slow
def test_conditional_two_moons_run_end_to_end(tmp_path, preset, model_args):
    tfp_flows(
        "train",
        "--preset",
        preset,
        "--dataset",
        "two_moons",
        "--conditional",
        "--epochs",
        "1",
        "--steps-per-epoch",
        "3",
        "--batch-size",
        "64",
        "--model-args",
        model_args,
        "--no-export",
        "--quiet",
        cwd=tmp_path,
    )
    run_dir = _only_run_dir(tmp_path / "runs")
    assert run_dir.name.startswith(f"{preset}-two_moons-")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["stop_reason"] == "completed" and metrics["conditional"] is True and metrics["preset"] == preset
    assert np.isfinite(metrics["train_nll"])
    assert metrics["context_shape"] == [2] and np.isfinite(metrics["validation_nll"])
    assert np.isfinite(metrics["validation_kl_gap"])  # against the true log p(x | moon)
    assert_real_image(run_dir / "density.png")


@pytest.mark.slow
def test_cnf_trains_by_flow_matching_from_the_command_line(tmp_path):
    """`--preset cnf` takes its toy defaults from the registry and its learning-rate schedule from the per-preset
    table (recorded in config.json); a flow-matching run logs no training NLL (its loss is not one), while
    validation solves the ODE for the exact NLL and KL gap. The CNF export (six signatures tracing the solver: half
    the run) is tests/test_export_presets.py's; the CLI's export, the realnvp run's."""
    tfp_flows(
        "train",
        "--preset",
        "cnf",
        "--dataset",
        "two_moons",
        "--epochs",
        "1",
        "--steps-per-epoch",
        "5",
        "--batch-size",
        "64",
        "--model-args",
        '{"hidden_units": [8]}',
        "--no-export",
        "--num-plot-samples",
        "200",
        "--quiet",
        cwd=tmp_path,
    )
    run_dir = _only_run_dir(tmp_path / "runs")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["stop_reason"] == "completed" and metrics["preset"] == "cnf"
    assert metrics["train_nll"] is None
    config = json.loads((run_dir / "config.json").read_text())  # the resolved schedule: CNF's own recipe
    assert tuple(config[key] for key in SCHEDULE_KEYS) == (2e-2, 0.0, 0.02)
    assert np.isfinite(metrics["validation_nll"]) and np.isfinite(metrics["validation_kl_gap"])
    assert (run_dir / "model.keras").is_file()
    assert_real_image(run_dir / "density.png")
