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

`forget_traced_entries` drops what the caches hold for traced (graph) tensors. TFP keeps its cache in one
storage per bijector class hierarchy, a module-level object, and an entry holds strong references to its bijector
(in its key), to the transformation's inputs (while the output lives) and to the bijector's keyword arguments. For
a graph tensor the output lives as long as its graph, and the graph lives as long as the entry: the storage pins
every traced graph, the bijectors built in it and, through them, the Keras layers and variables they read, for the
life of the process (a cycle through a global, which Python's cycle collector cannot free). Entries for eager
tensors go when the tensors do. A traced entry only ever serves the trace that made it, so dropping them once a
trace is done (`FlowModel.fit`/`evaluate`/`predict` do it when they return) costs nothing but lookups that would
never happen.

Both mixins: put them before the TFP base class (`class B(OnePassCache, tfb.Bijector)`), so that their
`_get_parameterization` and `_cache` come first in the method resolution order.
"""

from typing import Any

import tensorflow as tf
import tensorflow_probability as tfp
from tensorflow_probability.python.internal import cache_util

__all__ = ["InstanceKeyedCache", "OnePassCache", "forget_traced_entries"]


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


def _cache_storages() -> list[dict]:
    """The storages of every bijector cache declared on a `tfb.Bijector` class (TFP's own and ours), once each."""
    storages, pending, seen = {}, [tfp.bijectors.Bijector], set()
    while pending:
        cls = pending.pop()
        if cls in seen:
            continue
        seen.add(cls)
        for owner in cls.__mro__:  # mixins such as OnePassCache declare caches outside the Bijector hierarchy
            cache = owner.__dict__.get("_cache")
            if isinstance(cache, cache_util.BijectorCache):
                storages[id(cache.storage)] = cache.storage
        pending.extend(cls.__subclasses__())
    return list(storages.values())


def _holds_graph_tensor(key: Any) -> bool:
    struct = key() if key.alive else None
    parts = tf.nest.flatten(struct) + tf.nest.flatten(key.subkey[-1] if key.subkey else None)
    return any(tf.is_tensor(part) and tf.is_symbolic_tensor(part) for part in parts)


def forget_traced_entries() -> int:
    """Drop every entry of TFP's bijector caches keyed by a traced (graph) tensor, or whose bijector keyword
    arguments hold one; returns how many entries went. Safe at any time: a dropped entry is at worst a cache miss,
    answered by evaluating the transformation again."""
    dropped = 0
    for storage in _cache_storages():
        for key in list(storage.keys()):
            if _holds_graph_tensor(key) and storage.pop(key, None) is not None:
                dropped += 1
    return dropped
