"""`PReLUFlow`: the classic TFP custom-bijector tutorial as a Keras 3 model.

A stack of invertible "MLP layers" (Jang 2018, "Normalizing flows tutorial"; the TFP tutorial that writes a
leaky-ReLU bijector by hand), latent -> data:
    x = A_K o P_{K-1} o A_{K-1} o ... o P_1 o A_1 (z),       z ~ N(0, I)
    A_k(h) = L_k h + b_k,     L_k lower-triangular, diag(L_k) = softplus(raw) + 1e-5 > 0   (tfb.ScaleMatvecTriL)
    P_k(h) = h (h >= 0),  alpha_k h (h < 0),      alpha_k = min_alpha + softplus(raw) > 0   (tfp_flows.PReLU)
    log p(x) = log p_Z(z) - sum_k log|det L_k| - sum_k sum_i [h_i < 0] log alpha_k,i
The tutorial fits the "banana" x2 ~ N(0, 4^2), x1 ~ N(x2^2 / 4, 1). The positive diagonal and slopes keep each
map invertible while the optimiser moves freely; the last step is affine, so the data range is unbounded.
Two additions to the tutorial, both on by default: the dimensions are reversed between layers (a stack of
lower-triangular maps and elementwise PReLUs is itself triangular, so x_1 would only ever depend on z_1), and a
data-side ActNorm initialised from the first batch (Kingma & Dhariwal 2018) puts the data on the unit scale.

Caveat (why this is a tutorial model, not a production one): log p(x) jumps by log(alpha) where a kink crosses
the data, and the pathwise gradient that `fit` follows misses the effect of moving a kink across data points.
The gradients of every weight on the data side of a PReLU are biased (finite differences of the expected loss
disagree with them), so long training drifts back towards the Gaussian solution after an early improvement.
Keep the best epoch, e.g. `keras.callbacks.EarlyStopping(monitor="nll", patience=..., restore_best_weights=True)`.

Example:
    >>> from keras_models import PReLUFlow
    >>> model = PReLUFlow(event_shape=(2,), num_layers=6)
    >>> model.compile(optimizer="adam")
    >>> model.fit(dataset_of_banana_points, epochs=1)
    >>> model.sample(3).shape
    TensorShape([3, 2])
"""
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

import keras

import tfp_flows
from keras_models.flow_model import FlowModel
from keras_models.layers.actnorm import ActNormLayer
from keras_models.layers.base import BijectorLayer
from keras_models.layers.permute import PermuteLayer

tfb = tfp.bijectors

_DIAGONAL_FLOOR = 1e-5


def _softplus_inverse(y):
    return float(np.log(np.expm1(y)))


class LowerTriangularAffineLayer(BijectorLayer):
    """h -> L h + b with L lower-triangular and a positive diagonal; starts near the identity.

    Weights: `shift` [D], `diagonal` [D] (raw, through softplus) and, for D > 1, `strictly_lower` [D (D - 1) / 2]
    (small random values, so the layers of a stack start different from each other).
    """

    def build(self, input_shape):
        size = int(input_shape[-1])
        self.size = size
        self.shift = self.add_weight(name="shift", shape=(size,), initializer="zeros")
        self.diagonal = self.add_weight(name="diagonal", shape=(size,),
                                        initializer=keras.initializers.Constant(_softplus_inverse(1.0)))
        self.strictly_lower = None
        if size > 1:
            self.strictly_lower = self.add_weight(name="strictly_lower", shape=(size * (size - 1) // 2,),
                                                  initializer=keras.initializers.RandomNormal(stddev=0.1))
        self.built = True

    def scale_tril(self):
        diagonal = tf.math.softplus(self.diagonal.value) + _DIAGONAL_FLOOR
        scale = tf.linalg.diag(diagonal)
        if self.strictly_lower is not None:
            # fill_triangular gives a (D-1)x(D-1) lower triangle; one row above and one column to the right
            # of zeros make it the strictly lower part of a DxD matrix.
            lower = tfp.math.fill_triangular(self.strictly_lower.value)
            scale = scale + tf.pad(lower, [[1, 0], [0, 1]])
        return scale

    def bijector(self):
        return tfb.Chain([tfb.Shift(self.shift.value), tfb.ScaleMatvecTriL(self.scale_tril())], name="affine_tril")


class PReLULayer(BijectorLayer):
    """Elementwise PReLU with one learned slope per dimension, alpha = min_alpha + softplus(raw) > 0."""

    def __init__(self, min_alpha=0.01, initial_alpha=0.9, **kwargs):
        super().__init__(**kwargs)
        if not 0 < min_alpha < initial_alpha:
            raise ValueError(f"`min_alpha` and `initial_alpha` must satisfy 0 < min_alpha < initial_alpha; "
                             f"received {min_alpha!r} and {initial_alpha!r}")
        self.min_alpha, self.initial_alpha = min_alpha, initial_alpha

    def build(self, input_shape):
        self.raw_alpha = self.add_weight(
            name="raw_alpha", shape=(int(input_shape[-1]),),
            initializer=keras.initializers.Constant(_softplus_inverse(self.initial_alpha - self.min_alpha)))
        self.built = True

    def alpha(self):
        return self.min_alpha + tf.math.softplus(self.raw_alpha.value)

    def bijector(self):
        return tfp_flows.PReLU(alpha=self.alpha())


@keras.saving.register_keras_serializable(package="tfp_flows")
class PReLUFlow(FlowModel):
    """`num_layers` lower-triangular affine maps with learned PReLUs between them (module docstring).

    Event shape: (D,) (the tutorial uses D = 2).

    Args:
      event_shape: (D,).
      num_layers: number of affine maps K (default 6); there are K - 1 PReLUs between them.
      min_alpha: floor of every PReLU slope (default 0.01, the tutorial's |alpha| + 0.01).
      initial_alpha: starting slope (default 0.9: close to linear, so fit starts near the Gaussian solution).
      reverse_dimensions: reverse the dimensions between layers (default True; False is the plain tutorial).
      data_init: a data-side ActNorm initialised from the first batch of `fit` (default True).
      **kwargs: `FlowModel` arguments (base_distribution, name, dtype="float64" for double precision).
    """

    def __init__(self, event_shape=(2,), num_layers=6, min_alpha=0.01, initial_alpha=0.9, reverse_dimensions=True,
                 data_init=True, **kwargs):
        super().__init__(event_shape, **kwargs)
        if len(self.event_shape) != 1:
            raise ValueError(f"`event_shape` must be (D,) for PReLUFlow; received {self.event_shape}")
        if not isinstance(num_layers, (int, np.integer)) or num_layers < 1:
            raise ValueError(f"`num_layers` must be a positive int; received {num_layers!r}")
        self.num_layers, self.min_alpha, self.initial_alpha = int(num_layers), min_alpha, initial_alpha
        self.reverse_dimensions = bool(reverse_dimensions)
        size = self.event_shape[0]
        latent_side_first = []
        for i in range(self.num_layers):
            if i:
                latent_side_first.append(PReLULayer(min_alpha, initial_alpha, dtype=self.dtype_policy,
                                                    name=f"prelu_{i}"))
                if self.reverse_dimensions and size > 1:
                    latent_side_first.append(PermuteLayer(np.arange(size)[::-1], dtype=self.dtype_policy,
                                                          name=f"reverse_{i}"))
            latent_side_first.append(LowerTriangularAffineLayer(dtype=self.dtype_policy, name=f"affine_{i}"))
        self.data_init = bool(data_init)
        if self.data_init:
            latent_side_first.append(ActNormLayer(dtype=self.dtype_policy, name="data_scaling"))
        self._set_flow_layers(latent_side_first[::-1])

    def get_config(self):
        config = super().get_config()
        config.update(num_layers=self.num_layers, min_alpha=self.min_alpha, initial_alpha=self.initial_alpha,
                      reverse_dimensions=self.reverse_dimensions, data_init=self.data_init)
        return config
