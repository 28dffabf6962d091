"""`BijectorLayer`, the contract between Keras layers (which own weights) and tfp_flows bijectors (which own the
maths): in core because `FlowModel` puts its own steps (`StandardizeLayer`) first; `keras_models.layers` builds on it.

Keras 3 does not track `tf.Variable`s held inside TFP objects, so a flow's weights live in Keras layers and
each layer builds its bijector from them on every call (`layer.bijector()`): nothing trainable lives inside a
TFP object, and every gradient reaches `model.trainable_weights`.
"""

import keras
import numpy as np

from keras_models.core.precision import ComputesInVariableDtype


class BijectorLayer(ComputesInVariableDtype, keras.layers.Layer):
    """A Keras layer that owns the weights of one flow step and builds its bijector on demand.

    Subclasses create their weights in `build(event_shape)` (called by the constructor of the model once the
    event shape is known, so every weight exists right after construction and `.keras` files reload without
    a dummy call) and implement `bijector()`, returning a `tfp.bijectors.Bijector` whose forward maps the
    latent side to the data side. `event_shape` is the shape of one example on this step's data side.
    A step whose inverse is made for a bounded domain only says so in `data_support`.

    Under a mixed policy the step's bijector computes in the variable dtype (float32) while the networks it
    builds with its `dtype_policy` compute in float16 or bfloat16 (`keras_models.core.precision`).

    Layers with data-dependent initialisation (ActNorm) override `initialize_from_data(x)`, where `x` is a real
    batch on this step's data side; the fact that it ran is stored in a weight, so it never runs twice (after a
    reload or a resume either).
    """

    # The closed interval (low, high) every value on this step's data side must lie in, or None (the real line):
    # a model takes its `support` from its first step (the logit preprocessing declares [0, 1]).
    data_support = None

    def bijector(self):
        raise NotImplementedError(f"{type(self).__name__} must implement bijector()")

    def initialize_from_data(self, x):
        """Data-dependent initialisation from a batch `x` on this layer's data side (default: nothing)."""
        del x

    def output_event_shape(self, event_shape):
        """Event shape on the latent side of this step, given the data-side `event_shape` (default: same)."""
        return tuple(event_shape)

    def call(self, x):
        """Data -> latent (the density direction), so the layer can be used like any Keras layer."""
        return self.bijector().inverse(x)


def initialize_step(step, x, conditional_input=None):
    """`step.initialize_from_data(x)`, handing a container of steps (`initializes_with_context`) the batch's
    contexts too, since its later steps see x as its conditional earlier steps transform it."""
    if conditional_input is not None and getattr(step, "initializes_with_context", False):
        step.initialize_from_data(x, conditional_input=conditional_input)
    else:
        step.initialize_from_data(x)


def softplus_inverse(y):
    """x with softplus(x) = y (y > 0): the raw initial value of a weight passed through softplus."""
    return float(np.log(np.expm1(y)))
