"""`OnePassBijector`: a base for bijectors whose output and log-det come from one evaluation.

TFP evaluates `inverse(y)` and `inverse_log_det_jacobian(y)` through separate methods; for a coupling (or a
whole multi-scale level) that would run every conditioner twice in `log_prob`. Subclasses implement
`_forward_and_log_det(x) -> (y, fldj)` and `_inverse_and_log_det(y) -> (x, ildj)`; the log-det is stored as
an attribute of the forward/inverse call in TFP's cache (as TFP's own FFJORD does), so the log-det methods
reuse it when called on the same tensor.

Instances never share TFP's cache with other instances: Keras layers rebuild bijectors from the same Python
callables on every call, and a cache hit across traced graphs would return a tensor from a dead graph.
"""
from tensorflow_probability import bijectors as tfb
from tensorflow_probability.python.internal import cache_util

__all__ = ["OnePassBijector"]


class OnePassBijector(tfb.Bijector):
    """Implements TFP's four transformation methods from `_forward_and_log_det` / `_inverse_and_log_det`."""

    _cache = cache_util.BijectorCacheWithGreedyAttrs(
        forward_name="_augmented_forward", inverse_name="_augmented_inverse")

    def _get_parameterization(self):
        return id(self)

    def _forward_and_log_det(self, x):
        raise NotImplementedError

    def _inverse_and_log_det(self, y):
        raise NotImplementedError

    def _augmented_forward(self, x):
        y, fldj = self._forward_and_log_det(x)
        return y, {"ildj": -fldj}

    def _augmented_inverse(self, y):
        x, ildj = self._inverse_and_log_det(y)
        return x, {"ildj": ildj}

    def _forward(self, x):
        return self._augmented_forward(x)[0]

    def _inverse(self, y):
        return self._augmented_inverse(y)[0]

    def _forward_log_det_jacobian(self, x):
        attrs = self._cache.forward_attributes(x)
        if "ildj" not in attrs:
            attrs.update(self._augmented_forward(x)[1])
        return -attrs["ildj"]

    def _inverse_log_det_jacobian(self, y):
        attrs = self._cache.inverse_attributes(y)
        if "ildj" not in attrs:
            attrs.update(self._augmented_inverse(y)[1])
        return attrs["ildj"]
