"""`DiagonalScaleLayer`: NICE's learned diagonal scaling, `tfb.Scale` built from a Keras-owned log-scale."""

import tensorflow_probability as tfp

from keras_models.core.bijector_layer import BijectorLayer

tfb = tfp.bijectors


class DiagonalScaleLayer(BijectorLayer):
    """NICE's diagonal scaling (Dinh et al. 2015, sec. 3.3): h = exp(S) * x in the density direction.

    Owns `log_scale` S of the event shape, initialised to zero (the identity). The bijector runs latent ->
    data, so it is `tfb.Scale(log_scale=-S)`: forward x = exp(-S) * h, inverse log-det sum_i S_i.
    """

    def build(self, input_shape):
        self.log_scale = self.add_weight(name="log_scale", shape=tuple(input_shape[1:]), initializer="zeros")
        self.built = True

    def bijector(self):
        return tfb.Scale(log_scale=-self.log_scale.value)
