"""Weight-free and composite steps: squeeze, logit preprocessing, sequences and multi-scale factor-out."""
import tensorflow_probability as tfp


import tfp_flows
from keras_models.layers.base import BijectorLayer

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
            raise ValueError(f"{self.name}: height and width must be divisible by the squeeze factor {f}; "
                             f"received event shape {tuple(input_shape[1:])}")
        if self.unsqueeze and channels % (f * f):
            raise ValueError(f"{self.name}: channels must be divisible by {f * f} to unsqueeze; "
                             f"received event shape {tuple(input_shape[1:])}")
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


class LogitLayer(BijectorLayer):
    """Preprocessing of [0, 1] data to R: z = logit(alpha + (1 - 2 alpha) x) (RealNVP sec. 4.1).

    It is made for data in [0, 1] (just outside, the density is finite but meaningless; below -alpha / (1 - 2
    alpha) or above 1 + alpha / (1 - 2 alpha) the inverse is NaN): `data_support` says so, and a `FlowModel`
    starting with this step checks the data whose density it takes against it (`FlowModel.support`).
    """

    data_support = (0.0, 1.0)

    def __init__(self, alpha=0.05, **kwargs):
        super().__init__(**kwargs)
        self.alpha = alpha

    def build(self, input_shape):
        self.built = True

    def bijector(self):
        return tfp_flows.LogitTransform(alpha=self.alpha)


class SequentialFlow(BijectorLayer):
    """A sequence of steps, data side first; its bijector is their `tfb.Chain` (forward: latent -> data)."""

    def __init__(self, steps, **kwargs):
        super().__init__(**kwargs)
        self.steps = list(steps)

    def build(self, input_shape):
        shape = tuple(input_shape[1:])
        for step in self.steps:
            if not step.built:
                step.build((None,) + shape)
            shape = step.output_event_shape(shape)
        self._output_shape = shape
        self.built = True

    @property
    def data_support(self):
        return self.steps[0].data_support if self.steps else None

    def output_event_shape(self, event_shape):
        shape = tuple(event_shape)
        for step in self.steps:
            shape = step.output_event_shape(shape)
        return shape

    def initialize_from_data(self, x):
        for step in self.steps:
            step.initialize_from_data(x)
            x = step.bijector().inverse(x)

    def bijector(self):
        # A short name: TFP nests every sub-bijector's scope under it, and long names bloat exported graphs.
        return tfb.Chain([step.bijector() for step in self.steps], name="seq")


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

    def initialize_from_data(self, x):
        self.inner.initialize_from_data(x[..., : self.num_channels])

    def bijector(self):
        return tfp_flows.ChannelSlice(self.inner.bijector(), self.num_channels, event_ndims=self._event_ndims,
                                      name="slice")

    def output_event_shape(self, event_shape):
        return tuple(event_shape)
