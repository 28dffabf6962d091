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

__all__ = ["assert_bijector_invariants", "assert_dtype_agreement", "jacobian_log_det", "with_fixed_kwargs"]


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
    log|d fn(x)_i / d x_i| for every element.
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
