"""`AdditiveCouplingLayer`: owns a conditioner and builds NICE's `tfp_flows.AdditiveCoupling` from it per call."""

import tfp_flows
from keras_models.layers.coupling import CouplingLayer


class _OnlyOutput:
    """`AdditiveCoupling`'s `shift_fn`: the conditioner's single parameter, keeping its `block_split`."""

    def __init__(self, conditioner):
        self.conditioner = conditioner
        self.block_split = conditioner.block_split

    def __call__(self, x, **kwargs):  # kwargs: the coupling's `conditional_input`, when it has one
        return self.conditioner(x, **kwargs)[0]


class AdditiveCouplingLayer(CouplingLayer):
    """NICE additive coupling: y = x + t(x * mask) on mask = 0 (volume preserving)."""

    param_trailing_shapes = ((),)

    def bijector(self):
        return tfp_flows.AdditiveCoupling(self.mask, _OnlyOutput(self.conditioner))
