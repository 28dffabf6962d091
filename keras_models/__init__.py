"""keras_models: normalizing flows as Keras 3 models, trained with `fit` on tf.data pipelines.

Each preset is a `FlowModel` whose Keras layers own every weight and rebuild tfp_flows bijectors on each call;
`model.distribution` is a plain `tfd.TransformedDistribution` usable in any TFP program. Every preset's class is
exported under its class name straight from the registry (`keras_models.flows.presets.PRESETS`), so a new entry
there needs no edit here:

>>> import keras_models
>>> keras_models.RealNVP is keras_models.flows.presets.preset("realnvp").model
True
"""
from keras_models import _backend  # noqa: F401  (TensorFlow backend, before anything imports keras)
from keras_models.core.base_distributions import BaseDistribution, ConditionalGaussianBase, GaussianMixtureBase
from keras_models.core.flow_model import FlowModel
from keras_models.flows.maf import IAF  # a MAF variant (the inverse direction), not a preset of its own
from keras_models.flows.presets import PRESETS
from keras_models.flows.variational import VariationalFlow

globals().update({entry.model.__name__: entry.model for entry in PRESETS.values()})  # RealNVP, Glow, ...

__all__ = sorted({"BaseDistribution", "ConditionalGaussianBase", "FlowModel", "GaussianMixtureBase", "IAF", "VariationalFlow"}
                 | {entry.model.__name__ for entry in PRESETS.values()})
