"""`VelocityField`: the time-conditioned MLP v(x, t[, c]) of a continuous flow (`keras_models.flows.cnf.CNF`).

The network reads x, the time features and the flattened context, concatenated:

    features(t) = [t, sin(pi k t), cos(pi k t) for k = 1..K]        (K = `num_frequencies`)
    v(x, t, c) = MLP([x, features(t), c])

Sinusoidal time features let a small MLP change its field quickly in t (the Fourier features of Tancik et al.
2020; the sinusoidal time embeddings of flow-matching and diffusion models, Lipman et al. 2023, App. E). The last
layer starts at zero (`mlp`), so a fresh field is v = 0 and the flow the identity. Hidden layers use a smooth
activation by default ("silu"): the ODE solver and the trace of dv/dx need a field that is smooth in x.
"""

import keras
import numpy as np
import tensorflow as tf

from keras_models.layers.networks.conditioners import checked_context_shape, mlp
from tfp_flows.validation import check_int, check_positive_ints


@keras.saving.register_keras_serializable(package="tfp_flows")
class VelocityField(keras.layers.Layer):
    """v(x, t[, c]) for vectors x [batch, D], time t (a scalar or [batch]) and contexts c [batch, *context_shape].

    Args:
      event_size: D, the size of x and of v.
      hidden_units: widths of the MLP's hidden layers.
      activation: their activation (default "silu").
      num_frequencies: K, the number of sine/cosine pairs of the time features (default 4; 0: t alone).
      context_shape: None (unconditional) or the shape of one context c, flattened into the input.
    """

    def __init__(
        self, event_size, hidden_units=(64, 64), activation="silu", num_frequencies=4, context_shape=None, **kwargs
    ):
        super().__init__(**kwargs)
        self.event_size = check_int(event_size, "event_size", owner="VelocityField")
        self.hidden_units = check_positive_ints(hidden_units, "hidden_units", owner="VelocityField")
        self.activation = activation
        self.num_frequencies = check_int(num_frequencies, "num_frequencies", minimum=0, owner="VelocityField")
        self.context_shape = checked_context_shape(context_shape, "VelocityField")
        self.context_size = 0 if self.context_shape is None else int(np.prod(self.context_shape))
        self.network = mlp(self.hidden_units, self.event_size, activation=activation, dtype=self.dtype_policy)

    @property
    def input_size(self):
        return self.event_size + 1 + 2 * self.num_frequencies + self.context_size

    def build(self, input_shape=None):
        del input_shape
        self.network.build((None, self.input_size))
        self.built = True

    def time_features(self, t, batch_size):
        """[batch, 1 + 2K] features of t (a scalar or one time per example)."""
        t = tf.reshape(tf.cast(t, self.compute_dtype), [-1, 1])
        t = tf.broadcast_to(t, [batch_size, 1])
        if not self.num_frequencies:
            return t
        angles = t * tf.constant(np.pi * np.arange(1, self.num_frequencies + 1), self.compute_dtype)
        return tf.concat([t, tf.sin(angles), tf.cos(angles)], axis=-1)

    def call(self, x, t, c=None):
        x = tf.cast(x, self.compute_dtype)
        batch_size = tf.shape(x)[0]
        parts = [x, self.time_features(t, batch_size)]
        if self.context_shape is not None:
            if c is None:
                raise ValueError(
                    f"VelocityField: this field is conditional (context_shape={self.context_shape}) and needs `c`; "
                    "received None"
                )
            parts.append(tf.reshape(tf.cast(c, self.compute_dtype), [batch_size, self.context_size]))
        elif c is not None:
            raise ValueError("VelocityField: `c` was given but this field is unconditional; expected c=None")
        return self.network(tf.concat(parts, axis=-1))

    def get_config(self):
        config = super().get_config()
        config.update(
            event_size=self.event_size,
            hidden_units=list(self.hidden_units),
            activation=self.activation,
            num_frequencies=self.num_frequencies,
            context_shape=None if self.context_shape is None else list(self.context_shape),
        )
        return config
