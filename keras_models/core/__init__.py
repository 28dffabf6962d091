"""The model core: `FlowModel` (the maths and its Keras hooks), its base distributions, its context embeddings
(`context_network=`), the NaN/support policy and atomic model files.

Imports tensorflow, tensorflow_probability and keras only (scikit-learn lazily, for k-means); everything else in
keras_models builds on it, and it imports nothing of theirs.
"""

from keras_models.core.base_distributions import BaseDistribution, ConditionalGaussianBase, GaussianMixtureBase
from keras_models.core.context_networks import DeepSetsEmbedding, MLPEmbedding
from keras_models.core.flow_model import FlowModel
from keras_models.core.nan_policy import NonFiniteInputError, OutOfSupportError, check_finite_batches

__all__ = [
    "BaseDistribution",
    "ConditionalGaussianBase",
    "DeepSetsEmbedding",
    "FlowModel",
    "GaussianMixtureBase",
    "MLPEmbedding",
    "NonFiniteInputError",
    "OutOfSupportError",
    "check_finite_batches",
]
