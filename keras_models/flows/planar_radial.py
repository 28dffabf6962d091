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
    >>> import numpy as np
    >>> from keras_models import PlanarFlow
    >>> points = np.random.default_rng(0).normal(size=(64, 2)).astype("float32")
    >>> model = PlanarFlow(event_shape=(2,), num_layers=4)
    >>> model.compile(optimizer="adam")
    >>> history = model.fit(points, batch_size=32, epochs=1, verbose=0)   # density estimation (max. likelihood)
    >>> model.sample(3, seed=0).shape
    TensorShape([3, 2])
"""

import keras

from keras_models.core.flow_model import FlowModel
from keras_models.layers.planar import PlanarLayer
from keras_models.layers.radial import RadialLayer
from tfp_flows.validation import check_int


class _StackedFlow(FlowModel):
    """`num_layers` steps of one kind on vectors; shared by PlanarFlow and RadialFlow."""

    layer_class = None
    layer_name = None

    def __init__(self, event_shape=(2,), num_layers=16, **kwargs):
        super().__init__(event_shape, **kwargs)
        if len(self.event_shape) != 1:
            raise ValueError(f"`event_shape` must be (D,) for {type(self).__name__}; received {self.event_shape}")
        self.num_layers = check_int(num_layers, "num_layers")
        steps = [
            self.layer_class(dtype=self.dtype_policy, name=f"{self.layer_name}_{i}") for i in range(self.num_layers)
        ]
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
