"""`AutoregressiveSplineLayer`: owns a MADE with 3K - 1 outputs per dimension and builds
`tfp_flows.MaskedAutoregressiveSpline` (Durkan et al. 2019, RQ-NSF (AR)) from it per call.

Density (data y -> latent x): one MADE pass; sampling: D passes (TFP's MaskedAutoregressiveFlow loop).
Initialisation at the identity: the MADE's last layer starts at zero (uniform bins), and the raw derivatives
are offset by softplus^{-1}(1 - min_derivative) so the knot derivatives start at 1
(`tfp_flows.rational_quadratic_coupling.identity_raw_derivative`).

Example:
    >>> import tensorflow as tf
    >>> layer = AutoregressiveSplineLayer(hidden_units=(16,), num_bins=4)
    >>> layer.build((None, 3))
    >>> layer.bijector().inverse(tf.constant([[0.1, -0.3, 2.0]])).numpy().round(4)   # the identity at first
    array([[ 0.1, -0.3,  2. ]], dtype=float32)
"""

import keras
import numpy as np
import tensorflow as tf

from keras_models.layers.masked_autoregressive import MADEStepLayer
from keras_models.layers.networks.made import MADE, made_degrees, made_masks
from tfp_flows.autoregressive_spline import MaskedAutoregressiveSpline
from tfp_flows.rational_quadratic_coupling import SplineSettings, identity_raw_derivative
from tfp_flows.validation import check_int


@keras.saving.register_keras_serializable(package="tfp_flows")
class SplineMADE(MADE):
    """`MADE` with `num_params` outputs per dimension: x [..., D] -> theta [..., D, num_params], theta[..., d, :]
    a function of x_1..x_{d-1} only (unit index num_params * d + p, TFP's `params` layout); last layer at zero.

    (MADE itself returns exactly two outputs per dimension, shift and log-scale; this subclass only widens the
    output mask and the final reshape.)
    """

    def __init__(
        self, event_size, num_params, hidden_units=(256, 256), activation="relu", context_shape=None, **kwargs
    ):
        kwargs.pop("log_scale_limit", None)
        super().__init__(
            event_size, hidden_units, activation, log_scale_limit=None, context_shape=context_shape, **kwargs
        )
        self.num_params = check_int(num_params, "num_params")
        masks = made_masks(made_degrees(self.event_size, self.hidden_units))
        masks[-1] = np.repeat(masks[-1], self.num_params, axis=1)
        self.masks = masks

    def call(self, x, conditional_input=None):
        return self.raw_outputs(x, conditional_input)

    def get_config(self):
        config = super().get_config()
        config.update(num_params=self.num_params)
        return config


class _Offset:
    """The MADE with `offset` added to its raw outputs (the identity at initialisation); it keeps the MADE's
    `context_shape`, which tells `tfp_flows.conditioning` that the step takes a context."""

    def __init__(self, made, offset):
        self.made, self.offset = made, offset

    @property
    def context_shape(self):
        return self.made.context_shape

    def __call__(self, y, **kwargs):
        theta = self.made(y, **kwargs)
        return theta + tf.constant(self.offset, theta.dtype)


class AutoregressiveSplineLayer(MADEStepLayer):
    """Owns one `SplineMADE`; its bijector is `tfp_flows.MaskedAutoregressiveSpline` (vectors, event shape [D]).

    Args:
      hidden_units: MADE hidden widths. activation: MADE hidden activation (default "relu").
      num_bins: K >= 2 (default 8). bound: B > 0 (default 3.0). min_bin_width, min_bin_height, min_derivative:
        the spline's floors (default 1e-3).
    """

    def __init__(
        self,
        hidden_units,
        num_bins=8,
        bound=3.0,
        activation="relu",
        min_bin_width=1e-3,
        min_bin_height=1e-3,
        min_derivative=1e-3,
        context_shape=None,
        **kwargs,
    ):
        super().__init__(hidden_units, activation, context_shape, **kwargs)
        settings = SplineSettings(
            num_bins, bound, min_bin_width, min_bin_height, min_derivative, owner=type(self).__name__
        )
        self.num_bins, self.bound = settings.num_bins, settings.bound
        self.min_bin_width, self.min_bin_height = settings.min_bin_width, settings.min_bin_height
        self.min_derivative = settings.min_derivative
        k = self.num_bins
        # Added to the raw parameters: zero on widths and heights, the identity offset on the K - 1 derivatives.
        self._offset = np.concatenate([np.zeros(2 * k), np.full(k - 1, identity_raw_derivative(self.min_derivative))])

    def _new_made(self, event_size, **network_args):
        return SplineMADE(event_size, 3 * self.num_bins - 1, **network_args)

    def bijector(self):
        return MaskedAutoregressiveSpline(
            _Offset(self.made, self._offset),
            num_bins=self.num_bins,
            bound=self.bound,
            min_bin_width=self.min_bin_width,
            min_bin_height=self.min_bin_height,
            min_derivative=self.min_derivative,
            name="autoregressive_spline",
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            hidden_units=list(self.hidden_units),
            num_bins=self.num_bins,
            bound=self.bound,
            activation=self.activation,
            min_bin_width=self.min_bin_width,
            min_bin_height=self.min_bin_height,
            min_derivative=self.min_derivative,
            context_shape=None if self.context_shape is None else list(self.context_shape),
        )
        return config
