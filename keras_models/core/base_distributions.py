"""Base distributions p_Z of a `FlowModel`: named ones, any `tfd.Distribution`, and trainable Keras layers.

`FlowModel(base_distribution=...)` takes

- "normal" (standard normal, the default) or "logistic" (standard logistic, NICE's choice);
- "gmm": a `GaussianMixtureBase()` with its defaults (8 components, k-means initialisation);
- a `BaseDistribution` layer instance, to configure it: `GaussianMixtureBase(num_components=4)`, or for a
  conditional model (`context_shape=...`) `ConditionalGaussianBase()`, whose mean and scale depend on c;
- any `tfd.Distribution` whose event shape is the latent shape and whose batch shape is scalar, e.g.
  `tfd.Sample(tfd.StudentT(3., 0., 1.), [2])` for a heavy-tailed base. It holds no trainable weights (Keras
  does not track variables inside TFP objects) and cannot be written to a `.keras` file: use a named base or a
  `BaseDistribution` layer for that.

A `BaseDistribution` is a Keras layer, not a TFP object, for the reason every weight here lives in a layer:
Keras 3 does not track `tf.Variable`s held inside TFP distributions, so a trainable base built that way would
silently never train. The layer owns the weights and builds its `tfd.Distribution` from them on every call.

This module lives in `keras_models.core` (not `keras_models.layers`, which holds the flow steps' bijector
layers) because `FlowModel` resolves its `base_distribution` argument here, and the core imports nothing from
the rest of keras_models.

Example:
    >>> import numpy as np
    >>> from keras_models import RealNVP
    >>> from keras_models.core.base_distributions import GaussianMixtureBase
    >>> model = RealNVP(event_shape=(2,), num_couplings=2, hidden_units=(8,),
    ...                 base_distribution=GaussianMixtureBase(num_components=4))
    >>> [tuple(w.shape) for w in model.base_layer.trainable_weights]    # logits, locs, log-scales
    [(4,), (4, 2), (4, 2)]
    >>> model.log_prob(np.zeros([3, 2], np.float32)).shape
    TensorShape([3])
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from keras_models.core.precision import ComputesInVariableDtype, in_flow_dtype
from tfp_flows.validation import check_int, check_number, check_one_of

tfb = tfp.bijectors
tfd = tfp.distributions

NAMED_BASE_DISTRIBUTIONS = ("normal", "logistic", "gmm")


class BaseDistribution(ComputesInVariableDtype, keras.layers.Layer):
    """A Keras layer that owns the weights of a base distribution p_Z and builds it per call (`distribution()`).

    `FlowModel` builds it with `(None, *latent_shape)` once the latent shape is known, so its weights exist
    right after the model's construction (and `.keras` files reload without a dummy call). Layers with a
    data-dependent initialisation override `needs_initialization()` and `initialize_from_data(z)`, where `z` is
    the first real batch encoded by the flow; `FlowModel.initialize_from_data` (run by `fit`) calls them after
    the flow layers' own initialisation.
    """

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.latent_shape = tuple(int(d) for d in input_shape[1:])
        self.built = True

    def distribution(self) -> tfd.Distribution:
        """The `tfd.Distribution` over [*latent_shape], built from the current weights."""
        raise NotImplementedError(f"{type(self).__name__} must implement distribution()")

    def needs_initialization(self) -> bool:
        return False

    def initialize_from_data(self, z: tf.Tensor) -> None:
        """Data-dependent initialisation from a batch of latents `z` [batch, *latent_shape] (default: nothing)."""
        del z

    def call(self, z: tf.Tensor) -> tf.Tensor:
        """log p_Z(z), one value per example, so the layer can be used like any Keras layer."""
        return self.distribution().log_prob(z)


@keras.saving.register_keras_serializable(package="tfp_flows")
class GaussianMixtureBase(BaseDistribution):
    """A trainable mixture of K diagonal Gaussians over the flattened latent z in R^D:

        p_Z(z) = sum_k softmax(a)_k N(z; mu_k, diag(sigma_k^2)),      sigma_k = exp(s_k)

    with Keras weights `logits` a [K], `locs` mu [K, D] and `log_scales` s [K, D] (normflows'
    `distributions.GaussianMixture`, zuko's `GMM`; a learned base is one of the options Papamakarios et al.
    2021, "Normalizing flows for probabilistic modeling and inference", sec. 2 and 3.4, discuss for
    multi-modal targets: a flow need not tear a unimodal base apart). Image latents are reshaped to
    [*latent_shape] by a `tfb.Reshape` (log-det 0).

    Initialisation: `locs` ~ N(0, 1) (seeded), unit scales, equal weights; with `kmeans_init=True` (default,
    as zuko) the first real batch, encoded by the flow, is clustered by k-means (scikit-learn's `KMeans`, one
    run, `random_state=seed`): mu_k are the centroids, sigma_k the per-cluster standard deviations (floored at
    `min_scale`; the batch's own for clusters of one point) and softmax(a)_k proportional to the cluster sizes
    plus one. It runs once; the non-trainable flag `initialized` is saved, so a reloaded model never redoes it.
    A batch with fewer points than K keeps the random initialisation (with a warning).

    Sampling: by default the component index is drawn from a categorical, so a sample's gradient reaches
    `locs` and `log_scales` but not `logits`; maximum-likelihood training (`fit`) never needs it. With
    `reparameterize=True` samples carry implicit reparameterisation gradients for every weight (Figurnov et al.
    2018, "Implicit reparameterization gradients", through TFP's `MixtureSameFamily(reparameterize=True)`: the
    distributional transform by per-dimension conditional CDFs of the diagonal components), which variational
    inference needs to learn the mixture weights; it costs a K x D CDF pass and a gradient solve per sample,
    so it is off unless asked for (`VariationalFlow` refuses a mixture base without it).

    Args:
      num_components: K >= 1.
      kmeans_init: whether the first batch initialises the mixture by k-means (see above).
      min_scale: floor of the k-means initial scales (> 0).
      seed: seed of the random initial locations and of k-means.
      reparameterize: whether samples are reparameterised in every weight, `logits` included (see above).
    """

    def __init__(
        self,
        num_components: int = 8,
        kmeans_init: bool = True,
        min_scale: float = 1e-2,
        seed: int = 0,
        reparameterize: bool = False,
        **kwargs: Any,
    ):
        kwargs.setdefault("name", "base_distribution")
        super().__init__(**kwargs)
        self.num_components = check_int(num_components, "num_components", minimum=1, owner="GaussianMixtureBase")
        if not isinstance(kmeans_init, (bool, np.bool_)):
            raise ValueError(f"GaussianMixtureBase: `kmeans_init` must be True or False; received {kmeans_init!r}")
        self.kmeans_init = bool(kmeans_init)
        self.min_scale = check_number(min_scale, "min_scale", minimum=0, strict=True, owner="GaussianMixtureBase")
        self.seed = check_int(seed, "seed", minimum=0, owner="GaussianMixtureBase")
        if not isinstance(reparameterize, (bool, np.bool_)):
            raise ValueError(
                f"GaussianMixtureBase: `reparameterize` must be True or False; received {reparameterize!r}"
            )
        self.reparameterize = bool(reparameterize)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        super().build(input_shape)
        k, d = self.num_components, int(np.prod(self.latent_shape))
        self.logits = self.add_weight(name="logits", shape=(k,), initializer="zeros")
        self.locs = self.add_weight(
            name="locs", shape=(k, d), initializer=keras.initializers.RandomNormal(stddev=1.0, seed=self.seed)
        )
        self.log_scales = self.add_weight(name="log_scales", shape=(k, d), initializer="zeros")
        self.initialized = self.add_weight(
            name="initialized", shape=(), trainable=False, initializer="zeros" if self.kmeans_init else "ones"
        )

    def distribution(self) -> tfd.Distribution:
        # Independent(Normal) rather than MultivariateNormalDiag (the same density): TFP's implicit
        # reparameterisation of a mixture needs components that factorise into scalar distributions.
        components = tfd.Independent(tfd.Normal(self.locs.value, tf.exp(self.log_scales.value)), 1)
        mixture = tfd.MixtureSameFamily(
            tfd.Categorical(logits=self.logits.value),
            components,
            reparameterize=self.reparameterize,
            name="gaussian_mixture",
        )
        if len(self.latent_shape) == 1:
            return mixture
        flat = [int(np.prod(self.latent_shape))]
        return tfd.TransformedDistribution(
            mixture, tfb.Reshape(self.latent_shape, event_shape_in=flat), name="gaussian_mixture"
        )

    def needs_initialization(self) -> bool:
        return not bool(keras.ops.convert_to_numpy(self.initialized))

    def initialize_from_data(self, z: tf.Tensor) -> None:
        if not self.needs_initialization():
            return
        points = np.reshape(np.asarray(z, np.float64), (-1, int(np.prod(self.latent_shape))))
        points = points[np.all(np.isfinite(points), axis=1)]
        k = self.num_components
        if len(points) < k:
            warnings.warn(
                f"GaussianMixtureBase: k-means needs at least num_components={k} points; the first batch "
                f"has {len(points)}: keeping the random initialisation",
                stacklevel=2,
            )
        else:
            from sklearn.cluster import KMeans

            kmeans = KMeans(n_clusters=k, n_init=1, random_state=self.seed).fit(points)
            counts = np.bincount(kmeans.labels_, minlength=k)
            overall = points.std(axis=0)
            scales = np.stack([points[kmeans.labels_ == j].std(axis=0) if counts[j] > 1 else overall for j in range(k)])
            dtype = self.locs.dtype
            self.locs.assign(kmeans.cluster_centers_.astype(dtype))
            self.log_scales.assign(np.log(np.maximum(scales, self.min_scale)).astype(dtype))
            self.logits.assign(np.log(counts + 1.0).astype(dtype))
        self.initialized.assign(1.0)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            num_components=self.num_components,
            kmeans_init=self.kmeans_init,
            min_scale=self.min_scale,
            seed=self.seed,
            reparameterize=self.reparameterize,
        )
        return config


@keras.saving.register_keras_serializable(package="tfp_flows")
class ConditionalGaussianBase(BaseDistribution):
    """A diagonal Gaussian whose mean and log-scale are a small network of the context c:

        p_Z(z | c) = N(z; mu(c), diag(exp(s(c))^2)),        (mu(c), s(c)) = MLP(c)

    (the learned conditional base of conditional flows, e.g. Winkler et al. 2019, "Learning likelihoods with
    conditional normalizing flows", sec. 3: the base carries the part of p(x | c) that is a shift and scale
    in latent space). The MLP's last layer starts at zero, so the base starts as N(0, I) for every c.
    `distribution(c)` has batch shape [batch] for c [batch, *context_shape] and the latent event shape.
    Sampling at temperature T draws mu(c) + T sigma(c) eps (`FlowModel.sample`).

    Args:
      hidden_units: widths of the MLP's hidden layers (default (64,)).
      context_shape: the shape of one context; None (default) takes the model's `context_shape`.
    """

    is_conditional = True

    def __init__(self, hidden_units: Sequence[int] = (64,), context_shape: Sequence[int] | None = None, **kwargs: Any):
        kwargs.setdefault("name", "base_distribution")
        super().__init__(**kwargs)
        self.hidden_units = tuple(
            check_int(u, "hidden_units", minimum=1, owner="ConditionalGaussianBase") for u in hidden_units
        )
        self.context_shape = None if context_shape is None else tuple(int(d) for d in context_shape)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        super().build(input_shape)
        if self.context_shape is None:
            raise ValueError(
                "ConditionalGaussianBase: `context_shape` is unknown: use it in a model built with "
                "context_shape=... (or pass context_shape to the layer)"
            )
        size = int(np.prod(self.latent_shape))
        dtype = self.dtype_policy
        self.network = keras.Sequential(
            [keras.layers.Dense(u, activation="relu", dtype=dtype) for u in self.hidden_units]
            + [keras.layers.Dense(2 * size, kernel_initializer="zeros", bias_initializer="zeros", dtype=dtype)],
            name="mean_and_log_scale",
        )
        self.network.build((None, int(np.prod(self.context_shape))))

    def distribution(self, c: tf.Tensor | None = None) -> tfd.Distribution:
        if c is None:
            raise ValueError(
                f"ConditionalGaussianBase: `c` is required, of shape [batch, "
                f"{', '.join(map(str, self.context_shape))}]; received None"
            )
        c = tf.convert_to_tensor(c, self.compute_dtype)
        flat = tf.reshape(c, [-1, int(np.prod(self.context_shape))])
        loc, log_scale = tf.split(in_flow_dtype(self.network(flat), self.variable_dtype), 2, axis=-1)
        shape = tf.concat([tf.shape(flat)[:1], self.latent_shape], 0)
        normal = tfd.Normal(tf.reshape(loc, shape), tf.exp(tf.reshape(log_scale, shape)))
        return tfd.Independent(normal, reinterpreted_batch_ndims=len(self.latent_shape), name="conditional_gaussian")

    def call(self, z: tf.Tensor, c: tf.Tensor | None = None) -> tf.Tensor:
        return self.distribution(c).log_prob(z)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            hidden_units=list(self.hidden_units),
            context_shape=None if self.context_shape is None else list(self.context_shape),
        )
        return config


class _Untracked:
    """Holds a user's `tfd.Distribution` out of sight of Keras' and TensorFlow's attribute tracking."""

    def __init__(self, distribution):
        self.distribution = distribution


def resolve_base_distribution(
    base_distribution: str | dict | BaseDistribution | tfd.Distribution, dtype_policy: Any
) -> tuple[str | None, BaseDistribution | None, _Untracked | None]:
    """`(name, layer, distribution)` for `FlowModel(base_distribution=...)` (module docstring); checks the type
    and the name; the latent shape is checked later, by `check_base_distribution`."""
    if isinstance(base_distribution, str):
        check_one_of(base_distribution, "base_distribution", NAMED_BASE_DISTRIBUTIONS)
        layer = GaussianMixtureBase(dtype=dtype_policy) if base_distribution == "gmm" else None
        return base_distribution, layer, None
    if isinstance(base_distribution, dict) and "class_name" in base_distribution:  # a layer's config (from_config)
        base_distribution = keras.saving.deserialize_keras_object(base_distribution)
    if isinstance(base_distribution, BaseDistribution):
        return None, base_distribution, None
    if isinstance(base_distribution, tfd.Distribution):
        return None, None, _Untracked(base_distribution)
    raise TypeError(
        f"`base_distribution` must be one of {NAMED_BASE_DISTRIBUTIONS}, a BaseDistribution layer (e.g. "
        f"GaussianMixtureBase(num_components=8)) or a tfd.Distribution over the latent event shape; "
        f"received {type(base_distribution).__name__}: {base_distribution!r}"
    )


def check_base_distribution(distribution: tfd.Distribution, latent_shape: Sequence[int], dtype: Any) -> None:
    """A ValueError unless the user's `distribution` has event shape `latent_shape`, a scalar batch shape and
    the model's `dtype`."""
    event_shape, batch_shape = distribution.event_shape, distribution.batch_shape
    as_list = lambda shape: shape.as_list() if shape.rank is not None else "unknown"  # noqa: E731
    if not event_shape.is_fully_defined() or tuple(event_shape.as_list()) != tuple(latent_shape):
        raise ValueError(
            f"`base_distribution` must have the latent event shape {list(latent_shape)}; received a "
            f"{type(distribution).__name__} with event shape {as_list(event_shape)} (wrap a scalar "
            f"distribution in tfd.Sample(..., {list(latent_shape)}))"
        )
    if batch_shape.rank != 0:
        raise ValueError(
            f"`base_distribution` must have a scalar batch shape []; received batch shape "
            f"{as_list(batch_shape)} "
            "(use tfd.Independent to move batch dimensions into the event)"
        )
    if tf.as_dtype(distribution.dtype) != tf.as_dtype(dtype):
        raise ValueError(
            f"`base_distribution` must have the model's dtype {tf.as_dtype(dtype).name}; received "
            f"dtype {tf.as_dtype(distribution.dtype).name}"
        )
