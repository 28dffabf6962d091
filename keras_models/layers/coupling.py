"""`CouplingLayer`: what every coupling layer shares, a mask and a conditioner network built to its blocks.

The subclasses build tfp_flows' coupling bijectors from the conditioner per call: `AffineCouplingLayer`
(affine_coupling.py), `AdditiveCouplingLayer` (additive_coupling.py), `MixtureCouplingLayer`
(logistic_mixture_coupling.py).
"""

import numpy as np

from keras_models.core.bijector_layer import BijectorLayer
from keras_models.layers.networks.conditioners import MaskedConditioner


class CouplingLayer(BijectorLayer):
    """Shared construction: a 0/1 mask of the event shape and a network built to the mask's blocks.

    `network_fn(output_channels)` returns the Keras network; it is called once the mask is known, with the
    number of output channels the coupling needs (e.g. 2 x transformed channels for shift and log-scale).
    `param_trailing_shapes` (default: the class attribute) gives the conditioner's outputs, as in
    `MaskedConditioner`. The bijectors get the conditioner itself (or `_OnlyOutput` of it), so they see its
    `block_split` and, for half and channel masks, call it on the pass-through block (`tfp_flows.coupling`).
    `context_shape` (None: unconditional) makes the conditioner take a context (`MaskedConditioner`).
    """

    param_trailing_shapes = ((), ())

    def __init__(self, mask, network_fn, param_trailing_shapes=None, context_shape=None, **kwargs):
        super().__init__(**kwargs)
        self.mask = np.asarray(mask, np.float32)
        shapes = self.param_trailing_shapes if param_trailing_shapes is None else param_trailing_shapes
        # The conditioner follows this layer's dtype policy (float64 models): Keras would cast inputs to float32.
        self.conditioner = MaskedConditioner(
            None, self.mask, shapes, context_shape=context_shape, dtype=self.dtype_policy
        )
        self.conditioner.network = network_fn(self.conditioner.network_output_channels)

    def build(self, input_shape):
        if tuple(input_shape[1:]) != self.mask.shape:
            raise ValueError(
                f"{self.name}: the mask has shape {self.mask.shape} but the layer's input events have "
                f"shape {tuple(input_shape[1:])}"
            )
        self.conditioner.build()
        self.built = True
