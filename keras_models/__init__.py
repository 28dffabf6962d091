"""keras_models: normalizing flows as Keras 3 models, trained with `fit` on tf.data pipelines.

Each preset is a `FlowModel` whose Keras layers own every weight and rebuild tfp_flows bijectors on each call;
`model.distribution` is a plain `tfd.TransformedDistribution` usable in any TFP program. Every preset's class is
exported here by name, and a test checks that the list matches the registry (`keras_models.flows.presets.PRESETS`):

>>> import keras_models
>>> keras_models.RealNVP is keras_models.flows.presets.preset("realnvp").model
True
"""

from keras_models import _backend  # noqa: F401  (TensorFlow backend, before anything imports keras)
from keras_models.core.base_distributions import BaseDistribution, ConditionalGaussianBase, GaussianMixtureBase
from keras_models.core.flow_model import FlowModel
from keras_models.flows.flow_plus_plus import FlowPlusPlus
from keras_models.flows.glow import Glow
from keras_models.flows.maf import IAF, MAF  # IAF: a MAF variant (the inverse direction), not a preset of its own
from keras_models.flows.nice import NICE
from keras_models.flows.nsf import NSF
from keras_models.flows.planar_radial import PlanarFlow, RadialFlow
from keras_models.flows.prelu_flow import PReLUFlow
from keras_models.flows.realnvp import RealNVP
from keras_models.flows.variational import VariationalFlow

__all__ = [
    "IAF",
    "MAF",
    "NICE",
    "NSF",
    "BaseDistribution",
    "ConditionalGaussianBase",
    "FlowModel",
    "FlowPlusPlus",
    "GaussianMixtureBase",
    "Glow",
    "PReLUFlow",
    "PlanarFlow",
    "RadialFlow",
    "RealNVP",
    "VariationalFlow",
]
