"""A model's memory goes when the model does: nothing module-level keeps its layers, bijectors or traced graphs.

Keras models (ours and plain `Sequential`s alike) live in reference cycles, so they die when Python's cycle
collector runs, not at `del`; what must not happen is that something reachable from a module keeps them for good.
TFP's bijector caches are such a thing (`tfp_flows.instance_cache.forget_traced_entries`): before `fit` dropped
their traced entries, every fit's conditioner layers and graphs survived `gc.collect()`.
"""

import gc
import weakref

import numpy as np
import pytest
import tensorflow as tf

from keras_models import RealNVP
from tfp_flows.instance_cache import _cache_storages, forget_traced_entries


def _graph_entries():
    return sum(1 for storage in _cache_storages() for key in list(storage) if key.alive and _symbolic(key))


def _symbolic(key):
    return any(tf.is_tensor(t) and tf.is_symbolic_tensor(t) for t in tf.nest.flatten(key()))


@pytest.mark.slow
def test_a_fitted_model_and_its_layers_are_freed_by_the_cycle_collector():
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    model = RealNVP(event_shape=(4,), num_couplings=2, hidden_units=(8,))
    model.compile(optimizer="adam")
    model.fit(x, epochs=1, batch_size=32, verbose=0)
    model.evaluate(x, verbose=0)
    model.log_prob(x[:4])
    refs = [weakref.ref(model)] + [weakref.ref(layer) for layer in model._flatten_layers(include_self=False)]
    assert _graph_entries() == 0  # fit and evaluate dropped what they traced
    del model
    gc.collect()
    alive = [ref() for ref in refs if ref() is not None]
    assert not alive, f"still alive after del and gc.collect(): {[type(obj).__name__ for obj in alive]}"


def test_forget_traced_entries_drops_the_entries_of_a_traced_bijector_call():
    model = RealNVP(event_shape=(4,), num_couplings=2, hidden_units=(8,))

    @tf.function
    def log_prob(x):
        return model.distribution.log_prob(x)

    log_prob(tf.zeros([2, 4]))
    assert _graph_entries() > 0  # a traced call leaves entries (what fit has to drop)
    assert forget_traced_entries() > 0
    assert _graph_entries() == 0
