"""Coupling layers: own a conditioner network and build tfp_flows' coupling bijectors from it per call."""
import numpy as np


import tfp_flows
from keras_models.layers.base import BijectorLayer
from keras_models.layers.conditioners import MaskedConditioner


class CouplingLayer(BijectorLayer):
    """Shared construction: a 0/1 mask of the event shape and a network built to the mask's blocks.

    `network_fn(output_channels)` returns the Keras network; it is called once the mask is known, with the
    number of output channels the coupling needs (e.g. 2 x transformed channels for shift and log-scale).
    `param_trailing_shapes` (default: the class attribute) gives the conditioner's outputs, as in
    `MaskedConditioner`. The bijectors get the conditioner itself (or `_OnlyOutput` of it), so they see its
    `block_split` and, for half and channel masks, call it on the pass-through block (`tfp_flows.coupling`).
    """

    param_trailing_shapes = ((), ())

    def __init__(self, mask, network_fn, param_trailing_shapes=None, **kwargs):
        super().__init__(**kwargs)
        self.mask = np.asarray(mask, np.float32)
        shapes = self.param_trailing_shapes if param_trailing_shapes is None else param_trailing_shapes
        # The conditioner follows this layer's dtype policy (float64 models): Keras would cast inputs to float32.
        self.conditioner = MaskedConditioner(None, self.mask, shapes, dtype=self.dtype_policy)
        self.conditioner.network = network_fn(self.conditioner.network_output_channels)

    def build(self, input_shape):
        if tuple(input_shape[1:]) != self.mask.shape:
            raise ValueError(f"{self.name}: the mask has shape {self.mask.shape} but the layer's input events have "
                             f"shape {tuple(input_shape[1:])}")
        self.conditioner.build()
        self.built = True


class _OnlyOutput:
    """`AdditiveCoupling`'s `shift_fn`: the conditioner's single parameter, keeping its `block_split`."""

    def __init__(self, conditioner):
        self.conditioner = conditioner
        self.block_split = conditioner.block_split

    def __call__(self, x):
        return self.conditioner(x)[0]


class AffineCouplingLayer(CouplingLayer):
    """RealNVP / Glow affine coupling: y = x * exp(s) + t on mask = 0, with a bounded log-scale."""

    def __init__(self, mask, network_fn, log_scale_bound="tanh", log_scale_limit=2.0, **kwargs):
        super().__init__(mask, network_fn, **kwargs)
        self.log_scale_bound, self.log_scale_limit = log_scale_bound, log_scale_limit

    def bijector(self):
        return tfp_flows.AffineCoupling(self.mask, self._shift_and_log_scale, log_scale_bound=self.log_scale_bound,
                                        log_scale_limit=self.log_scale_limit)

    @property
    def _shift_and_log_scale(self):
        """`shift_and_log_scale_fn` of the bijectors (also `SplitPriorLayer`'s): the conditioner itself, for its
        `block_split` (which a bound method could not carry)."""
        return self.conditioner


class AdditiveCouplingLayer(CouplingLayer):
    """NICE additive coupling: y = x + t(x * mask) on mask = 0 (volume preserving)."""

    param_trailing_shapes = ((),)

    def bijector(self):
        return tfp_flows.AdditiveCoupling(self.mask, _OnlyOutput(self.conditioner))
