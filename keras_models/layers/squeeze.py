"""`SqueezeLayer`: the weight-free `tfp_flows.Squeeze` (space to depth on the way to the latent side) as a step."""

import tensorflow_probability as tfp

import tfp_flows
from keras_models.core.bijector_layer import BijectorLayer

tfb = tfp.bijectors


class SqueezeLayer(BijectorLayer):
    """Space-to-depth on the way to the latent side ([H, W, C] -> [H/f, W/f, C f^2]); `unsqueeze=True` undoes it."""

    def __init__(self, factor=2, unsqueeze=False, **kwargs):
        super().__init__(**kwargs)
        self.factor, self.unsqueeze = factor, unsqueeze

    def build(self, input_shape):
        height, width, channels = input_shape[1:]
        f = self.factor
        if not self.unsqueeze and (height % f or width % f):
            raise ValueError(
                f"{self.name}: height and width must be divisible by the squeeze factor {f}; "
                f"received event shape {tuple(input_shape[1:])}"
            )
        if self.unsqueeze and channels % (f * f):
            raise ValueError(
                f"{self.name}: channels must be divisible by {f * f} to unsqueeze; "
                f"received event shape {tuple(input_shape[1:])}"
            )
        self.built = True

    def output_event_shape(self, event_shape):
        height, width, channels = event_shape
        f = self.factor
        if self.unsqueeze:
            return (height * f, width * f, channels // (f * f))
        return (height // f, width // f, channels * f * f)

    def bijector(self):
        squeeze = tfp_flows.Squeeze(factor=self.factor)
        return tfb.Invert(squeeze) if self.unsqueeze else squeeze
