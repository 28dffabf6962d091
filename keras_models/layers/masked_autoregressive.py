"""`MADEStepLayer`, a flow step that owns one MADE, and `MaskedAutoregressiveLayer`, which builds
`tfp_flows.OnePassMaskedAutoregressiveFlow` from it."""

from collections.abc import Callable, Sequence
from typing import Any

import tensorflow_probability as tfp

from keras_models.core.bijector_layer import BijectorLayer
from keras_models.layers.networks.made import MADE
from tfp_flows.masked_autoregressive import OnePassMaskedAutoregressiveFlow
from tfp_flows.validation import check_positive_ints

tfb = tfp.bijectors


class MADEStepLayer(BijectorLayer):
    """A flow step that owns one MADE over the input's last axis, made when the step is built.

    Subclasses say which MADE in `_new_made(event_size, **network_args)`, passing on the arguments every MADE
    takes (`hidden_units`, `activation`, `context_shape`, `dtype`, `name`), and build their bijector from `made`.

    Args:
      hidden_units: MADE hidden widths.
      activation: MADE hidden activation (default "relu").
      context_shape: None (unconditional), or the shape of one context, which the MADE then reads.
      **kwargs: `keras.layers.Layer` arguments.
    """

    def __init__(
        self,
        hidden_units: Sequence[int],
        activation: str | Callable[..., Any] = "relu",
        context_shape: Sequence[int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.context_shape = context_shape  # None: unconditional; else the MADE takes `conditional_input`
        self.hidden_units, self.activation = check_positive_ints(hidden_units, "hidden_units"), activation
        self.made = None

    def _new_made(self, event_size: int, **network_args: Any) -> MADE:
        raise NotImplementedError(f"{type(self).__name__} must implement _new_made(event_size, **network_args)")

    def build(self, input_shape: Sequence[int | None]) -> None:
        self.made = self._new_made(
            int(input_shape[-1]),
            hidden_units=self.hidden_units,
            activation=self.activation,
            context_shape=self.context_shape,
            dtype=self.dtype_policy,
            name="made",
        )
        self.made.build(input_shape)
        self.built = True


class MaskedAutoregressiveLayer(MADEStepLayer):
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
        super().__init__(hidden_units, activation, context_shape, **kwargs)
        self.log_scale_limit, self.inverse_autoregressive = log_scale_limit, inverse_autoregressive

    def _new_made(self, event_size, **network_args):
        return MADE(event_size, log_scale_limit=self.log_scale_limit, **network_args)

    def bijector(self):
        # TFP's MaskedAutoregressiveFlow whose density direction runs the MADE once, not twice (tfp_flows docs);
        # every instance has its own cache entries, so steps rebuilt per call never share them across graphs.
        maf = OnePassMaskedAutoregressiveFlow(shift_and_log_scale_fn=self.made, name="maf")
        return tfb.Invert(maf, name="iaf") if self.inverse_autoregressive else maf
