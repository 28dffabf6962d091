"""The conformance kit: invariants every bijector must satisfy, public so users can check their own.

`assert_bijector_invariants(bijector, x, event_ndims)` asserts, for a batch of points `x` in the bijector's
forward domain (the latent / base side):

1. Round trips x -> y -> x and y -> x -> y, with TFP's cache defeated: every hand-off goes through a fresh
   tensor (`tf.constant(t.numpy())`), so an inverse cannot hide behind the value cached by the forward pass.
2. The forward log-det equals log|det J| of the Jacobian from `tf.GradientTape.batch_jacobian` over the
   flattened event (for `event_ndims=0`, the derivative of the elementwise map), and
   fldj(x) == -ildj(f(x)).
3. Values, log-dets and gradients (with respect to the input and to every trainable variable the
   bijector holds) are finite, for `x` and for any extra `edge_inputs` (zero, large magnitudes, tails).
4. The same numbers eagerly, inside `tf.function`, and under XLA (`jit_compile=True`).

`assert_dtype_agreement(make_bijector, x, event_ndims)` checks that float64 agrees with float32 to float32
accuracy, for a factory `make_bijector(dtype) -> bijector`.

`assert_ode_bijector_invariants(bijector, x, event_ndims)` is the kit's mode for bijectors that solve an ODE
(`tfp_flows.ContinuousFlow`, TFP's FFJORD), at tolerances that follow the solver's (`ode_tolerances`: a factor, 100
by default, times its rtol and atol; an ODE solve is exact only to its tolerances, while a wrong log-det, a sign or
a forgotten term, is off by O(1) and still fails). Each quantity is computed in its own `tf.function` (an adaptive
solver's loop run op by op costs seconds a call), in as few solves as the invariants allow:

1. One round trip x -> y -> x (the inverse solve starts from `tf.identity(y)`, which TFP's cache has never seen).
2. fldj(x) against the autodiff Jacobian of the forward solve (one adjoint pass per event dimension), and
   fldj(x) == -ildj(f(x)). The Jacobian of the inverse is not taken again: the round trip ties the inverse to the
   forward map, and ildj to fldj.
3. Values, log-dets and the gradient of their sum w.r.t. x and the trainable variables (one backward pass through
   both solves; a non-finite term cannot cancel) are finite, at x and at the `edge_inputs`, which round-trip too.
4. Eager against `tf.function`, and against XLA for the values (TFP's adjoint gradient does not compile: its
   TensorArray has no fixed size).

`with_fixed_kwargs(bijector, kwargs)` holds a conditional bijector's keyword arguments (its `bijector_kwargs`,
e.g. `conditional_kwargs(bijector, c)`) fixed, so the kit checks x -> f(x; c) at a fixed context c.

Example:
    >>> import tensorflow as tf, tensorflow_probability as tfp
    >>> from tfp_flows.testing import assert_bijector_invariants
    >>> assert_bijector_invariants(tfp.bijectors.Exp(), tf.constant([[0.5, -1.0]]), event_ndims=1)
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow_probability import bijectors as tfb

__all__ = [
    "ODE_TOLERANCE_FACTOR",
    "assert_bijector_invariants",
    "assert_dtype_agreement",
    "assert_ode_bijector_invariants",
    "jacobian_log_det",
    "ode_tolerances",
    "with_fixed_kwargs",
]

# Comparison tolerance / solver tolerance for ODE bijectors. DormandPrince bounds each step's local error by
# atol + rtol |x|; the global error of a solve, of a round trip (two solves) and of the adjoint's Jacobian add up
# over the steps and grow with the field's Lipschitz constant: up to ~50x the solver tolerances for the registry's
# fields (tests/bijector_cases/continuous.py: log-det against the autodiff Jacobian 3e-4, ildj against -fldj 5e-4
# at 1e-5). A wrong log-det is off by O(1).
ODE_TOLERANCE_FACTOR = 100.0


class _FixedKwargs(tfb.Bijector):
    """`bijector` with every method called with the same keyword arguments (see `with_fixed_kwargs`)."""

    def __init__(self, bijector: tfb.Bijector, kwargs: Mapping[str, Any]) -> None:
        parameters = dict(locals())
        self._bijector, self._kwargs = bijector, dict(kwargs)
        self._ndims = bijector.forward_min_event_ndims
        super().__init__(
            forward_min_event_ndims=self._ndims,
            inverse_min_event_ndims=bijector.inverse_min_event_ndims,
            parameters=parameters,
            name="fixed_kwargs",
        )

    def _get_parameterization(self) -> int:
        return id(self)  # never share TFP's cache with another instance (tfp_flows.instance_cache)

    def _forward(self, x: tf.Tensor) -> tf.Tensor:
        return self._bijector.forward(x, **self._kwargs)

    def _inverse(self, y: tf.Tensor) -> tf.Tensor:
        return self._bijector.inverse(y, **self._kwargs)

    def _forward_log_det_jacobian(self, x: tf.Tensor) -> tf.Tensor:
        return self._bijector.forward_log_det_jacobian(x, event_ndims=self._ndims, **self._kwargs)

    def _inverse_log_det_jacobian(self, y: tf.Tensor) -> tf.Tensor:
        return self._bijector.inverse_log_det_jacobian(
            y, event_ndims=self._bijector.inverse_min_event_ndims, **self._kwargs
        )


def with_fixed_kwargs(bijector: tfb.Bijector, kwargs: Mapping[str, Any]) -> tfb.Bijector:
    """A bijector computing `bijector.method(..., **kwargs)` for every method: a conditional bijector at a fixed
    context, for the invariants above (the context's batch shape must match the points')."""
    return _FixedKwargs(bijector, kwargs)


def _fresh(t: tf.Tensor) -> tf.Tensor:
    """A new tensor with the same value: no identity in common with anything TFP may have cached."""
    return tf.constant(np.array(t), dtype=t.dtype)


def _event_size(shape: Sequence[int], event_ndims: int) -> int:
    return int(np.prod(shape[len(shape) - event_ndims :])) if event_ndims else 1


def jacobian_log_det(fn: Callable[..., Any], x: tf.Tensor, event_ndims: int) -> tf.Tensor:
    """log|det d fn(x) / dx| per batch member, by autodiff over the flattened event.

    For `event_ndims == 0` the map is elementwise, the Jacobian diagonal, and the result is
    log|d fn(x)_i / d x_i| for every element. Otherwise the Jacobian takes one gradient pass per event dimension
    (`batch_jacobian(experimental_use_pfor=False)`), which a `fn` with a solver's while loop and custom gradient
    (an ODE solve) also needs, where vectorising the loop fails.
    """
    x = tf.convert_to_tensor(x)
    if event_ndims == 0:
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x)
        return tf.math.log(tf.abs(tape.gradient(y, x)))
    shape = x.shape.as_list()
    batch_shape = shape[: len(shape) - event_ndims]
    event_size = _event_size(shape, event_ndims)
    flat = tf.reshape(x, [-1, event_size])
    with tf.GradientTape(persistent=True) as tape:  # persistent: one gradient call per row (below)
        tape.watch(flat)
        y = tf.reshape(fn(tf.reshape(flat, shape)), [-1, event_size])
    # One gradient per event coordinate from the recorded tape. The default (pfor) traces and vectorises a new
    # function on every eager call: seconds for a loop-heavy bijector (an autoregressive forward is D network
    # passes), against milliseconds for the event sizes the kit is meant for.
    jac = tape.batch_jacobian(y, flat, experimental_use_pfor=False)
    _, log_abs_det = tf.linalg.slogdet(jac)
    return tf.reshape(log_abs_det, batch_shape)


def _close(actual: Any, desired: Any, rtol: float, atol: float, what: str) -> None:
    np.testing.assert_allclose(np.asarray(actual), np.asarray(desired), rtol=rtol, atol=atol, err_msg=what)


def _assert_finite(value: Any, what: str) -> None:
    value = np.asarray(value)
    if not np.all(np.isfinite(value)):
        bad = int(np.size(value) - np.sum(np.isfinite(value)))
        raise AssertionError(f"{what} is not finite: {bad} of {value.size} entries")


def _evaluate(bijector: tfb.Bijector, x: tf.Tensor, event_ndims: int) -> dict[str, tf.Tensor]:
    """forward, inverse(forward), fldj and ildj at f(x): the numbers compared across execution modes."""
    y = bijector.forward(x)
    return {
        "forward": y,
        "inverse": bijector.inverse(tf.identity(y)),
        "fldj": bijector.forward_log_det_jacobian(x, event_ndims=event_ndims),
        "ildj": bijector.inverse_log_det_jacobian(tf.identity(y), event_ndims=event_ndims),
    }


def _check_round_trips(
    bijector: tfb.Bijector, x: tf.Tensor, event_ndims: int, rtol: float, atol: float, name: str
) -> tf.Tensor:
    y = bijector.forward(_fresh(x))
    x_back = bijector.inverse(_fresh(y))
    _close(x_back, x, rtol, atol, f"{name}: inverse(forward(x)) != x")
    y_back = bijector.forward(_fresh(x_back))
    _close(y_back, y, rtol, atol, f"{name}: forward(inverse(y)) != y")
    return y


def _check_log_dets(
    bijector: tfb.Bijector, x: tf.Tensor, y: tf.Tensor, event_ndims: int, rtol: float, atol: float, name: str
) -> None:
    fldj = bijector.forward_log_det_jacobian(_fresh(x), event_ndims=event_ndims)
    ildj = bijector.inverse_log_det_jacobian(_fresh(y), event_ndims=event_ndims)
    expected = jacobian_log_det(bijector.forward, _fresh(x), event_ndims)
    fldj_full = tf.broadcast_to(fldj, tf.shape(expected))
    _close(fldj_full, expected, rtol, atol, f"{name}: forward_log_det_jacobian != log|det| of autodiff Jacobian")
    _close(tf.broadcast_to(ildj, tf.shape(expected)), -fldj_full, rtol, atol, f"{name}: ildj(f(x)) != -fldj(x)")
    # The inverse log-det must also agree with the autodiff Jacobian of the inverse itself.
    expected_inverse = jacobian_log_det(bijector.inverse, _fresh(y), event_ndims)
    _close(
        tf.broadcast_to(ildj, tf.shape(expected_inverse)),
        expected_inverse,
        rtol,
        atol,
        f"{name}: inverse_log_det_jacobian != log|det| of autodiff Jacobian of the inverse",
    )


def _check_finite(bijector: tfb.Bijector, x: tf.Tensor, event_ndims: int, name: str) -> None:
    x = _fresh(x)
    variables = list(bijector.trainable_variables)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = bijector.forward(x)
        fldj = bijector.forward_log_det_jacobian(x, event_ndims=event_ndims)
        x_back = bijector.inverse(_fresh(y))
        ildj = bijector.inverse_log_det_jacobian(_fresh(y), event_ndims=event_ndims)
        forward_objective = tf.reduce_sum(y) + tf.reduce_sum(fldj)
        inverse_objective = tf.reduce_sum(x_back) + tf.reduce_sum(ildj)
    for what, value in (("forward", y), ("fldj", fldj), ("inverse", x_back), ("ildj", ildj)):
        _assert_finite(value, f"{name}: {what}")
    for objective_name, objective in (("forward + fldj", forward_objective), ("inverse + ildj", inverse_objective)):
        grads = tape.gradient(objective, [x] + variables)
        for var, grad in zip(["x"] + [v.name for v in variables], grads):
            if grad is not None:
                _assert_finite(tf.convert_to_tensor(grad), f"{name}: gradient of {objective_name} w.r.t. {var}")
    del tape


def _check_execution_modes(
    bijector: tfb.Bijector, x: tf.Tensor, event_ndims: int, rtol: float, atol: float, name: str
) -> None:
    eager = _evaluate(bijector, _fresh(x), event_ndims)
    graph = tf.function(lambda t: _evaluate(bijector, t, event_ndims))(_fresh(x))
    xla = tf.function(lambda t: _evaluate(bijector, t, event_ndims), jit_compile=True)(_fresh(x))
    for key in eager:
        _close(graph[key], eager[key], rtol, atol, f"{name}: {key} differs between eager and tf.function")
        _close(xla[key], eager[key], rtol, atol, f"{name}: {key} differs between eager and XLA")


def assert_bijector_invariants(
    bijector: tfb.Bijector,
    x: tf.Tensor,
    event_ndims: int,
    rtol: float = 1e-4,
    atol: float = 1e-4,
    edge_inputs: Sequence[Any] = (),
    check_jacobian: bool = True,
    check_xla: bool = True,
    name: str | None = None,
) -> None:
    """Assert the conformance invariants (see the module docstring) for `bijector` at the points `x`.

    Args:
      bijector: a `tfp.bijectors.Bijector`.
      x: points in the forward domain (the latent side), with batch and event dimensions.
      event_ndims: the number of event dimensions the invariants are taken over.
      rtol, atol: tolerances for every comparison (choose them for the dtype of `x`).
      edge_inputs: further inputs (zeros, large magnitudes, tails) that must give finite values and
        gradients and still round-trip.
      check_jacobian: compare log-dets against the autodiff Jacobian (event sizes up to a few hundred).
      check_xla: also compile with XLA (turn off only for bijectors documented as not XLA-compatible).
      name: a label for the error messages (defaults to the bijector's name).
    Raises:
      AssertionError naming the invariant that failed.
    """
    name = name or bijector.name
    x = tf.convert_to_tensor(x)
    if not x.dtype.is_floating:
        raise TypeError(f"x must be a floating-point tensor; received dtype {x.dtype.name}")
    if x.shape.rank is None or x.shape.rank < event_ndims:
        raise ValueError(f"x must have at least event_ndims={event_ndims} dimensions; received shape {x.shape}")
    y = _check_round_trips(bijector, x, event_ndims, rtol, atol, name)
    if check_jacobian:
        _check_log_dets(bijector, x, y, event_ndims, rtol, atol, name)
    _check_finite(bijector, x, event_ndims, name)
    for i, edge in enumerate(edge_inputs):
        edge = tf.convert_to_tensor(edge, dtype=x.dtype)
        _check_finite(bijector, edge, event_ndims, f"{name} (edge input {i})")
        _check_round_trips(bijector, edge, event_ndims, rtol, atol, f"{name} (edge input {i})")
    if check_xla:
        _check_execution_modes(bijector, x, event_ndims, rtol, atol, name)
    else:
        graph = tf.function(lambda t: _evaluate(bijector, t, event_ndims))(_fresh(x))
        eager = _evaluate(bijector, _fresh(x), event_ndims)
        for key in eager:
            _close(graph[key], eager[key], rtol, atol, f"{name}: {key} differs between eager and tf.function")


def assert_dtype_agreement(
    make_bijector: Callable[[tf.DType], tfb.Bijector],
    x: tf.Tensor,
    event_ndims: int,
    rtol: float = 1e-4,
    atol: float = 1e-4,
    name: str | None = None,
) -> None:
    """Assert float64 and float32 give the same forward, inverse and log-dets to float32 accuracy.

    Args:
      make_bijector: `make_bijector(dtype) -> Bijector` building the same bijector in either dtype.
      x: points in the forward domain (any float dtype; cast to each).
    """
    results = {}
    for dtype in (tf.float32, tf.float64):
        bijector = make_bijector(dtype)
        results[dtype] = _evaluate(bijector, tf.cast(_fresh(x), dtype), event_ndims)
    name = name or "bijector"
    for key in results[tf.float32]:
        _close(
            results[tf.float32][key],
            tf.cast(results[tf.float64][key], tf.float32),
            rtol,
            atol,
            f"{name}: {key} differs between float32 and float64",
        )


def ode_tolerances(
    bijector: tfb.Bijector,
    solver_rtol: float | None = None,
    solver_atol: float | None = None,
    factor: float = ODE_TOLERANCE_FACTOR,
) -> tuple[float, float]:
    """(rtol, atol) for comparing an ODE bijector's numbers: `factor` times the solver's tolerances, read from the
    bijector's `rtol` and `atol` attributes (as `tfp_flows.ContinuousFlow` has them) unless given."""
    tolerances = []
    for what, given in (("rtol", solver_rtol), ("atol", solver_atol)):
        value = getattr(bijector, what, None) if given is None else given
        if value is None:
            raise ValueError(
                f"solver_{what}: expected the ODE solver's {what} (a positive float), as an argument or as the "
                f"bijector's `{what}` attribute; received None and {type(bijector).__name__} has no `{what}`"
            )
        if not value > 0:
            raise ValueError(f"solver_{what}: expected a positive float; received {value!r}")
        tolerances.append(factor * float(value))
    return tolerances[0], tolerances[1]


def _ode_jacobian(bijector: tfb.Bijector, x: tf.Tensor, event_ndims: int) -> tf.Tensor:
    """log|det dy/dx| of the forward solve by autodiff: one adjoint pass per event dimension."""
    event_size = int(np.prod(x.shape[x.shape.rank - event_ndims :])) if event_ndims else 1
    flat = tf.reshape(x, [-1, event_size])
    with tf.GradientTape() as tape:
        tape.watch(flat)
        y = tf.reshape(bijector.forward(tf.reshape(flat, tf.shape(x))), [-1, event_size])
    if not event_ndims:
        return tf.reshape(tf.math.log(tf.abs(tape.gradient(y, flat))), tf.shape(x))
    _, log_abs_det = tf.linalg.slogdet(tape.batch_jacobian(y, flat, experimental_use_pfor=False))
    return tf.reshape(log_abs_det, tf.shape(x)[: x.shape.rank - event_ndims])


def _ode_gradients(bijector: tfb.Bijector, x: tf.Tensor, event_ndims: int) -> list[tf.Tensor | None]:
    """Gradients w.r.t. x and the trainable variables of forward + fldj + inverse + ildj, summed: one backward
    pass through both solves (a non-finite term cannot cancel: inf - inf is NaN)."""
    variables = list(bijector.trainable_variables)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = bijector.forward(x)
        y_fresh = tf.identity(y)
        objective = (
            tf.reduce_sum(y)
            + tf.reduce_sum(bijector.forward_log_det_jacobian(x, event_ndims=event_ndims))
            + tf.reduce_sum(bijector.inverse(y_fresh))
            + tf.reduce_sum(bijector.inverse_log_det_jacobian(y_fresh, event_ndims=event_ndims))
        )
    return tape.gradient(objective, [x] + variables)


def _ode_evaluate(bijector: tfb.Bijector, x: tf.Tensor, event_ndims: int) -> dict[str, tf.Tensor]:
    """forward, inverse(forward), fldj and ildj at f(x) in two solves (each log-det comes with its solve)."""
    y = bijector.forward(x)
    y_fresh = tf.identity(y)
    return {
        "forward": y,
        "fldj": bijector.forward_log_det_jacobian(x, event_ndims=event_ndims),
        "inverse": bijector.inverse(y_fresh),
        "ildj": bijector.inverse_log_det_jacobian(y_fresh, event_ndims=event_ndims),
    }


def _check_ode_values(values: dict[str, Any], x: tf.Tensor, rtol: float, atol: float, name: str) -> None:
    for what, value in values.items():
        _assert_finite(value, f"{name}: {what}")
    _close(values["inverse"], x, rtol, atol, f"{name}: inverse(forward(x)) != x")
    fldj = np.asarray(values["fldj"])
    _close(np.broadcast_to(values["ildj"], fldj.shape), -fldj, rtol, atol, f"{name}: ildj(f(x)) != -fldj(x)")


def _check_ode_gradients(gradients: list[Any], names: list[str], name: str) -> None:
    for var, grad in zip(names, gradients):
        if grad is not None:
            what = f"{name}: gradient of forward + fldj + inverse + ildj w.r.t. {var}"
            _assert_finite(tf.convert_to_tensor(grad), what)


def assert_ode_bijector_invariants(
    bijector: tfb.Bijector,
    x: tf.Tensor,
    event_ndims: int,
    solver_rtol: float | None = None,
    solver_atol: float | None = None,
    tolerance_factor: float = ODE_TOLERANCE_FACTOR,
    edge_inputs: Sequence[Any] = (),
    check_jacobian: bool = True,
    check_xla: bool = True,
    name: str | None = None,
) -> None:
    """The conformance invariants (module docstring) for a bijector that solves an ODE, at tolerances that follow
    the solver's (`ode_tolerances`: `tolerance_factor` times `solver_rtol` and `solver_atol`, by default the
    bijector's own `rtol` and `atol`).

    Every quantity is computed in a `tf.function` (graph mode), except the eager side of the eager-against-graph
    comparison: a solver's loop run op by op costs seconds a call. The autodiff Jacobian takes one gradient pass
    per event dimension, through the solver's own gradient (TFP's ODE solvers: the adjoint method), so keep events
    small: a 2-D case with an 8-unit field took 70-120 s alone and 80-390 s (float32 or float64) in a pytest run
    beside other jobs on 2 CPU cores (load average 8), most of it TensorFlow building and optimising the solver's
    graphs.

    Args:
      bijector: a `tfp.bijectors.Bijector` whose methods solve an ODE (`tfp_flows.ContinuousFlow`, `tfb.FFJORD`).
      x: points in the forward domain (the latent side), with batch and event dimensions.
      event_ndims: the number of event dimensions the invariants are taken over.
      solver_rtol, solver_atol: the solver's tolerances (default: the bijector's `rtol` and `atol` attributes).
      tolerance_factor: comparison tolerance / solver tolerance (default `ODE_TOLERANCE_FACTOR`).
      edge_inputs: further inputs (zeros, large magnitudes) that must give finite values and gradients and still
        round-trip.
      check_jacobian: compare log-dets against the autodiff Jacobian.
      check_xla: also compile with XLA (TFP's DormandPrince compiles; turn off for a solver that does not).
      name: a label for the error messages (defaults to the bijector's name).
    Raises:
      AssertionError naming the invariant that failed; ValueError when the solver's tolerances are unknown.
    """
    name = name or bijector.name
    rtol, atol = ode_tolerances(bijector, solver_rtol, solver_atol, tolerance_factor)
    x = tf.convert_to_tensor(x)
    if not x.dtype.is_floating:
        raise TypeError(f"x must be a floating-point tensor; received dtype {x.dtype.name}")
    if x.shape.rank is None or x.shape.rank < event_ndims:
        raise ValueError(f"x must have at least event_ndims={event_ndims} dimensions; received shape {x.shape}")
    # One trace for x and every edge input (the batch dimension is left open); a function per quantity: one graph
    # with the values, the Jacobian and the gradients together took minutes for TensorFlow to optimise.
    signature = [tf.TensorSpec([None] + x.shape.as_list()[1:], x.dtype)]
    values = tf.function(lambda t: _ode_evaluate(bijector, t, event_ndims), input_signature=signature)
    gradients = tf.function(lambda t: _ode_gradients(bijector, t, event_ndims), input_signature=signature)
    names = ["x"] + [v.name for v in bijector.trainable_variables]
    at_x = values(_fresh(x))
    _check_ode_values(at_x, x, rtol, atol, name)
    if check_jacobian:
        expected = tf.function(lambda t: _ode_jacobian(bijector, t, event_ndims))(_fresh(x))
        fldj = np.broadcast_to(at_x["fldj"], np.shape(expected))
        _close(fldj, expected, rtol, atol, f"{name}: forward_log_det_jacobian != log|det| of autodiff Jacobian")
    _check_ode_gradients(gradients(_fresh(x)), names, name)
    for i, edge in enumerate(edge_inputs):
        edge = tf.convert_to_tensor(edge, dtype=x.dtype)
        _check_ode_values(values(_fresh(edge)), edge, rtol, atol, f"{name} (edge input {i})")
        _check_ode_gradients(gradients(_fresh(edge)), names, f"{name} (edge input {i})")
    eager = _ode_evaluate(bijector, _fresh(x), event_ndims)
    modes = {"tf.function": at_x}
    if check_xla:
        # Values only, as for every bijector: TFP's adjoint gradient keeps a TensorArray of unbounded size, which
        # XLA refuses ("XLA compilation requires a fixed tensor list size").
        modes["XLA"] = tf.function(lambda t: _ode_evaluate(bijector, t, event_ndims), jit_compile=True)(_fresh(x))
    for mode, result in modes.items():
        for key in eager:
            _close(result[key], eager[key], rtol, atol, f"{name}: {key} differs between eager and {mode}")
