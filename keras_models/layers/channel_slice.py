"""`ChannelSliceLayer`: `tfp_flows.ChannelSlice`, multi-scale factor-out (an inner step on the first channels)."""

import tfp_flows
from keras_models.core.bijector_layer import BijectorLayer, initialize_step


class ChannelSliceLayer(BijectorLayer):
    """Multi-scale factor-out: `inner` transforms the first `num_channels` channels; the rest are set aside."""

    def __init__(self, inner, num_channels, **kwargs):
        super().__init__(**kwargs)
        self.inner, self.num_channels = inner, num_channels

    def build(self, input_shape):
        self._event_ndims = len(input_shape) - 1
        if not self.inner.built:
            self.inner.build(tuple(input_shape[:-1]) + (self.num_channels,))
        self.built = True

    initializes_with_context = True  # its inner steps may be conditional

    def initialize_from_data(self, x, conditional_input=None):
        initialize_step(self.inner, x[..., : self.num_channels], conditional_input)

    def bijector(self):
        return tfp_flows.ChannelSlice(
            self.inner.bijector(), self.num_channels, event_ndims=self._event_ndims, name="slice"
        )

    def output_event_shape(self, event_shape):
        return tuple(event_shape)
