"""`OnePassBijector`: a base for bijectors whose output and log-det come from one evaluation.

TFP evaluates `inverse(y)` and `inverse_log_det_jacobian(y)` through separate methods; for a coupling (or a
whole multi-scale level) that would run every conditioner twice in `log_prob`. Subclasses implement
`_forward_and_log_det(x, **kwargs) -> (y, fldj)` and `_inverse_and_log_det(y, **kwargs) -> (x, ildj)`; the
log-det is stored as an attribute of the forward/inverse call in TFP's cache (as TFP's own FFJORD does), so the
log-det methods reuse it when called on the same tensor with the same keyword arguments (TFP keys its cache on
them: a conditional bijector's `conditional_input`, `tfp_flows.conditioning`). The cache and the per-instance
identity (instances never share TFP's cache) come from `tfp_flows.instance_cache.OnePassCache`.
"""

from typing import Any

import tensorflow as tf
from tensorflow_probability import bijectors as tfb

from tfp_flows.instance_cache import OnePassCache

__all__ = ["OnePassBijector"]


class OnePassBijector(OnePassCache, tfb.Bijector):
    """Implements TFP's four transformation methods from `_forward_and_log_det` / `_inverse_and_log_det`."""

    def _forward_and_log_det(self, x: tf.Tensor, **kwargs: Any) -> tuple[tf.Tensor, tf.Tensor]:
        raise NotImplementedError

    def _inverse_and_log_det(self, y: tf.Tensor, **kwargs: Any) -> tuple[tf.Tensor, tf.Tensor]:
        raise NotImplementedError

    def _augmented_forward(self, x: tf.Tensor, **kwargs: Any) -> tuple[tf.Tensor, dict[str, tf.Tensor] | None]:
        y, fldj = self._forward_and_log_det(x, **kwargs)
        return y, {"ildj": -fldj}

    def _augmented_inverse(self, y: tf.Tensor, **kwargs: Any) -> tuple[tf.Tensor, dict[str, tf.Tensor] | None]:
        x, ildj = self._inverse_and_log_det(y, **kwargs)
        return x, {"ildj": ildj}

    def _forward(self, x: tf.Tensor, **kwargs: Any) -> tf.Tensor:
        return self._augmented_forward(x, **kwargs)[0]

    def _inverse(self, y: tf.Tensor, **kwargs: Any) -> tf.Tensor:
        return self._augmented_inverse(y, **kwargs)[0]

    def _forward_log_det_jacobian(self, x: tf.Tensor, **kwargs: Any) -> tf.Tensor:
        return self._cached_fldj(x, **kwargs)

    def _inverse_log_det_jacobian(self, y: tf.Tensor, **kwargs: Any) -> tf.Tensor:
        return self._cached_ildj(y, **kwargs)
