"""`PermuteLayer`: a fixed permutation of the last axis, with no weights (tfb.Permute built on every call)."""

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from keras_models.core.bijector_layer import BijectorLayer
from tfp_flows.instance_cache import InstanceKeyedCache

tfb = tfp.bijectors


class _FreshPermute(InstanceKeyedCache, tfb.Permute):
    """A Permute built with equal parameters on every Keras call would share TFP's forward/inverse cache across
    traced graphs (docs/design.md#tfp-shares-its-cache-between-equal-bijectors): every instance gets its own
    entries."""


class PermuteLayer(BijectorLayer):
    """y[..., i] = x[..., permutation[i]] on the way to the data side; volume preserving (log-det 0).

    `permutation` is a NumPy / list of ints (a permutation of range(D)), fixed at construction; the tensor
    handed to `tfb.Permute` is built inside each call, so no graph tensor outlives its trace.
    """

    def __init__(self, permutation, **kwargs):
        super().__init__(**kwargs)
        permutation = np.asarray(permutation)
        if permutation.ndim != 1 or sorted(permutation.tolist()) != list(range(permutation.size)):
            raise ValueError(f"`permutation` must be a permutation of range(D); received {permutation.tolist()!r}")
        self.permutation = permutation.astype(np.int32)

    def build(self, input_shape):
        if int(input_shape[-1]) != self.permutation.size:
            raise ValueError(
                f"{self.name}: the permutation has {self.permutation.size} entries but the events have "
                f"{int(input_shape[-1])} on their last axis"
            )
        self.built = True

    def bijector(self):
        return _FreshPermute(tf.constant(self.permutation), name="permute")
