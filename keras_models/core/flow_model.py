"""`FlowModel`: a normalizing flow as a Keras 3 model, trained by maximum likelihood with `fit`.

log p(x) = log p_Z(f^{-1}(x)) + log|det d f^{-1}(x) / dx|          (change of variables; Dinh et al. 2015)

The flow f (latent -> data) is a `tfp.bijectors.Chain` rebuilt on every call from the weights of the model's
`flow_layers` (ordered from the data side to the latent side); `distribution` is the
`tfd.TransformedDistribution(base, f)` it defines, usable in any TFP program. `compile(optimizer)` needs no
loss: the loss is the mean negative log-likelihood, reported as `nll` (nats per example) and, for 8-bit image
data, `bits_per_dim` on the 8-bit scale (every preprocessing Jacobian counted, so a uniform model scores 8).

Non-finite data (`nan_policy`, the names of scipy.stats): "raise" (default) answers NaN or infinity in data handed
to `log_prob`/`encode`/`decode`/`model(x)` with a `NonFiniteInputError` (a ValueError) at once when called
eagerly, and in `fit`/`evaluate` checks every batch in the tf.data input pipeline (`check_finite_batches`), off
the compiled train step, so it also holds under `jit_compile=True`, where XLA drops `tf.debugging` checks;
"omit" leaves examples with any non-finite value out of the loss, the metrics and ActNorm's init (`log_prob`
returns NaN for them); "propagate" checks nothing (NaN reaches the loss, where `TerminateOnNaN` stops a run).
Inside your own `tf.function` nothing is checked: map `check_finite_batches` over your dataset instead.

Data outside the model's support (`support`, a closed interval (low, high) for every value, or None for the whole
real line) gets the same treatment where its density is taken: "raise" answers it with an `OutOfSupportError` (a
ValueError naming the argument, the expected interval and the range of values received) from `log_prob`/`model(x)`
at once and in the `fit`/`evaluate` pipeline, so `fit` never takes a step on such a batch (`encode` and
`decode` are maps, checked for finite values only); "omit" leaves such examples out like non-finite ones;
"propagate" checks nothing. The support is the data domain of the first flow step (the logit preprocessing of
RealNVP's and Flow++'s image models: [0, 1]) and, for b-bit data (`num_bits`), [0, 1], the scale on which
`bits_per_dim` is defined (x = (pixel + u) / 2^b, as `make_dataset` gives): image presets take data in [0, 1],
not the [-0.5, 0.5] of TFP's and Glow's own code (Glow centres by x - 0.5 itself).

Conditional models p(x | c) (`context_shape=...`, Winkler et al. 2019, "Learning likelihoods with
conditional normalizing flows"): every conditioner also reads a context c of shape [batch, *context_shape],
so log p(x | c) = log p_Z(f^{-1}(x; c)) + log|det d f^{-1}(x; c) / dx|. Then `log_prob(x, c)`, `encode(x, c)`,
`decode(z, c)`, `model((x, c))`; `sample(n, c)` and `sample_and_log_prob(n, c)` take c of batch n (one context
per sample) or a single context [*context_shape], broadcast to all n. `fit` takes a dataset of (x, c) pairs
(or `fit(x_array, c_array)`); x alone still trains an unconditional model. The context reaches the bijectors
through TFP's `bijector_kwargs` (`bijector_kwargs(c)`, `tfp_flows.conditioning.conditional_kwargs`):
`model.distribution.log_prob(x, bijector_kwargs=model.bijector_kwargs(c))` is `model.log_prob(x, c)` (for a
conditional base, `model.conditional_distribution(c)` instead of `model.distribution`). A conditional model
called without c, with c of the wrong shape or dtype, or an unconditional one given c, raises a ValueError or
TypeError naming `c`. Under nan_policy "raise" a non-finite c is refused like non-finite x; "omit" leaves such
examples out too.

A learned embedding of the context (`context_network=`, any Keras layer mapping c [batch, *context_shape] to
e [batch, *embedding_shape]; `MLPEmbedding`, or `DeepSetsEmbedding` for a set of observations c [n, d]): every
conditioner and a conditional base then read e = h(c) in place of c, computed once per `log_prob`, `sample`,
`encode`/`decode` call and train step and shared by all of them, as nflows' `embedding_net` and BayesFlow's
summary networks do; h trains with the flow and is saved in `.keras` files. Every method, `bijector_kwargs(c)`,
`conditional_distribution(c)` and the SavedModel signatures still take the raw c (`embed_context(c)` gives e).

Mixed precision (`keras.mixed_precision.set_global_policy("mixed_float16")` or "mixed_bfloat16", before the model
is built): the conditioner networks compute in float16/bfloat16, while the weights, the bijectors, the
log-determinants, the base log-density and the loss stay float32 (`keras_models.core.precision`); `compile` wraps
the optimizer in Keras' `LossScaleOptimizer` under mixed_float16. Data, samples and exports are float32.

Distribution: build and compile the model under `strategy.scope()`; the loss is the global-batch mean (each
replica's mean divided by the number of replicas, so the summed gradients are the single-device gradients);
ActNorm's data-dependent init runs once from one global batch, before any replica takes a step.

Example:
    >>> from keras_models import RealNVP
    >>> from tfp_flows.datasets import make_dataset
    >>> dataset_of_points = make_dataset("two_moons", split="train", batch_size=64).take(2)   # x alone
    >>> model = RealNVP(event_shape=(2,), num_couplings=4, hidden_units=(32, 32))
    >>> model.compile(optimizer="adam")
    >>> history = model.fit(dataset_of_points, epochs=1, verbose=0)
    >>> model.sample(5, temperature=0.7, seed=1).shape
    TensorShape([5, 2])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from keras_models.core.base_distributions import BaseDistribution, check_base_distribution, resolve_base_distribution
from keras_models.core.context_networks import resolve_context_network
from keras_models.core.nan_policy import (
    NAN_POLICIES,
    UNIT_INTERVAL,
    InputErrorRecord,
    NonFiniteInputError,
    check_finite_batches,
    finite_rows,
    non_finite_message,
    out_of_support_error,
    raised_input_errors,
)
from keras_models.core.precision import ComputesInVariableDtype, in_flow_dtype
from keras_models.core.standardize import StandardizeLayer
from tfp_flows.conditioning import conditional_kwargs
from tfp_flows.instance_cache import forget_traced_entries
from tfp_flows.validation import check_int, check_number, check_one_of, check_positive_ints, is_int

tfb = tfp.bijectors
tfd = tfp.distributions

TensorLike = tf.Tensor | np.ndarray  # a batch of data, latents or contexts
Seed = int | Sequence[int] | tf.Tensor | None  # None, an int or a pair of ints (stateless sampling)


def without_loss(compile_kwargs: dict[str, Any], owner: str, loss: str) -> dict[str, Any]:
    """`compile_kwargs` without `loss=None`, for a model that defines its own loss (`loss` says which, in words:
    "minus the objective"); a ValueError naming `owner`, the loss and the value received when a loss is passed."""
    kwargs = dict(compile_kwargs)
    if kwargs.pop("loss", None) is not None:
        raise ValueError(
            f"{owner}.compile takes no `loss`: the loss is {loss}; received loss={compile_kwargs['loss']!r}"
        )
    return kwargs


def seed_pair(seed: Seed) -> tf.Tensor | None:
    """A stateless [2] int32 seed from None, an int or a pair (None: a fresh random draw)."""
    if seed is None:
        return None
    seed = tf.convert_to_tensor(seed)
    if seed.shape.rank == 0:
        return tf.stack([tf.cast(seed, tf.int32), tf.constant(0, tf.int32)])
    return tf.cast(tf.reshape(seed, [2]), tf.int32)


@keras.saving.register_keras_serializable(package="tfp_flows")
class FlowModel(ComputesInVariableDtype, keras.Model):
    """Base class of every preset. Subclasses create their `BijectorLayer`s and call `_set_flow_layers`.

    Args:
      event_shape: shape of one example, e.g. `(2,)` or `(32, 32, 3)`.
      base_distribution: the base p_Z: "normal" (standard normal, default), "logistic" (standard logistic, as
        in NICE), "gmm" (a trainable Gaussian mixture, `GaussianMixtureBase()`), a `BaseDistribution` layer
        (`GaussianMixtureBase(num_components=4)`) or any `tfd.Distribution` over the latent event shape (not
        savable to `.keras`); see `keras_models.core.base_distributions`.
      num_bits: for 8-bit image data preprocessed to [0, 1] as (pixel + u) / 256, the bit depth (8) used to
        report `bits_per_dim`; None for continuous data.
      pixel_levels: the number L of values a pixel takes, when it is not 2**num_bits: the data reach the model
        as (level + u) / L and `bits_per_dim` counts -log2 P per pixel of those L-level data (scikit-learn's
        digits: 17 levels, `dataset_info("digits").num_levels`). Default None: 2**num_bits.
      nan_policy: what non-finite data, and data outside `support`, does: "raise" (default), "omit" or
        "propagate" (module docstring).
      context_shape: None (default, an unconditional model p(x)), or the shape of one context c, making the model
        p(x | c) (module docstring).
      context_network: None (default: the steps read c itself), or a Keras layer mapping c [batch,
        *context_shape] to an embedding e [batch, *embedding_shape] that every conditioner and a conditional base
        read instead (module docstring); "mlp" or "deepsets" for `MLPEmbedding()` or `DeepSetsEmbedding()`, or
        {"class_name": "mlp" | "deepsets", "config": {...}}. Needs `context_shape`. Subclasses build their
        conditional steps for `self.step_context_shape`: the embedding's shape, or `context_shape` without one.
      standardization: None, or tabular data's fixed first step: {"shift", "scale", "columns", "log_columns"}
        (`tfp_flows.datasets.TabularData.standardization()`), a `StandardizeLayer` put before the preset's
        steps, so `log_prob` takes raw rows in the data's units and `sample` returns them.
    """

    def __init__(
        self,
        event_shape: int | Sequence[int],
        base_distribution: str | BaseDistribution | tfd.Distribution = "normal",
        num_bits: int | None = None,
        nan_policy: str = "raise",
        pixel_levels: int | None = None,
        context_shape: int | Sequence[int] | None = None,
        context_network: keras.layers.Layer | str | dict | None = None,
        standardization: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.standardization = None if standardization is None else dict(standardization)
        if self.standardization is not None and np.ndim(event_shape) and len(event_shape) != 1:
            raise ValueError(
                f"`standardization` is for tabular data of event shape (D,); received event_shape {event_shape!r}"
            )
        if context_shape is not None:
            context_shape = check_positive_ints(
                tuple(context_shape) if np.ndim(context_shape) else (context_shape,), "context_shape"
            )
        self.context_shape = None if context_shape is None else tuple(int(d) for d in context_shape)
        self.context_network = resolve_context_network(context_network, self.dtype_policy)
        self.step_context_shape = self._embedding_shape()
        event_shape = check_positive_ints(tuple(event_shape) if np.ndim(event_shape) else (event_shape,), "event_shape")
        self.base_distribution_name, self.base_layer, self._user_base = resolve_base_distribution(
            base_distribution, self.dtype_policy
        )
        check_int(num_bits, "num_bits", minimum=1, maximum=16, allow_none=True)
        check_int(pixel_levels, "pixel_levels", minimum=2, allow_none=True)
        if pixel_levels is not None and num_bits is None:
            raise ValueError(
                f"`pixel_levels` must be None for continuous data (num_bits=None); received "
                f"pixel_levels={pixel_levels!r} with num_bits={num_bits!r}"
            )
        self.nan_policy = check_one_of(nan_policy, "nan_policy", NAN_POLICIES)
        self.event_shape = tuple(int(d) for d in event_shape)
        self.num_bits = num_bits
        self.pixel_levels = None if num_bits is None else int(pixel_levels or 2**num_bits)
        self.flow_layers = []
        # This model's pipeline errors (nan_policy "raise"), apart from any other model's fit in another thread.
        self.input_errors = InputErrorRecord()
        self.nll_tracker = keras.metrics.Mean(name="nll")
        self.bits_per_dim_tracker = keras.metrics.Mean(name="bits_per_dim") if num_bits else None

    # ----------------------------------------------------------------------------------------------------
    # Construction helpers for subclasses.
    def _set_flow_layers(self, flow_layers):
        """Register the steps (data side first) and create their weights now that shapes are known."""
        self.flow_layers = list(flow_layers)
        if self.standardization is not None:
            self.flow_layers.insert(0, StandardizeLayer(**self.standardization, name="standardize"))
        shape = self.event_shape
        for layer in self.flow_layers:
            if not layer.built:
                layer.build((None,) + tuple(shape))
            shape = layer.output_event_shape(shape)
        self.latent_shape = tuple(shape)
        if self.context_shape is not None and not any(
            getattr(layer, "context_shape", None) is not None
            for layer in self.flow_layers
            for layer in layer._flatten_layers(include_self=True)
        ):
            raise ValueError(
                f"{type(self).__name__}: `context_shape` was given but none of its steps reads a context "
                "(this preset has no conditional form); expected context_shape=None"
            )
        if self._base_is_conditional():
            if self.context_shape is None:
                raise ValueError(
                    f"`base_distribution` {type(self.base_layer).__name__} is conditional but this "
                    "model is not: pass context_shape=... to the model"
                )
            if self.base_layer.context_shape is None:
                self.base_layer.context_shape = self.step_context_shape
            elif tuple(self.base_layer.context_shape) != self.step_context_shape:
                raise ValueError(
                    f"`base_distribution` has context_shape {tuple(self.base_layer.context_shape)} but "
                    f"the model's steps read a context of shape {self.step_context_shape}"
                    f"{' (the context network embedding)' if self.context_network is not None else ''}; "
                    "expected the same"
                )
        if self.base_layer is not None and not self.base_layer.built:
            self.base_layer.build((None,) + self.latent_shape)
        if self._user_base is not None:
            check_base_distribution(self._user_base.distribution, self.latent_shape, self.compute_dtype)
        self.built = True

    def _embedding_shape(self):
        """The shape of one context as the steps read it: `context_shape`, or the context network's output shape
        (the network is built here, so its weights exist before any call)."""
        network = self.context_network
        if network is None:
            return self.context_shape
        if self.context_shape is None:
            raise ValueError(
                f"`context_network` embeds a context, but this model is unconditional (context_shape=None); "
                f"pass context_shape=... or context_network=None; received context_network={network!r}"
            )
        input_shape = (None, *self.context_shape)
        try:
            if not network.built:
                network.build(input_shape)
            shape = tuple(network.compute_output_shape(input_shape))
        except NotImplementedError:
            shape = tuple(network(tf.zeros([1, *self.context_shape], self.compute_dtype)).shape)
        embedding = shape[1:]
        if not embedding or not all(is_int(d) and d > 0 for d in embedding):
            raise ValueError(
                f"`context_network` must map a context [batch, {', '.join(map(str, self.context_shape))}] to an "
                f"embedding [batch, *embedding_shape] of known positive sizes; received output shape {list(shape)} "
                f"from {type(network).__name__}"
            )
        return tuple(int(d) for d in embedding)

    def embed_context(self, c: TensorLike) -> tf.Tensor:
        """e = h(c), what the steps and a conditional base read for c [batch, *context_shape]: the context network's
        output in the model's dtype, or c itself without a network."""
        return self._embedded(self._checked_context(c, None))

    def _embedded(self, c):
        """The embedding of a checked context (None for an unconditional model): one call of the network."""
        if c is None or self.context_network is None:
            return c
        return in_flow_dtype(self.context_network(c), self.compute_dtype)

    def get_config(self) -> dict[str, Any]:
        if self._user_base is not None:
            raise ValueError(
                "cannot serialise a FlowModel whose `base_distribution` is a tfd.Distribution "
                f"({type(self._user_base.distribution).__name__}): expected a named base "
                "('normal', 'logistic', 'gmm') or a BaseDistribution layer for get_config / .keras "
                "files; export_saved_model still works"
            )
        base = self.base_distribution_name
        if base is None:
            base = keras.saving.serialize_keras_object(self.base_layer)
        config = super().get_config()
        config.update(
            event_shape=list(self.event_shape),
            base_distribution=base,
            num_bits=self.num_bits,
            nan_policy=self.nan_policy,
            pixel_levels=None if self.pixel_levels == 2 ** (self.num_bits or 0) else self.pixel_levels,
            context_shape=None if self.context_shape is None else list(self.context_shape),
            standardization=self.standardization,
        )
        if self.context_network is not None:
            config["context_network"] = keras.saving.serialize_keras_object(self.context_network)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> FlowModel:
        config = dict(config)
        config["event_shape"] = tuple(config["event_shape"])
        return cls(**config)

    # ----------------------------------------------------------------------------------------------------
    # The distribution, rebuilt from the weights on every call (never cached across traces).
    @property
    def num_dims(self) -> int:
        return int(np.prod(self.event_shape))

    @property
    def support(self) -> tuple[float, float] | None:
        """(low, high): the closed interval every value of an example must lie in; None for the whole real line.

        The data domain the first flow step declares (`data_support`: [0, 1] for the logit preprocessing),
        intersected with [0, 1] for b-bit data (`num_bits`), the scale `bits_per_dim` is defined on. Override
        it in a subclass whose data domain is bounded some other way.
        """
        bounds = [UNIT_INTERVAL] if self.num_bits else []
        first = getattr(self.flow_layers[0], "data_support", None) if self.flow_layers else None
        if first is not None:
            bounds.append(tuple(float(b) for b in first))
        if not bounds:
            return None
        return (max(low for low, _ in bounds), min(high for _, high in bounds))

    @property
    def bijector(self) -> tfb.Chain:
        """The flow f: latent -> data, as a `tfb.Chain` of the layers' bijectors (built from current weights)."""
        return tfb.Chain([layer.bijector() for layer in self.flow_layers], name="flow_bijector")

    @property
    def is_conditional(self) -> bool:
        """Whether this is a conditional model p(x | c) (built with a `context_shape`)."""
        return self.context_shape is not None

    def bijector_kwargs(self, c: TensorLike, bijector: tfb.Bijector | None = None) -> dict[str, Any]:
        """TFP's `bijector_kwargs` handing the context `c` to every conditional step of `bijector` (default: a
        fresh `self.bijector`; its steps' names are the same on every build, so the dict fits any build). With a
        context network the steps receive its embedding of c."""
        return conditional_kwargs(self.bijector if bijector is None else bijector, self.embed_context(c))

    def _base_is_conditional(self):
        return bool(getattr(self.base_layer, "is_conditional", False))

    def base_distribution(self, c: TensorLike | None = None) -> tfd.Distribution:
        """The base p_Z over the latent event shape (built from the base layer's current weights, if any); for a
        conditional base layer, p_Z(. | c) with c [batch, *context_shape]."""
        if c is not None and self._base_is_conditional():
            c = self.embed_context(c)
        return self._base(c)

    def _base(self, e=None):
        """The base p_Z, given the embedded context `e` when it is conditional."""
        if self.base_layer is not None:
            if self._base_is_conditional():
                return self.base_layer.distribution(e)
            return self.base_layer.distribution()
        if self._user_base is not None:
            return self._user_base.distribution
        dtype = self.compute_dtype
        zero, one = tf.zeros([], dtype), tf.ones([], dtype)
        base = tfd.Normal(zero, one) if self.base_distribution_name == "normal" else tfd.Logistic(zero, one)
        return tfd.Sample(base, sample_shape=self.latent_shape, name="base")

    @property
    def distribution(self) -> tfd.TransformedDistribution:
        """`tfd.TransformedDistribution(base, bijector)`: a plain TFP distribution over the data.

        For a conditional model, pass `bijector_kwargs=self.bijector_kwargs(c)` to its methods; with a
        conditional base, use `conditional_distribution(c)`.
        """
        if self._base_is_conditional():
            raise ValueError(
                "this model's base distribution is conditional: use conditional_distribution(c) "
                "(with bijector_kwargs=bijector_kwargs(c)) instead of distribution"
            )
        return tfd.TransformedDistribution(self.base_distribution(), self.bijector, name="flow")

    def conditional_distribution(self, c: TensorLike) -> tfd.TransformedDistribution:
        """`tfd.TransformedDistribution(base given c, bijector)`; its methods take `bijector_kwargs(c)`."""
        return tfd.TransformedDistribution(self._base(self.embed_context(c)), self.bijector, name="flow")

    def _checked_context(self, c, batch_shape, arg_name="c"):
        """`c` as a tensor of the model's dtype, after checking it is given exactly when the model is conditional,
        its dtype and its static shape [*batch_shape, *context_shape] (batch_shape None: any leading axes)."""
        if self.context_shape is None:
            if c is not None:
                raise ValueError(
                    f"`{arg_name}` was given but this model is unconditional (built without "
                    f"`context_shape`); expected {arg_name}=None"
                )
            return None
        expected = "[batch, " + ", ".join(map(str, self.context_shape)) + "]"
        if c is None:
            raise ValueError(
                f"`{arg_name}` is required: this model is conditional (context_shape="
                f"{self.context_shape}) and needs a context of shape {expected}; received None"
            )
        c = self._check_data(c, arg_name, self.context_shape)
        if batch_shape is not None and c.shape.rank is not None:
            leading = c.shape.as_list()[: c.shape.rank - len(self.context_shape)]
            if len(leading) != len(batch_shape) or any(
                a is not None and b is not None and a != b for a, b in zip(leading, batch_shape)
            ):
                raise ValueError(
                    f"`{arg_name}` must have shape {expected} with the data's batch shape "
                    f"{list(batch_shape)}; received shape {c.shape.as_list()}"
                )
        if self.nan_policy == "raise" and tf.executing_eagerly():
            bad = tf.logical_not(finite_rows(c, len(self.context_shape)))
            if bool(tf.reduce_any(bad)):
                where = tf.where(bad).numpy()[:, 0].tolist()
                raise NonFiniteInputError(
                    non_finite_message(arg_name, "") + f"; received {len(where)} such "
                    f"context(s), at batch index(es) {where[:5]}"
                )
        return c

    def _context_for(self, x, c, event_shape=None):
        """The checked context for data `x` (same batch shape), or None for an unconditional model."""
        rank = len(self.event_shape if event_shape is None else event_shape)
        batch = x.shape.as_list()[: x.shape.rank - rank] if x.shape.rank is not None else None
        return self._checked_context(c, batch)

    def _embedded_for_samples(self, num_samples, c):
        """The embedded context for `num_samples` draws given c [num_samples, *context_shape] or one c
        [*context_shape] (embedded once, then broadcast to every draw)."""
        if self.context_shape is None and c is not None and np.ndim(c) == 0:
            raise TypeError(
                f"`c` is the context of a conditional model, but this model is unconditional (built without "
                f"`context_shape`); received c={c!r}. `temperature` and `seed` are keyword-only: "
                f"sample(n, temperature=..., seed=...); expected c=None"
            )
        if c is None or self.context_shape is None:
            return self._checked_context(c, None)
        if np.ndim(c) == len(self.context_shape):  # one context for all samples
            e = self._embedded(self._checked_context(tf.convert_to_tensor(c)[None], None))
            return tf.broadcast_to(e, tf.concat([[num_samples], tf.shape(e)[1:]], 0))
        c = self._checked_context(c, None)
        if c.shape.rank != len(self.context_shape) + 1:
            raise ValueError(
                f"`c` must have shape [{num_samples}, {', '.join(map(str, self.context_shape))}] (one "
                f"context per sample) or {list(self.context_shape)} (one for all); received shape "
                f"{c.shape.as_list()}"
            )
        if is_int(num_samples) and c.shape[0] is not None and c.shape[0] != num_samples:
            raise ValueError(
                f"`c` must have shape [{num_samples}, {', '.join(map(str, self.context_shape))}]: one "
                f"context per sample (num_samples={num_samples}); received shape {c.shape.as_list()}"
            )
        return self._embedded(c)

    def _flow(self, e):
        """(bijector, its bijector_kwargs for the embedded context e) built from the current weights."""
        bijector = self.bijector
        return bijector, ({} if e is None else conditional_kwargs(bijector, e))

    # ----------------------------------------------------------------------------------------------------
    # Public maths.
    def _check_data(self, x, arg_name="x", event_shape=None):
        """`x` as a tensor of the model's dtype, after checking its dtype and (static) shape [..., *event]."""
        event_shape = self.event_shape if event_shape is None else tuple(event_shape)
        try:
            x = tf.convert_to_tensor(x)
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"`{arg_name}` must be a float tensor or array of shape [batch, "
                f"{', '.join(map(str, event_shape))}]; received {type(x).__name__}: {error}"
            ) from None
        if not x.dtype.is_floating:
            raise TypeError(
                f"`{arg_name}` must be floating point (cast integer pixels with the dataset "
                f"pipeline, e.g. make_dataset); received dtype {x.dtype.name}"
            )
        shape = x.shape
        rank = len(event_shape)
        if shape.rank is not None:
            trailing = shape.as_list()[shape.rank - rank :] if shape.rank >= rank else None
            if shape.rank < rank + 1 or any(t is not None and t != e for t, e in zip(trailing, event_shape)):
                raise ValueError(
                    f"`{arg_name}` must have shape [batch, {', '.join(map(str, event_shape))}] "
                    f"(event shape {event_shape}); received shape {shape.as_list()}"
                )
        return tf.cast(x, self.compute_dtype)

    def _check_values(self, x, arg_name="x", support=None):
        """Apply `nan_policy` "raise" to eager tensors (traced code is left alone: see the module docstring):
        non-finite values, then values outside `support` (None: not checked, as for latents)."""
        if self.nan_policy == "raise" and tf.executing_eagerly():
            bad = tf.logical_not(finite_rows(x, len(self.event_shape)))
            if bool(tf.reduce_any(bad)):
                where = [index[0] if len(index) == 1 else tuple(index) for index in tf.where(bad).numpy().tolist()]
                raise NonFiniteInputError(
                    non_finite_message(arg_name, "") + f"; received {len(where)} such "
                    f"example(s), at batch index(es) {where[:5]}"
                )
            error = out_of_support_error(x, support, arg_name, len(self.event_shape))
            if error is not None:
                raise error
        return x

    def _checked(self, x, arg_name="x", event_shape=None, support=None):
        """`x` checked for dtype, shape and finite values, and against `support` when given (data whose density
        is taken: pass `support=self.support`)."""
        return self._check_values(self._check_data(x, arg_name, event_shape), arg_name, support)

    def _valid_rows(self, x):
        """Batch-shaped bool: True for examples that are finite and inside `support` (what "omit" keeps)."""
        rank = len(self.event_shape)
        keep = finite_rows(x, rank)
        if self.support is not None:
            low, high = (tf.constant(b, x.dtype) for b in self.support)
            inside = tf.logical_and(x >= low, x <= high)
            keep = tf.logical_and(keep, tf.reduce_all(inside, axis=list(range(-rank, 0))))
        return keep

    def _fill_invalid(self, x, keep, event_rank=None, fill=None):
        """`x` with the examples `keep` rejects replaced by a harmless value inside `support` (0 clipped into it;
        `fill` and `event_rank` for a context)."""
        event_rank = len(self.event_shape) if event_rank is None else event_rank
        mask = tf.reshape(keep, tf.concat([tf.shape(keep), tf.ones([event_rank], tf.int32)], 0))
        if fill is None:
            fill = 0.0 if self.support is None else min(max(0.0, self.support[0]), self.support[1])
        return tf.where(mask, x, tf.fill(tf.shape(x), tf.constant(fill, x.dtype)))

    def log_prob(self, x: TensorLike, c: TensorLike | None = None) -> tf.Tensor:
        """log p(x) (log p(x | c) for a conditional model) in nats, one value per example; x is
        [batch, *event_shape] inside `support`, c [batch, *context_shape]."""
        x = self._checked(x, support=self.support)
        c = self._context_for(x, c)
        if self.nan_policy == "omit":
            return self._log_prob_omitting(x, c)
        if c is None:
            return self.distribution.log_prob(x)
        return self._conditional_log_prob(x, c)

    def _conditional_log_prob(self, x, c):
        e = self._embedded(c)  # once, shared by every step and the base
        bijector, kwargs = self._flow(e)
        distribution = tfd.TransformedDistribution(self._base(e), bijector, name="flow")
        return distribution.log_prob(x, bijector_kwargs=kwargs)

    def _log_prob_omitting(self, x, c=None):
        """log p(x), NaN for examples with a non-finite value or a value outside `support` (or a non-finite
        context), which never reach the flow (nor its gradients)."""
        keep = self._valid_rows(x)
        if c is None:
            log_prob = self.distribution.log_prob(self._fill_invalid(x, keep))
        else:
            keep = tf.logical_and(keep, finite_rows(c, len(self.context_shape)))
            c = self._fill_invalid(c, keep, event_rank=len(self.context_shape), fill=0.0)
            log_prob = self._conditional_log_prob(self._fill_invalid(x, keep), c)
        return tf.where(keep, log_prob, tf.constant(np.nan, log_prob.dtype))

    def encode(self, x: TensorLike, c: TensorLike | None = None) -> tf.Tensor:
        """Data -> latent: z = f^{-1}(x; c), x of shape [batch, *event_shape] (c [batch, *context_shape]).

        Not checked against `support`: the model's own samples may lie just outside it (Glow's density lives on
        all of R^D; the logit's forward image is slightly wider than [0, 1]), and round trips must work.
        """
        x = self._checked(x)
        bijector, kwargs = self._flow(self._embedded(self._context_for(x, c)))
        return bijector.inverse(x, **kwargs)

    def decode(self, z: TensorLike, c: TensorLike | None = None) -> tf.Tensor:
        """Latent -> data: x = f(z; c), z of shape [batch, *latent_shape] (c [batch, *context_shape])."""
        z = self._checked(z, "z", self.latent_shape)
        bijector, kwargs = self._flow(self._embedded(self._context_for(z, c, self.latent_shape)))
        return bijector.forward(z, **kwargs)

    def sample(
        self,
        num_samples: int | tf.Tensor,
        c: TensorLike | None = None,
        *,
        temperature: float | tf.Tensor | None = None,
        seed: Seed = None,
    ) -> tf.Tensor:
        """Draw `num_samples` examples, with the base scaled by `temperature` (Glow's T; None or 1.0 = the model).

        `seed` (an int or a pair of ints) makes the draw reproducible through stateless random ops. A conditional
        model draws x ~ p(x | c): c [num_samples, *context_shape] (one context per sample) or [*context_shape]
        (one context for all). `temperature` and `seed` are keyword-only, so a number in c's place is an error,
        never a temperature: `sample(16, temperature=0.7, seed=1)`.
        """
        e = self._embedded_for_samples(num_samples, c)
        bijector, kwargs = self._flow(e)
        return bijector.forward(self._tempered_latent(num_samples, temperature, seed, e), **kwargs)

    def sample_and_log_prob(
        self,
        num_samples: int | tf.Tensor,
        c: TensorLike | None = None,
        *,
        temperature: float | tf.Tensor | None = None,
        seed: Seed = None,
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """`(x, log_prob)`: `sample(num_samples, c, temperature=..., seed=...)` and the model's log p(x), in one pass.

            z = T * z0,  z0 ~ p_Z;      x = f(z);      log p(x) = log p_Z(z) - log|det df(z)/dz|

        (the change of variables read in the sampling direction, Papamakarios et al. 2021, "Normalizing flows
        for probabilistic modeling and inference", sec. 2.1): only the forward pass and its log-determinant, no
        inverse, as TFP's `experimental_sample_and_log_prob`, zuko's `rsample_and_log_prob` and distrax's
        `sample_and_log_prob` do. Equal to `log_prob(x)` up to float rounding.

        At `temperature` T != 1 the value is still the MODEL's density at the returned x (what `log_prob(x)`
        gives), not the density of the tempered sampler (which would add -D log T and use p_Z(z / T)): the
        number a caller scoring or importance-weighting the samples against the model needs. Same seed, same
        samples as `sample`. A conditional model takes c as `sample` does and returns log p(x | c).
        """
        e = self._embedded_for_samples(num_samples, c)
        z = self._tempered_latent(num_samples, temperature, seed, e)
        bijector, kwargs = self._flow(e)
        x = bijector.forward(z, **kwargs)
        log_det = bijector.forward_log_det_jacobian(z, event_ndims=len(self.latent_shape), **kwargs)
        return x, self._base(e).log_prob(z) - log_det

    def _tempered_latent(self, num_samples, temperature, seed, e=None):
        """z = temperature * z0 with z0 ~ p_Z (given the embedded context e), [num_samples, *latent_shape], after
        checking the arguments (`temperature=None` means 1)."""
        temperature = 1.0 if temperature is None else temperature
        # A tensor count must be of an integer dtype; a tensor temperature may be traced, so its value is not read.
        if not (tf.is_tensor(num_samples) and num_samples.dtype.is_integer):
            check_int(num_samples, "num_samples")
        if not (tf.is_tensor(temperature) or isinstance(temperature, np.ndarray)):
            check_number(temperature, "temperature", minimum=0)
        if e is not None and self._base_is_conditional():
            base = self._base(e)
            z = base.sample(seed=seed_pair(seed))  # batch [num_samples] from e
            if not (isinstance(temperature, (int, float, np.number)) and temperature == 1):
                mean = base.mean()  # temper around the conditional mean: mu(c) + T sigma(c) eps
                return mean + (z - mean) * tf.cast(temperature, z.dtype)
            return z
        else:
            z = self._base().sample(num_samples, seed=seed_pair(seed))
        if not (isinstance(temperature, (int, float, np.number)) and temperature == 1):
            z = z * tf.cast(temperature, z.dtype)  # skipped at T = 1 (a Python number): z * 1 == z exactly
        return z

    def bits_per_dim(self, log_prob: tf.Tensor) -> tf.Tensor:
        """Bits per dimension of `pixel_levels`-level data (2**num_bits by default) preprocessed to [0, 1]."""
        if not self.num_bits:
            raise ValueError("bits_per_dim needs image data: this model was built with num_bits=None")
        from tfp_flows.datasets import bits_per_dim

        return bits_per_dim(log_prob, self.num_dims, num_levels=self.pixel_levels)

    # ----------------------------------------------------------------------------------------------------
    # Keras integration.
    def call(self, x: TensorLike | tuple[TensorLike, TensorLike], training: bool = False) -> tf.Tensor:
        """log p(x); for a conditional model `x` is the pair (x, c) and the result log p(x | c)."""
        del training
        if self.context_shape is not None and isinstance(x, (tuple, list)) and len(x) == 2:
            return self.log_prob(x[0], x[1])
        return self.log_prob(x)

    def _kept_examples(self, x, y_pred):
        """[batch] weights: 1 for examples in the loss, 0 for those "omit" leaves out (None: all count)."""
        if self.nan_policy != "omit" or x is None:
            return None
        c = None
        if self.context_shape is not None and isinstance(x, (tuple, list)):
            x, c = x
        keep = self._valid_rows(tf.cast(x, y_pred.dtype))
        if c is not None:
            keep = tf.logical_and(keep, finite_rows(tf.cast(c, y_pred.dtype), len(self.context_shape)))
        return tf.cast(keep, y_pred.dtype)

    def compute_loss(
        self,
        x: Any = None,
        y: Any = None,
        y_pred: tf.Tensor | None = None,
        sample_weight: Any = None,
        training: bool = True,
    ) -> tf.Tensor:
        """Mean negative log-likelihood of the batch, scaled so replicas' gradients sum to the global mean."""
        if y_pred is None:
            y_pred = self(x, training=training)
        kept = self._kept_examples(x, y_pred)
        if kept is None:
            nll = -tf.reduce_mean(y_pred)
        else:
            nll = -tf.reduce_sum(tf.where(kept > 0, y_pred, tf.zeros_like(y_pred))) / tf.maximum(
                tf.reduce_sum(kept), 1.0
            )
        losses = [nll] + [tf.cast(loss, nll.dtype) for loss in self.losses]
        total = tf.add_n(losses)
        num_replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return total / num_replicas if num_replicas > 1 else total

    def compute_metrics(self, x: Any, y: Any, y_pred: tf.Tensor, sample_weight: Any = None) -> dict[str, Any]:
        kept = self._kept_examples(x, y_pred)
        if kept is not None:
            y_pred = tf.where(kept > 0, y_pred, tf.zeros_like(y_pred))
        self.nll_tracker.update_state(-y_pred, sample_weight=kept)
        if self.bits_per_dim_tracker is not None:
            self.bits_per_dim_tracker.update_state(self.bits_per_dim(y_pred), sample_weight=kept)
        results = super().compute_metrics(x, y, y_pred, sample_weight=sample_weight)
        if _is_multi_worker(tf.distribute.get_strategy()):
            # Keras 3 reduces each step's logs across workers with strategy.reduce("MEAN", value, axis=0), which
            # fails on scalars (tensorflow/tensorflow#72388); a [1]-shaped value reduces to the replicas' mean.
            results = tf.nest.map_structure(lambda v: tf.reshape(v, [1]) if v.shape.rank == 0 else v, results)
        return results

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        trackers = [self.nll_tracker] + ([self.bits_per_dim_tracker] if self.bits_per_dim_tracker else [])
        return super().metrics + trackers

    def compile(self, optimizer: str | keras.optimizers.Optimizer = "adam", **kwargs: Any) -> None:
        super().compile(optimizer=optimizer, **without_loss(kwargs, "FlowModel", "the negative log-likelihood"))

    def compile_from_config(self, config: dict[str, Any]) -> None:
        """Restore the compiled state of a `.keras` file (the optimizer and its slots) despite our `compile`."""
        config = keras.saving.deserialize_keras_object(config)
        config.pop("loss", None)
        self.compile(**config)
        if self.optimizer is not None and self.built:
            self.optimizer.build(self.trainable_variables)

    # ----------------------------------------------------------------------------------------------------
    # Data-dependent initialisation (ActNorm), run once from the first real batch.
    def _layers_needing_init(self):
        return [
            layer
            for layer in self._flatten_layers(include_self=False)
            if getattr(layer, "needs_initialization", lambda: False)()
        ]

    def initialize_from_data(self, x: TensorLike, c: TensorLike | None = None) -> tf.Tensor:
        """Run every layer's data-dependent initialisation from a real batch `x` (data side), once.

        Layers are visited from the data side, each seeing the batch as the layers before it transform it
        (given the batch's contexts `c` for a conditional model). Under `nan_policy="omit"` the examples with
        non-finite values or values outside `support` (or a non-finite context) are left out first.
        """
        h = self._checked(x, support=self.support)
        c = self._context_for(h, c)
        if self.nan_policy == "omit":
            keep = self._valid_rows(h)
            if c is not None:
                keep = tf.logical_and(keep, finite_rows(c, len(self.context_shape)))
                c = tf.boolean_mask(c, keep)
            h = tf.boolean_mask(h, keep)
        c = self._embedded(c)
        for layer in self.flow_layers:
            if c is not None and getattr(layer, "initializes_with_context", False):
                layer.initialize_from_data(h, conditional_input=c)  # containers (SequentialFlow): steps need c
            else:
                layer.initialize_from_data(h)
            bijector = layer.bijector()
            h = bijector.inverse(h, **({} if c is None else conditional_kwargs(bijector, c)))
        if self.base_layer is not None:
            self.base_layer.initialize_from_data(h)  # k-means of the encoded batch (GaussianMixtureBase)
        return h

    def _first_global_batch(self, x, with_context=False):
        """The first batch of `x` (array, tf.data.Dataset or distributed dataset) as one global batch."""
        if isinstance(x, tf.data.Dataset):
            x = next(iter(x.take(1)))
        elif isinstance(x, tf.distribute.DistributedDataset):
            # Each replica holds a slice of the global batch: gather them (across workers too), in order.
            x = self.distribute_strategy.gather(next(iter(x)), axis=0)
        if isinstance(x, (tuple, list)):
            if with_context:
                return tuple(x[:2])
            x = x[0]
        if isinstance(x, dict):
            raise TypeError(
                "FlowModel.fit takes x alone (tensors, arrays or a dataset of tensors); received a "
                f"dictionary with keys {sorted(x)}"
            )
        return x

    def _maybe_initialize(self, x, c=None):
        if not self._layers_needing_init():
            return
        if self.context_shape is None:
            self.initialize_from_data(self._first_global_batch(x))
        elif c is not None:  # arrays: fit(x, c)
            self.initialize_from_data(x, c)
        else:
            first = self._first_global_batch(x, with_context=True)
            if not isinstance(first, tuple) or len(first) != 2:
                raise ValueError(self._pairs_expected("x"))
            self.initialize_from_data(*first)

    def _pairs_expected(self, arg_name):
        return (
            f"this model is conditional (context_shape={self.context_shape}): `{arg_name}` must be a dataset of "
            f"(x, c) pairs, or arrays x with c as `y` (fit(x, c)); received x alone"
        )

    def _paired(self, x, c, arg_name):
        """What Keras' train step reads for a conditional model: one input, the pair (x, c) (call takes it)."""
        if isinstance(x, tf.data.Dataset):
            spec = x.element_spec
            if not isinstance(spec, tuple) or len(spec) != 2:
                raise ValueError(self._pairs_expected(arg_name))
            return x.map(lambda data, context: ((data, context),)), None
        if isinstance(x, tuple) and len(x) == 2 and c is None:  # validation_data=(x_val, c_val)
            x, c = x
        if c is None:
            raise ValueError(self._pairs_expected(arg_name))
        self._checked_context(c, None, "c" if arg_name == "x" else f"{arg_name} context")
        return (x, c), None

    def _guard_input(self, x, arg_name):
        """Apply `nan_policy` "raise" to what `fit`/`evaluate` read: datasets get a pipeline check."""
        if self.nan_policy != "raise" or x is None:
            return x
        if isinstance(x, tf.data.Dataset):
            return check_finite_batches(x, arg_name, support=self.support, record=self.input_errors)
        if isinstance(x, (np.ndarray, tf.Tensor)) and (
            x.dtype.kind == "f" if isinstance(x, np.ndarray) else x.dtype.is_floating
        ):
            if not bool(np.all(np.isfinite(np.asarray(x)))):
                raise NonFiniteInputError(non_finite_message(arg_name, "(an array)"))
            error = out_of_support_error(x, self.support, arg_name, len(self.event_shape), where="(an array)")
            if error is not None:
                raise error
        return x  # distributed datasets: map check_finite_batches in the input function (keras_models.train.run does)

    def fit(self, x: Any = None, *args: Any, **kwargs: Any) -> keras.callbacks.History:
        x = self._guard_input(x, "x")
        if kwargs.get("validation_data") is not None:
            kwargs["validation_data"] = self._guard_input(kwargs["validation_data"], "validation_data")
        if self.context_shape is not None:
            args, c = list(args), kwargs.pop("y", None)
            if c is None and args:
                c = args.pop(0)
            # ActNorm's init reads the first batch before Keras does: its pipeline errors are re-raised too.
            _reraising_input_errors(self.input_errors, self._maybe_initialize, x, c)
            x, _ = self._paired(x, c, "x")
            if kwargs.get("validation_data") is not None:
                validation, _ = self._paired(kwargs["validation_data"], None, "validation_data")
                kwargs["validation_data"] = validation if isinstance(validation, tf.data.Dataset) else (validation,)
        else:
            _reraising_input_errors(self.input_errors, self._maybe_initialize, x)
        # Creating the optimizer's slots before the first step avoids a second trace of the train step.
        if self.optimizer is not None and not self.optimizer.built:
            with self.distribute_strategy.scope():
                self.optimizer.build(self.trainable_variables)
        try:
            return _reraising_input_errors(self.input_errors, super().fit, x, *args, **kwargs)
        finally:
            forget_traced_entries()  # or TFP's caches keep this fit's graphs and layers for good (instance_cache)

    def evaluate(self, x: Any = None, *args: Any, **kwargs: Any) -> Any:
        x = self._guard_input(x, "x")
        if self.context_shape is not None:
            args, c = list(args), kwargs.pop("y", None)
            if c is None and args:
                c = args.pop(0)
            x, _ = self._paired(x, c, "x")
        try:
            return _reraising_input_errors(self.input_errors, super().evaluate, x, *args, **kwargs)
        finally:
            forget_traced_entries()

    def predict(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().predict(x, *args, **kwargs)
        finally:
            forget_traced_entries()


def _reraising_input_errors(record, run, *args, **kwargs):
    """`run(*args, **kwargs)` (Keras' fit or evaluate), with an `InvalidArgumentError` that carried one of
    `check_finite_batches`' errors replaced by that error object: from the model's own `record`, else from
    `raised_input_errors` (pipelines checked outside the model, as distributed input functions are); others pass
    as they are."""
    record.clear()
    raised_input_errors.clear()  # a stale error of a pipeline nobody read to its end must not stand for a new one
    try:
        return run(*args, **kwargs)
    except tf.errors.InvalidArgumentError:
        ours = record.take() or raised_input_errors.take()
        if ours is None:
            raise
        raise ours from None


def _is_multi_worker(strategy):
    extended = getattr(strategy, "extended", None)
    in_multi_worker_mode = getattr(extended, "_in_multi_worker_mode", None)
    return bool(in_multi_worker_mode and in_multi_worker_mode())
