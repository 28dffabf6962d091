"""`RationalQuadraticCouplingLayer`: owns a conditioner and builds `tfp_flows.RationalQuadraticCoupling` per call.

Neural spline coupling (Durkan et al. 2019, sec. 3.1): on mask = 0, a K-bin rational-quadratic spline on
[-B, B] (the identity outside) whose raw widths, heights and interior derivatives come from the conditioner;
formulas in `tfp_flows.rational_quadratic_coupling`. Event shape: the mask's ([D] or [H, W, C]).

Initialisation at the identity: the conditioner's last layer starts at zero, so widths and heights are uniform
(zero logits); a spline with uniform bins is the identity only where its knot derivatives are 1, so the raw
derivatives are offset by softplus^{-1}(1 - min_derivative) (`tfp_flows.rational_quadratic_coupling.
identity_raw_derivative`, as nflows pads its tails) before the bijector sees them.

Example:
    >>> import tensorflow as tf
    >>> from tfp_flows import masks
    >>> from keras_models.layers import mlp
    >>> layer = RationalQuadraticCouplingLayer(masks.half(2), lambda units: mlp((8,), units), num_bins=4)
    >>> layer.build((None, 2))
    >>> layer.bijector().inverse(tf.constant([[0.1, -0.3]])).numpy().round(4)   # the identity at initialisation
    array([[ 0.1, -0.3]], dtype=float32)
"""

import tensorflow as tf

import tfp_flows
from keras_models.layers.coupling import CouplingLayer
from tfp_flows.rational_quadratic_coupling import SplineSettings, identity_raw_derivative


class IdentityAtZero:
    """The conditioner, with the raw derivatives offset so that all-zero network outputs give the identity.

    Keeps the wrapped conditioner's `block_split` (half and channel masks still hand it the pass-through block)
    and passes keyword arguments (a conditional input) through.
    """

    def __init__(self, conditioner, offset):
        self.conditioner, self.offset = conditioner, offset

    @property
    def block_split(self):
        return getattr(self.conditioner, "block_split", None)

    def __call__(self, x, **kwargs):
        widths, heights, derivatives = self.conditioner(x, **kwargs)
        return widths, heights, derivatives + tf.constant(self.offset, derivatives.dtype)


class RationalQuadraticCouplingLayer(CouplingLayer):
    """Neural spline coupling with a Keras-owned conditioner network.

    Args:
      mask: 0/1 array of the event shape (1 = pass through and condition, 0 = transform).
      network_fn: `network_fn(output_channels) -> keras layer` mapping the pass-through block to
        [N, *trans_shape[:-1], output_channels], output_channels = trans_channels * (3 K - 1); its last layer
        should start at zero (then the coupling starts as the identity, module docstring).
      num_bins: K >= 2 (default 8). bound: B > 0 (default 3.0). min_bin_width, min_bin_height,
        min_derivative: the spline's floors (default 1e-3), as in `tfp_flows.RationalQuadraticCoupling`.
    """

    def __init__(
        self,
        mask,
        network_fn,
        num_bins=8,
        bound=3.0,
        min_bin_width=1e-3,
        min_bin_height=1e-3,
        min_derivative=1e-3,
        **kwargs,
    ):
        settings = SplineSettings(
            num_bins, bound, min_bin_width, min_bin_height, min_derivative, owner=type(self).__name__
        )
        k = settings.num_bins
        super().__init__(mask, network_fn, param_trailing_shapes=((k,), (k,), (k - 1,)), **kwargs)
        self.num_bins, self.bound = k, settings.bound
        self.min_bin_width, self.min_bin_height = settings.min_bin_width, settings.min_bin_height
        self.min_derivative = settings.min_derivative

    def bijector(self):
        return tfp_flows.RationalQuadraticCoupling(
            self.mask,
            IdentityAtZero(self.conditioner, identity_raw_derivative(self.min_derivative)),
            num_bins=self.num_bins,
            bound=self.bound,
            min_bin_width=self.min_bin_width,
            min_bin_height=self.min_bin_height,
            min_derivative=self.min_derivative,
        )
