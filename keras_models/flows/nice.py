"""`NICE`: additive couplings and a diagonal scaling (Dinh, Krueger & Bengio 2015, "NICE: Non-linear
Independent Components Estimation").

Density direction (data x -> latent h), for vectors of D entries:

    couplings k = 1..K, alternating half masks (the pass-through half alternates so every entry moves):
        x_pass' = x_pass,   x_trans' = x_trans + m_k(x_pass)              (eq. 5; log-det 0)
    diagonal scaling (sec. 3.3):
        h = exp(S) * x'                                                    (log-det sum_i S_i)
    log p(x) = sum_i log p_H(h_i) + sum_i S_i,  p_H the standard logistic (sec. 3.4) or normal.

The couplings are volume preserving, so the scaling is the only place the model can contract or expand space;
NICE reads exp(-S_i) as the importance of latent dimension i.

Every m_k is a ReLU MLP with Keras' default (Glorot) initialisation throughout, its last layer included, as a
plain TFP build has it: additive couplings cannot overflow, so they need not start as the identity (Glow's
zero-initialised last layer, which the affine couplings keep). Started as random shifts, NICE fit the held-out
2-D densities of benchmarks/vs_plain_tfp.py better (turned spiral 1.32 against 1.42 nats, heavy-tailed banana
0.21 against 0.34, medians of 3 seeds) at a small cost on 8- to 784-D data (8-D ICA 0.89 against 0.79 nats,
64-D digits 5.76 against 5.72, 784-D MNIST 4.24 against 4.15 bits/dim), still ahead of plain TFP on each of
those (benchmarks/README.md, "NICE's initialisation and ActNorm").

Example:
    >>> import numpy as np, tensorflow as tf
    >>> from keras_models import NICE
    >>> points = np.random.default_rng(0).normal(size=(256, 2)).astype("float32")
    >>> model = NICE(event_shape=(2,), num_couplings=4, hidden_units=(64, 64))
    >>> model.compile(optimizer="adam")
    >>> history = model.fit(tf.data.Dataset.from_tensor_slices(points).batch(64), epochs=1, verbose=0)
    >>> model.sample(3, seed=0).shape
    TensorShape([3, 2])
"""

import keras

from keras_models.core.flow_model import FlowModel
from keras_models.layers import ActNormLayer, AdditiveCouplingLayer, DiagonalScaleLayer, mlp
from keras_models.layers.actnorm import resolve_actnorm
from tfp_flows import masks
from tfp_flows.validation import check_int, check_positive_ints, check_vector_event_shape

VECTOR_EVENT_HINT = "flatten images to (H * W * C,) first, as NICE did on MNIST"


@keras.saving.register_keras_serializable(package="tfp_flows")
class NICE(FlowModel):
    """NICE for vector data: `num_couplings` additive couplings, then NICE's diagonal scaling.

    Args:
      event_shape: (D,), D >= 2. (NICE flattens images; so must the data pipeline.)
      num_couplings: number of additive couplings K (the paper uses 4).
      hidden_units: widths of each coupling's ReLU MLP m_k. Default (512, 512); the paper used five hidden
        layers of 1000 units on MNIST: `hidden_units=(1000,) * 5`.
      activation: hidden activation of the MLPs (the paper: ReLU).
      base_distribution: "logistic" (the paper's choice, sec. 3.4), "normal", or any base `FlowModel` takes ("gmm",
        a `BaseDistribution` layer, a `tfd.Distribution` over the latent).
      num_bits: for data preprocessed from `num_bits`-bit integers to [0, 1], reports `bits_per_dim`.
      actnorm: put one data-initialised ActNorm (per-dimension shift and scale, Glow sec. 3.1) at the data side,
        before the first coupling. "auto" (default) and True: on; False: the paper's model exactly. The
        couplings only shift, so without it the model centres each dimension through the conditioners' biases,
        which Adam moves by about the learning rate per step: logit-space pixels sitting near -2.9 take
        thousands of steps to reach the base's centre. The ActNorm starts there (benchmarks/README.md, "ActNorm
        before the couplings of vector presets": 784-D MNIST vectors and 64-D digits at equal steps).
      **kwargs: `keras.Model` arguments, e.g. `name`, `dtype="float64"` (reaches every sub-layer).

    Event shape: (D,) in, (D,) latent. Masks alternate `tfp_flows.masks.half(D, parity=k % 2)`.
    """

    def __init__(
        self,
        event_shape,
        num_couplings=4,
        hidden_units=(512, 512),
        activation="relu",
        base_distribution="logistic",
        num_bits=None,
        actnorm="auto",
        **kwargs,
    ):
        event_shape = check_vector_event_shape(event_shape, "NICE", hint=VECTOR_EVENT_HINT)
        num_couplings = check_int(num_couplings, "num_couplings")
        hidden_units = check_positive_ints(hidden_units, "hidden_units")
        super().__init__(event_shape, base_distribution=base_distribution, num_bits=num_bits, **kwargs)
        self.num_couplings, self.hidden_units, self.activation = num_couplings, hidden_units, activation
        self.actnorm = resolve_actnorm(actnorm, "NICE", data_initialised=True)
        dtype = self.dtype_policy
        (size,) = event_shape

        def network_fn(output_units):
            return mlp(
                hidden_units, output_units, activation=activation, dtype=dtype, last_initializer="glorot_uniform"
            )

        couplings = [
            AdditiveCouplingLayer(
                masks.half(size, parity=k % 2), network_fn, dtype=dtype, name=f"additive_coupling_{k}"
            )
            for k in range(num_couplings)
        ]
        actnorms = [ActNormLayer(dtype=dtype, name="actnorm")] if self.actnorm else []
        self._set_flow_layers(actnorms + couplings + [DiagonalScaleLayer(dtype=dtype, name="diagonal_scale")])

    def get_config(self):
        config = super().get_config()
        config.update(
            num_couplings=self.num_couplings,
            hidden_units=list(self.hidden_units),
            activation=self.activation,
            actnorm=self.actnorm,
        )
        return config
