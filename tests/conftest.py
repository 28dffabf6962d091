"""Test-wide settings: quiet TensorFlow, Keras on its TensorFlow backend, CPU only, deterministic seeds."""

import os
import pathlib

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


# The fast subset (`pytest -m "not slow"`) keeps one case per check of the two case tables that dominate the
# suite's time: the model checklist runs on FAST_MODEL_CASES only, the conformance kit on each bijector's first
# parameter setting. The whole suite (CI) runs every case.
FAST_MODEL_CASES = {"realnvp-vector"}
CASE_TABLES = {
    "tests/test_model_checklist.py": "case",
    "tests/bijectors/test_conformance.py": "case_id",
}


# Tests measured at 0.75 s or more in the fast subset (tests/scripts/slow_tests.py writes the list).
SLOW_TESTS = {
    line.strip()
    for line in (pathlib.Path(__file__).parent / "slow_tests.txt").read_text(encoding="utf-8").splitlines()
    if line.strip() and not line.startswith("#")
}


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config, items):
    first_settings = set()
    for item in items:
        if item.nodeid in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
            continue
        param = CASE_TABLES.get(item.nodeid.split("::")[0])
        callspec = getattr(item, "callspec", None)
        if param is None or callspec is None or param not in callspec.params:
            continue
        value = callspec.params[param]
        if param == "case":
            fast = getattr(value, "id", value) in FAST_MODEL_CASES
        else:
            setting = (item.originalname, str(value).split("-")[0])  # bijector class, e.g. "RationalQuadraticCoupling"
            fast = setting not in first_settings
            first_settings.add(setting)
        if not fast:
            item.add_marker(pytest.mark.slow)
