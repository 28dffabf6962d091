"""`implicit_root`: a root found by an iterative search, with gradients from the implicit function theorem.

A search returns x* with f(x*, theta) = 0. Where df/dx != 0 this defines x* = x*(theta), and the implicit
function theorem (Krantz & Parks 2002, "The Implicit Function Theorem"; used for root solves in Blondel et
al. 2022, "Efficient and Modular Implicit Differentiation") gives

    dx*/dtheta = -(df/dtheta) / (df/dx)      at (x*, theta),

so the backward pass needs f and its derivatives at the root only, never the search loop. Here f is
elementwise in x (f_i depends on x_i alone, as for every 1-D root solve in tfp_flows), so df/dx is a diagonal
and the incoming gradient dL/dx* maps to dL/dtheta = VJP of f at the root with the cotangent -(dL/dx*) / (df/dx).

One technique for all root solves (planar's inverse, the logistic-mixture forward): `tf.custom_gradient`
around the search, with df/dtheta from autodiff of f at the root (a `tf.GradientTape` inside the gradient
function). The forward value is the search's output unchanged and costs nothing more; the first-order
correction trick (x* + (c - stop_gradient(c)), c = -f(x*, theta) / stop_gradient(df/dx)) gives the same
gradient but evaluates f and its slope once more in every forward call, also when sampling asks for no
gradient; and hand-written partial derivatives of f are not needed. Both compile under XLA. Gradients are
first order: second derivatives through the root are not supported (the root is a constant inside the
gradient function). Where df/dx underflows to zero the root is held constant (its gradient is zero, not inf).

Example (x* = sqrt(theta), the root of x^2 - theta on x > 0, found by bisection; dx*/dtheta = 1 / (2 sqrt(theta))):
    >>> import tensorflow as tf
    >>> from tfp_flows.implicit_root import implicit_root
    >>> def bisect(theta):
    ...     low, high = tf.zeros_like(theta), tf.maximum(theta, 1.0)
    ...     for _ in range(60):
    ...         mid = 0.5 * (low + high)
    ...         low, high = tf.where(mid * mid < theta, mid, low), tf.where(mid * mid < theta, high, mid)
    ...     return 0.5 * (low + high)
    >>> theta = tf.constant([4.0, 9.0], tf.float64)
    >>> with tf.GradientTape() as tape:
    ...     tape.watch(theta)
    ...     x = implicit_root(bisect, lambda x, theta: x * x - theta, theta)
    >>> x.numpy(), tape.gradient(x, theta).numpy()
    (array([2., 3.]), array([0.25      , 0.16666667]))
"""

from collections.abc import Callable
from typing import Any

import tensorflow as tf

__all__ = ["implicit_root"]


def implicit_root(
    solve: Callable[..., Any], residual: Callable[..., Any], *params: Any, slope: Callable[..., Any] | None = None
) -> tf.Tensor:
    """x* = solve(*params), a root of residual(x*, *params) = 0, differentiable in `params` (see module docstring).

    Args:
      solve: `solve(*params) -> x*`, the search; never differentiated.
      residual: `residual(x, *params) -> f`, elementwise in x, of x's shape; differentiated at the root.
      *params: the tensors x* depends on (each gets a gradient of its own shape; broadcast them to their common
        shape first if the caller's autodiff should sum the gradients back to smaller shapes).
      slope: optional `slope(x, *params) -> df/dx` in closed form, for where autodiff of `residual` in x would
        lose precision; by default df/dx comes from autodiff.
    Returns:
      x*, with dL/dparams = VJP of `residual` at x* with cotangent -(dL/dx*) / (df/dx).
    """

    @tf.custom_gradient
    def root(*params: Any) -> tuple[tf.Tensor, Callable[[tf.Tensor], list[tf.Tensor]]]:
        x = tf.stop_gradient(solve(*params))

        def grad(dx: tf.Tensor) -> list[tf.Tensor]:
            with tf.GradientTape(persistent=True) as tape:
                tape.watch([x, *params])
                f = residual(x, *params)
            df_dx = tape.gradient(f, x) if slope is None else slope(x, *params)
            # Where the slope underflows (a root on a plateau flatter than float resolution, as a sample of a
            # conditioner fed inputs 1e3 times outside its data lands on) dx*/dtheta is beyond float range: the
            # root counts as a constant there, so one such element gives finite gradients instead of NaN in
            # every weight.
            cotangent = -dx / df_dx
            cotangent = tf.where(tf.math.is_finite(cotangent), cotangent, tf.zeros_like(cotangent))
            grads = tape.gradient(
                f, list(params), output_gradients=cotangent, unconnected_gradients=tf.UnconnectedGradients.ZERO
            )
            del tape
            return grads

        return x, grad

    return root(*params)
