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

`objective="iw-elbo"` with `num_importance_samples=K` trains on the importance-weighted bound instead
(Burda, Grosse & Salakhutdinov 2016, "Importance weighted autoencoders", section 3 and theorem 1):

    L_K(q) = E[log (1/K) sum_k p~(z_k) / q(z_k)],   z_1..z_K ~ q independently
    ELBO = L_1 <= L_K <= L_{K+1} <= log Z,          L_K -> log Z as K -> infinity (if p~/q is bounded)

Each of a step's N batch elements draws its own K samples (N * K draws a step); the estimate of one element is
`reduce_logsumexp(log w) - log K` over its K log-weights log w = log p~(z) - log q(z), the semantics of
`tfp.vi.monte_carlo_variational_loss(..., sample_size=N, importance_sample_size=K)` with reparametrised
gradients. The metrics `elbo` (mean log w over all N * K draws) and `iw_elbo` (mean of the N estimates of L_K)
come from the same samples; the loss is minus the chosen objective.

`estimate_log_normalizer(num_samples)` estimates log Z itself by importance sampling with q as the proposal,
with its standard error and the effective sample size of the weights (method docstring).

Example:
    >>> from keras_models import PlanarFlow, VariationalFlow
    >>> vi = VariationalFlow(PlanarFlow(event_shape=(2,), num_layers=4), target_log_prob="U1", batch_size=64)
    >>> vi.compile(optimizer="adam")
    >>> history = vi.fit(epochs=1, steps_per_epoch=5, verbose=0)  # train longer: history.history["elbo"] goes up
    >>> vi.sample(1000, seed=0).shape                               # approximately from exp(-U1)
    TensorShape([1000, 2])
    >>> estimate = vi.estimate_log_normalizer(10_000, seed=0)     # log_z, standard_error, ess, num_samples, elbo
    >>> estimate.num_samples, estimate.ess <= estimate.num_samples
    (10000, True)
"""

import collections
import math

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from keras_models.core.flow_model import FlowModel, seed_pair, without_loss
from tfp_flows.validation import check_int, check_one_of

_SAMPLER_STATE = "sampler_seed_state"
OBJECTIVES = ("elbo", "iw-elbo")

LogNormalizerEstimate = collections.namedtuple(
    "LogNormalizerEstimate", ["log_z", "standard_error", "ess", "num_samples", "elbo"]
)
LogNormalizerEstimate.__doc__ = """What `VariationalFlow.estimate_log_normalizer` returns (Python floats; an int
`num_samples`): the estimate of log Z, its standard error, the effective sample size of the importance weights,
the number of draws and the ELBO (mean log-weight) of the same draws."""


def iw_elbo_terms(log_weights):
    """log (1/K) sum_k exp(log_weights[..., k]): the importance-weighted bound's estimate per row of [N, K].

    With K = 1 it is the log-weight itself, the ELBO's term (Burda et al. 2016, section 3; module docstring).
    """
    num_importance_samples = tf.cast(tf.shape(log_weights)[-1], log_weights.dtype)
    return tf.reduce_logsumexp(log_weights, axis=-1) - tf.math.log(num_importance_samples)


def summarise_importance_weights(log_sum_w, log_sum_w2, num_samples):
    """log Z, its standard error and the ESS from log sum w and log sum w^2 over N draws (float64 scalars).

        log Z_hat = log sum w - log N
        ESS = (sum w)^2 / sum w^2 = 1 / sum wbar^2,      wbar = w / sum w   (Kong 1992; Owen 2013, ch. 9)
        SE[log Z_hat] ~ SE[Z_hat] / Z_hat = sqrt(var(w) / N) / mean(w) = sqrt((N sum wbar^2 - 1) / (N - 1))
    by the delta method, var(w) the sample variance (N - 1 in its denominator). Everything is computed from
    log sum wbar^2 = log sum w^2 - 2 log sum w, so no weight is ever exponentiated unnormalised.
    """
    log_sum_wbar2 = log_sum_w2 - 2.0 * log_sum_w
    relative_variance = tf.maximum(tf.math.expm1(math.log(num_samples) + log_sum_wbar2), 0.0)  # N sum wbar^2 - 1
    return (
        float(log_sum_w - math.log(num_samples)),
        float(tf.sqrt(relative_variance / (num_samples - 1))),
        float(tf.exp(-log_sum_wbar2)),
    )


def _chunk_sizes(num_samples, chunk_size):
    """[chunk_size, ..., rest]: the draws of `num_samples` split so that at most `chunk_size` are held at once."""
    full, rest = divmod(num_samples, chunk_size)
    return [chunk_size] * full + ([rest] if rest else [])


def _energy_target(name, event_shape):
    from tfp_flows.datasets.energies import get_energy

    energy = get_energy(name)  # raises ValueError naming the choices
    if tuple(event_shape) != (2,):
        raise ValueError(
            f"`target_log_prob={name!r}` is a 2-D energy: the flow's event_shape must be (2,); "
            f"received {tuple(event_shape)}"
        )
    return lambda z: -energy(z)


def _check_objective(objective, num_importance_samples):
    """(objective, K) checked: a known objective, K an int >= 1, and K = 1 unless the objective is "iw-elbo"."""
    check_one_of(objective, "objective", OBJECTIVES, owner="VariationalFlow")
    num_importance_samples = check_int(
        num_importance_samples, "num_importance_samples", minimum=1, owner="VariationalFlow"
    )
    if objective == "elbo" and num_importance_samples > 1:
        raise ValueError(
            f"VariationalFlow: `num_importance_samples` must be 1 with objective='elbo' (use "
            f"objective='iw-elbo' for K > 1); received {num_importance_samples!r}"
        )
    return objective, num_importance_samples


def _check_reparameterized(flow):
    """A ValueError unless q's base samples are reparameterised: the ELBO's gradient reaches q's weights only
    through the sample path (a categorical draw in a mixture base would silently leave its weights untrained)."""
    base = flow.base_distribution()
    if base.reparameterization_type != tfp.distributions.FULLY_REPARAMETERIZED:
        raise ValueError(
            f"VariationalFlow: the flow's `base_distribution` must be fully reparameterised, since the ELBO's "
            f"gradient reaches its weights only through the samples; received {type(base).__name__} with "
            f"{base.reparameterization_type} (for a mixture base use "
            f"GaussianMixtureBase(reparameterize=True, kmeans_init=False))"
        )


@keras.saving.register_keras_serializable(package="tfp_flows")
class VariationalFlow(keras.Model):
    """q = `flow.distribution`, trained to maximise the ELBO against `target_log_prob` (module docstring).

    Args:
      flow: a `FlowModel` (its bijector and base distribution are q; its weights are what trains).
      target_log_prob: the unnormalised log density log p~(z) as a callable [N, *event_shape] -> [N], or the
        name of a 2-D test energy "U1".."U4" (log p~ = -U). A callable must be registered with
        `keras.saving.register_keras_serializable` for the model to be saved.
      batch_size: Monte-Carlo samples per step when `fit` builds its own dataset (default 256); with
        `objective="iw-elbo"`, the number of batch elements, each of which draws `num_importance_samples`.
      objective: "elbo" (default) or "iw-elbo", the importance-weighted bound L_K (module docstring).
      num_importance_samples: K, an int >= 1 (default 1) for "iw-elbo". K > 1 with "elbo" is an error, not
        ignored: the ELBO has no K, and a silently unused K would look like the tighter bound was trained.
      seed: seed of the sampler (a Keras `SeedGenerator`; its state is saved with the model's weights, so a fit
        resumed from a backup draws the samples an uninterrupted one would).
    """

    def __init__(
        self,
        flow,
        target_log_prob="U1",
        batch_size=256,
        seed=None,
        objective="elbo",
        num_importance_samples=1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(flow, FlowModel):
            raise TypeError(f"`flow` must be a keras_models.FlowModel; received {type(flow).__name__}")
        batch_size = check_int(batch_size, "batch_size", owner="VariationalFlow")
        if isinstance(target_log_prob, str):
            self.target_fn = _energy_target(target_log_prob, flow.event_shape)
        elif callable(target_log_prob):
            self.target_fn = target_log_prob
        else:
            raise TypeError(
                f"`target_log_prob` must be a callable or an energy name 'U1'..'U4'; received {target_log_prob!r}"
            )
        self.objective, self.num_importance_samples = _check_objective(objective, num_importance_samples)
        _check_reparameterized(flow)
        self.flow = flow
        self.target_log_prob = target_log_prob
        self.batch_size, self.seed = batch_size, seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="sampler_seed")
        self.elbo_tracker = keras.metrics.Mean(name="elbo")
        self.iw_elbo_tracker = keras.metrics.Mean(name="iw_elbo")
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

    def log_weights(self, num_samples, num_importance_samples=None, seed=None):
        """[num_samples, K] log-weights log p~(z) - log q(z) of num_samples * K draws (K: the model's by default).

        Row n holds draws n*K .. n*K + K - 1 of one batch of draws, as `tfp.vi.monte_carlo_variational_loss`
        groups them.
        """
        k = (
            self.num_importance_samples
            if num_importance_samples is None
            else check_int(
                num_importance_samples, "num_importance_samples", minimum=1, owner="VariationalFlow.log_weights"
            )
        )
        return tf.reshape(self.elbo_terms(num_samples * k, seed=seed), [-1, k])

    def iw_elbo(self, num_samples=1024, num_importance_samples=None, seed=None):
        """A Monte-Carlo estimate of L_K (module docstring): the mean over `num_samples` groups of K draws."""
        return tf.reduce_mean(iw_elbo_terms(self.log_weights(num_samples, num_importance_samples, seed=seed)))

    def estimate_log_normalizer(self, num_samples, seed=None, chunk_size=65536):
        """log Z of the target by importance sampling from q, with its standard error and effective sample size.

            Z_hat = (1/N) sum_n w_n,   w_n = p~(z_n) / q(z_n),   z_n ~ q
        is unbiased for Z (and consistent while q > 0 wherever p~ > 0); log Z_hat is consistent, biased low by
        about SE^2 / 2 (Jensen). The standard error (delta method) and ESS = (sum w)^2 / sum w^2 are computed from
        normalised weights (`summarise_importance_weights`); an ESS far below N warns that q misses mass of p~
        and the standard error itself is then unreliable (Owen 2013, "Monte Carlo theory, methods and examples",
        ch. 9). A NaN log-weight makes the estimate NaN rather than being dropped.

        Args:
          num_samples: N, an int >= 2 (a standard error needs two draws).
          seed: an int or a pair for a reproducible estimate (stateless draws), or None.
          chunk_size: at most this many draws are held at once (default 65536), so N may exceed memory.

        Returns:
          a `LogNormalizerEstimate(log_z, standard_error, ess, num_samples, elbo)`.
        """
        num_samples = check_int(
            num_samples,
            "num_samples",
            minimum=2,
            owner="estimate_log_normalizer",
            hint="a standard error needs two draws",
        )
        sizes = _chunk_sizes(num_samples, check_int(chunk_size, "chunk_size", owner="estimate_log_normalizer"))
        seeds = (
            [None] * len(sizes) if seed is None else tf.unstack(tfp.random.split_seed(seed_pair(seed), n=len(sizes)))
        )
        sums = [self._log_weight_sums(size, chunk_seed) for size, chunk_seed in zip(sizes, seeds)]
        log_sum_w, log_sum_w2, sum_log_w = (tf.stack(column) for column in zip(*sums))
        log_z, standard_error, ess = summarise_importance_weights(
            tf.reduce_logsumexp(log_sum_w), tf.reduce_logsumexp(log_sum_w2), num_samples
        )
        return LogNormalizerEstimate(
            log_z, standard_error, ess, num_samples, float(tf.reduce_sum(sum_log_w)) / num_samples
        )

    def _log_weight_sums(self, num_samples, seed):
        """log sum w, log sum w^2 and sum log w over one chunk of draws, in float64."""
        log_w = tf.cast(self.elbo_terms(num_samples, seed=seed), tf.float64)
        return tf.reduce_logsumexp(log_w), tf.reduce_logsumexp(2.0 * log_w), tf.reduce_sum(log_w)

    # ----------------------------------------------------------------------------------------------------
    # Keras integration.
    def _next_seed(self):
        return tf.cast(self.seed_generator.next(), tf.int32)

    def call(self, x, training=False):
        """Log-weights: [N] (K = 1, the ELBO's terms) or [N, K]; N is the leading size of the dummy batch `x`."""
        del training
        num_samples = tf.shape(tf.nest.flatten(x)[0])[0]
        if self.num_importance_samples == 1:
            return self.elbo_terms(num_samples, seed=self._next_seed())
        return self.log_weights(num_samples, seed=self._next_seed())

    def _grouped(self, y_pred):
        """`call`'s log-weights as [N, K]."""
        return tf.reshape(y_pred, [-1, self.num_importance_samples])

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Minus the objective: -ELBO (the reverse KL up to the constant log Z) or -L_K; scaled so replicas'
        gradients sum to the mean."""
        if y_pred is None:
            y_pred = self(x, training=training)
        if self.objective == "iw-elbo":
            loss = -tf.reduce_mean(iw_elbo_terms(self._grouped(y_pred)))
        else:
            loss = -tf.reduce_mean(y_pred)
        losses = [loss] + [tf.cast(extra, loss.dtype) for extra in self.losses]
        total = tf.add_n(losses)
        num_replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return total / num_replicas if num_replicas > 1 else total

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        self.elbo_tracker.update_state(tf.reshape(y_pred, [-1]))
        self.iw_elbo_tracker.update_state(iw_elbo_terms(self._grouped(y_pred)))
        return super().compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    @property
    def metrics(self):
        return super().metrics + [self.elbo_tracker, self.iw_elbo_tracker]

    def compile(self, optimizer="adam", **kwargs):
        super().compile(optimizer=optimizer, **without_loss(kwargs, "VariationalFlow", "minus the objective"))

    def sample_dataset(self):
        """The dataset `fit()` uses by default: dummy batches of `batch_size` zeros, repeated forever."""
        return tf.data.Dataset.from_tensors(tf.zeros([self.batch_size], self.compute_dtype)).repeat()

    def fit(self, x=None, *args, **kwargs):
        """`fit(epochs=..., steps_per_epoch=...)`; `x` may instead be a dataset of dummy batches (module docstring)."""
        if x is None:
            if kwargs.get("steps_per_epoch") is None:
                raise ValueError(
                    "VariationalFlow.fit without `x` draws samples forever: pass `steps_per_epoch` "
                    "(received steps_per_epoch=None)"
                )
            x = self.sample_dataset()
        return super().fit(x, *args, **kwargs)

    # Keras saves no SeedGenerator state (it is not a KerasSaveable): without this, a run resumed from a backup
    # restarts the sampler and ends with other weights than the uninterrupted run.
    def save_own_variables(self, store):
        super().save_own_variables(store)
        store[_SAMPLER_STATE] = self.seed_generator.state

    def load_own_variables(self, store):
        # keys(), not iteration: Keras' H5 store has no __iter__ (Python would then index it 0, 1, ...).
        super().load_own_variables({key: store[key] for key in store.keys() if key != _SAMPLER_STATE})  # noqa: SIM118
        if _SAMPLER_STATE in store:  # files written before the state was saved restore without it
            self.seed_generator.state.assign(store[_SAMPLER_STATE])

    def get_config(self):
        config = super().get_config()
        target = self.target_log_prob
        config.update(
            flow=keras.saving.serialize_keras_object(self.flow),
            target_log_prob=target if isinstance(target, str) else keras.saving.serialize_keras_object(target),
            batch_size=self.batch_size,
            seed=self.seed,
            objective=self.objective,
            num_importance_samples=self.num_importance_samples,
        )
        return config

    @classmethod
    def from_config(cls, config):
        """The inverse of `get_config`; files saved before `objective` existed load with its defaults."""
        config = dict(config)
        config["flow"] = keras.saving.deserialize_keras_object(config["flow"])
        if not isinstance(config["target_log_prob"], str):
            config["target_log_prob"] = keras.saving.deserialize_keras_object(config["target_log_prob"])
        return cls(**config)
