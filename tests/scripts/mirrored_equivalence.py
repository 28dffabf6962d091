"""Subprocess entry point for tests/test_distribute.py: one training step on 1 device and on 2 replicas.

TensorFlow fixes its devices when it initialises, so the two logical CPU devices MirroredStrategy needs are
configured here, first thing, in a process of their own. For each small model (a RealNVP, and a Glow whose
ActNorm needs data-dependent init) the same initial weights take one SGD(learning_rate=1) step on the same
global batch of 16 examples in three settings:

    one_device       the default strategy, a tf.data batch of 16
    mirrored         MirroredStrategy over /cpu:0 and /cpu:1, the same dataset (Keras splits each batch 8 + 8)
    from_function    the same strategy, per-replica batches of 8 from distribute_datasets_from_function

and we record the weights when training begins (after ActNorm's init), the first layer's output moments on
the global batch, the gradient (weights before - after,
exact for SGD with learning rate 1 up to float32 rounding) and the loss Keras reports. Writes JSON to argv[1].
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import tensorflow as tf

_CPU = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(_CPU, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_models import Glow, RealNVP  # noqa: E402

GLOBAL_BATCH = 16
MODELS = {
    # No dropout: its masks are drawn per replica, so two replicas cannot reproduce one device's step bit for bit.
    "realnvp": lambda: RealNVP((4,), num_couplings=2, hidden_units=(8,), dropout=0.0),
    "glow": lambda: Glow((4,), num_steps=2, hidden_channels=8, seed=3),
}


class WeightsAtStart(keras.callbacks.Callback):
    """The weights when `fit` starts its first step (after ActNorm's data-dependent init), and what the first
    flow layer makes of the global batch then: zero mean and unit variance if it is an ActNorm initialised
    from exactly that batch."""

    def __init__(self, global_batch):
        super().__init__()
        self.global_batch = global_batch

    def on_train_begin(self, logs=None):
        self.weights = [np.array(w) for w in self.model.get_weights()]
        z = self.model.flow_layers[0].bijector().inverse(tf.constant(self.global_batch)).numpy()
        self.first_layer_moments = [z.mean(axis=0).tolist(), z.std(axis=0).tolist()]


def data():
    rng = np.random.default_rng(0)
    # Far from standardised, so ActNorm's init (zero mean, unit variance per feature) is visible.
    return (rng.normal(size=(4 * GLOBAL_BATCH, 4)) * [3.0, 0.5, 1.0, 2.0] + [1.0, -2.0, 0.0, 4.0]).astype("float32")


def one_step(make_model, initial_weights, strategy, dataset_for, global_batch):
    with strategy.scope():
        model = make_model()
        model.set_weights(initial_weights)
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=1.0))
    start = WeightsAtStart(global_batch)
    history = model.fit(dataset_for(strategy), epochs=1, steps_per_epoch=1, callbacks=[start], verbose=0)
    after = model.get_weights()
    trainable = {id(w) for w in model.trainable_weights}
    return {
        "num_replicas": strategy.num_replicas_in_sync,
        "loss": float(history.history["loss"][0]),
        "names": [w.path for w in model.weights],
        "trainable": [id(w) in trainable for w in model.weights],
        "start": [w.tolist() for w in start.weights],
        "first_layer_moments": start.first_layer_moments,
        "gradient": [(b - a).tolist() for b, a in zip(start.weights, after)],
    }


def perturbed_initial_weights(model):
    """The model's initial weights, trainable ones nudged: zero-initialised output layers would otherwise
    zero the first step's gradient of every layer before them, and the comparison would lose its teeth."""
    rng = np.random.default_rng(2)
    trainable = {id(w) for w in model.trainable_weights}
    return [
        np.asarray(w) + (0.1 * rng.normal(size=w.shape)).astype(w.dtype) if id(w) in trainable else np.asarray(w)
        for w in model.weights
    ]


def main(out_path):
    x = data()

    def batched(strategy):
        return tf.data.Dataset.from_tensor_slices(x).batch(GLOBAL_BATCH, drop_remainder=True)

    def from_function(strategy):
        return strategy.distribute_datasets_from_function(
            lambda ctx: tf.data.Dataset.from_tensor_slices(x).batch(
                ctx.get_per_replica_batch_size(GLOBAL_BATCH), drop_remainder=True
            )
        )

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    results = {}
    for name, make_model in MODELS.items():
        keras.utils.set_random_seed(1)
        initial = perturbed_initial_weights(make_model())
        results[name] = {
            "one_device": one_step(make_model, initial, tf.distribute.get_strategy(), batched, x[:GLOBAL_BATCH]),
            "mirrored": one_step(make_model, initial, mirrored, batched, x[:GLOBAL_BATCH]),
            "from_function": one_step(make_model, initial, mirrored, from_function, x[:GLOBAL_BATCH]),
        }
    with open(out_path, "w", encoding="utf-8") as handle:
        json.dump(results, handle)


if __name__ == "__main__":
    main(sys.argv[1])
