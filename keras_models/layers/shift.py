"""`ShiftLayer`: a constant shift as a preprocessing step, e.g. Glow's centring of [0, 1] images, x - 0.5.

Density direction (data -> latent): z = x + shift; forward (latent -> data): x = z - shift. A shift has unit
Jacobian (log|det| = 0), so log-likelihoods and bits/dim are unchanged by it and need no correction.

Example:
    >>> import tensorflow as tf
    >>> from keras_models.layers.shift import ShiftLayer
    >>> layer = ShiftLayer(-0.5)
    >>> layer.build((None, 2))
    >>> layer(tf.constant([[0.0, 1.0]])).numpy()     # data -> latent
    array([[-0.5,  0.5]], dtype=float32)
"""

import math

import tensorflow as tf
import tensorflow_probability as tfp

from keras_models.core.bijector_layer import BijectorLayer
from tfp_flows.validation import is_real

tfb = tfp.bijectors


class ShiftLayer(BijectorLayer):
    """Adds the constant `shift` on the way to the latent side (no weights)."""

    def __init__(self, shift, **kwargs):
        super().__init__(**kwargs)
        if not is_real(shift) or not math.isfinite(shift):
            raise ValueError(f"ShiftLayer: `shift` must be a finite number; received {shift!r}")
        self.shift = float(shift)

    def build(self, input_shape):
        self.built = True

    def bijector(self):
        # The bijector's forward is latent -> data, so it subtracts. A tensor made here (not a Python float):
        # TFP shares its cache between bijectors with equal Python parameters, across traced graphs.
        return tfb.Shift(tf.constant(-self.shift, dtype=self.compute_dtype))
