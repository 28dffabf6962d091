"""Test-wide settings: quiet TensorFlow, Keras on its TensorFlow backend, CPU only, deterministic seeds."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import hypothesis
import numpy as np
import pytest
import tensorflow as tf

# CI (CI=true) replays the same examples on every run, so a submission never fails on a new random draw; a
# developer's run keeps drawing new ones, which is how property tests find what nobody thought of.
hypothesis.settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis.settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _seed_everything():
    np.random.seed(0)
    tf.random.set_seed(0)
    yield


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes more than a few seconds (deselect with -m 'not slow')")
    # Third-party noise that says nothing about this project (TFP's distutils use, Keras' numpy-copy shim).
    for line in (
        "ignore:distutils Version classes are deprecated:DeprecationWarning",
        "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning",
        "ignore:`shuffle=True` was passed:UserWarning",
    ):
        config.addinivalue_line("filterwarnings", line)
