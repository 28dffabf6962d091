"""`PReLULayer`: one learned slope per dimension, alpha = min_alpha + softplus(raw), building `tfp_flows.PReLU`."""

import keras
import tensorflow as tf

import tfp_flows
from keras_models.core.bijector_layer import BijectorLayer, softplus_inverse


class PReLULayer(BijectorLayer):
    """Elementwise PReLU with one learned slope per dimension, alpha = min_alpha + softplus(raw) > 0."""

    def __init__(self, min_alpha=0.01, initial_alpha=0.9, **kwargs):
        super().__init__(**kwargs)
        if not 0 < min_alpha < initial_alpha:
            raise ValueError(
                f"`min_alpha` and `initial_alpha` must satisfy 0 < min_alpha < initial_alpha; "
                f"received {min_alpha!r} and {initial_alpha!r}"
            )
        self.min_alpha, self.initial_alpha = min_alpha, initial_alpha

    def build(self, input_shape):
        self.raw_alpha = self.add_weight(
            name="raw_alpha",
            shape=(int(input_shape[-1]),),
            initializer=keras.initializers.Constant(softplus_inverse(self.initial_alpha - self.min_alpha)),
        )
        self.built = True

    def alpha(self):
        return self.min_alpha + tf.math.softplus(self.raw_alpha.value)

    def bijector(self):
        return tfp_flows.PReLU(alpha=self.alpha())
