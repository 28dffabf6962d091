"""The density run and the variational run share one skeleton (keras_models/train/skeleton.py): the same steps,
the same metrics.json keys, the same files, and the same rule for a run that did not complete."""

import json

import pytest

from keras_models.train import run, skeleton

RUNS = {
    "density": {"preset": "realnvp", "dataset": "two_moons", "model_args": {"num_couplings": 2, "hidden_units": [8]}},
    "variational": {"preset": "planar", "dataset": "U1", "model_args": {"num_layers": 2}},
}
COMMON_KEYS = {"epochs", "resumed_from_epoch", "steps", "wall_time_s", "device", "stop_reason", "preset", "dataset"}


def _train(tmp_path, kind, **overrides):
    config = {
        **RUNS[kind],
        "epochs": 1,
        "steps_per_epoch": 3,
        "batch_size": 32,
        "validation_batches": 1,
        "num_plot_samples": 200,
        "verbose": 0,
        "run_dir": str(tmp_path / "runs"),
        "export_dir": str(tmp_path / "exports"),
        **overrides,
    }
    result = run.train(config)
    (run_dir,) = (tmp_path / "runs").iterdir()
    return result, run_dir


@pytest.mark.parametrize("kind", sorted(RUNS))
@pytest.mark.slow
def test_a_completed_run_writes_the_same_files_and_common_metrics(tmp_path, kind):
    result, run_dir = _train(tmp_path, kind)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["stop_reason"] == "completed" and metrics["epochs"] == 1 and metrics["steps"] == 3
    assert set(metrics) >= COMMON_KEYS | {"export_path"}, sorted(COMMON_KEYS - set(metrics))
    assert {"config.json", "metrics.json", "model.keras", "training_curve.png", "density.png"} <= {
        path.name for path in run_dir.iterdir()
    }
    assert set(result["figures"]) == {"training_curve", "density"}
    # Both runs' figures reach TensorBoard too, beside the curves.
    assert list((run_dir / "tensorboard" / "figures").glob("events.out.tfevents.*"))
    assert (tmp_path / "exports" / run.resolve_config(RUNS[kind])["name"] / "1" / "saved_model.pb").is_file()


@pytest.mark.parametrize("kind", sorted(RUNS))
@pytest.mark.slow
def test_a_failed_run_writes_its_metrics_and_no_figures_model_or_export(tmp_path, kind):
    result, run_dir = _train(tmp_path, kind, learning_rate=1e30, steps_per_epoch=5)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["stop_reason"].startswith("non-finite"), metrics["stop_reason"]
    assert set(metrics) >= COMMON_KEYS and "export_path" not in metrics
    assert "figures" not in result and not list(run_dir.glob("*.png"))
    assert not (run_dir / "model.keras").exists()  # no epoch ended with finite weights
    assert not (tmp_path / "exports").exists()


def test_finish_run_draws_nothing_for_a_failed_run_and_writes_only_on_the_chief(tmp_path):
    def figures():
        raise AssertionError("a failed run must not draw figures")

    failed = skeleton.FitOutcome(history={}, stop_reason="non-finite loss (nan)", initial_epoch=0, steps=2)
    config = {"export": True, "export_dir": str(tmp_path / "exports"), "name": "x"}
    metrics = {"stop_reason": failed.stop_reason}
    result = skeleton.finish_run(config, str(tmp_path), metrics, failed, None, figures, chief=True)
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"stop_reason": failed.stop_reason}
    assert result == {"run_dir": str(tmp_path), "metrics": {"stop_reason": failed.stop_reason}}
    worker = tmp_path / "worker"
    skeleton.finish_run(config, str(worker), {}, failed, None, figures, chief=False)
    assert not worker.exists()
