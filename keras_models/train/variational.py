"""The variational-inference branch of `tfp-flows train`: `--dataset U1`..`U4` fits q to exp(-U) by reverse KL.

The preset (planar, radial, realnvp, maf, ...) is the flow q; `VariationalFlow` trains it with `fit` on the
ELBO. The run goes through the same steps as a density run (`skeleton`) and writes the same files: config.json,
metrics.json (final ELBO instead of NLL), model.keras (the flow q), TensorBoard logs, a training curve and the
density figure beside the target energy; the flow q is exported as a SavedModel, so `tfp-flows sample` draws
from the fitted posterior. A run that did not complete gets metrics.json only (`skeleton`'s rule).

`objective` ("elbo" or "iw-elbo") and `num_importance_samples` (K) come from the config (`--objective`,
`--num-importance-samples`) and are recorded in metrics.json, with `train_iw_elbo` beside `train_elbo`.

metrics.json also holds log Z estimated by importance sampling from q (`VariationalFlow.estimate_log_normalizer`):
`log_z`, `log_z_standard_error`, `ess` (effective sample size) and `log_z_num_samples`. Only U1 has a finite
log Z; U2-U4 do not decay along z1 (infinite mass), so for them the estimate is the mass within q's reach and a
lower ESS is the expected warning sign, not a bug.
"""

import os
from typing import Any

import numpy as np

from keras_models.flows.presets import VARIATIONAL_PRESETS, build_model, preset
from keras_models.flows.variational import VariationalFlow
from keras_models.train import callbacks as train_callbacks
from keras_models.train import plots, skeleton
from keras_models.train.common import finite_or_none, last_metric

LOG_Z_SAMPLES = 100_000  # draws of the final log Z estimate: a fraction of a second for the 2-D presets
ELBO_SAMPLES = 10_000  # draws of metrics.json's final ELBO estimate


def log_normalizer_metrics(model: VariationalFlow, seed: int) -> dict[str, Any]:
    """metrics.json's log Z entries: the importance-sampling estimate, its standard error and the ESS."""
    estimate = model.estimate_log_normalizer(LOG_Z_SAMPLES, seed=seed)
    return {
        "log_z": finite_or_none(estimate.log_z),
        "log_z_standard_error": finite_or_none(estimate.standard_error),
        "ess": finite_or_none(estimate.ess),
        "log_z_num_samples": estimate.num_samples,
    }


def train_variational(config: dict[str, Any], run_dir: str, start: float, chief: bool) -> dict[str, Any]:
    """Fit `config["preset"]` to the energy `config["dataset"]`; returns what `run.train` returns.

    `config` is resolved (`config.resolve_config`): `objective`, `num_importance_samples` and `gradient_estimator`
    are set.
    """
    from tfp_flows.datasets.energies import get_energy

    entry = preset(config["preset"])
    if entry.vi_args is None:
        raise ValueError(
            f"preset {config['preset']!r} cannot do variational inference on {config['dataset']!r}; "
            f"expected one of {list(VARIATIONAL_PRESETS)}"
        )
    flow = build_model(entry.name, (2,), **dict(entry.vi_args, **(config["model_args"] or {})))
    model = VariationalFlow(
        flow,
        target_log_prob=config["dataset"].upper(),
        batch_size=config["batch_size"],
        seed=config["seed"],
        objective=config["objective"],
        num_importance_samples=config["num_importance_samples"],
        gradient_estimator=config["gradient_estimator"],
    )
    skeleton.compile_model(model, config)
    # No per-epoch model.keras (the VariationalFlow wraps the flow that is saved at the end); a resumed run
    # (--resume) restores the backup, sampler state included, and continues after its epoch.
    callbacks = train_callbacks.default_callbacks(run_dir, checkpoint=False, chief=chief)
    outcome = skeleton.fit_run(model, config, callbacks, skeleton.resumed_epoch(run_dir))
    metrics = skeleton.run_metrics(
        config,
        outcome,
        start,
        objective=model.objective,
        num_importance_samples=model.num_importance_samples,
        gradient_estimator=model.gradient_estimator,
        train_elbo=last_metric(outcome.history, "elbo"),
        # L_K over the last epoch's steps (equal to train_elbo when K = 1).
        train_iw_elbo=last_metric(outcome.history, "iw_elbo"),
        elbo_10k_samples=finite_or_none(model.elbo(ELBO_SAMPLES, seed=config["seed"])),
        **log_normalizer_metrics(model, config["seed"]),
    )

    def figures() -> dict[str, str]:
        energy = get_energy(config["dataset"])
        samples = model.sample(config["num_plot_samples"], seed=1).numpy()
        return {
            "training_curve": plots.plot_training_curve(outcome.history, os.path.join(run_dir, "training_curve.png")),
            "density": plots.plot_density_2d(
                lambda p: flow.log_prob(p).numpy(),
                os.path.join(run_dir, "density.png"),
                samples=samples,
                target_log_prob_fn=lambda p: -np.asarray(energy(p)),
                limits=[(-4.0, 4.0), (-4.0, 4.0)],
                title="fitted q",
            ),
        }

    result = skeleton.finish_run(config, run_dir, metrics, outcome, flow, figures, chief)
    result["model"] = model
    return result
