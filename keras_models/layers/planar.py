"""`PlanarLayer`: owns w, u and b of one planar step (Rezende & Mohamed 2015) and builds `tfp_flows.Planar`."""

import keras
import numpy as np

import tfp_flows
from keras_models.core.bijector_layer import BijectorLayer, softplus_inverse

# w . u = log(e - 1) gives m(w . u) = softplus(w . u) - 1 = 0, hence u_hat = 0: the planar step is the identity.
_IDENTITY_W_DOT_U = softplus_inverse(1.0)


class PlanarLayer(BijectorLayer):
    """Owns w [D], u [D] and b [] of one planar step; w ~ N(0, w_stddev^2), u set so the step starts as identity."""

    def __init__(self, w_stddev=1.0, **kwargs):
        super().__init__(**kwargs)
        self.w_stddev = w_stddev

    def build(self, input_shape):
        size = int(input_shape[-1])
        self.w = self.add_weight(
            name="w", shape=(size,), initializer=keras.initializers.RandomNormal(stddev=self.w_stddev)
        )
        w = keras.ops.convert_to_numpy(self.w).astype(np.float64)
        u = _IDENTITY_W_DOT_U * w / max(float(np.sum(w * w)), 1e-12)
        self.u = self.add_weight(name="u", shape=(size,), initializer=keras.initializers.Constant(u))
        self.b = self.add_weight(name="b", shape=(), initializer="zeros")
        self.built = True

    def bijector(self):
        return tfp_flows.Planar(w=self.w.value, u=self.u.value, b=self.b.value)
