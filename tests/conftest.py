"""Test-wide settings: quiet TensorFlow, Keras on its TensorFlow backend, CPU only, deterministic seeds."""

import gc
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import hypothesis
import keras
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


@pytest.fixture(autouse=True, scope="module")
def _release_memory_after_each_module():
    """Free what a test file's models and traced functions held before the next file runs in the same process.

    Each xdist worker runs many files one after another (`--dist loadfile`); without this their TensorFlow graphs
    and Keras state piled up to 12 GB in one worker of a 2-core CI run, which the kernel then killed."""
    yield
    keras.backend.clear_session()
    gc.collect()


def pytest_configure(config):
    # Third-party noise that says nothing about this project (TFP's distutils use, Keras' numpy-copy shim).
    for line in (
        "ignore:distutils Version classes are deprecated:DeprecationWarning",
        "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning",
        "ignore:`shuffle=True` was passed:UserWarning",
    ):
        config.addinivalue_line("filterwarnings", line)


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config, items):
    """`@pytest.mark.slow_params(id, ...)` on a parametrised test marks those parametrisations (their pytest ids)
    slow and leaves the others in the fast subset."""
    for item in items:
        marker = item.get_closest_marker("slow_params")
        callspec = getattr(item, "callspec", None)
        if marker is not None and callspec is not None and callspec.id in marker.args:
            item.add_marker(pytest.mark.slow)
