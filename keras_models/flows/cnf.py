"""`CNF`: a continuous normalizing flow, trained by conditional flow matching (default) or maximum likelihood.

The flow is the solution map of an ODE with a learned, time-conditioned velocity field (a Keras MLP,
`keras_models.layers.networks.velocity.VelocityField`), integrated from the base (t = 0) to the data (t = 1):

    dx/dt = v(x, t[, c]),   x(0) = z ~ p_Z,   x(1) = f(z);     log p(x) = log p_Z(z) - int_0^1 tr(dv/dx) dt

(Chen et al. 2018, "Neural ordinary differential equations"; Grathwohl et al. 2019, "FFJORD"). log p, sampling,
encode and decode solve the ODE with TFP's FFJORD bijector and DormandPrince solver (`tfp_flows.ContinuousFlow`,
tolerances `rtol` and `atol`): forward (latent -> data) integrates t: 0 -> 1, as every preset's flow maps latent to
data. The trace is exact for D <= 8 (`trace="auto"`: D gradient passes per field evaluation) and Hutchinson's
estimator beyond, with Rademacher probes from the fixed `probe_seed` (deterministic per x; unbiased over the seed).

Objectives (`objective`):

    "flow_matching"       conditional flow matching with the linear (rectified) path, the default (Lipman et al.
                          2023, "Flow matching for generative modeling", eq. 23 with sigma_min = 0; Liu et al. 2023,
                          "Flow straight and fast", rectified flow): with x1 ~ data, x0 ~ p_Z, t ~ U(0, 1),
                              x_t = (1 - t) x0 + t x1,    loss = E || v(x_t, t[, c]) - (x1 - x0) ||^2.
                          Simulation-free: a training step is one MLP pass, it never calls the ODE solver. The loss
                          is not a likelihood: `fit` reports it as `loss` (no `nll`), while `evaluate` and the
                          validation of `fit` report the exact `nll` (by the solver; `val_loss` is that NLL).
    "maximum_likelihood"  minus the mean log p(x) through the solver, its gradient by the adjoint method (TFP's
                          ODE solvers): one ODE solve forward and one backward per step; `fit` reports `nll`.

Training recipe for flow matching (measured on two moons, benchmarks/README.md, "CNF against coupling flows at equal
wall time"): Adam with a high peak learning rate decayed to zero over the run, e.g.
`keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(2e-4, decay_steps=N,
warmup_target=2e-2, warmup_steps=N // 50))` for N steps (`tfp-flows train --preset cnf` trains by it unless told
otherwise: keras_models/train/config.py, `PRESET_RUN_DEFAULTS`). The loss regresses on a noisy target (x1 - x0 given x_t
is random), so a large rate learns fast and the decay averages the noise out at the end: after 8,000 steps (batch 256,
seed 0) the KL gap was 0.204 nats at a constant 2e-3, 0.138 at a constant 5e-3, 0.237 with cosine decay from 2e-3, 0.059
from 1e-2, 0.040 from 2e-2, 0.031 from 4e-2 and 0.218 from 8e-2 (unstable). Measured not to help at equal time on a CPU:
an EMA of the weights (0.172 vs 0.204 at a constant 2e-3; nothing on top of the decay), batch 1,024 (0.088 at 8,000
steps, but each step costs ~2-4x), and `coupling="ot"` (0.180 vs 0.204 at 8,000 steps, each step 3.7x the cost); nor is
the KL gap limited by the solver (the same model scored 0.1471 at rtol = atol = 1e-5 and 1e-8).

During `fit` with flow matching, `model(x, training=True)` returns {"flow_matching_loss": per-example loss}
(what `compute_loss` averages); `model(x)` is log p(x) as for every preset. The draws of x0 and t come from a
Keras `SeedGenerator` (`seed`), so a seeded run repeats.

Conditional CNF p(x | c) (`context_shape=...`): the field reads c too, v(x, t, c), and FFJORD hands c to it through
the solver (`conditional_input`); flow matching pairs each x1 with its own c (and draws x0 from p_Z(. | c) for a
conditional base).

Example:
    >>> import keras
    >>> from keras_models import CNF
    >>> from tfp_flows.datasets import make_dataset
    >>> points = make_dataset("two_moons", split="train", batch_size=64).take(4)
    >>> model = CNF(event_shape=(2,), hidden_units=(32, 32), rtol=1e-4, atol=1e-4, seed=0)
    >>> model.compile(optimizer=keras.optimizers.Adam(1e-3))
    >>> sorted(model.fit(points, epochs=1, verbose=0).history)        # the flow-matching loss, no solver
    ['loss']
    >>> model.sample(3, seed=0).shape, model.log_prob(model.sample(3, seed=0)).shape
    (TensorShape([3, 2]), TensorShape([3]))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import tensorflow as tf

from keras_models.core.flow_model import FlowModel, TensorLike, seed_pair
from keras_models.core.nan_policy import finite_rows
from keras_models.layers.continuous_flow import ContinuousFlowLayer
from keras_models.layers.networks.velocity import VelocityField
from tfp_flows.continuous_flow import TRACES
from tfp_flows.validation import check_one_of, check_positive_ints, check_vector_event_shape

OBJECTIVES = ("flow_matching", "maximum_likelihood")
COUPLINGS = ("independent", "ot")
EXACT_TRACE_MAX_DIMS = 8  # trace="auto": the exact trace up to this D (D gradient passes), Hutchinson beyond
FLOW_MATCHING_LOSS = "flow_matching_loss"


def resolve_trace(trace: str, num_dims: int) -> str:
    """ "exact" or "hutchinson" for `trace` ("auto": exact for num_dims <= EXACT_TRACE_MAX_DIMS)."""
    check_one_of(trace, "trace", ("auto",) + TRACES, owner="CNF")
    if trace == "auto":
        return "exact" if num_dims <= EXACT_TRACE_MAX_DIMS else "hutchinson"
    return trace


def ot_assignment(x1: tf.Tensor, x0: tf.Tensor) -> tf.Tensor:
    """[batch] indices i such that (x0[i_k], x1[k]) is the optimal transport pairing of the batch for the squared
    Euclidean cost: min over permutations sum_k ||x1[k] - x0[i_k]||^2 (minibatch OT-CFM, Tong et al. 2024,
    "Improving and generalizing flow-based generative models with minibatch optimal transport"), by the Hungarian
    algorithm (`scipy.optimize.linear_sum_assignment`, O(batch^3), on the CPU through `tf.numpy_function`)."""
    from scipy.optimize import linear_sum_assignment

    cost = tf.reduce_sum(tf.square(x1[:, None, :] - x0[None, :, :]), axis=-1)

    def assign(matrix):
        return linear_sum_assignment(matrix)[1].astype("int32")

    indices = tf.numpy_function(assign, [cost], tf.int32, stateful=False)
    return tf.reshape(indices, [tf.shape(x1)[0]])


@keras.saving.register_keras_serializable(package="tfp_flows")
class CNF(FlowModel):
    """Continuous normalizing flow on vectors, dx/dt = v(x, t[, c]) (module docstring).

    Args:
      event_shape: (D,), D >= 1.
      hidden_units: widths of the velocity MLP (default (64, 64)).
      activation: its hidden activation (default "silu": the solver and the trace need a smooth field).
      num_frequencies: K sine/cosine pairs of the time features (default 4).
      objective: "flow_matching" (default) or "maximum_likelihood".
      trace: "auto" (default: exact for D <= 8, else Hutchinson), "exact" or "hutchinson".
      num_probes: Hutchinson probes per solve (default 1); probe_seed: their fixed seed (default 0).
      rtol, atol: the DormandPrince solver's tolerances (default 1e-5 each: decode(encode(x)) returns x to ~1e-4;
        looser tolerances take fewer steps).
      max_num_steps: the solver's step budget (default None: no limit).
      seed: seed of flow matching's draws of x0 and t (default None: a random one).
      coupling: how flow matching pairs base draws x0 with data x1: "independent" (default) or "ot" (each batch
        paired by optimal transport, `ot_assignment`: straighter paths; unconditional models only; needs scipy).
      **kwargs: `FlowModel` arguments (base_distribution, context_shape, nan_policy, name, dtype="float64").
    """

    def __init__(
        self,
        event_shape: int | Sequence[int],
        hidden_units: Sequence[int] = (64, 64),
        activation: str = "silu",
        num_frequencies: int = 4,
        objective: str = "flow_matching",
        trace: str = "auto",
        num_probes: int = 1,
        probe_seed: int = 0,
        rtol: float = 1e-5,
        atol: float = 1e-5,
        max_num_steps: int | None = None,
        seed: int | None = None,
        coupling: str = "independent",
        **kwargs: Any,
    ):
        super().__init__(event_shape, **kwargs)
        self.coupling = check_one_of(coupling, "coupling", COUPLINGS, owner="CNF")
        if coupling == "ot" and self.context_shape is not None:
            raise ValueError(
                "CNF: coupling='ot' pairs x0 and x1 across the batch, which would pair an x1 with the x0 of another "
                f"context; expected coupling='independent' with context_shape={self.context_shape}"
            )
        size = check_vector_event_shape(self.event_shape, "CNF", min_size=1)[0]
        self.hidden_units = check_positive_ints(hidden_units, "hidden_units", owner="CNF")
        self.activation, self.num_frequencies = activation, num_frequencies
        self.objective = check_one_of(objective, "objective", OBJECTIVES, owner="CNF")
        self.trace = trace
        self.num_probes, self.probe_seed = num_probes, int(probe_seed)
        self.rtol, self.atol, self.max_num_steps = rtol, atol, max_num_steps
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="flow_matching_seed")
        field = VelocityField(
            size,
            self.hidden_units,
            activation=activation,
            num_frequencies=num_frequencies,
            context_shape=self.step_context_shape,
            dtype=self.dtype_policy,
            name="velocity_field",
        )
        self.flow = ContinuousFlowLayer(
            field,
            trace=resolve_trace(trace, size),
            num_probes=num_probes,
            probe_seed=self.probe_seed,
            rtol=rtol,
            atol=atol,
            max_num_steps=max_num_steps,
            dtype=self.dtype_policy,
            name="continuous_flow",
        )
        self._set_flow_layers([self.flow])
        self._graphs = {}

    # ----------------------------------------------------------------------------------------------------
    # Eager calls run the solver in a graph: TFP's solver loop, run op by op, costs seconds per call.
    def _in_graph(self, name, method):
        """`method` (a FlowModel method) as a `tf.function` traced once per input signature, kept per model."""
        if name not in self._graphs:
            self._graphs[name] = tf.function(method, reduce_retracing=True)
        return self._graphs[name]

    def log_prob(self, x: TensorLike, c: TensorLike | None = None) -> tf.Tensor:
        if not tf.executing_eagerly():
            return super().log_prob(x, c)
        x = self._checked(x, support=self.support)  # nan_policy "raise" checks need eager values
        return self._in_graph("log_prob", super().log_prob)(x, self._context_for(x, c))

    def encode(self, x: TensorLike, c: TensorLike | None = None) -> tf.Tensor:
        if not tf.executing_eagerly():
            return super().encode(x, c)
        x = self._checked(x)
        return self._in_graph("encode", super().encode)(x, self._context_for(x, c))

    def decode(self, z: TensorLike, c: TensorLike | None = None) -> tf.Tensor:
        if not tf.executing_eagerly():
            return super().decode(z, c)
        z = self._checked(z, "z", self.latent_shape)
        return self._in_graph("decode", super().decode)(z, self._context_for(z, c, self.latent_shape))

    def sample(self, num_samples, c=None, *, temperature=None, seed=None) -> tf.Tensor:
        if not tf.executing_eagerly():
            return super().sample(num_samples, c, temperature=temperature, seed=seed)
        c = None if c is None else tf.convert_to_tensor(c)  # checked and embedded in the graph, once
        method = self._in_graph("sample", super().sample)
        return method(num_samples, c, temperature=temperature, seed=seed_pair(seed))

    def sample_and_log_prob(self, num_samples, c=None, *, temperature=None, seed=None) -> tuple[tf.Tensor, tf.Tensor]:
        if not tf.executing_eagerly():
            return super().sample_and_log_prob(num_samples, c, temperature=temperature, seed=seed)
        c = None if c is None else tf.convert_to_tensor(c)  # checked and embedded in the graph, once
        method = self._in_graph("sample_and_log_prob", super().sample_and_log_prob)
        return method(num_samples, c, temperature=temperature, seed=seed_pair(seed))

    # ----------------------------------------------------------------------------------------------------
    # Flow matching.
    def flow_matching_loss(self, x: TensorLike, c: TensorLike | None = None) -> tf.Tensor:
        """[batch] || v(x_t, t[, c]) - (x - x0) ||^2 at x_t = (1 - t) x0 + t x, x0 ~ p_Z(.[| c]), t ~ U(0, 1)
        (one draw per example); under nan_policy "omit" the rejected examples are computed on harmless values
        (their loss is left out by `compute_loss`)."""
        x = self._checked(x, support=self.support)
        c = self._context_for(x, c)
        if self.nan_policy == "omit":
            keep = self._valid_rows(x)
            if c is not None:
                keep = tf.logical_and(keep, finite_rows(c, len(self.context_shape)))
                c = self._fill_invalid(c, keep, event_rank=len(self.context_shape), fill=0.0)
            x = self._fill_invalid(x, keep)
        e = self._embedded(c)  # the context network, once per step, shared by the base and the field
        batch_size = tf.shape(x)[0]
        t = keras.random.uniform([batch_size], seed=self.seed_generator, dtype=x.dtype)
        base_seed = keras.random.randint([2], 0, 2**31 - 1, seed=self.seed_generator, dtype="int32")
        if e is not None and self._base_is_conditional():
            x0 = self._base(e).sample(seed=base_seed)
        else:
            x0 = self._base().sample(batch_size, seed=base_seed)
        x0 = tf.cast(x0, x.dtype)
        if self.coupling == "ot":
            x0 = tf.gather(x0, ot_assignment(x, x0))
        x_t = (1.0 - t[:, None]) * x0 + t[:, None] * x
        error = self.flow.velocity(x_t, t, e) - (x - x0)
        return tf.reduce_sum(tf.square(error), axis=-1)

    # ----------------------------------------------------------------------------------------------------
    # Keras integration.
    def call(self, x: Any, training: bool = False) -> tf.Tensor | dict[str, tf.Tensor]:
        """log p(x) (log p(x | c) for the pair (x, c)); in training under flow matching, {"flow_matching_loss":
        the per-example loss} instead (the solver is not called)."""
        if training and self.objective == "flow_matching":
            if self.context_shape is not None and isinstance(x, (tuple, list)) and len(x) == 2:
                return {FLOW_MATCHING_LOSS: self.flow_matching_loss(x[0], x[1])}
            return {FLOW_MATCHING_LOSS: self.flow_matching_loss(x)}
        return super().call(x, training=training)

    def compute_loss(
        self,
        x: Any = None,
        y: Any = None,
        y_pred: Any = None,
        sample_weight: Any = None,
        training: bool = True,
    ) -> tf.Tensor:
        """The mean flow-matching loss when `call` returned it (training under flow matching), else the mean NLL."""
        if y_pred is None:
            y_pred = self(x, training=training)
        if not isinstance(y_pred, dict):
            return super().compute_loss(x, y, y_pred, sample_weight, training)
        per_example = y_pred[FLOW_MATCHING_LOSS]
        kept = self._kept_examples(x, per_example)
        if kept is None:
            loss = tf.reduce_mean(per_example)
        else:
            loss = tf.reduce_sum(tf.where(kept > 0, per_example, tf.zeros_like(per_example))) / tf.maximum(
                tf.reduce_sum(kept), 1.0
            )
        total = tf.add_n([loss] + [tf.cast(extra, loss.dtype) for extra in self.losses])
        num_replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return total / num_replicas if num_replicas > 1 else total

    def compute_metrics(self, x: Any, y: Any, y_pred: Any, sample_weight: Any = None) -> dict[str, Any]:
        """FlowModel's metrics for log-densities; for a flow-matching step only the loss (there is no NLL to log)."""
        if not isinstance(y_pred, dict):
            return super().compute_metrics(x, y, y_pred, sample_weight)
        results = keras.Model.compute_metrics(self, x, y, y_pred, sample_weight)
        return {key: value for key, value in results.items() if key not in ("nll", "bits_per_dim")}

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            hidden_units=list(self.hidden_units),
            activation=self.activation,
            num_frequencies=self.num_frequencies,
            objective=self.objective,
            trace=self.trace,
            num_probes=self.num_probes,
            probe_seed=self.probe_seed,
            rtol=self.rtol,
            atol=self.atol,
            max_num_steps=self.max_num_steps,
            seed=self.seed,
            coupling=self.coupling,
        )
        return config
