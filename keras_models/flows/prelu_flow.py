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
    >>> from tfp_flows.datasets import make_dataset
    >>> banana = make_dataset("prelu", split="train", batch_size=64).take(2)
    >>> model = PReLUFlow(event_shape=(2,), num_layers=6)
    >>> model.compile(optimizer="adam")
    >>> history = model.fit(banana, epochs=1, verbose=0)
    >>> model.sample(3, seed=0).shape
    TensorShape([3, 2])
"""

import keras
import numpy as np

from keras_models.core.flow_model import FlowModel
from keras_models.layers.actnorm import ActNormLayer
from keras_models.layers.permute import PermuteLayer
from keras_models.layers.prelu import PReLULayer
from keras_models.layers.scale_matvec_tril import LowerTriangularAffineLayer
from tfp_flows.validation import check_int


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

    def __init__(
        self,
        event_shape=(2,),
        num_layers=6,
        min_alpha=0.01,
        initial_alpha=0.9,
        reverse_dimensions=True,
        data_init=True,
        **kwargs,
    ):
        super().__init__(event_shape, **kwargs)
        if len(self.event_shape) != 1:
            raise ValueError(f"`event_shape` must be (D,) for PReLUFlow; received {self.event_shape}")
        self.num_layers = check_int(num_layers, "num_layers")
        self.min_alpha, self.initial_alpha = min_alpha, initial_alpha
        self.reverse_dimensions = bool(reverse_dimensions)
        size = self.event_shape[0]
        latent_side_first = []
        for i in range(self.num_layers):
            if i:
                latent_side_first.append(
                    PReLULayer(min_alpha, initial_alpha, dtype=self.dtype_policy, name=f"prelu_{i}")
                )
                if self.reverse_dimensions and size > 1:
                    latent_side_first.append(
                        PermuteLayer(np.arange(size)[::-1], dtype=self.dtype_policy, name=f"reverse_{i}")
                    )
            latent_side_first.append(LowerTriangularAffineLayer(dtype=self.dtype_policy, name=f"affine_{i}"))
        self.data_init = bool(data_init)
        if self.data_init:
            latent_side_first.append(ActNormLayer(dtype=self.dtype_policy, name="data_scaling"))
        self._set_flow_layers(latent_side_first[::-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            num_layers=self.num_layers,
            min_alpha=self.min_alpha,
            initial_alpha=self.initial_alpha,
            reverse_dimensions=self.reverse_dimensions,
            data_init=self.data_init,
        )
        return config
