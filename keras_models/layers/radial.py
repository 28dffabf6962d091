"""`RadialLayer`: owns z0, alpha and beta of one radial step (Rezende & Mohamed 2015) and builds `tfp_flows.Radial`."""

import keras
import tensorflow as tf

import tfp_flows
from keras_models.core.bijector_layer import BijectorLayer


class RadialLayer(BijectorLayer):
    """Owns z0 [D], raw_alpha [] and raw_beta [] of one radial step; alpha > 0, beta >= -alpha by construction."""

    def __init__(self, z0_stddev=1.0, **kwargs):
        super().__init__(**kwargs)
        self.z0_stddev = z0_stddev

    def build(self, input_shape):
        self.z0 = self.add_weight(
            name="z0", shape=(int(input_shape[-1]),), initializer=keras.initializers.RandomNormal(stddev=self.z0_stddev)
        )
        # Equal raw values give beta = -alpha + alpha = 0: the identity.
        self.raw_alpha = self.add_weight(name="raw_alpha", shape=(), initializer="zeros")
        self.raw_beta = self.add_weight(name="raw_beta", shape=(), initializer="zeros")
        self.built = True

    def alpha_beta(self):
        alpha = tf.math.softplus(self.raw_alpha.value)
        return alpha, -alpha + tf.math.softplus(self.raw_beta.value)

    def bijector(self):
        alpha, beta = self.alpha_beta()
        return tfp_flows.Radial(z0=self.z0.value, alpha=alpha, beta=beta)
