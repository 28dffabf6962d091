"""Test-wide settings: quiet TensorFlow, Keras on its TensorFlow backend, CPU only, deterministic seeds."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402


@pytest.fixture(autouse=True)
def _seed_everything():
    np.random.seed(0)
    tf.random.set_seed(0)
    yield


def pytest_configure(config):
    # Third-party noise that says nothing about this project (TFP's distutils use, Keras' numpy-copy shim).
    for line in (
        "ignore:distutils Version classes are deprecated:DeprecationWarning",
        "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning",
        "ignore:`shuffle=True` was passed:UserWarning",
    ):
        config.addinivalue_line("filterwarnings", line)
