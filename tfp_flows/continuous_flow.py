"""`ContinuousFlow`: a continuous normalizing flow, TFP's `tfb.FFJORD` with a context and a chosen trace estimator.

The flow integrates a velocity field v from t = 0 (the base, latent side) to t = 1 (the data side), so forward is
the sampling direction as for every bijector here (Chen et al. 2018, "Neural ordinary differential equations";
Grathwohl et al. 2019, "FFJORD"):

    dx/dt = v(x(t), t[, c]),  x(0) = z,  x(1) = f(z);     log|det df/dz| = int_0^1 tr(dv/dx)(x(t), t) dt.

The log-determinant is integrated alongside the state by the same ODE solver (`tfp.math.ode.DormandPrince`, an
adaptive Runge-Kutta 4(5) method, with `rtol` and `atol`); the inverse integrates from t = 1 back to 0. The trace:

    trace="exact"       tr(dv/dx) from the Jacobian's diagonal (`tfb.ffjord.trace_jacobian_exact`): D gradient
                        passes per evaluation of v, exact; right for small D (2-D toys, small tabular data).
    trace="hutchinson"  Hutchinson's estimator tr(A) = E[eps^T A eps] with Rademacher probes eps (Hutchinson 1989;
                        FFJORD sec. 2.2; `tfb.ffjord.trace_jacobian_hutchinson`): one vector-Jacobian product per
                        probe and evaluation, unbiased. The probes are drawn once per solve from the fixed
                        `probe_seed` and shared by every example of a batch, so log_prob is a deterministic
                        function of x (the same value on every call, in any batch, after a reload and in a
                        SavedModel): an unbiased estimate over the seed, not the exact value. For large D, where
                        the exact trace's D passes cost too much.

A context c reaches v as the keyword `conditional_input` (TFP's FFJORD hands a solve's `constants` to the field,
and its adjoint returns their gradients), so `conditional_kwargs` routes it like any conditional step.

Example (the linear field v = a x, whose flow is x(1) = e^a z with log-determinant a D):
    >>> import tensorflow as tf
    >>> flow = ContinuousFlow(lambda t, x: 0.5 * x)
    >>> z = tf.constant([[1.0, -2.0]])
    >>> [round(v, 4) for v in flow.forward(z).numpy()[0].tolist()]
    [1.6487, -3.2974]
    >>> round(float(flow.forward_log_det_jacobian(z, event_ndims=1)[0]), 4)
    1.0
"""

from collections.abc import Callable
from typing import Any

import tensorflow as tf
import tensorflow_probability as tfp

from tfp_flows.conditioning import CONDITIONAL_INPUT
from tfp_flows.validation import check_int, check_number, check_one_of

tfb = tfp.bijectors

__all__ = ["TRACES", "ContinuousFlow"]

TRACES = ("exact", "hutchinson")


def rademacher_probes(probe_seed: int) -> Callable[..., tf.Tensor]:
    """`sample_fn(shape, dtype, seed)` for TFP's Hutchinson augmentation ([num_probes, batch, *event]): Rademacher
    probes (+-1) from the fixed stateless seed (probe_seed, 0), whatever seed TFP passes, one probe per probe index
    shared by every example, so an example's estimate does not depend on its place in the batch."""

    def sample_fn(shape: Any, dtype: tf.DType, seed: Any = None) -> tf.Tensor:
        del seed
        shape = tf.convert_to_tensor(shape, tf.int32)
        shared = tf.concat([shape[:1], [1], shape[2:]], 0)
        probes = tfp.random.rademacher(shared, dtype=dtype, seed=tf.constant([probe_seed, 0], tf.int32))
        return tf.broadcast_to(probes, shape)

    return sample_fn


class ContinuousFlow(tfb.FFJORD):  # type: ignore[name-defined]
    """FFJORD with forward = t: 0 -> 1 (latent -> data), a chosen trace, DormandPrince tolerances and a context.

    Args:
      velocity_fn: `velocity_fn(t, x)` (or `velocity_fn(t, x, conditional_input=c)` when `conditional`): dx/dt,
        a tensor of x's shape and dtype; t is a scalar tensor.
      trace: "exact" (default) or "hutchinson" (module docstring).
      num_probes: Hutchinson probes per solve (default 1).
      probe_seed: the fixed seed of the Hutchinson probes (default 0).
      rtol, atol: the DormandPrince solver's relative and absolute tolerances (default 1e-5 each).
      max_num_steps: the solver's step budget, or None for no limit.
      conditional: whether the methods take `conditional_input=c` (routed by `conditional_kwargs`).
      dtype, name, validate_args: as for every bijector.
    """

    def __init__(
        self,
        velocity_fn: Callable[..., tf.Tensor],
        trace: str = "exact",
        num_probes: int = 1,
        probe_seed: int = 0,
        rtol: float = 1e-5,
        atol: float = 1e-5,
        max_num_steps: int | None = None,
        conditional: bool = False,
        dtype: tf.DType = tf.float32,
        validate_args: bool = False,
        name: str = "continuous_flow",
    ):
        self.trace = check_one_of(trace, "trace", TRACES, owner="ContinuousFlow")
        self.num_probes = check_int(num_probes, "num_probes", owner="ContinuousFlow")
        self.probe_seed = int(probe_seed)
        # Kept for the conformance kit's ODE mode, whose tolerances follow the solver's (tfp_flows.testing).
        self.rtol = float(check_number(rtol, "rtol", minimum=0, strict=True, owner="ContinuousFlow"))
        self.atol = float(check_number(atol, "atol", minimum=0, strict=True, owner="ContinuousFlow"))
        check_int(max_num_steps, "max_num_steps", allow_none=True, owner="ContinuousFlow")
        self.accepts_conditional_input = bool(conditional)
        if trace == "exact":
            augmentation = tfb.ffjord.trace_jacobian_exact
        else:

            def augmentation(ode_fn: Callable[..., Any], state_shape: Any, state_dtype: tf.DType) -> Any:
                return tfb.ffjord.trace_jacobian_hutchinson(
                    ode_fn,
                    state_shape,
                    state_dtype,
                    sample_fn=rademacher_probes(self.probe_seed),
                    num_samples=self.num_probes,
                )

        solver = tfp.math.ode.DormandPrince(rtol=rtol, atol=atol, max_num_steps=max_num_steps)
        super().__init__(
            state_time_derivative_fn=velocity_fn,
            ode_solve_fn=solver.solve,
            trace_augmentation_fn=augmentation,
            initial_time=0.0,
            final_time=1.0,
            validate_args=validate_args,
            dtype=dtype,
            name=name,
        )

    def _check_kwargs(self, kwargs: dict[str, Any]) -> None:
        unexpected = set(kwargs) - ({CONDITIONAL_INPUT} if self.accepts_conditional_input else set())
        if unexpected:
            raise ValueError(
                f"ContinuousFlow: unexpected keyword argument(s) {sorted(unexpected)}; expected "
                f"{[CONDITIONAL_INPUT] if self.accepts_conditional_input else 'none (built with conditional=False)'}"
            )

    def _augmented_forward(self, x: tf.Tensor, **condition_kwargs: Any) -> Any:
        self._check_kwargs(condition_kwargs)
        return super()._augmented_forward(x, **condition_kwargs)

    def _augmented_inverse(self, y: tf.Tensor, **condition_kwargs: Any) -> Any:
        self._check_kwargs(condition_kwargs)
        return super()._augmented_inverse(y, **condition_kwargs)
