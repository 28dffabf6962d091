"""`MixtureCouplingLayer`: owns a conditioner and builds Flow++'s logistic-mixture coupling from it per call.

Flow++ coupling (Ho et al. 2019, eq. (4)), in the density direction (data x -> latent z) on mask = 0:

    z = exp(a) * logit(MixLogCDF(x; pi, mu, s)) + b,   MixLogCDF(x) = sum_k pi_k sigmoid((x - mu_k) exp(-s_k))

with (a, b, logits(pi), mu, log s) = conditioner(x * mask). The inverse (sampling) is a bracketed root solve
inside `tfp_flows.LogisticMixtureCoupling`. Event shape: the mask's ([D] or [H, W, C]).

Example:
    >>> import tensorflow as tf
    >>> from tfp_flows import masks
    >>> from keras_models.layers import mlp
    >>> layer = MixtureCouplingLayer(masks.half(2), lambda units: mlp((8,), units), num_components=3)
    >>> layer.build((None, 2))
    >>> layer.bijector().inverse(tf.constant([[0.1, -0.3]])).numpy().round(4)   # the identity at initialisation
    array([[ 0.1, -0.3]], dtype=float32)
"""

import tfp_flows
from keras_models.layers.coupling import CouplingLayer
from tfp_flows.validation import check_int


class MixtureCouplingLayer(CouplingLayer):
    """Flow++ logistic-mixture coupling with a Keras-owned conditioner network.

    Args:
      mask: 0/1 array of the event shape (1 = pass through and condition, 0 = transform).
      network_fn: `network_fn(output_channels) -> keras layer`; the network maps the pass-through block
        ([N, *pass_shape]) to [N, *trans_shape[:-1], output_channels], with output_channels =
        trans_channels * (2 + 3 K). Its last layer should start at zero so the coupling starts near the identity.
      num_components: K, the number of logistic components per transformed entry.

    The conditioner's raw outputs are passed on as (a, b, logits, locs, log_scales); the bounds that keep the
    coupling well conditioned (a = tanh(a_raw), log-scales floored at -7, as in the Flow++ code) are applied by
    `tfp_flows.LogisticMixtureCoupling`.
    """

    def __init__(self, mask, network_fn, num_components, **kwargs):
        k = check_int(num_components, "num_components")
        super().__init__(mask, network_fn, param_trailing_shapes=((), (), (k,), (k,), (k,)), **kwargs)
        self.num_components = k

    def bijector(self):
        # The conditioner itself, so the bijector sees its `block_split` (pass-through block in, for half masks).
        return tfp_flows.LogisticMixtureCoupling(self.mask, self.conditioner, num_components=self.num_components)
