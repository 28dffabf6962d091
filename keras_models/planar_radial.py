"""`PlanarFlow` and `RadialFlow`: stacks of Rezende & Mohamed (2015) planar / radial steps as Keras 3 models.

    planar  f(z) = z + u_hat tanh(w . z + b)                (u_hat keeps w . u_hat > -1; tfp_flows.Planar)
    radial  f(z) = z + beta (z - z0) / (alpha + ||z - z0||)  (tfp_flows.Radial)
    x = f_K o ... o f_1 (z),  z ~ N(0, I),   log q(x) = log N(z) - sum_k log|det df_k/dz|
("Variational inference with normalizing flows", sec. 4.1 and appendix A). Both work in two directions:
- density estimation (forward KL on data, `fit` on a dataset of x): `log_prob` runs the exact inverses, the
  bracketed root solve of the planar step and the closed form of the radial one;
- variational inference (reverse KL, `keras_models.VariationalFlow`): samples are pushed forward and log q uses
  the forward log-determinants, so no inverse is needed.

Parameters are unconstrained Keras weights. Radial keeps alpha > 0 and beta >= -alpha as in the paper's
appendix: alpha = softplus(raw_alpha), beta = -alpha + softplus(raw_beta). Every step starts as the identity
(planar: u chosen so that u_hat = 0; radial: beta = 0), so an untrained model is its base distribution.

Example:
    >>> from keras_models import PlanarFlow
    >>> model = PlanarFlow(event_shape=(2,), num_layers=16)
    >>> model.compile(optimizer="adam")
    >>> model.fit(dataset_of_points, epochs=1)           # density estimation by maximum likelihood
    >>> model.sample(3).shape
    TensorShape([3, 2])
"""
import numpy as np
import tensorflow as tf

import keras

import tfp_flows
from keras_models.flow_model import FlowModel
from keras_models.layers.base import BijectorLayer

# w . u = log(e - 1) gives m(w . u) = softplus(w . u) - 1 = 0, hence u_hat = 0: the planar step is the identity.
_IDENTITY_W_DOT_U = float(np.log(np.expm1(1.0)))


class PlanarLayer(BijectorLayer):
    """Owns w [D], u [D] and b [] of one planar step; w ~ N(0, w_stddev^2), u set so the step starts as identity."""

    def __init__(self, w_stddev=1.0, **kwargs):
        super().__init__(**kwargs)
        self.w_stddev = w_stddev

    def build(self, input_shape):
        size = int(input_shape[-1])
        self.w = self.add_weight(name="w", shape=(size,),
                                 initializer=keras.initializers.RandomNormal(stddev=self.w_stddev))
        w = keras.ops.convert_to_numpy(self.w).astype(np.float64)
        u = _IDENTITY_W_DOT_U * w / max(float(np.sum(w * w)), 1e-12)
        self.u = self.add_weight(name="u", shape=(size,), initializer=keras.initializers.Constant(u))
        self.b = self.add_weight(name="b", shape=(), initializer="zeros")
        self.built = True

    def bijector(self):
        return tfp_flows.Planar(w=self.w.value, u=self.u.value, b=self.b.value)


class RadialLayer(BijectorLayer):
    """Owns z0 [D], raw_alpha [] and raw_beta [] of one radial step; alpha > 0, beta >= -alpha by construction."""

    def __init__(self, z0_stddev=1.0, **kwargs):
        super().__init__(**kwargs)
        self.z0_stddev = z0_stddev

    def build(self, input_shape):
        self.z0 = self.add_weight(name="z0", shape=(int(input_shape[-1]),),
                                  initializer=keras.initializers.RandomNormal(stddev=self.z0_stddev))
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


class _StackedFlow(FlowModel):
    """`num_layers` steps of one kind on vectors; shared by PlanarFlow and RadialFlow."""

    layer_class = None
    layer_name = None

    def __init__(self, event_shape=(2,), num_layers=16, **kwargs):
        super().__init__(event_shape, **kwargs)
        if len(self.event_shape) != 1:
            raise ValueError(f"`event_shape` must be (D,) for {type(self).__name__}; received {self.event_shape}")
        if not isinstance(num_layers, (int, np.integer)) or num_layers < 1:
            raise ValueError(f"`num_layers` must be a positive int; received {num_layers!r}")
        self.num_layers = int(num_layers)
        steps = [self.layer_class(dtype=self.dtype_policy, name=f"{self.layer_name}_{i}")
                 for i in range(self.num_layers)]
        self._set_flow_layers(steps[::-1])  # steps[0] acts first on the base sample: it is the latent-side end

    def get_config(self):
        config = super().get_config()
        config.update(num_layers=self.num_layers)
        return config


@keras.saving.register_keras_serializable(package="tfp_flows")
class PlanarFlow(_StackedFlow):
    """K planar steps (module docstring). Event shape (D,); default K = 16 (the paper uses 2 to 32).

    `log_prob` inverts every step exactly by a bracketed 1-D root solve (tfp_flows.Planar), so the model also
    trains on data; `encode`/`decode` are exact inverses of each other.

    Args:
      event_shape: (D,), default (2,).
      num_layers: number of planar steps K.
      **kwargs: `FlowModel` arguments (base_distribution, name, dtype="float64" for double precision).
    """

    layer_class = PlanarLayer
    layer_name = "planar"


@keras.saving.register_keras_serializable(package="tfp_flows")
class RadialFlow(_StackedFlow):
    """K radial steps (module docstring). Event shape (D,); default K = 16. Inverses in closed form.

    Args:
      event_shape: (D,), default (2,).
      num_layers: number of radial steps K.
      **kwargs: `FlowModel` arguments (base_distribution, name, dtype="float64" for double precision).
    """

    layer_class = RadialLayer
    layer_name = "radial"
