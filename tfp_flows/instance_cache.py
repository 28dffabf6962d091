"""Per-instance identity in TFP's cache, and the one-pass log-det cache, owned in one place.

TFP keys its forward/inverse cache by `Bijector._get_parameterization()`, which is the instance's `parameters`
dict: two instances built with equal Python parameters share entries. Keras layers rebuild bijectors from the
same Python values (or the same network) on every call, and a cache hit across traced graphs hands back a
tensor from a dead graph (`InaccessibleTensorError`; docs/design.md#tfp-shares-its-cache-between-equal-bijectors).
`InstanceKeyedCache` keys entries by the instance's `id` instead; the entries hold the instance, so the id
cannot be reused while they live.

`OnePassCache` adds the cache TFP's own FFJORD uses (`cache_util.BijectorCacheWithGreedyAttrs`): the
transformation `_augmented_forward(x) -> (y, attrs)` / `_augmented_inverse(y) -> (x, attrs)` may return the
log-det as the attribute "ildj" of the (x, y) pair, and the log-det methods read it back when asked about the
same tensor (`_cached_fldj`, `_cached_ildj`), evaluating the transformation once more only on a miss.

Both are mixins: put them before the TFP base class (`class B(OnePassCache, tfb.Bijector)`), so that their
`_get_parameterization` and `_cache` come first in the method resolution order.
"""

from typing import Any

import tensorflow as tf
from tensorflow_probability.python.internal import cache_util

__all__ = ["InstanceKeyedCache", "OnePassCache"]


class InstanceKeyedCache:
    """Mixin for `tfb.Bijector`s: TFP's cache never shares entries between two instances."""

    def _get_parameterization(self) -> int:
        return id(self)


class OnePassCache(InstanceKeyedCache):
    """Mixin for `tfb.Bijector`s whose transformation hands back its log-det ("ildj") as a cache attribute."""

    _cache = cache_util.BijectorCacheWithGreedyAttrs(
        forward_name="_augmented_forward", inverse_name="_augmented_inverse"
    )

    def _augmented_forward(self, x: tf.Tensor, **kwargs: Any) -> tuple[tf.Tensor, dict[str, tf.Tensor] | None]:
        raise NotImplementedError

    def _augmented_inverse(self, y: tf.Tensor, **kwargs: Any) -> tuple[tf.Tensor, dict[str, tf.Tensor] | None]:
        raise NotImplementedError

    def _cached_fldj(self, x: tf.Tensor, **kwargs: Any) -> tf.Tensor:
        """forward log-det at `x`: from the cache entry of `forward(x)`, or one more forward evaluation."""
        attrs = self._cache.forward_attributes(x, **kwargs)
        if "ildj" not in attrs:
            attrs.update(self._augmented_forward(x, **kwargs)[1] or {})
        return -attrs["ildj"]

    def _cached_ildj(self, y: tf.Tensor, **kwargs: Any) -> tf.Tensor:
        """inverse log-det at `y`: from the cache entry of `inverse(y)`, or one more inverse evaluation."""
        attrs = self._cache.inverse_attributes(y, **kwargs)
        if "ildj" not in attrs:
            attrs.update(self._augmented_inverse(y, **kwargs)[1] or {})
        return attrs["ildj"]
