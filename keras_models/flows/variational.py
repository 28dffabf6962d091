"""`VariationalFlow`: fit a flow q to an unnormalised target p~ by reverse KL (the ELBO), with `fit`.

    ELBO(q) = E_q[log p~(z) - log q(z)] = log Z - KL(q || p),         p = p~ / Z
    z = f(eps),  eps ~ base,   log q(z) = log base(eps) - log|det df/deps|(eps)
(Rezende & Mohamed 2015, "Variational inference with normalizing flows", eq. 15). Samples are pushed forward
through the flow and log q uses the forward log-determinant, so the estimate is reparametrised (gradients flow
through z) and never needs an inverse: any `FlowModel` works as q (PlanarFlow, RadialFlow, an IAF, ...).

The four 2-D test energies of the paper (Table 1) are built in: `target_log_prob="U1"` (to "U4") means
log p~(z) = -U1(z), from `tfp_flows.datasets.energies`.

How `fit` is fed: there is no data, only Monte-Carlo samples. Each element of the dataset is a dummy batch
whose leading size is the number of samples drawn for that step; `fit()` with no `x` builds such a dataset
itself (`sample_dataset()`: `batch_size` samples per step, repeated forever) and therefore needs
`steps_per_epoch`. The loss is -ELBO (mean over the step's samples); the metric `elbo` reports the ELBO.

Example:
    >>> from keras_models import PlanarFlow, VariationalFlow
    >>> vi = VariationalFlow(PlanarFlow(event_shape=(2,), num_layers=4), target_log_prob="U1", batch_size=64)
    >>> vi.compile(optimizer="adam")
    >>> history = vi.fit(epochs=1, steps_per_epoch=5, verbose=0)  # train longer: history.history["elbo"] goes up
    >>> vi.sample(1000, seed=0).shape                               # approximately from exp(-U1)
    TensorShape([1000, 2])
"""
import tensorflow as tf

import keras

from keras_models.core.flow_model import FlowModel, seed_pair

_SAMPLER_STATE = "sampler_seed_state"


def _energy_target(name, event_shape):
    from tfp_flows.datasets.energies import get_energy  # noqa: PLC0415 (datasets is optional at import time)

    energy = get_energy(name)  # raises ValueError naming the choices
    if tuple(event_shape) != (2,):
        raise ValueError(f"`target_log_prob={name!r}` is a 2-D energy: the flow's event_shape must be (2,); "
                         f"received {tuple(event_shape)}")
    return lambda z: -energy(z)


@keras.saving.register_keras_serializable(package="tfp_flows")
class VariationalFlow(keras.Model):
    """q = `flow.distribution`, trained to maximise the ELBO against `target_log_prob` (module docstring).

    Args:
      flow: a `FlowModel` (its bijector and base distribution are q; its weights are what trains).
      target_log_prob: the unnormalised log density log p~(z) as a callable [N, *event_shape] -> [N], or the
        name of a 2-D test energy "U1".."U4" (log p~ = -U). A callable must be registered with
        `keras.saving.register_keras_serializable` for the model to be saved.
      batch_size: Monte-Carlo samples per step when `fit` builds its own dataset (default 256).
      seed: seed of the sampler (a Keras `SeedGenerator`; its state is saved with the model's weights, so a fit
        resumed from a backup draws the samples an uninterrupted one would).
    """

    def __init__(self, flow, target_log_prob="U1", batch_size=256, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(flow, FlowModel):
            raise TypeError(f"`flow` must be a keras_models.FlowModel; received {type(flow).__name__}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive int; received {batch_size!r}")
        if isinstance(target_log_prob, str):
            self.target_fn = _energy_target(target_log_prob, flow.event_shape)
        elif callable(target_log_prob):
            self.target_fn = target_log_prob
        else:
            raise TypeError(f"`target_log_prob` must be a callable or an energy name 'U1'..'U4'; "
                            f"received {target_log_prob!r}")
        self.flow = flow
        self.target_log_prob = target_log_prob
        self.batch_size, self.seed = batch_size, seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="sampler_seed")
        self.elbo_tracker = keras.metrics.Mean(name="elbo")
        self.built = True

    # ----------------------------------------------------------------------------------------------------
    # The estimate.
    def sample_and_log_prob(self, num_samples, seed=None):
        """z ~ q and log q(z), by the forward pass only (reparametrised; no inverse).

        `seed` (an int or a pair) makes the draw reproducible through stateless random ops.
        """
        return self.flow.distribution.experimental_sample_and_log_prob(num_samples, seed=seed_pair(seed))

    def sample(self, num_samples, seed=None):
        """`num_samples` draws from q."""
        return self.flow.sample(num_samples, seed=seed)

    def elbo_terms(self, num_samples, seed=None):
        """log p~(z) - log q(z) for `num_samples` draws z ~ q (their mean estimates the ELBO)."""
        z, log_q = self.sample_and_log_prob(num_samples, seed=seed)
        return tf.cast(self.target_fn(z), log_q.dtype) - log_q

    def elbo(self, num_samples=1024, seed=None):
        """A Monte-Carlo estimate of the ELBO from `num_samples` draws (pass `seed` to reproduce it)."""
        return tf.reduce_mean(self.elbo_terms(num_samples, seed=seed))

    # ----------------------------------------------------------------------------------------------------
    # Keras integration.
    def _next_seed(self):
        return tf.cast(self.seed_generator.next(), tf.int32)

    def call(self, x, training=False):
        """Per-sample ELBO terms; the leading size of the dummy batch `x` is the number of samples."""
        del training
        return self.elbo_terms(tf.shape(tf.nest.flatten(x)[0])[0], seed=self._next_seed())

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """-ELBO, the reverse KL up to the constant log Z; scaled so replicas' gradients sum to the mean."""
        if y_pred is None:
            y_pred = self(x, training=training)
        loss = -tf.reduce_mean(y_pred)
        losses = [loss] + [tf.cast(extra, loss.dtype) for extra in self.losses]
        total = tf.add_n(losses)
        num_replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return total / num_replicas if num_replicas > 1 else total

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        self.elbo_tracker.update_state(y_pred)
        return super().compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    @property
    def metrics(self):
        return super().metrics + [self.elbo_tracker]

    def compile(self, optimizer="adam", **kwargs):
        if kwargs.get("loss") is not None:
            raise ValueError("VariationalFlow.compile takes no `loss`: the loss is -ELBO; "
                             f"received loss={kwargs['loss']!r}")
        kwargs.pop("loss", None)
        super().compile(optimizer=optimizer, **kwargs)

    def sample_dataset(self):
        """The dataset `fit()` uses by default: dummy batches of `batch_size` zeros, repeated forever."""
        return tf.data.Dataset.from_tensors(tf.zeros([self.batch_size], self.compute_dtype)).repeat()

    def fit(self, x=None, *args, **kwargs):
        """`fit(epochs=..., steps_per_epoch=...)`; `x` may instead be a dataset of dummy batches (module docstring)."""
        if x is None:
            if kwargs.get("steps_per_epoch") is None:
                raise ValueError("VariationalFlow.fit without `x` draws samples forever: pass `steps_per_epoch` "
                                 "(received steps_per_epoch=None)")
            x = self.sample_dataset()
        return super().fit(x, *args, **kwargs)

    # Keras saves no SeedGenerator state (it is not a KerasSaveable): without this, a run resumed from a backup
    # restarts the sampler and ends with other weights than the uninterrupted run.
    def save_own_variables(self, store):
        super().save_own_variables(store)
        store[_SAMPLER_STATE] = self.seed_generator.state

    def load_own_variables(self, store):
        super().load_own_variables({key: store[key] for key in store.keys() if key != _SAMPLER_STATE})
        if _SAMPLER_STATE in store:  # files written before the state was saved restore without it
            self.seed_generator.state.assign(store[_SAMPLER_STATE])

    def get_config(self):
        config = super().get_config()
        target = self.target_log_prob
        config.update(flow=keras.saving.serialize_keras_object(self.flow),
                      target_log_prob=target if isinstance(target, str)
                      else keras.saving.serialize_keras_object(target),
                      batch_size=self.batch_size, seed=self.seed)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["flow"] = keras.saving.deserialize_keras_object(config["flow"])
        if not isinstance(config["target_log_prob"], str):
            config["target_log_prob"] = keras.saving.deserialize_keras_object(config["target_log_prob"])
        return cls(**config)
