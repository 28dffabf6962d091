"""One training run end to end: data, model, `fit` with callbacks, metrics, figures and a SavedModel export.

`train(config)` is what `tfp-flows train` calls; `config` is a plain dict whose keys mirror the command-line
flags (see `config.TrainConfig`). Each run writes `runs/<name>-<timestamp>/` with config.json, metrics.json,
model.keras, tensorboard/, backup/ (for --resume) and PNG figures, then exports to
`saved_models/<name>/<version>/`; `skeleton` holds the steps it shares with the variational run (variational.py).

Resuming (`train(resume=run_dir)`, `tfp-flows train --resume RUN_DIR`): the configuration comes from the run's
config.json (the resolved values, the per-preset learning-rate schedule included), the weights and optimizer
state from backup/ (`callbacks.AtomicBackupAndRestore`, written at every epoch end), and the data stream
continues at the first step after the backup (make_dataset's epoch sequence, a pure function of (seed, data
epoch), entered at the right epoch and batch): the resumed run ends with the weights an uninterrupted run would
have had.

Conditional runs (`conditional`, `--conditional`): the preset gets the dataset's `context_shape=` and trains on
`make_dataset(..., conditional=True)`'s (x, c) pairs (c one-hot); `log_prob(x, c)` and `sample(n, c)` take the
condition. The figures show, for 2-D data, the learned marginal (1/K) sum_k q(x | k) beside samples drawn at the
validation contexts; for images, one row of samples per class (c fixed along a row). The interpolation strip is
left out (it would need the encoder's context), and `validation_kl_gap` uses the true log p(x | c) where it
exists (conditional two_moons, eight_gaussians).

Distribution (`strategy`): "mirrored" (all local GPUs), "multiworker" (TF_CONFIG names the cluster; every
worker runs the same command) or "default". The model is built and compiled under `strategy.scope()`, ActNorm
is initialised from one global batch (the same on every worker), and each replica reads its own slice of every
global batch through `distribute_datasets_from_function`. Only the chief (`distribute.is_chief`) writes the run
folder and the export; the other workers back up into private temporary folders.
"""

import datetime
import json
import os
import time
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_models.core.io import atomic_write_json
from keras_models.core.nan_policy import check_finite_batches
from keras_models.flows.presets import build_model, preset
from keras_models.train import callbacks as train_callbacks
from keras_models.train import plots, skeleton
from keras_models.train.catalog import is_energy
from keras_models.train.common import finite_or_none, last_metric
from keras_models.train.config import resolve_config
from keras_models.train.distribute import is_chief, make_strategy
from keras_models.train.variational import train_variational


def _model_args(config, info):
    # Small, fast architectures for the 2-D toy problems (the presets' own defaults target real data).
    args = dict(preset(config["preset"]).toy_args) if len(info.event_shape) == 1 else {}
    if info.is_8bit_image and info.num_levels != 256:
        args["pixel_levels"] = info.num_levels  # digits: 17 levels, for bits/dim and dequantization
    if config["conditional"]:
        args["context_shape"] = tuple(info.context_shape)  # resolve_config checked that the preset takes it
    args.update(config["model_args"] or {})
    return args


def _train_stream(config, start_step, input_context=None, source=None):
    """Training batches from global step `start_step` on (per replica when `input_context` is given).

    make_dataset(repeat=True) is the endless sequence of data epochs, each shuffled by (seed, epoch): enter it
    at the data epoch and batch where step `start_step` falls, so a resumed run reads what an uninterrupted
    one would have read. Each global step takes one batch per replica from its input pipeline.
    """
    source = load_source(config) if source is None else source
    common = dict(_split_kwargs(config, "train"), input_context=input_context)
    replicas_per_pipeline = (
        1 if input_context is None else (input_context.num_replicas_in_sync // input_context.num_input_pipelines)
    )
    batches_done = start_step * replicas_per_pipeline
    if batches_done == 0:
        return source.dataset(repeat=True, **common)
    batches_per_epoch = int(source.dataset(repeat=False, **common).cardinality())
    data_epoch, offset = divmod(batches_done, batches_per_epoch)
    return source.dataset(repeat=True, initial_epoch=data_epoch, **common).skip(offset)


def _split_kwargs(config, split):
    """make_dataset's arguments for a split: training batches shuffled and whole, validation in order and all;
    `conditional=True` for a conditional run (nothing otherwise: its default)."""
    training = split == "train"
    kwargs = dict(split=split, batch_size=config["batch_size"], seed=config["seed"])
    kwargs.update(shuffle=training, drop_remainder=training)
    return dict(kwargs, conditional=True) if config["conditional"] else kwargs


def _datasets(config, source, strategy, start_step=0, check_finite=True, support=None, record=None):
    """(first global batch for ActNorm, training data from `start_step`, validation data) of `source` (a
    registered dataset or the user's own, `sources.from_source`); a distributed stream's input errors go to
    `record` (the model's own `input_errors`)."""
    first_batch = next(iter(_train_stream(config, 0, source=source).take(1)))
    if strategy.num_replicas_in_sync > 1:

        def replica_stream(ctx):
            stream = _train_stream(config, start_step, ctx, source)
            # FlowModel.fit cannot reach inside a distributed dataset: check NaN/inf and support here (nan_policy).
            return check_finite_batches(stream, support=support, record=record) if check_finite else stream

        train_ds = strategy.distribute_datasets_from_function(replica_stream)
    else:
        train_ds = _train_stream(config, start_step, source=source)
    validation = source.dataset(repeat=False, **_split_kwargs(config, "validation"))
    return first_batch, train_ds, validation.take(config["validation_batches"])


def _collect_points(dataset, limit):
    """The first `limit` examples of `dataset` as NumPy: x, or (x, c) for a conditional dataset."""
    batches = []
    for batch in dataset:
        batches.append(tf.nest.map_structure(lambda tensor: tensor.numpy(), batch))
        if sum(len(tf.nest.flatten(b)[0]) for b in batches) >= limit:
            break
    return tf.nest.map_structure(lambda *parts: np.concatenate(parts)[:limit], *batches)


def _figures(model, run_dir, validation_points, history, info):
    if isinstance(validation_points, tuple):
        return _conditional_figures(model, run_dir, validation_points, history, info)
    paths = {"training_curve": plots.plot_training_curve(history, os.path.join(run_dir, "training_curve.png"))}
    if len(model.event_shape) == 1 and model.event_shape[0] == 2:
        samples = model.sample(2000, seed=1).numpy()
        paths["density"] = plots.plot_density_2d(
            lambda p: model.log_prob(p).numpy(),
            os.path.join(run_dir, "density.png"),
            data=validation_points,
            samples=samples,
        )
    elif len(model.event_shape) == 3:
        rows = [model.sample(16, temperature=t, seed=2).numpy() for t in (1.0, 0.7)]
        paths["samples"] = plots.plot_images(
            rows, os.path.join(run_dir, "samples.png"), titles=["samples, T = 1.0", "samples, T = 0.7"]
        )
        z = model.encode(validation_points[:2]).numpy()
        weights = np.linspace(0.0, 1.0, 8).reshape(-1, *([1] * z[0].ndim)).astype(np.float32)
        strip = model.decode((1.0 - weights) * z[0] + weights * z[1]).numpy()
        paths["interpolation"] = plots.plot_images(
            [strip], os.path.join(run_dir, "interpolation.png"), titles=["latent interpolation"]
        )
    return paths


def _conditional_figures(model, run_dir, validation_points, history, info):
    """A conditional run's figures: 2-D, the marginal (1/K) sum_k q(x | k) with samples at the validation
    contexts, coloured by class; images, one row of samples per class, c fixed along the row (T = 0.7, as the
    unconditional figure's second row)."""
    x, c = validation_points
    paths = {"training_curve": plots.plot_training_curve(history, os.path.join(run_dir, "training_curve.png"))}
    num_classes = info.context_shape[0]
    one_hots = np.eye(num_classes, dtype=c.dtype)
    if len(model.event_shape) == 1 and model.event_shape[0] == 2:

        def marginal_log_prob(points):
            per_class = [
                model.log_prob(points, np.repeat(one_hots[k : k + 1], len(points), axis=0)).numpy()
                for k in range(num_classes)
            ]
            return np.logaddexp.reduce(np.stack(per_class), axis=0) - np.log(num_classes)

        samples = model.sample(len(c), c, seed=1).numpy()
        # Points coloured by class: samples drawn at the validation contexts should sit where those data sit.
        paths["density"] = plots.plot_density_2d(
            marginal_log_prob,
            os.path.join(run_dir, "density.png"),
            data=x,
            samples=samples,
            data_classes=c.argmax(axis=-1),
            sample_classes=c.argmax(axis=-1),
            title="learned marginal (1/K) sum_k q(x | k)",
        )
    elif len(model.event_shape) == 3:
        columns = 8
        rows = [
            model.sample(columns, np.repeat(one_hots[k : k + 1], columns, axis=0), temperature=0.7, seed=[2, k]).numpy()
            for k in range(num_classes)
        ]
        paths["samples"] = plots.plot_image_rows(
            rows,
            os.path.join(run_dir, "samples.png"),
            row_labels=list(info.class_names),
            title="samples given the class (one row each), T = 0.7",
        )
    return paths


def read_run_config(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The resolved configuration of the run in `run_dir`, from its config.json (what `--resume` continues)."""
    with open(os.path.join(run_dir, "config.json"), encoding="utf-8") as handle:
        return resolve_config(json.load(handle))


def train(config: Mapping[str, Any] | None = None, resume: str | os.PathLike | None = None) -> dict[str, Any]:
    """Train, evaluate, plot and export one run; returns a dict of what was written where.

    Returns {"run_dir", "metrics" (as in metrics.json), "figures" (name -> PNG, completed runs), "model"}.
    """
    start = time.time()
    if resume:
        run_dir = os.fspath(resume)
        if not os.path.isfile(os.path.join(run_dir, "config.json")):
            raise ValueError(
                f"`resume` must be a run folder holding config.json (runs/<name>-<timestamp>); received {run_dir!r}"
            )
        config = read_run_config(run_dir)
    else:
        config = resolve_config(config or {})
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir = os.path.join(config["run_dir"], f"{config['name']}-{stamp}")
    # The data are read and checked before anything is written: a bad file leaves no run folder behind.
    source = None if config["data"] is None and is_energy(config["dataset"]) else load_source(config)
    chief = is_chief()
    if chief:
        atomic_write_json(os.path.join(run_dir, "config.json"), config)
    keras.utils.set_random_seed(config["seed"])
    if source is None:
        return train_variational(config, run_dir, start, chief)
    return _train_density(config, run_dir, start, chief, source)


def load_source(config: Mapping[str, Any]) -> Any:
    """The run's data: `from_source(config["data"], ...)` with the run's columns, splits and seed, or the
    registered `config["dataset"]`; a ValueError for a conditional run on data without labels."""
    from tfp_flows.datasets import RegisteredData, from_source

    if config["data"] is None:
        return RegisteredData(config["dataset"])
    image_size = config["image_size"]
    if isinstance(image_size, str):
        try:
            image_size = tuple(int(part) for part in image_size.split(","))
        except ValueError:
            raise ValueError(
                f"`image_size` (--image-size) must be HEIGHT,WIDTH or one SIZE; received {image_size!r}"
            ) from None
        image_size = image_size[0] if len(image_size) == 1 else image_size
    source = from_source(
        config["data"],
        columns=config["columns"],
        log_columns=config["log_columns"],
        validation_fraction=config["validation_fraction"],
        test_fraction=config["test_fraction"],
        seed=config["seed"],
        image_size=image_size,
        nan_policy=(config["model_args"] or {}).get("nan_policy", "raise"),
    )
    if config["conditional"] and getattr(source.info, "context_shape", None) is None:
        raise ValueError(
            f"`conditional` (--conditional) needs data with labels (an image folder with one subfolder per "
            f"class); {config['data']!r} has none"
        )
    return source


def _train_density(config: dict[str, Any], run_dir: str, start: float, chief: bool, source: Any) -> dict[str, Any]:
    """The density-estimation run: fit the preset to `source`'s data by maximum likelihood (`run.train`)."""
    info = source.info
    standardization = source.standardization() if hasattr(source, "standardization") else None
    strategy = make_strategy(config["strategy"])
    with strategy.scope():
        args = _model_args(config, info)
        if standardization is not None:
            args.setdefault("standardization", standardization)
        model = build_model(config["preset"], info.event_shape, **args)
        skeleton.compile_model(model, config)
    # A resumed run continues the data stream where its backup stopped (see the module docstring).
    initial_epoch = skeleton.resumed_epoch(run_dir)
    first_batch, train_ds, validation = _datasets(
        config,
        source,
        strategy,
        initial_epoch * config["steps_per_epoch"],
        check_finite=model.nan_policy == "raise",
        support=model.support,
        record=model.input_errors,
    )

    def initialize_actnorm() -> None:
        # ActNorm's data-dependent init sees one global batch, the same on every worker, before any step.
        with strategy.scope():
            model._maybe_initialize(first_batch)

    callbacks = train_callbacks.default_callbacks(run_dir, chief=chief, best=bool(config["restore_best"]))
    outcome = skeleton.fit_run(
        model,
        config,
        callbacks,
        initial_epoch,
        before_fit=initialize_actnorm,
        x=train_ds,
        validation_data=validation,
    )
    completed = outcome.completed
    best = _restore_best_epoch(model, callbacks) if completed else None
    # Validation with NaN weights says nothing; every worker takes the same branch (same weights).
    evaluation = model.evaluate(validation, return_dict=True, verbose=0) if completed else {}
    specific = {
        "train_nll": last_metric(outcome.history, "nll"),
        "validation_nll": finite_or_none(evaluation.get("nll")),
        "num_replicas": strategy.num_replicas_in_sync,
        # Which weights the metrics, model.keras and the export hold (EarlyStopping's restore_best_weights).
        "weights": (f"best validation epoch ({best})" if best else "last epoch"),
        "best_epoch": best,
    }
    if model.num_bits:
        specific["train_bits_per_dim"] = last_metric(outcome.history, "bits_per_dim")
        specific["validation_bits_per_dim"] = finite_or_none(evaluation.get("bits_per_dim"))
    if config["conditional"]:
        specific["conditional"] = True
        specific["context_shape"] = list(info.context_shape)
    if completed:
        specific.update(_kl_gap(model, config["dataset"], validation, bool(config["conditional"])))
    export_metadata = {}
    if standardization is not None:
        specific["columns"] = standardization["columns"]
    if config["data"] is not None and completed and not config["conditional"]:
        specific.update(_own_data_scores(model, source, config["batch_size"]))
        export_metadata["train_log_prob_quantiles"] = specific["train_log_prob_quantiles"]
    metrics = skeleton.run_metrics(config, outcome, start, **specific)

    def figures() -> dict[str, str]:
        validation_points = _collect_points(validation, config["num_plot_samples"])
        paths = _figures(model, run_dir, validation_points, outcome.history, info)
        if standardization is not None:
            samples = model.sample(len(validation_points), seed=1).numpy()
            paths["pairwise"] = plots.plot_pairwise(
                validation_points, samples, standardization["columns"], os.path.join(run_dir, "pairwise.png")
            )
        return paths

    result = skeleton.finish_run(config, run_dir, metrics, outcome, model, figures, chief, export_metadata)
    result["model"] = model
    return result


# The training split's log-density quantiles kept in metrics.json (and the export) for `tfp-flows score
# --threshold-quantile q`, which interpolates between them: every percent, and the far lower tail.
SCORE_QUANTILES = (0.001, 0.005, *(round(0.01 * k, 2) for k in range(1, 100)), 0.995, 0.999)


def _own_data_scores(model: keras.Model, source: Any, batch_size: int) -> dict[str, Any]:
    """metrics.json's entries for the user's own data: the quantiles of the training examples' log-densities
    (`SCORE_QUANTILES`, for `score --threshold-quantile`) and the held-out test split's mean, `test_nll` (images at
    their bin centres, as `score` reads them, with `test_bits_per_dim`)."""
    images = len(source.info.event_shape) == 3
    kwargs = dict(shuffle=False, drop_remainder=False, **({"dequantize": None} if images else {}))

    def log_probs(split: str) -> np.ndarray:
        values = [model.log_prob(batch).numpy() for batch in source.dataset(split, batch_size, **kwargs)]
        return np.concatenate(values).astype(np.float64)

    train = log_probs("train")
    quantiles = np.nanquantile(train, SCORE_QUANTILES)
    scores: dict[str, Any] = {
        "train_log_prob_quantiles": {str(q): float(v) for q, v in zip(SCORE_QUANTILES, quantiles)}
    }
    test_size = len(source.test) if hasattr(source, "test") else source.folder.num_examples["test"]
    if test_size:
        test = log_probs("test")
        scores.update(test_nll=finite_or_none(float(-np.mean(test))), test_examples=len(test))
        if images:
            scores["test_bits_per_dim"] = finite_or_none(float(np.mean(model.bits_per_dim(test))))
    return scores


def _restore_best_epoch(model: keras.Model, callbacks: list[keras.callbacks.Callback]) -> int | None:
    """Load the best validation epoch's weights (BestEpochCheckpoint); returns that epoch, None if none was kept.

    `skeleton.finish_run` then saves model.keras with them."""
    for callback in callbacks:
        if isinstance(callback, train_callbacks.BestEpochCheckpoint):
            return callback.restore(model)
    return None


def _kl_gap(model, dataset, validation, conditional=False):
    """E_p[log p(x) - log q(x)] on the validation batches, for datasets whose true density is known (0 = exact);
    for a conditional run E_p[log p(x | c) - log q(x | c)], the expected KL(p(. | c) || q(. | c))."""
    from tfp_flows.datasets import conditional as conditional_densities
    from tfp_flows.datasets import synthetic

    if conditional:
        if dataset not in conditional_densities.CONDITIONAL_DENSITIES:
            return {}
        density = conditional_densities.get_conditional_density(dataset)
        gaps = [
            density.log_prob(tf.cast(x, tf.float64), c).numpy() - model.log_prob(x, c).numpy().astype(np.float64)
            for x, c in validation
        ]
        return {"validation_kl_gap": finite_or_none(float(np.mean(np.concatenate(gaps))))}
    if dataset not in synthetic.DENSITIES:
        return {}
    density = synthetic.get_density(dataset)
    gaps = [
        density.log_prob(tf.cast(batch, tf.float64)).numpy() - model.log_prob(batch).numpy().astype(np.float64)
        for batch in validation
    ]
    return {"validation_kl_gap": finite_or_none(float(np.mean(np.concatenate(gaps))))}
