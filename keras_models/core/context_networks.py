"""Context embeddings (`FlowModel(context_network=)`): networks mapping a raw context c to what the conditioners read.

A conditional `FlowModel(context_shape=..., context_network=...)` calls its context network once per
`log_prob` / `sample` / train step and hands the embedding e = h(c) to every conditioner and to a conditional base
(nflows' `embedding_net`, flowjax's `EmbedCondition`, BayesFlow's summary networks); the network trains with the
flow. Any Keras layer mapping [batch, *context_shape] to [batch, *embedding_shape] will do; two ship here:

- `MLPEmbedding`: c flattened, then a dense network: e = MLP(vec(c)).
- `DeepSetsEmbedding`: for a context that is a set of n observations c = {c_1, .., c_n} of shape [n, d], the
  permutation-invariant sum decomposition of Zaheer et al. 2017 ("Deep Sets", theorem 2) with a mean pool:

      e = rho( (1/n) sum_i phi(c_i) )

  phi and rho are dense networks; permuting the n rows of c leaves e unchanged. A mean (not a sum) keeps e on
  the same scale for any n, as BayesFlow's `DeepSet` pools.

`context_network="mlp"` or `"deepsets"` on a model builds these with their defaults (`resolve_context_network`).

>>> import numpy as np
>>> from keras_models import RealNVP
>>> model = RealNVP((2,), num_couplings=2, hidden_units=(16,), context_shape=(20, 2), context_network="deepsets")
>>> model.step_context_shape  # what every coupling reads: the 16-dimensional embedding of a set of 20 points
(16,)
>>> sets = np.random.default_rng(0).normal(size=(3, 20, 2)).astype("float32")
>>> model.log_prob(np.zeros((3, 2), "float32"), sets).shape
TensorShape([3])
"""

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from tfp_flows.validation import check_int, check_positive_ints


def _widths(values: Sequence[int], arg_name: str, owner: str) -> tuple[int, ...]:
    """Hidden widths: an empty sequence (no hidden layer) or positive ints; a ValueError naming `arg_name`."""
    return () if len(tuple(values)) == 0 else check_positive_ints(values, arg_name, owner=owner)


def _dense_stack(units: Sequence[int], activation: str, dtype: Any, final_units: int | None = None) -> list:
    layers = [keras.layers.Dense(u, activation=activation, dtype=dtype) for u in units]
    if final_units is not None:
        layers.append(keras.layers.Dense(final_units, dtype=dtype))
    return layers


def _apply(layers: list, h: tf.Tensor) -> tf.Tensor:
    for layer in layers:
        h = layer(h)
    return h


@keras.saving.register_keras_serializable(package="tfp_flows")
class MLPEmbedding(keras.layers.Layer):
    """e = MLP(vec(c)): the context flattened, `hidden_units` dense layers (`activation`), a linear output of
    `embedding_dim` units. Input [batch, *context_shape], output [batch, embedding_dim].

    Args:
      embedding_dim: size of the embedding e (default 16).
      hidden_units: widths of the hidden layers (default (64, 64)).
      activation: hidden activation (default "relu").
      **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`).
    """

    def __init__(
        self, embedding_dim: int = 16, hidden_units: Sequence[int] = (64, 64), activation: str = "relu", **kwargs: Any
    ):
        super().__init__(**kwargs)
        self.embedding_dim = check_int(embedding_dim, "embedding_dim", owner="MLPEmbedding")
        self.hidden_units = _widths(hidden_units, "hidden_units", "MLPEmbedding")
        self.activation = activation
        self.dense = _dense_stack(self.hidden_units, activation, self.dtype_policy, self.embedding_dim)

    def build(self, input_shape: Sequence[int | None]) -> None:
        shape = (input_shape[0], int(tf.TensorShape(input_shape[1:]).num_elements()))
        for layer in self.dense:
            layer.build(shape)
            shape = (shape[0], layer.units)
        self.built = True

    def call(self, c: tf.Tensor) -> tf.Tensor:
        return _apply(self.dense, keras.ops.reshape(c, (keras.ops.shape(c)[0], -1)))

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, int]:
        return (input_shape[0], self.embedding_dim)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            embedding_dim=self.embedding_dim, hidden_units=list(self.hidden_units), activation=self.activation
        )
        return config


@keras.saving.register_keras_serializable(package="tfp_flows")
class DeepSetsEmbedding(keras.layers.Layer):
    """e = rho(mean_i phi(c_i)) over the rows c_i of a set-valued context c [batch, n, d] (Zaheer et al. 2017).

    phi: `phi_units` dense layers applied to every row alike; the mean over the n rows makes e invariant to their
    order; rho: `rho_units` dense layers and a linear output of `embedding_dim` units. Output [batch, embedding_dim].

    Args:
      embedding_dim: size of the embedding e (default 16).
      phi_units: widths of phi's layers, each with `activation` (default (64, 64)).
      rho_units: widths of rho's hidden layers (default (64,)).
      activation: hidden activation (default "relu").
      **kwargs: `keras.layers.Layer` arguments (`name`, `dtype`).
    """

    def __init__(
        self,
        embedding_dim: int = 16,
        phi_units: Sequence[int] = (64, 64),
        rho_units: Sequence[int] = (64,),
        activation: str = "relu",
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.embedding_dim = check_int(embedding_dim, "embedding_dim", owner="DeepSetsEmbedding")
        self.phi_units = check_positive_ints(phi_units, "phi_units", owner="DeepSetsEmbedding")
        self.rho_units = _widths(rho_units, "rho_units", "DeepSetsEmbedding")
        self.activation = activation
        self.phi = _dense_stack(self.phi_units, activation, self.dtype_policy)
        self.rho = _dense_stack(self.rho_units, activation, self.dtype_policy, self.embedding_dim)

    def build(self, input_shape: Sequence[int | None]) -> None:
        if len(input_shape) != 3:
            raise ValueError(
                "DeepSetsEmbedding: the context must be a set of observations of shape [batch, n, d] "
                f"(context_shape (n, d)); received input shape {list(input_shape)}"
            )
        shape = tuple(input_shape)
        for layer in self.phi:
            layer.build(shape)
            shape = shape[:-1] + (layer.units,)
        shape = (shape[0], shape[-1])
        for layer in self.rho:
            layer.build(shape)
            shape = (shape[0], layer.units)
        self.built = True

    def call(self, c: tf.Tensor) -> tf.Tensor:
        pooled = keras.ops.mean(_apply(self.phi, c), axis=-2)
        return _apply(self.rho, pooled)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, int]:
        return (input_shape[0], self.embedding_dim)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            embedding_dim=self.embedding_dim,
            phi_units=list(self.phi_units),
            rho_units=list(self.rho_units),
            activation=self.activation,
        )
        return config


CONTEXT_NETWORKS = {"mlp": MLPEmbedding, "deepsets": DeepSetsEmbedding}


def _short_name(name: str) -> str:
    return name.lower().replace("_", "").replace("-", "")


def resolve_context_network(context_network: Any, dtype_policy: Any = None) -> keras.layers.Layer | None:
    """The layer `FlowModel(context_network=...)` names: None; a Keras layer (as it is); "mlp" or "deepsets" (the
    layers above with their defaults); a dict {"class_name": "mlp" | "deepsets", "config": {...}} (those layers
    with that config: what `--model-args` can spell); or any Keras-serialised layer (`from_config`).
    A TypeError or ValueError naming `context_network` otherwise."""
    if context_network is None or isinstance(context_network, keras.layers.Layer):
        return context_network
    if isinstance(context_network, str):
        if _short_name(context_network) not in CONTEXT_NETWORKS:
            raise ValueError(
                f"`context_network` must be one of {sorted(CONTEXT_NETWORKS)} when given by name (or a Keras "
                f"layer); received {context_network!r}"
            )
        context_network = {"class_name": context_network, "config": {}}
    if isinstance(context_network, dict) and isinstance(context_network.get("class_name"), str):
        name = _short_name(context_network["class_name"])
        if name in CONTEXT_NETWORKS:
            config = dict(context_network.get("config") or {})
            config.setdefault("dtype", dtype_policy)
            return CONTEXT_NETWORKS[name](**config)
        try:
            layer = keras.saving.deserialize_keras_object(context_network)
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"`context_network` {context_network['class_name']!r} is neither one of {sorted(CONTEXT_NETWORKS)} "
                f"nor a registered Keras layer: {error}"
            ) from None
        if isinstance(layer, keras.layers.Layer):
            return layer
    raise TypeError(
        f"`context_network` must be a Keras layer, one of {sorted(CONTEXT_NETWORKS)}, a dict "
        f"{{'class_name': 'mlp' | 'deepsets', 'config': {{...}}}} or a serialised Keras layer; received "
        f"{type(context_network).__name__}: {context_network!r}"
    )
