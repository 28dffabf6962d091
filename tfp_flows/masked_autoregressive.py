"""`OnePassMaskedAutoregressiveFlow`: TFP's `tfb.MaskedAutoregressiveFlow` with a one-pass density direction.

One MAF step (Papamakarios, Pavlakou & Murray 2017; Germain et al. 2015 for the MADE network):
    y_d = x_d exp(s_d(y_{<d})) + t_d(y_{<d}),        (t, s) = shift_and_log_scale_fn(y)
    inverse:  x = (y - t(y)) exp(-s(y)),              ildj(y) = -sum_d s_d(y)
Both the inverse and its log-det come from the same network output. TFP's class computes them in two methods
that each call the network (masked_autoregressive.py, `_inverse` and `_inverse_log_det_jacobian`), so
`log_prob` runs it twice per step. This subclass runs it once: the inverse stores its log-det as an attribute
of the (y, x) pair in TFP's cache (`tfp_flows.instance_cache.OnePassCache`, as `tfp_flows.one_pass` and TFP's
FFJORD do), and `inverse_log_det_jacobian` of the same tensor reads it back: `log_prob` asks for the inverse first,
then the log-det, and pays one pass. On a cache miss (a fresh tensor, or the log-det asked first) the log-det
runs a pass of its own. Values are those of `tfb.MaskedAutoregressiveFlow` exactly: the same `bijector_fn`
(Shift then Scale) computes them.

The forward (sampling) direction is TFP's own: D sequential network passes. Its log-det, as in TFP, is
-ildj(y) at the output y, which costs one more pass.

Context: `conditional_input=c` (any method) reaches the network as TFP's MAF hands it,
`shift_and_log_scale_fn(y, conditional_input=c)` (a conditional `tfb.AutoregressiveNetwork` or
`keras_models.layers.MADE(context_shape=...)`); TFP's cache keys on it, so `log_prob` still runs one pass per step.

Instances never share TFP's cache with other instances (`OnePassCache` keys it by the instance's id): Keras
layers rebuild the bijector around the same network on every call, and a cache hit across traced graphs
would hand back a tensor from a dead graph (docs/design.md#tfp-shares-its-cache-between-equal-bijectors).

Example:
    >>> import tensorflow as tf, tensorflow_probability as tfp
    >>> from tfp_flows import OnePassMaskedAutoregressiveFlow
    >>> made = tfp.bijectors.AutoregressiveNetwork(params=2, hidden_units=[16])   # or keras_models.layers.MADE
    >>> maf = OnePassMaskedAutoregressiveFlow(shift_and_log_scale_fn=made)
    >>> y = tf.random.normal([4, 3])
    >>> x, ildj = maf.inverse(y), maf.inverse_log_det_jacobian(y, event_ndims=1)   # one pass of `made`
    >>> x.shape, ildj.shape
    (TensorShape([4, 3]), TensorShape([4]))
"""

from typing import Any

import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows.conditioning import ConditionalBijector
from tfp_flows.instance_cache import OnePassCache

__all__ = ["OnePassMaskedAutoregressiveFlow"]


class OnePassMaskedAutoregressiveFlow(ConditionalBijector, OnePassCache, tfp.bijectors.MaskedAutoregressiveFlow):
    """`tfb.MaskedAutoregressiveFlow` (same arguments) whose inverse and its log-det share one network pass."""

    def _augmented_forward(self, x: tf.Tensor, **kwargs: Any) -> tuple[tf.Tensor, dict[str, tf.Tensor] | None]:
        return super()._forward(x, **kwargs), None  # TFP's D-pass loop; no log-det comes out of it

    def _augmented_inverse(self, y: tf.Tensor, **kwargs: Any) -> tuple[tf.Tensor, dict[str, tf.Tensor] | None]:
        bijector = self._bijector_fn(y, **kwargs)  # the one network pass
        x = bijector.inverse(y)
        return x, {"ildj": bijector.inverse_log_det_jacobian(y, event_ndims=self._event_ndims)}

    def _inverse(self, y: tf.Tensor, **kwargs: Any) -> tf.Tensor:
        return self._augmented_inverse(y, **kwargs)[0]

    def _inverse_log_det_jacobian(self, y: tf.Tensor, **kwargs: Any) -> tf.Tensor:
        # Reached only when the cache holds no log-det for `y`: a fresh tensor, the log-det asked before the
        # inverse, or `y` the output of `forward(x)` (whose loop gives none). One pass; its x is not kept (TFP's
        # cache holds an entry only while its output tensor lives), so `inverse(y)` asked later runs another.
        return self._cached_ildj(y, **kwargs)
