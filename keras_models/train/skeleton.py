"""The steps every run takes, whatever it trains: the density run (run.py) and the variational run (variational.py).

    compile_model  Adam with the run's schedule and clipping (`common.make_optimizer`), XLA if asked
    fit_run        `fit` with the run's callbacks and the epoch summary; why it stopped, how far it got
    run_metrics    the metrics.json keys both runs report (epochs, steps, time, device, stop reason, names)
    finish_run     what the chief writes: model.keras, figures (also in TensorBoard), the SavedModel, metrics.json

One rule for a run that did not complete (non-finite loss, weights or input): metrics.json says why
(`stop_reason`), and nothing is drawn, saved at the end or exported, since weights that failed are not worth a
figure or a deployment; model.keras is then the last good epoch's checkpoint where the run keeps one (the density
run's `AtomicCheckpoint`), and the backup lets `--resume` go on.
"""

import dataclasses
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import keras
import tensorflow as tf

from keras_models.core.io import atomic_write_json, save_model_atomically
from keras_models.core.nan_policy import NonFiniteInputError, OutOfSupportError
from keras_models.train import callbacks as train_callbacks
from keras_models.train.common import EpochSummary, device, make_optimizer

COMPLETED = "completed"


@dataclasses.dataclass
class FitOutcome:
    """What `fit_run` reports: the Keras history, why training stopped, the epoch it resumed from, the steps."""

    history: dict[str, list]
    stop_reason: str
    initial_epoch: int
    steps: int

    @property
    def completed(self) -> bool:
        return self.stop_reason == COMPLETED


def compile_model(model: keras.Model, config: Mapping[str, Any]) -> None:
    """Compile `model` with the run's optimizer (`make_optimizer`) and `jit_compile`."""
    model.compile(optimizer=make_optimizer(config), jit_compile=bool(config["jit_compile"]))


def resumed_epoch(run_dir: str) -> int:
    """The epochs the run folder's backup has done (0 for a fresh run): where a resumed `fit` goes on."""
    return train_callbacks.backed_up_epoch(os.path.join(run_dir, "backup"))


def fit_run(
    model: keras.Model,
    config: Mapping[str, Any],
    callbacks: list[keras.callbacks.Callback],
    initial_epoch: int,
    before_fit: Callable[[], None] | None = None,
    **fit_kwargs: Any,
) -> FitOutcome:
    """`model.fit` for `config`'s epochs and steps with `callbacks` and a one-line epoch summary.

    `before_fit` runs first, inside the same refusal of bad input: a batch of non-finite or out-of-support data
    stops the run with that reason (metrics.json) instead of a traceback, as a callback's stop does.
    """
    callbacks = [*callbacks, EpochSummary(config["epochs"])]
    stop_reason = None
    try:
        if before_fit is not None:
            before_fit()
        model.fit(
            epochs=config["epochs"],
            steps_per_epoch=config["steps_per_epoch"],
            callbacks=callbacks,
            verbose=config["verbose"],
            **fit_kwargs,
        )
    except NonFiniteInputError as error:
        stop_reason = f"non-finite input data: {error}"
    except OutOfSupportError as error:
        stop_reason = f"input data outside the model's support: {error}"
    history = getattr(getattr(model, "history", None), "history", None) or {}
    return FitOutcome(
        history=history,
        stop_reason=stop_reason or train_callbacks.stop_reason(callbacks) or COMPLETED,
        initial_epoch=initial_epoch,
        steps=int(model.optimizer.iterations.numpy()),
    )


def run_metrics(config: Mapping[str, Any], outcome: FitOutcome, start: float, **specific: Any) -> dict[str, Any]:
    """metrics.json: the run's own entries (`specific`), then those every run has. `start`: time.time() at start."""
    return {
        **specific,
        "epochs": outcome.initial_epoch + len(outcome.history.get("loss", [])),
        "resumed_from_epoch": outcome.initial_epoch,
        "steps": outcome.steps,
        "wall_time_s": round(time.time() - start, 2),
        "device": device(),
        "stop_reason": outcome.stop_reason,
        "preset": config["preset"],
        "dataset": config["dataset"] if config.get("data") is None else config["data"],
    }


def finish_run(
    config: Mapping[str, Any],
    run_dir: str,
    metrics: dict[str, Any],
    outcome: FitOutcome,
    flow: keras.Model,
    figures: Callable[[], dict[str, str]],
    chief: bool,
    export_metadata: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write a run's results; returns {"run_dir", "metrics", "figures" (completed runs)} for `run.train`.

    Only the chief writes. A completed run saves `flow` (the model whose weights the metrics describe) as
    model.keras, draws `figures()` (a dict of name -> PNG path, also written to TensorBoard) and exports `flow`
    as a SavedModel when `config["export"]` (with `export_metadata` beside it, `export_saved_model`'s
    `metadata`); any run, completed or not, writes metrics.json (the module
    docstring says why a failed run gets no figures).
    """
    result: dict[str, Any] = {"run_dir": run_dir, "metrics": metrics}
    if not chief:
        return result
    if outcome.completed:
        save_model_atomically(flow, os.path.join(run_dir, "model.keras"))
        result["figures"] = figures()
        write_tensorboard_images(run_dir, result["figures"])
        if config["export"]:
            from keras_models.serving.export import export_saved_model

            metrics["export_path"] = export_saved_model(
                flow, base_dir=config["export_dir"], name=config["name"], metadata=export_metadata
            )
    atomic_write_json(os.path.join(run_dir, "metrics.json"), metrics)
    return result


def write_tensorboard_images(run_dir: str, paths: Mapping[str, str]) -> None:
    """The run's PNG figures as TensorBoard images (step 0), beside its training curves."""
    writer = tf.summary.create_file_writer(os.path.join(run_dir, "tensorboard", "figures"))
    with writer.as_default():
        for name, path in paths.items():
            image = tf.io.decode_png(tf.io.read_file(path), channels=3)
            tf.summary.image(name, image[tf.newaxis], step=0)
    writer.flush()
