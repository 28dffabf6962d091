"""`AffineCouplingLayer`: owns a conditioner and builds `tfp_flows.AffineCoupling` (RealNVP, Glow) from it per call."""

import tfp_flows
from keras_models.layers.coupling import CouplingLayer


class AffineCouplingLayer(CouplingLayer):
    """RealNVP / Glow affine coupling: y = x * exp(s) + t on mask = 0, with a bounded log-scale."""

    def __init__(self, mask, network_fn, log_scale_bound="tanh", log_scale_limit=2.0, **kwargs):
        super().__init__(mask, network_fn, **kwargs)
        self.log_scale_bound, self.log_scale_limit = log_scale_bound, log_scale_limit

    def bijector(self):
        return tfp_flows.AffineCoupling(
            self.mask,
            self._shift_and_log_scale,
            log_scale_bound=self.log_scale_bound,
            log_scale_limit=self.log_scale_limit,
        )

    @property
    def _shift_and_log_scale(self):
        """`shift_and_log_scale_fn` of the bijectors (also `SplitPriorLayer`'s): the conditioner itself, for its
        `block_split` (which a bound method could not carry)."""
        return self.conditioner
