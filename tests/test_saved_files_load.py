"""`.keras` files written before keras_models was split into core/layers/flows/train/serving still load.

tests/data/saved_before_layout/ holds one tiny model per preset saved by the flat layout's code
(`make.py` there, run at commit 67bbd37) with the log-densities it gave on four inputs. Keras finds each class
by its registered name (`tfp_flows>ClassName`), not by module path, so moving modules must not change a number.
"""

import glob
import os

import keras
import numpy as np
import pytest

import keras_models  # noqa: F401  (registers the serialisable classes)

FOLDER = os.path.join(os.path.dirname(__file__), "data", "saved_before_layout")
KEYS = sorted(os.path.basename(path)[: -len(".keras")] for path in glob.glob(os.path.join(FOLDER, "*.keras")))


def test_every_preset_has_a_saved_file():
    assert {
        "prelu",
        "nice",
        "realnvp",
        "realnvp-image",
        "maf",
        "iaf",
        "glow",
        "flowpp-image",
        "planar",
        "radial",
    } <= set(KEYS)


@pytest.mark.parametrize("key", KEYS)
def test_saved_file_loads_with_the_same_log_prob(key):
    model = keras.saving.load_model(os.path.join(FOLDER, f"{key}.keras"))
    expected = np.load(os.path.join(FOLDER, f"{key}.npz"))
    np.testing.assert_allclose(model.log_prob(expected["x"]).numpy(), expected["log_prob"], rtol=1e-5, atol=1e-5)
