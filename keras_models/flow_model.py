"""`FlowModel`: a normalizing flow as a Keras 3 model, trained by maximum likelihood with `fit`.

log p(x) = log p_Z(f^{-1}(x)) + log|det d f^{-1}(x) / dx|          (change of variables; Dinh et al. 2015)

The flow f (latent -> data) is a `tfp.bijectors.Chain` rebuilt on every call from the weights of the model's
`flow_layers` (ordered from the data side to the latent side); `distribution` is the
`tfd.TransformedDistribution(base, f)` it defines, usable in any TFP program. `compile(optimizer)` needs no
loss: the loss is the mean negative log-likelihood, reported as `nll` (nats per example) and, for 8-bit image
data, `bits_per_dim` on the 8-bit scale (every preprocessing Jacobian counted, so a uniform model scores 8).

Example:
    >>> from keras_models import RealNVP
    >>> model = RealNVP(event_shape=(2,), num_couplings=4, hidden_units=(32, 32))
    >>> model.compile(optimizer="adam")
    >>> model.fit(dataset_of_points, epochs=1)          # a tf.data.Dataset of x alone
    >>> model.sample(5, temperature=0.7, seed=1).shape
    TensorShape([5, 2])
"""
import math

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from keras_models import _backend  # noqa: F401  (selects the TensorFlow backend before keras loads)
import keras

tfb = tfp.bijectors
tfd = tfp.distributions

BASE_DISTRIBUTIONS = ("normal", "logistic")


def _seed_pair(seed):
    """A stateless [2] int32 seed from None, an int or a pair (None: a fresh random draw)."""
    if seed is None:
        return None
    seed = tf.convert_to_tensor(seed)
    if seed.shape.rank == 0:
        return tf.stack([tf.cast(seed, tf.int32), tf.constant(0, tf.int32)])
    return tf.cast(tf.reshape(seed, [2]), tf.int32)


@keras.saving.register_keras_serializable(package="tfp_flows")
class FlowModel(keras.Model):
    """Base class of every preset. Subclasses create their `BijectorLayer`s and call `_set_flow_layers`.

    Args:
      event_shape: shape of one example, e.g. `(2,)` or `(32, 32, 3)`.
      base_distribution: "normal" (standard normal) or "logistic" (standard logistic, as in NICE).
      num_bits: for 8-bit image data preprocessed to [0, 1] as (pixel + u) / 256, the bit depth (8) used to
        report `bits_per_dim`; None for continuous data.
    """

    def __init__(self, event_shape, base_distribution="normal", num_bits=None, **kwargs):
        super().__init__(**kwargs)
        event_shape = tuple(event_shape) if np.ndim(event_shape) else (event_shape,)
        if not event_shape or not all(isinstance(d, (int, np.integer)) and d > 0 for d in event_shape):
            raise ValueError(f"`event_shape` must be a non-empty tuple of positive ints; received {event_shape!r}")
        if base_distribution not in BASE_DISTRIBUTIONS:
            raise ValueError(f"`base_distribution` must be one of {BASE_DISTRIBUTIONS}; "
                             f"received {base_distribution!r}")
        if num_bits is not None and not (isinstance(num_bits, int) and 1 <= num_bits <= 16):
            raise ValueError(f"`num_bits` must be None or an int in [1, 16]; received {num_bits!r}")
        self.event_shape = tuple(int(d) for d in event_shape)
        self.base_distribution_name = base_distribution
        self.num_bits = num_bits
        self.flow_layers = []
        self.nll_tracker = keras.metrics.Mean(name="nll")
        self.bits_per_dim_tracker = keras.metrics.Mean(name="bits_per_dim") if num_bits else None

    # ----------------------------------------------------------------------------------------------------
    # Construction helpers for subclasses.
    def _set_flow_layers(self, flow_layers):
        """Register the steps (data side first) and create their weights now that shapes are known."""
        self.flow_layers = list(flow_layers)
        shape = self.event_shape
        for layer in self.flow_layers:
            if not layer.built:
                layer.build((None,) + tuple(shape))
            shape = layer.output_event_shape(shape)
        self.latent_shape = tuple(shape)
        self.built = True

    def get_config(self):
        config = super().get_config()
        config.update(event_shape=list(self.event_shape), base_distribution=self.base_distribution_name,
                      num_bits=self.num_bits)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["event_shape"] = tuple(config["event_shape"])
        return cls(**config)

    # ----------------------------------------------------------------------------------------------------
    # The distribution, rebuilt from the weights on every call (never cached across traces).
    @property
    def num_dims(self):
        return int(np.prod(self.event_shape))

    @property
    def bijector(self):
        """The flow f: latent -> data, as a `tfb.Chain` of the layers' bijectors (built from current weights)."""
        return tfb.Chain([layer.bijector() for layer in self.flow_layers], name="flow_bijector")

    def base_distribution(self):
        """The base p_Z over the latent event shape."""
        dtype = self.compute_dtype
        zero, one = tf.zeros([], dtype), tf.ones([], dtype)
        base = tfd.Normal(zero, one) if self.base_distribution_name == "normal" else tfd.Logistic(zero, one)
        return tfd.Sample(base, sample_shape=self.latent_shape, name="base")

    @property
    def distribution(self):
        """`tfd.TransformedDistribution(base, bijector)`: a plain TFP distribution over the data."""
        return tfd.TransformedDistribution(self.base_distribution(), self.bijector, name="flow")

    # ----------------------------------------------------------------------------------------------------
    # Public maths.
    def _check_data(self, x, arg_name="x"):
        x = tf.convert_to_tensor(x)
        if not (x.dtype.is_floating):
            raise TypeError(f"`{arg_name}` must be floating point (cast integer pixels with the dataset "
                            f"pipeline, e.g. make_dataset); received dtype {x.dtype.name}")
        shape = x.shape
        rank = len(self.event_shape)
        if shape.rank is not None:
            trailing = shape.as_list()[shape.rank - rank:] if shape.rank >= rank else None
            if shape.rank < rank + 1 or any(t is not None and t != e for t, e in zip(trailing, self.event_shape)):
                raise ValueError(f"`{arg_name}` must have shape [batch, {', '.join(map(str, self.event_shape))}] "
                                 f"(event shape {self.event_shape}); received shape {shape.as_list()}")
        return tf.cast(x, self.compute_dtype)

    def log_prob(self, x):
        """log p(x) in nats, one value per example."""
        return self.distribution.log_prob(self._check_data(x))

    def encode(self, x):
        """Data -> latent: z = f^{-1}(x)."""
        return self.bijector.inverse(self._check_data(x))

    def decode(self, z):
        """Latent -> data: x = f(z)."""
        return self.bijector.forward(self._check_data(z, "z"))

    def sample(self, num_samples, temperature=1.0, seed=None):
        """Draw `num_samples` examples, with the base scaled by `temperature` (Glow's T; 1.0 = the model).

        `seed` (an int or a pair of ints) makes the draw reproducible through stateless random ops.
        """
        if isinstance(num_samples, (bool, float)) or (isinstance(num_samples, (int, np.integer))
                                                      and num_samples <= 0):
            raise ValueError(f"`num_samples` must be a positive int; received {num_samples!r}")
        if isinstance(temperature, (int, float)) and not (temperature >= 0 and math.isfinite(temperature)):
            raise ValueError(f"`temperature` must be a finite number >= 0; received {temperature!r}")
        z = self.base_distribution().sample(num_samples, seed=_seed_pair(seed))
        return self.bijector.forward(z * tf.cast(temperature, z.dtype))

    def bits_per_dim(self, log_prob):
        """Bits per dimension on the `num_bits` scale for log-likelihoods of data preprocessed to [0, 1]."""
        if not self.num_bits:
            raise ValueError(f"bits_per_dim needs image data: this model was built with num_bits=None")
        from tfp_flows.datasets import bits_per_dim  # noqa: PLC0415 (datasets is optional at import time)

        return bits_per_dim(log_prob, self.num_dims, num_levels=2 ** self.num_bits)

    # ----------------------------------------------------------------------------------------------------
    # Keras integration.
    def call(self, x, training=False):
        del training
        return self.log_prob(x)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Mean negative log-likelihood of the batch, scaled so replicas' gradients sum to the global mean."""
        if y_pred is None:
            y_pred = self(x, training=training)
        nll = -tf.reduce_mean(y_pred)
        losses = [nll] + [tf.cast(loss, nll.dtype) for loss in self.losses]
        total = tf.add_n(losses)
        num_replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return total / num_replicas if num_replicas > 1 else total

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        self.nll_tracker.update_state(-y_pred)
        if self.bits_per_dim_tracker is not None:
            self.bits_per_dim_tracker.update_state(self.bits_per_dim(y_pred))
        return super().compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    @property
    def metrics(self):
        trackers = [self.nll_tracker] + ([self.bits_per_dim_tracker] if self.bits_per_dim_tracker else [])
        return super().metrics + trackers

    def compile(self, optimizer="adam", **kwargs):
        if kwargs.get("loss") is not None:
            raise ValueError("FlowModel.compile takes no `loss`: the loss is the negative log-likelihood; "
                             f"received loss={kwargs['loss']!r}")
        kwargs.pop("loss", None)
        super().compile(optimizer=optimizer, **kwargs)

    # ----------------------------------------------------------------------------------------------------
    # Data-dependent initialisation (ActNorm), run once from the first real batch.
    def _layers_needing_init(self):
        return [layer for layer in self._flatten_layers(include_self=False)
                if getattr(layer, "needs_initialization", lambda: False)()]

    def initialize_from_data(self, x):
        """Run every layer's data-dependent initialisation from a real batch `x` (data side), once.

        Layers are visited from the data side, each seeing the batch as the layers before it transform it.
        """
        h = self._check_data(x)
        for layer in self.flow_layers:
            layer.initialize_from_data(h)
            h = layer.bijector().inverse(h)
        return h

    def _maybe_initialize(self, x):
        if not self._layers_needing_init():
            return
        batch = x
        if isinstance(x, tf.data.Dataset):
            batch = next(iter(x.take(1)))
        if isinstance(batch, (tuple, list)):
            batch = batch[0]
        if isinstance(batch, dict):
            raise TypeError("FlowModel.fit takes a dataset of x alone (tensors), not dictionaries")
        self.initialize_from_data(batch)

    def fit(self, x=None, *args, **kwargs):
        self._maybe_initialize(x)
        return super().fit(x, *args, **kwargs)
