"""The variational-inference branch of `tfp-flows train`: `--dataset U1`..`U4` fits q to exp(-U) by reverse KL.

The preset (planar, radial, realnvp, maf, ...) is the flow q; `VariationalFlow` trains it with `fit` on the
ELBO. The run folder gets the same files as a density run: config.json, metrics.json (final ELBO instead of
NLL), model.keras (the flow q), TensorBoard logs, a training curve and the density figure beside the target
energy; the flow q is exported as a SavedModel, so `tfp-flows sample` draws from the fitted posterior.

`objective` ("elbo" or "iw-elbo") and `num_importance_samples` (K) come from the config (`--objective`,
`--num-importance-samples`) and are recorded in metrics.json, with `train_iw_elbo` beside `train_elbo`.

metrics.json also holds log Z estimated by importance sampling from q (`VariationalFlow.estimate_log_normalizer`):
`log_z`, `log_z_standard_error`, `ess` (effective sample size) and `log_z_num_samples`. Only U1 has a finite
log Z; U2-U4 do not decay along z1 (infinite mass), so for them the estimate is the mass within q's reach and a
lower ESS is the expected warning sign, not a bug.
"""

import os
import time

import keras
import numpy as np

from keras_models.core.io import atomic_write_json, save_model_atomically
from keras_models.flows.presets import VARIATIONAL_PRESETS, build_model, preset
from keras_models.flows.variational import VariationalFlow
from keras_models.train import callbacks as train_callbacks
from keras_models.train import plots
from keras_models.train.common import EpochSummary, device, make_optimizer
from keras_models.train.distribute import is_chief

LOG_Z_SAMPLES = 100_000  # draws of the final log Z estimate: a fraction of a second for the 2-D presets


def _finite_or_none(value):
    """A float for JSON, or None where it is NaN or infinite (json would write a non-standard NaN)."""
    return float(value) if np.isfinite(value) else None


def log_normalizer_metrics(model, seed):
    """metrics.json's log Z entries: the importance-sampling estimate, its standard error and the ESS."""
    estimate = model.estimate_log_normalizer(LOG_Z_SAMPLES, seed=seed)
    return {
        "log_z": _finite_or_none(estimate.log_z),
        "log_z_standard_error": _finite_or_none(estimate.standard_error),
        "ess": _finite_or_none(estimate.ess),
        "log_z_num_samples": estimate.num_samples,
    }


def train_variational(config, run_dir, start):
    """Fit `config["preset"]` to the energy `config["dataset"]`; returns what `run.train` returns."""
    from tfp_flows.datasets.energies import get_energy

    entry = preset(config["preset"])
    if entry.vi_args is None:
        raise ValueError(
            f"preset {config['preset']!r} cannot do variational inference on {config['dataset']!r}; "
            f"expected one of {list(VARIATIONAL_PRESETS)}"
        )
    keras.utils.set_random_seed(config["seed"])
    args = dict(entry.vi_args, **(config["model_args"] or {}))
    flow = build_model(entry.name, (2,), **args)
    model = VariationalFlow(
        flow,
        target_log_prob=config["dataset"].upper(),
        batch_size=config["batch_size"],
        seed=config["seed"],
        objective=config.get("objective") or "elbo",
        num_importance_samples=config.get("num_importance_samples") or 1,
        gradient_estimator=config.get("gradient_estimator") or "reparameterized",
    )
    model.compile(optimizer=make_optimizer(config), jit_compile=bool(config["jit_compile"]))
    chief = is_chief()
    callbacks = train_callbacks.default_callbacks(run_dir, checkpoint=False, tensorboard=chief)
    callbacks.append(EpochSummary(config["epochs"]))
    # A resumed run (--resume) restores the backup, sampler state included, and continues after its epoch.
    initial_epoch = train_callbacks.backed_up_epoch(os.path.join(run_dir, "backup"))
    history = model.fit(
        epochs=config["epochs"],
        steps_per_epoch=config["steps_per_epoch"],
        callbacks=callbacks,
        verbose=config["verbose"],
    )
    reason = train_callbacks.stop_reason(callbacks) or "completed"
    elbos = history.history.get("elbo") or [float("nan")]
    iw_elbos = history.history.get("iw_elbo") or [float("nan")]
    metrics = {
        "objective": model.objective,
        "num_importance_samples": model.num_importance_samples,
        "gradient_estimator": model.gradient_estimator,
        "train_elbo": float(elbos[-1]) if np.isfinite(elbos[-1]) else None,
        # L_K over the last epoch's steps (equal to train_elbo when K = 1).
        "train_iw_elbo": float(iw_elbos[-1]) if np.isfinite(iw_elbos[-1]) else None,
        "elbo_10k_samples": float(model.elbo(10_000, seed=config["seed"])),
        **log_normalizer_metrics(model, config["seed"]),
        "epochs": initial_epoch + len(history.history.get("elbo", [])),
        "resumed_from_epoch": initial_epoch,
        "steps": int(model.optimizer.iterations.numpy()),
        "wall_time_s": round(time.time() - start, 2),
        "device": device(),
        "stop_reason": reason,
        "preset": config["preset"],
        "dataset": config["dataset"],
    }
    result = {"run_dir": run_dir, "metrics": metrics, "model": model}
    if chief:
        if reason == "completed":
            save_model_atomically(flow, os.path.join(run_dir, "model.keras"))
        energy = get_energy(config["dataset"])
        samples = model.sample(config["num_plot_samples"], seed=1).numpy()
        result["figures"] = {
            "training_curve": plots.plot_training_curve(history.history, os.path.join(run_dir, "training_curve.png")),
            "density": plots.plot_density_2d(
                lambda p: flow.log_prob(p).numpy(),
                os.path.join(run_dir, "density.png"),
                samples=samples,
                target_log_prob_fn=lambda p: -np.asarray(energy(p)),
                limits=[(-4.0, 4.0), (-4.0, 4.0)],
                title="fitted q",
            ),
        }
        if config["export"] and reason == "completed":
            from keras_models.serving.export import export_saved_model

            metrics["export_path"] = export_saved_model(flow, base_dir=config["export_dir"], name=config["name"])
        atomic_write_json(os.path.join(run_dir, "metrics.json"), metrics)
    return result
