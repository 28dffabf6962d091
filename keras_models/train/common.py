"""What the density run (train/run.py) and the variational run (train/variational.py) share.

The optimizer and its schedule, the one-line epoch summary, the device description for metrics.json, and the
conversion of metrics to strict JSON. Both runs import this module; neither imports the other's internals.
"""

import time
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf


def device() -> str:
    """What metrics.json records as the run's device: the GPUs TensorFlow sees, or "CPU"."""
    gpus = tf.config.list_physical_devices("GPU")
    return f"{len(gpus)} GPU(s): " + ", ".join(g.name for g in gpus) if gpus else "CPU"


class EpochSummary(keras.callbacks.Callback):
    """One line per epoch after Keras' progress bar: the metrics and the epoch's wall time."""

    def __init__(self, epochs: int) -> None:
        super().__init__()
        self.epochs = epochs

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.time()

    def on_epoch_end(self, epoch, logs=None):
        shown = ", ".join(f"{k} {v:.4f}" for k, v in sorted((logs or {}).items()) if k != "learning_rate")
        print(f"epoch {epoch + 1}/{self.epochs}: {shown} ({time.time() - self._start:.1f} s)", flush=True)


def make_optimizer(config: Mapping[str, Any]) -> keras.optimizers.Optimizer:
    """Adam with a linear warmup, then a cosine-decayed learning rate, and gradient clipping (no NaN from a spike).

    Over T = epochs * steps_per_epoch steps with W = round(warmup_fraction * T) warmup steps and peak
    lr0 = `learning_rate`: lr(t) = lr0 t / W for t < W (linear warmup from 0, Goyal et al. 2017), then
    lr(t) = lr0 (alpha + (1 - alpha) (1 + cos(pi (t - W) / (T - W))) / 2) (Loshchilov & Hutter 2017, SGDR, without
    restarts), alpha = `final_learning_rate_fraction`: Keras' CosineDecay, which does both. Gradients are clipped to
    the norm `clipnorm`. Every number comes from the run's resolved config (`config.run_defaults` per preset).
    """
    total_steps = config["epochs"] * config["steps_per_epoch"]
    warmup_steps = min(round(config["warmup_fraction"] * total_steps), total_steps - 1)
    if warmup_steps > 0:
        schedule = keras.optimizers.schedules.CosineDecay(
            0.0,
            decay_steps=total_steps - warmup_steps,
            alpha=config["final_learning_rate_fraction"],
            warmup_target=config["learning_rate"],
            warmup_steps=warmup_steps,
        )
    else:
        schedule = keras.optimizers.schedules.CosineDecay(
            config["learning_rate"], decay_steps=total_steps, alpha=config["final_learning_rate_fraction"]
        )
    return keras.optimizers.Adam(schedule, clipnorm=config["clipnorm"])


def finite_or_none(value: Any) -> float | None:
    """A float for metrics.json (strict JSON has no NaN): None when missing or not finite."""
    return float(value) if value is not None and np.isfinite(value) else None


def last_metric(history: Mapping[str, list], key: str) -> float | None:
    """The last epoch's value of `key` in a Keras history, None when missing or not finite."""
    values = history.get(key)
    return finite_or_none(values[-1]) if values else None
