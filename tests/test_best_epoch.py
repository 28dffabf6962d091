"""`tfp-flows train` keeps the best validation epoch: BestEpochCheckpoint saves it atomically and remembers it
across a resume, and the run's model.keras, metrics and export hold those weights."""

import json

import keras
import numpy as np
import pytest

from keras_models import (
    RealNVP,
    _backend,  # noqa: F401
)
from keras_models.train import callbacks as training
from keras_models.train import run


def _model():
    return RealNVP(event_shape=(2,), num_couplings=1, hidden_units=(4,))


def _epoch(callback, model, epoch, val_loss, value):
    """End `epoch` with every weight set to `value` and the given validation loss."""
    model.set_weights([np.full_like(w, value) for w in model.get_weights()])
    callback.on_epoch_end(epoch, {"val_loss": val_loss})


def test_best_epoch_is_kept_and_survives_a_resume(tmp_path):
    model = _model()
    callback = training.BestEpochCheckpoint(str(tmp_path))
    callback.set_model(model)
    for epoch, val_loss in enumerate([3.0, 2.0, 2.5]):
        _epoch(callback, model, epoch, val_loss, value=epoch + 1.0)
    assert callback.best_epoch == 2
    assert json.loads((tmp_path / "best.json").read_text()) == {"epoch": 2, "val_loss": 2.0}
    # A resumed run builds a new callback: it starts from the saved best, so a worse epoch does not replace it...
    resumed = training.BestEpochCheckpoint(str(tmp_path))
    resumed.set_model(model)
    _epoch(resumed, model, 3, 2.2, value=4.0)
    assert resumed.best_epoch == 2
    assert resumed.restore(model) == 2
    assert all(np.all(w == 2.0) for w in model.get_weights())  # epoch 2's weights (value 2.0)
    # ... and a better one does.
    _epoch(resumed, model, 4, 1.5, value=5.0)
    assert resumed.best_epoch == 5 and json.loads((tmp_path / "best.json").read_text())["epoch"] == 5
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


@pytest.mark.slow
def test_train_reports_and_saves_the_best_epoch(tmp_path):
    result = run.train(
        {
            "epochs": 3,
            "steps_per_epoch": 5,
            "batch_size": 64,
            "verbose": 0,
            "export": False,
            "run_dir": str(tmp_path),
            "learning_rate": 0.05,
            "validation_batches": 2,
            "model_args": {"num_couplings": 2, "hidden_units": [8]},
        }
    )
    metrics = result["metrics"]
    state = json.loads((tmp_path.glob("*/best/best.json").__next__()).read_text())
    assert metrics["best_epoch"] == state["epoch"] and metrics["weights"].startswith("best validation epoch")
    np.testing.assert_allclose(metrics["validation_nll"], state["val_loss"], rtol=1e-5)
    saved = keras.saving.load_model(next(tmp_path.glob("*/model.keras")))
    for a, b in zip(saved.get_weights(), result["model"].get_weights()):
        np.testing.assert_array_equal(a, b)


def test_a_new_run_clears_the_temporaries_a_killed_best_epoch_write_left(tmp_path):
    stale = [tmp_path / ".tmp-best.weights.h5.x1y2.weights.h5", tmp_path / ".tmp-best.json.a1b2"]
    for path in stale:
        path.write_bytes(b"half a file")
    callback = training.BestEpochCheckpoint(str(tmp_path))
    callback.set_model(_model())
    callback.on_train_begin()
    assert not any(path.exists() for path in stale)
    training.BestEpochCheckpoint(str(tmp_path / "worker"), chief=False).on_train_begin()  # a worker writes nothing
    assert not (tmp_path / "worker").exists()
