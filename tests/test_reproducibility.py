"""Same program, same seeds, same weights: two processes train the same model and must end bit-identical.

Each process seeds Keras, TensorFlow, NumPy and Python with `keras.utils.set_random_seed` and turns on
`tf.config.experimental.enable_op_determinism()`, then fits on CPU without XLA from a shuffled, repeated, batched
and prefetched tf.data pipeline (so ActNorm's data-dependent init, the shuffle order and the train step all take
part). TensorFlow promises identical results only with both calls (its `enable_op_determinism` docs); without op
determinism a Glow fit here differed between processes after one step (docs/guides/models.md, "Reproducibility").
Glow is built with `seed=None`, so its 1x1 convolutions' random rotations must also follow the global seed.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

PROGRAM = """
import os, sys
import numpy as np, keras, tensorflow as tf
from keras_models import Glow, RealNVP

tf.config.experimental.enable_op_determinism()
keras.utils.set_random_seed(7)
if sys.argv[1] == "realnvp":
    x = np.random.default_rng(0).normal(size=(256, 4)).astype("float32")
    model = RealNVP(event_shape=(4,), num_couplings=4, hidden_units=(16, 16))
else:
    x = np.random.default_rng(0).uniform(0.05, 0.95, size=(64, 8, 8, 1)).astype("float32")
    model = Glow(event_shape=(8, 8, 1), num_levels=1, num_steps=2, hidden_channels=8)  # seed=None
dataset = tf.data.Dataset.from_tensor_slices(x).shuffle(256).repeat().batch(32).prefetch(tf.data.AUTOTUNE)
model.compile(optimizer="adam", jit_compile=False)
model.fit(dataset, epochs=2, steps_per_epoch=4, verbose=0)
np.savez(sys.argv[2], *[v.numpy() for v in model.weights])
"""


def _train_twice(name, tmp_path):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2", KERAS_BACKEND="tensorflow")
    paths = [tmp_path / f"{name}_{run}.npz" for run in range(2)]
    runs = [
        # cwd=tmp_path: `python -c` puts the working directory first on sys.path, and the checkout's tfp_flows/
        # would shadow the installed package (whose tfp_flows.datasets is the checkout's datasets/).
        subprocess.Popen(
            [sys.executable, "-c", PROGRAM, name, str(path)], env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True
        )
        for path in paths
    ]
    for run in runs:
        _, stderr = run.communicate(timeout=600)
        assert run.returncode == 0, stderr[-3000:]
    return [np.load(path) for path in paths]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["realnvp", "glow"])
def test_two_processes_with_the_same_seeds_end_with_identical_weights(name, tmp_path):
    first, second = _train_twice(name, tmp_path)
    assert len(first.files) == len(second.files) > 0
    different = [key for key in first.files if not np.array_equal(first[key], second[key])]
    assert not different, f"{name}: weights {different} differ between two processes with the same seeds"
