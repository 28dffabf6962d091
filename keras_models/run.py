"""One training run end to end: data, model, `fit` with callbacks, metrics, figures and a SavedModel export.

`train(config)` is what `tfp-flows train` calls; `config` is a plain dict whose keys mirror the command-line
flags (see `DEFAULTS`). Each run writes `runs/<name>-<timestamp>/` with config.json, metrics.json, model.keras,
tensorboard/, backup/ (for --resume) and PNG figures, then exports to `saved_models/<name>/<version>/`.
"""
import datetime
import json
import os
import time

import numpy as np
import tensorflow as tf

from keras_models import _backend  # noqa: F401
import keras

from keras_models import plots, training
from keras_models.presets import VARIATIONAL_PRESETS, build_model, preset_class

DEFAULTS = {
    "preset": "realnvp",
    "dataset": "two_moons",
    "epochs": 8,
    "steps_per_epoch": 150,
    "batch_size": 256,
    "learning_rate": 2e-3,
    "seed": 0,
    "model_args": {},
    "run_dir": "runs",
    "name": None,
    "export_dir": "saved_models",
    "export": True,
    "jit_compile": False,
    "strategy": "default",
    "validation_batches": 8,
    "num_plot_samples": 2000,
    "verbose": 1,
}

# Small, fast architectures for the 2-D toy problems (the presets' own defaults target real data).
TOY_MODEL_ARGS = {
    "realnvp": {"num_couplings": 6, "hidden_units": [64, 64]},
    "nice": {"num_couplings": 4, "hidden_units": [64, 64]},
    "maf": {"num_layers": 4, "hidden_units": [64, 64]},
    "glow": {"num_steps": 6, "hidden_units": [64, 64]},
    "flowpp": {"num_couplings": 4, "num_components": 4, "hidden_units": [64, 64]},
}


def _device():
    gpus = tf.config.list_physical_devices("GPU")
    return f"{len(gpus)} GPU(s): " + ", ".join(g.name for g in gpus) if gpus else "CPU"


class EpochSummary(keras.callbacks.Callback):
    """One line per epoch after Keras' progress bar: the metrics and the epoch's wall time."""

    def __init__(self, epochs):
        super().__init__()
        self.epochs = epochs

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.time()

    def on_epoch_end(self, epoch, logs=None):
        shown = ", ".join(f"{k} {v:.4f}" for k, v in sorted((logs or {}).items()) if k != "learning_rate")
        print(f"epoch {epoch + 1}/{self.epochs}: {shown} ({time.time() - self._start:.1f} s)", flush=True)


def make_strategy(name):
    """The tf.distribute strategy for --strategy default|mirrored|multiworker."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown strategy {name!r}; expected one of ['default', 'mirrored', 'multiworker']")


def is_chief():
    """Only the chief writes checkpoints, figures and exports in a multi-worker run (TF_CONFIG decides)."""
    config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    task = config.get("task", {})
    return task.get("type", "chief") == "chief" or (task.get("type") == "worker" and task.get("index", 0) == 0
                                                      and "chief" not in config.get("cluster", {}))


def _is_energy(name):
    from tfp_flows.datasets.energies import ENERGIES  # noqa: PLC0415

    return str(name).lower() in ENERGIES


def resolve_config(config):
    """Defaults filled in, names checked, and a run name chosen."""
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"unknown configuration keys {unknown}; expected keys among {sorted(DEFAULTS)}")
    resolved = dict(DEFAULTS, **{k: v for k, v in config.items() if v is not None or k == "name"})
    preset_class(resolved["preset"])  # raises with the valid names
    if not _is_energy(resolved["dataset"]):
        from tfp_flows.datasets import list_datasets  # noqa: PLC0415

        if resolved["dataset"] not in list_datasets():
            from tfp_flows.datasets.energies import ENERGIES  # noqa: PLC0415

            raise ValueError(f"unknown dataset {resolved['dataset']!r}; expected one of "
                             f"{sorted(list_datasets()) + sorted(name.upper() for name in ENERGIES)}")
    for key in ("epochs", "steps_per_epoch", "batch_size"):
        if not isinstance(resolved[key], int) or resolved[key] < 1:
            raise ValueError(f"`{key}` must be a positive int; received {resolved[key]!r}")
    if not resolved["learning_rate"] > 0:
        raise ValueError(f"`learning_rate` must be > 0; received {resolved['learning_rate']!r}")
    resolved["name"] = resolved["name"] or f"{resolved['preset']}-{str(resolved['dataset']).lower()}"
    return resolved


def _model_args(config, info):
    args = dict(TOY_MODEL_ARGS.get(config["preset"], {})) if len(info.event_shape) == 1 else {}
    args.update(config["model_args"] or {})
    return args


def _datasets(config, strategy):
    from tfp_flows.datasets import make_dataset  # noqa: PLC0415

    common = dict(batch_size=config["batch_size"], seed=config["seed"], drop_remainder=True)
    plain = make_dataset(config["dataset"], split="train", shuffle=True, repeat=True, **common)
    if strategy.num_replicas_in_sync > 1:
        train_ds = strategy.distribute_datasets_from_function(
            lambda ctx: make_dataset(config["dataset"], split="train", shuffle=True, repeat=True,
                                     input_context=ctx, **common))
    else:
        train_ds = plain
    validation = make_dataset(config["dataset"], split="validation", shuffle=False, repeat=False, **common)
    return plain, train_ds, validation.take(config["validation_batches"])


def _collect_points(dataset, limit):
    points = []
    for batch in dataset:
        points.append(batch.numpy())
        if sum(len(p) for p in points) >= limit:
            break
    return np.concatenate(points)[:limit]


def _figures(model, run_dir, validation_points, history, info):
    paths = {"training_curve": plots.plot_training_curve(history, os.path.join(run_dir, "training_curve.png"))}
    if len(model.event_shape) == 1 and model.event_shape[0] == 2:
        samples = model.sample(2000, seed=1).numpy()
        paths["density"] = plots.plot_density_2d(lambda p: model.log_prob(p).numpy(),
                                                 os.path.join(run_dir, "density.png"),
                                                 data=validation_points, samples=samples)
    elif len(model.event_shape) == 3:
        rows = [model.sample(16, temperature=t, seed=2).numpy() for t in (1.0, 0.7)]
        paths["samples"] = plots.plot_images(rows, os.path.join(run_dir, "samples.png"),
                                             titles=["samples, T = 1.0", "samples, T = 0.7"])
        z = model.encode(validation_points[:2]).numpy()
        weights = np.linspace(0.0, 1.0, 8).reshape(-1, *([1] * z[0].ndim)).astype(np.float32)
        strip = model.decode((1.0 - weights) * z[0] + weights * z[1]).numpy()
        paths["interpolation"] = plots.plot_images([strip], os.path.join(run_dir, "interpolation.png"),
                                                   titles=["latent interpolation"])
    _write_tensorboard_images(run_dir, paths)
    return paths


def _write_tensorboard_images(run_dir, paths):
    writer = tf.summary.create_file_writer(os.path.join(run_dir, "tensorboard", "figures"))
    with writer.as_default():
        for name, path in paths.items():
            image = tf.io.decode_png(tf.io.read_file(path), channels=3)
            tf.summary.image(name, image[tf.newaxis], step=0)
    writer.flush()


def train(config=None, resume=None):
    """Train, evaluate, plot and export one run; returns a dict of what was written where."""
    start = time.time()
    if resume:
        run_dir = resume
        with open(os.path.join(run_dir, "config.json"), encoding="utf-8") as handle:
            config = resolve_config(json.load(handle))
    else:
        config = resolve_config(config or {})
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir = os.path.join(config["run_dir"], f"{config['name']}-{stamp}")
    chief = is_chief()
    if chief:
        training.atomic_write_json(os.path.join(run_dir, "config.json"), config)
    if _is_energy(config["dataset"]):
        from keras_models.run_variational import train_variational  # noqa: PLC0415

        return train_variational(config, run_dir, start)

    from tfp_flows.datasets import dataset_info  # noqa: PLC0415

    keras.utils.set_random_seed(config["seed"])
    info = dataset_info(config["dataset"])
    strategy = make_strategy(config["strategy"])
    plain, train_ds, validation = _datasets(config, strategy)
    with strategy.scope():
        model = build_model(config["preset"], info.event_shape, **_model_args(config, info))
        model.compile(optimizer=keras.optimizers.Adam(config["learning_rate"], clipnorm=10.0),
                      jit_compile=bool(config["jit_compile"]))
        # ActNorm's data-dependent init sees one global batch, before any replica runs a step.
        model._maybe_initialize(plain)
    callbacks = training.default_callbacks(run_dir, checkpoint=chief, tensorboard=chief)
    callbacks.append(EpochSummary(config["epochs"]))
    history = model.fit(train_ds, epochs=config["epochs"], steps_per_epoch=config["steps_per_epoch"],
                        validation_data=validation, callbacks=callbacks, verbose=config["verbose"])
    evaluation = model.evaluate(validation, return_dict=True, verbose=0)
    metrics = {
        "train_nll": _last(history.history, "nll"),
        "validation_nll": evaluation.get("nll"),
        "epochs": len(history.history.get("loss", [])),
        "steps": int(model.optimizer.iterations.numpy()),
        "wall_time_s": round(time.time() - start, 2),
        "device": _device(),
        "stop_reason": training.stop_reason(callbacks) or "completed",
        "preset": config["preset"],
        "dataset": config["dataset"],
    }
    if model.num_bits:
        metrics["train_bits_per_dim"] = _last(history.history, "bits_per_dim")
        metrics["validation_bits_per_dim"] = evaluation.get("bits_per_dim")
    result = {"run_dir": run_dir, "metrics": metrics}
    if chief:
        validation_points = _collect_points(validation, config["num_plot_samples"])
        result["figures"] = _figures(model, run_dir, validation_points, history.history, info)
        if config["export"] and metrics["stop_reason"] == "completed":
            from keras_models.export import export_saved_model  # noqa: PLC0415

            metrics["export_path"] = export_saved_model(model, base_dir=config["export_dir"], name=config["name"])
        training.atomic_write_json(os.path.join(run_dir, "metrics.json"), metrics)
    result["model"] = model
    return result


def _last(history, key):
    values = history.get(key)
    return float(values[-1]) if values else None
