"""keras_models: normalizing flows as Keras 3 models, trained with `fit` on tf.data pipelines.

Each preset is a `FlowModel` whose Keras layers own every weight and rebuild tfp_flows bijectors on each call;
`model.distribution` is a plain `tfd.TransformedDistribution` usable in any TFP program. Every preset's class is
exported here by name, and a test checks that the list matches the registry (`keras_models.flows.presets.PRESETS`).
The package itself loads no TensorFlow (the command line's `--help` and `list` stay instant): the classes load on
first use, or at once when Keras is already imported. `keras.saving.load_model` finds them once they are loaded,
so import keras before keras_models, or touch any class here (`keras_models.RealNVP`) before loading a file:

>>> import keras_models
>>> from keras_models.flows.presets import preset
>>> keras_models.RealNVP is preset("realnvp").model
True
"""

import importlib
import os
import sys
from typing import TYPE_CHECKING

# Keras reads its backend once, on first import: whichever submodule imports it, the package's TensorFlow backend
# is set first. The classes load on first use, so that `tfp-flows --help` and `tfp-flows list` start without
# TensorFlow (seconds).
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter drowns the progress bars

_EXPORTS = {
    "BaseDistribution": "keras_models.core.base_distributions",
    "CNF": "keras_models.flows.cnf",
    "ConditionalGaussianBase": "keras_models.core.base_distributions",
    "GaussianMixtureBase": "keras_models.core.base_distributions",
    "DeepSetsEmbedding": "keras_models.core.context_networks",
    "FlowModel": "keras_models.core.flow_model",
    "FlowPlusPlus": "keras_models.flows.flow_plus_plus",
    "Glow": "keras_models.flows.glow",
    "IAF": "keras_models.flows.maf",  # a MAF variant (the inverse direction), not a preset of its own
    "MAF": "keras_models.flows.maf",
    "MLPEmbedding": "keras_models.core.context_networks",
    "NICE": "keras_models.flows.nice",
    "NSF": "keras_models.flows.nsf",
    "PlanarFlow": "keras_models.flows.planar_radial",
    "RadialFlow": "keras_models.flows.planar_radial",
    "PReLUFlow": "keras_models.flows.prelu_flow",
    "RealNVP": "keras_models.flows.realnvp",
    "VariationalFlow": "keras_models.flows.variational",
}

if TYPE_CHECKING:  # what IDEs and type checkers read; at run time `__getattr__` loads the same names
    from keras_models.core.base_distributions import BaseDistribution, ConditionalGaussianBase, GaussianMixtureBase
    from keras_models.core.context_networks import DeepSetsEmbedding, MLPEmbedding
    from keras_models.core.flow_model import FlowModel
    from keras_models.flows.cnf import CNF
    from keras_models.flows.flow_plus_plus import FlowPlusPlus
    from keras_models.flows.glow import Glow
    from keras_models.flows.maf import IAF, MAF
    from keras_models.flows.nice import NICE
    from keras_models.flows.nsf import NSF
    from keras_models.flows.planar_radial import PlanarFlow, RadialFlow
    from keras_models.flows.prelu_flow import PReLUFlow
    from keras_models.flows.realnvp import RealNVP
    from keras_models.flows.variational import VariationalFlow


def _import_all() -> None:
    """Import every exported class: Keras registers the serialisable ones, so `keras.saving.load_model` finds them."""
    importlib.import_module("keras_models._backend")  # refuses a non-TensorFlow Keras backend, with the fix
    for name, module in _EXPORTS.items():
        globals()[name] = getattr(importlib.import_module(module), name)


def __getattr__(name: str) -> object:
    """The exported class `name`, imported on first use (PEP 562) with all the others."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'keras_models' has no attribute {name!r}")
    _import_all()
    return globals()[name]


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = [
    "CNF",
    "IAF",
    "MAF",
    "NICE",
    "NSF",
    "BaseDistribution",
    "ConditionalGaussianBase",
    "DeepSetsEmbedding",
    "FlowModel",
    "FlowPlusPlus",
    "GaussianMixtureBase",
    "Glow",
    "MLPEmbedding",
    "PReLUFlow",
    "PlanarFlow",
    "RadialFlow",
    "RealNVP",
    "VariationalFlow",
]


# With Keras already imported (TensorFlow is loaded: nothing left to save), register every class at once, so that
# `import keras` then `import keras_models` (isort's order) is enough for `keras.saving.load_model`.
if "keras" in sys.modules:
    _import_all()
