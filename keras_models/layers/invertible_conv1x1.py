"""`InvertibleConv1x1Layer`: owns Glow's LU-parametrised 1x1 convolution (Kingma & Dhariwal 2018, sec. 3.2).

W = P L (U + diag(sign * exp(log_abs_diag))): the permutation P and the signs are fixed at a random rotation's
LU decomposition; L (unit lower), U (strict upper) and log|diag| train. Storing the diagonal as sign and log-abs
keeps W invertible and makes log|det W| = sum(log_abs_diag) exact and cheap.

`weight_scale` s stores L and U's off-diagonal entries as raw weights w with L = I + s * w_lower (likewise U), so
an optimizer step of a given size on w moves W by s times as much. Adam moves every entry by about the learning
rate at once, with signs that form a nearly rank-one pattern, so one step changes a C x C matrix by about C times
the learning rate in spectral norm: Glow's channel counts (C <= 48) take that, a 784-dimensional vector mixing
does not (NaN within a dozen steps at 1e-3). s = 1 / C keeps the change per step of the order of the learning
rate whatever C (the 1 / fan-in learning rate of maximal-update parametrisation for Adam, Yang et al. 2022,
"Tensor Programs V", table 3).
"""

import random

import keras
import numpy as np
import tensorflow as tf

import tfp_flows
from keras_models.core.bijector_layer import BijectorLayer


def _random_rotation_lu(channels, seed):
    if seed is None:
        # Drawn from Python's `random`, as Keras' own initialisers draw their default seeds (make_default_seed), so
        # `keras.utils.set_random_seed` makes an unseeded model's rotations the same in every process.
        seed = random.randint(1, 10**9)
    rng = np.random.default_rng(seed)
    rotation, _ = np.linalg.qr(rng.normal(size=(channels, channels)))
    lower_upper, permutation = tf.linalg.lu(tf.constant(rotation, tf.float64))
    return lower_upper.numpy(), permutation.numpy()


class InvertibleConv1x1Layer(BijectorLayer):
    """Glow's invertible 1x1 convolution over the last axis, for [C] or [H, W, C] events."""

    def __init__(self, seed=None, weight_scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.weight_scale = float(weight_scale)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        lower_upper, permutation = _random_rotation_lu(channels, self.seed)
        diag = np.diag(lower_upper)
        self.lower = self.add_weight(
            name="lower",
            shape=(channels, channels),
            initializer=keras.initializers.Constant(np.tril(lower_upper, -1) / self.weight_scale),
        )
        self.upper = self.add_weight(
            name="upper",
            shape=(channels, channels),
            initializer=keras.initializers.Constant(np.triu(lower_upper, 1) / self.weight_scale),
        )
        self.log_abs_diag = self.add_weight(
            name="log_abs_diag", shape=(channels,), initializer=keras.initializers.Constant(np.log(np.abs(diag)))
        )
        self.sign_diag = self.add_weight(
            name="sign_diag", shape=(channels,), trainable=False, initializer=keras.initializers.Constant(np.sign(diag))
        )
        self.permutation = self.add_weight(
            name="permutation",
            shape=(channels,),
            dtype="int32",
            trainable=False,
            initializer=keras.initializers.Constant(permutation),
        )
        self.built = True

    def lower_upper(self):
        """The packed LU matrix in `tfb.ScaleMatvecLU`'s convention, assembled from the trained factors."""
        diag = self.sign_diag.value * tf.exp(self.log_abs_diag.value)
        off_diagonal = (
            tf.linalg.band_part(self.lower.value, -1, 0)
            - tf.linalg.band_part(self.lower.value, 0, 0)
            + tf.linalg.band_part(self.upper.value, 0, -1)
            - tf.linalg.band_part(self.upper.value, 0, 0)
        )
        return tf.cast(self.weight_scale, off_diagonal.dtype) * off_diagonal + tf.linalg.diag(diag)

    def bijector(self):
        return tfp_flows.InvertibleConv1x1(lower_upper=self.lower_upper(), permutation=self.permutation.value)
