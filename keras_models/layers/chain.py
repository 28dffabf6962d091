"""`SequentialFlow`: a sequence of steps whose bijector is their `tfb.Chain` (a multi-scale level, a Glow step)."""

import tensorflow_probability as tfp

from keras_models.core.bijector_layer import BijectorLayer, initialize_step
from tfp_flows.conditioning import conditional_kwargs

tfb = tfp.bijectors


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

    initializes_with_context = True  # its steps may be conditional: FlowModel hands it the batch's contexts

    def initialize_from_data(self, x, conditional_input=None):
        for step in self.steps:
            initialize_step(step, x, conditional_input)
            bijector = step.bijector()
            x = bijector.inverse(x, **conditional_kwargs(bijector, conditional_input))

    def bijector(self):
        # A short name: TFP nests every sub-bijector's scope under it, and long names bloat exported graphs.
        return tfb.Chain([step.bijector() for step in self.steps], name="seq")
