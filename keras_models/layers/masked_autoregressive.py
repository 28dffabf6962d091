"""`MaskedAutoregressiveLayer`: owns one MADE and builds `tfp_flows.OnePassMaskedAutoregressiveFlow` from it."""

import tensorflow_probability as tfp

from keras_models.core.bijector_layer import BijectorLayer
from keras_models.layers.networks.made import MADE
from tfp_flows.masked_autoregressive import OnePassMaskedAutoregressiveFlow

tfb = tfp.bijectors


class MaskedAutoregressiveLayer(BijectorLayer):
    """Owns one MADE; its bijector is `tfb.MaskedAutoregressiveFlow` (or its inverse, the IAF step)."""

    def __init__(
        self,
        hidden_units,
        activation="relu",
        log_scale_limit=2.0,
        inverse_autoregressive=False,
        context_shape=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.context_shape = context_shape  # None: unconditional; else the MADE takes `conditional_input`
        self.hidden_units, self.activation = tuple(hidden_units), activation
        self.log_scale_limit, self.inverse_autoregressive = log_scale_limit, inverse_autoregressive
        self.made = None

    def build(self, input_shape):
        self.made = MADE(
            int(input_shape[-1]),
            self.hidden_units,
            self.activation,
            self.log_scale_limit,
            context_shape=self.context_shape,
            dtype=self.dtype_policy,
            name="made",
        )
        self.made.build(input_shape)
        self.built = True

    def bijector(self):
        # TFP's MaskedAutoregressiveFlow whose density direction runs the MADE once, not twice (tfp_flows docs);
        # every instance has its own cache entries, so steps rebuilt per call never share them across graphs.
        maf = OnePassMaskedAutoregressiveFlow(shift_and_log_scale_fn=self.made, name="maf")
        return tfb.Invert(maf, name="iaf") if self.inverse_autoregressive else maf
