"""`LogisticMixtureCDF`: the logit of a mixture-of-logistics CDF, elementwise (Flow++, Ho et al. 2019).

Flow++'s elementwise map (Ho, Chen, Srinivas, Duan & Abbeel 2019, "Flow++", eq. (7) without the outer affine
map) sends data x to a latent z:

    z = logit(F(x)),    F(x) = sum_k pi_k sigmoid(u_k),    u_k = (x - mu_k) / s_k,
    pi = softmax(logits),  mu = locs,  s = exp(log_scales),
    log dz/dx = log f(x) - log F(x) - log(1 - F(x)),    f(x) = sum_k pi_k sigmoid(u_k) sigmoid(-u_k) / s_k.

Direction: that map is the density direction, so it is this bijector's INVERSE (TFP's convention: forward =
latent -> data, the sampling direction). The FORWARD solves logit(F(x)) = z for x by a bracketed root search.

Numerics:
  * Everything is in log space: log F = logsumexp_k(log pi_k + log sigmoid(u_k)) and log(1 - F) =
    logsumexp_k(log pi_k + log sigmoid(-u_k)), never the log of a difference, so z and the log-det stay exact
    and finite deep in the tails (x = +-1e3 with small scales), with finite gradients.
  * Bracket: F(x) <= sigmoid(z) at the smallest component quantile min_k (mu_k + s_k z) (every component CDF
    is <= sigmoid(z) there), and F(x) >= sigmoid(z) at the largest, so the root lies in
    [min_k (mu_k + s_k z), max_k (mu_k + s_k z)]: exact, O(K), no search for a bracket. Two more closed-form
    bounds (a single term of the sum cannot exceed it; the largest term is at least 1/K of it; see `_bracket`)
    tighten it when a light but very wide component stretches it. It is widened by a margin above float
    rounding, because the root sits on an end of it when one component dominates a tail.
  * Root search (`_search`): on the side z <= 0 it solves for F(x), on the side z > 0 for 1 - F(x), each accurate
    where the other saturates, by Newton's method on G = logit F(x) - z (written for that side), which is the
    latent error itself and exactly linear in x for one component. Each step costs one log-sum-exp and one
    weighted sum over the components (G and G' from one exponential per component). It starts from the z-quantile
    of the logistic with the mixture's mean and variance (exact for K = 1) and is safeguarded by the bracket:
    cubic Hermite interpolation when the last two points straddle the root, Newton when it stays in the bracket
    and shrinks (`rtsafe`), bisection otherwise. The budget is fixed, `MAX_ITERATIONS[dtype]` steps (see the
    constant), so it compiles under XLA; it stops once every element has converged.
  * Two phases: the whole batch is searched until at most 1/16 of it is left (4 steps on Flow++-like
    mixtures, against 11-12 full Chandrupatla steps, one log-sum-exp each, before), then those elements alone,
    gathered into a smaller batch, so the few slow ones (S-shaped or staircase CDFs, up to ~20 steps) do not
    cost full passes.
  * Accuracy: in float32 the latent round trip logit(F(forward(z))) - z stays below 1e-4 over z in [-60, 60]
    and the data-space error below 1e-4 * max(1, |x|) wherever dz/dx is not tiny; where the CDF is flat
    (between far-apart sharp components) x is fixed by z only to (float rounding) / (dz/dx), as for any
    method.
  * Gradients of the forward (with respect to z and to the parameters) come from the implicit function
    theorem, dx/dz = 1 / (dz/dx), dx/dtheta = -(d logit F / dtheta) / (dz/dx), not from differentiating the
    search loop (`tfp_flows.implicit_root`, the technique shared with planar's inverse). They are first-order
    exact; second derivatives through the search are not supported.

Event shape: scalar (`forward_min_event_ndims=0`). The parameters carry a trailing axis of K components;
x and z have the parameters' shape without that axis (any shape that broadcasts with it).

Example:
    >>> import tensorflow as tf
    >>> from tfp_flows import LogisticMixtureCDF
    >>> bijector = LogisticMixtureCDF(logits=[0.0, 1.0], locs=[-1.0, 2.0], log_scales=[0.0, -0.5])
    >>> z = bijector.inverse(tf.constant([0.3, -4.0]))      # data -> latent (closed form)
    >>> z.numpy().round(4)
    array([-1.0819, -4.3461], dtype=float32)
    >>> bijector.forward(tf.identity(z)).numpy().round(4)   # latent -> data (root search)
    array([ 0.3, -4. ], dtype=float32)
"""

from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from tensorflow_probability import bijectors as tfb
from tensorflow_probability.python.internal import parameter_properties, tensor_util
from tensorflow_probability.python.internal import prefer_static as ps

from tfp_flows import validation
from tfp_flows.implicit_root import implicit_root

__all__ = ["LogisticMixtureCDF", "MAX_ITERATIONS", "mixture_logit_cdf", "invert_mixture_logit_cdf"]

# The root search's iteration budget per dtype: the smallest that met the accuracy target on every sampled
# problem, plus a margin of 2. Measured on 5 x 300 random mixtures for each K in {2, 3, 4, 6, 16, 32}, z in
# [-60, 60], with logits ~ U(-10, 10), locs ~ U(-20, 20), log_scales ~ U(-4, 3): float32 reaches a latent error
# of 1e-4 (beyond float rounding) within 16 steps and float64 reaches 1e-10 within 17 on 29 of the 30 draws;
# the last one, a staircase of separated sharp components, needs 21 in both. Flow++-like parameters (logits,
# locs ~ N(0, 2), log_scales ~ N(-0.5, 1)) need at most 11 (float32) / 13 (float64). The search stops once every
# element has converged (most after 3-4 steps), so the budget only bounds the worst case.
MAX_ITERATIONS = {tf.float32: 23, tf.float64: 23}


def mixture_logit_cdf(
    x: tf.Tensor, log_weights: tf.Tensor, locs: tf.Tensor, log_scales: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """z = logit(F(x)) and log dz/dx, elementwise, in log space (the closed-form, density direction).

    Args:
      x: tensor of shape S (broadcasting with the parameters' shape without the component axis).
      log_weights: normalised log mixture weights log pi_k (`tf.math.log_softmax(logits)`), shape [..., K].
      locs, log_scales: mu_k and log s_k, shape [..., K].
    Returns:
      (z, log_det), both of the broadcast shape.
    """
    u = (x[..., tf.newaxis] - locs) * tf.math.exp(-log_scales)
    # log sigmoid(-u) = -softplus(u) and log sigmoid(u) = u - softplus(u): one softplus serves both.
    softplus_u = tf.math.softplus(u)
    log_cdf = tf.reduce_logsumexp(log_weights + u - softplus_u, axis=-1)
    log_sf = tf.reduce_logsumexp(log_weights - softplus_u, axis=-1)
    log_pdf = tf.reduce_logsumexp(log_weights - log_scales + u - 2.0 * softplus_u, axis=-1)
    return log_cdf - log_sf, log_pdf - log_cdf - log_sf


def _bracket(
    abs_z: tf.Tensor, log_mass: tf.Tensor, signed_locs: tf.Tensor, scales: tf.Tensor, log_weights: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """An interval [low, high] that contains the root y of H(y) = mass (see `_search`): closed form, O(K).

    In the variable of the search, H(y) = sum_k pi_k sigmoid((y - m_k) / s_k), m_k = sign * mu_k, and
    mass = sigmoid(-|z|) <= 1/2. Three facts about that sum bound its root:
      * component quantiles: min_k (m_k - s_k |z|) <= y <= max_k (m_k - s_k |z|) (every component CDF is <= mass
        at the smallest, >= mass at the largest);
      * each term is <= mass, so y <= m_k + s_k logit(r_k) <= m_k + s_k (log r_k + log 2) for every k with
        r_k = mass / pi_k <= 1/2;
      * the largest of the K terms is >= mass / K, and a term is at most its weight pi_k, so the largest is one
        of the components with r_k <= K, and y >= min over those k of m_k + s_k log(r_k / K) (logit(r) >= log r).
    The last two keep the bracket tight when a light but very wide component stretches the first (then a
    bisection step would be wasted on it): a component of weight below mass / K bounds nothing from below,
    however wide it is. With log r in place of logit(r) they cost no transcendental function and are looser by
    at most s_k log 2. Also returned: the largest scale among the components with r_k <= K, which set the
    slope of G near the root (see `_search`'s margin).
    """
    quantiles = signed_locs - scales * abs_z[..., tf.newaxis]
    log_two = np.log(2.0)
    log_ratio = log_mass[..., tf.newaxis] - log_weights  # log r_k (+inf for a dropped component)
    upper = log_ratio + log_two
    upper = tf.where(upper <= 0.0, signed_locs + scales * upper, tf.constant(np.inf, abs_z.dtype))
    log_num_components = tf.math.log(tf.cast(tf.shape(log_weights)[-1], abs_z.dtype))
    # The heaviest component always qualifies: pi_k >= 1/K and mass <= 1/2 give log r_k <= log K - log 2.
    log_share = log_ratio - log_num_components
    qualifies = log_share <= 0.0
    infinity = tf.constant(np.inf, abs_z.dtype)
    lower = tf.where(qualifies, signed_locs + scales * tf.minimum(log_share, 0.0), infinity)
    low = tf.maximum(tf.reduce_min(quantiles, axis=-1), tf.reduce_min(lower, axis=-1))
    high = tf.minimum(tf.reduce_max(quantiles, axis=-1), tf.reduce_min(upper, axis=-1))
    slope_scale = tf.reduce_max(tf.where(qualifies, scales, tf.zeros_like(scales)), axis=-1)
    return low, high, slope_scale


def _moment_matched_guess(
    abs_z: tf.Tensor, sign: float, log_weights: tf.Tensor, locs: tf.Tensor, scales: tf.Tensor
) -> tf.Tensor:
    """The z-quantile of the logistic with the mixture's mean and variance, in the search's variable.

    Mean m = sum_k pi_k mu_k, variance v = sum_k pi_k (mu_k^2 + pi^2 s_k^2 / 3) - m^2 (a logistic of scale s has
    variance pi^2 s^2 / 3), so the matched scale is sqrt(3 v) / pi and its quantile is m + z sqrt(3 v) / pi.
    Exact for K = 1; for the overlapping components of Flow++ it starts the search within about one latent
    unit of the root (twice as close as the weighted mean of the component quantiles).
    """
    weights = tf.math.exp(log_weights)
    weighted_locs = weights * locs
    mean = tf.reduce_sum(weighted_locs, axis=-1)
    variance = tf.reduce_sum(weighted_locs * locs + (np.pi**2 / 3.0) * weights * tf.square(scales), axis=-1)
    variance = variance - tf.square(mean)
    matched_scale = tf.sqrt(tf.maximum(3.0 * variance, 0.0)) / np.pi
    return sign * mean - matched_scale * abs_z


def _search(
    z: tf.Tensor, log_weights: tf.Tensor, locs: tf.Tensor, log_scales: tf.Tensor, max_iterations: int
) -> tuple[tf.Tensor, tf.Tensor]:
    """The root x of logit(F(x)) = z, and the number of steps taken, by a safeguarded Newton search.

    Solved on the side of the median where the CDF is small, each side accurate where the other saturates: in
    y = sign * x (sign = +1 for z <= 0, -1 for z > 0), H(y) = F(x) or 1 - F(x), the root of
        G(y) = logit H(y) + |z| = log H - log(1 - H) + |z|,   G'(y) = (h / H) / (1 - H),
    with log H = logsumexp_k(log pi_k + log sigmoid(u_k)) and h / H = sum_k r_k sigmoid(-u_k) / s_k (r the
    softmax of those terms, u_k = (y - m_k) / s_k): one log-sum-exp and one weighted sum per step. G is the
    latent error itself, and it is exactly linear (one Newton step) for a single component.
    Each step, from the bracket of `_bracket` (kept up to date with the sign of every G evaluated):
      1. if the last two points straddle the root (they are then the bracket's ends), inverse cubic Hermite
         interpolation of y(G) through both (values and slopes 1 / G'), when it falls inside the bracket;
      2. else the Newton step, when it stays in the bracket and at most halves the step before last (otherwise
         Newton may cycle between two flat regions of an S-shaped G: the `rtsafe` rule, Press et al.,
         "Numerical Recipes", 3rd ed., section 9.4);
      3. else bisection.
    It stops once every element has converged or after `max_iterations` steps; the result is one last Newton
    step from the final point (quadratic convergence: far below the tolerance that stopped it).
    """
    dtype = z.dtype
    eps = np.finfo(dtype.as_numpy_dtype).eps
    # A scale past float range (a conditioner's log-scale of 100 from inputs far outside the data, 1e3 times)
    # would turn the bracket and the moment-matched guess into inf - inf. Searching with it capped at
    # finfo.max^(1/3) (7e12 in float32) moves that component's CDF, flat at 1/2 +- |y - mu| / (4 s), by less than
    # float rounding over any reachable y, and keeps s |z| and s^2 finite.
    log_scales = tf.minimum(log_scales, tf.constant(np.log(np.finfo(dtype.as_numpy_dtype).max) / 3.0, dtype))
    scales, inverse_scales = tf.math.exp(log_scales), tf.math.exp(-log_scales)
    sign = tf.where(z > 0, -tf.ones_like(z), tf.ones_like(z))
    signed_locs = sign[..., tf.newaxis] * locs
    abs_z = tf.abs(z)
    log_mass = -tf.math.softplus(abs_z)  # log sigmoid(-|z|)
    low, high, slope_scale = _bracket(abs_z, log_mass, signed_locs, scales, log_weights)
    # The root can sit on an end of the bracket (one component dominating a tail), where G is zero up to
    # rounding; a Newton step would then leave the bracket and be replaced by slow bisection. Widen by more
    # than rounding can explain: G errs by ~eps (1 + |log mass| + log K) (the bounds' terms s_k |log r_k| are
    # at most ~2 s_k (|log mass| + log K) for the components they use) and changes by about >= 1 / s_k per unit,
    # s_k the largest scale among the components that can hold the largest term at the root (`_bracket`). A
    # lighter component, however wide, moves G by less than that: counted, a weight of 1e-8 with a scale of
    # 1e10 widened the bracket to +-3e5, more than the step budget can bisect down to a sharp component's width.
    log_num_components = tf.math.log(tf.cast(tf.shape(log_weights)[-1], dtype))
    margin = 32.0 * eps * slope_scale * (1.0 + tf.abs(log_mass) + log_num_components) + 4.0 * eps * tf.maximum(
        tf.abs(low), tf.abs(high)
    )
    low, high = low - margin, high + margin
    y = tf.clip_by_value(_moment_matched_guess(abs_z, sign, log_weights, locs, scales), low, high)
    # Tolerances. Value: G is the latent error, so eps^(7/8) (8.8e-7 in float32, 2.1e-14 in float64) plus the
    # rounding of its terms (a few ulps of |log mass|). Position: eps^(7/8) of the smallest scale (capped at 1;
    # dG/dy <= 1 / min_k s_k near the root) plus a few ulps of |y|, so that a sharp component far from the origin
    # cannot make the search chase float resolution.
    rtol = eps**0.875
    value_tolerance = rtol + 8.0 * eps * tf.abs(log_mass)
    position_floor = rtol * tf.minimum(tf.math.exp(tf.reduce_min(log_scales, axis=-1)), 1.0)
    # Flatten: the second phase gathers and scatters elements.
    num_components = tf.shape(log_weights)[-1]
    constants = [tf.reshape(t, [-1, num_components]) for t in (signed_locs, inverse_scales, log_weights)] + [
        tf.reshape(t, [-1]) for t in (abs_z, value_tolerance, position_floor)
    ]
    finite = tf.reshape(tf.math.is_finite(z), [-1])
    infinity = tf.fill(tf.shape(finite), tf.constant(np.inf, dtype))
    zeros = tf.zeros_like(infinity)
    state = [
        tf.reshape(y, [-1]),
        tf.reshape(low, [-1]),
        tf.reshape(high, [-1]),
        -infinity,
        infinity,
        zeros,
        zeros,
        zeros,
        infinity,
        infinity,
        ~finite,
    ]
    # Two phases: all elements until at most 1/16 of them are left, then those alone (gathered), so the few
    # slow elements of a large batch (S-shaped or staircase stretches of G) do not cost full passes.
    num_elements = z.shape.num_elements()
    if num_elements is None:
        num_elements = tf.size(z)
    tail = (num_elements + TAIL_FRACTION - 1) // TAIL_FRACTION
    steps, state = _newton_loop(constants, state, 0, max_iterations, tail)
    index = _first_unconverged(state[-1], tail)
    steps, tail_state = _newton_loop(
        [tf.gather(t, index) for t in constants], [tf.gather(t, index) for t in state], steps, max_iterations, 0
    )
    y = tf.tensor_scatter_nd_update(state[0], index[:, tf.newaxis], tail_state[0])
    x = tf.where(finite, tf.reshape(sign, [-1]) * y, tf.constant(np.nan, dtype))
    return tf.reshape(x, tf.shape(z)), steps


# The search's second phase starts once at most 1 / TAIL_FRACTION of the elements are left (see `_search`).
TAIL_FRACTION = 16


def _first_unconverged(done: tf.Tensor, count: int) -> tf.Tensor:
    """Indices of the first `count` elements with `done` False, in order; padded with index 0 if fewer.

    A scatter by running count, not a sort: XLA's sort (`top_k`, `argsort`) costs several times more on CPU.
    """
    remaining = ~done
    position = tf.cumsum(tf.cast(remaining, tf.int32)) - 1
    # Elements past the first `count` (and the converged ones) go to a spare slot, dropped afterwards.
    slot = tf.where(remaining & (position < count), position, count)
    indices = tf.tensor_scatter_nd_update(
        tf.zeros([count + 1], tf.int32), slot[:, tf.newaxis], tf.range(tf.size(done), dtype=tf.int32)
    )
    return indices[:count]


def _newton_loop(
    constants: Sequence[tf.Tensor],
    state: Sequence[tf.Tensor],
    steps: int | tf.Tensor,
    max_iterations: int,
    stop_count: int | tf.Tensor,
) -> tuple[tf.Tensor, list[tf.Tensor]]:
    """Safeguarded Newton steps (see `_search`) until at most `stop_count` elements are left or the budget ends.

    Args:
      constants: per element [n, K]: signed locations m_k, 1 / s_k, log pi_k; [n]: |z|, value tolerance,
        position tolerance floor.
      state: [n] each: y, the bracket (low, high), G and G' at its ends, the last G, the last two step sizes,
        and whether the element has converged.
      steps: steps taken so far (counted against `max_iterations`).
    Returns:
      (steps, state) at the end.
    """
    signed_locs, inverse_scales, log_weights, abs_z, value_tolerance, position_floor = constants
    eps = np.finfo(abs_z.dtype.as_numpy_dtype).eps
    # G' is accurate only where 1 - H is (H <= 3/4, the root's side); past that a tiny Newton step is no proof.
    log_three_quarters = np.log(0.75)

    def objective(y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """(G(y), G'(y), log H(y)): one pass over the components."""
        w = (signed_locs - y[..., tf.newaxis]) * inverse_scales  # -u_k
        # softplus(w) = -log sigmoid(u_k) and sigmoid(w) = sigmoid(-u_k) from one exponential, exp(-|w|) (a
        # third faster under XLA than separate softplus and sigmoid).
        exp_neg_abs = tf.math.exp(-tf.abs(w))
        terms = log_weights - tf.nn.relu(w) - tf.math.log1p(exp_neg_abs)  # log pi_k + log sigmoid(u_k)
        sigmoid_w = tf.where(w >= 0.0, tf.ones_like(w), exp_neg_abs) / (1.0 + exp_neg_abs)
        shift = tf.reduce_max(terms, axis=-1, keepdims=True)
        scaled = tf.math.exp(terms - shift)
        total = tf.reduce_sum(scaled, axis=-1)
        log_h = tf.minimum(tf.math.log(total) + shift[..., 0], 0.0)  # rounding can put H a hair above 1
        dlog_h = tf.reduce_sum(scaled * sigmoid_w * inverse_scales, axis=-1) / total
        return log_h - tfp.math.log1mexp(log_h) + abs_z, dlog_h / -tf.math.expm1(log_h), log_h

    def body(
        i: tf.Tensor,
        y: tf.Tensor,
        low: tf.Tensor,
        high: tf.Tensor,
        g_low: tf.Tensor,
        g_high: tf.Tensor,
        d_low: tf.Tensor,
        d_high: tf.Tensor,
        g_last: tf.Tensor,
        step_last: tf.Tensor,
        step_before: tf.Tensor,
        done: tf.Tensor,
    ) -> tuple[tf.Tensor, ...]:
        g, dg, log_h = objective(y)
        below, above = g < 0.0, g > 0.0
        low, g_low, d_low = tf.where(below, y, low), tf.where(below, g, g_low), tf.where(below, dg, d_low)
        high, g_high, d_high = tf.where(above, y, high), tf.where(above, g, g_high), tf.where(above, dg, d_high)
        newton_step = g / dg
        newton = y - newton_step
        newton_inside = (newton >= low) & (newton <= high)
        # Cubic Hermite y(t) on [low, high] with G = g_low + t (g_high - g_low), evaluated at G = 0.
        span = g_high - g_low
        t = -g_low / span
        slope_low, slope_high = span / d_low, span / d_high  # dy/dt at t = 0 and t = 1
        hermite = (
            low
            + t * slope_low
            + tf.square(t) * (3.0 * (high - low) - 2.0 * slope_low - slope_high)
            + t * tf.square(t) * (2.0 * (low - high) + slope_low + slope_high)
        )
        use_hermite = (g * g_last < 0.0) & (hermite > low) & (hermite < high)
        use_newton = newton_inside & (tf.abs(newton_step) <= 0.5 * step_before)
        y_next = tf.where(use_hermite, hermite, tf.where(use_newton, newton, 0.5 * (low + high)))
        position_tolerance = position_floor + 4.0 * eps * tf.abs(y)
        converged = (
            (tf.abs(g) <= value_tolerance)
            | (high - low <= position_tolerance)
            | (newton_inside & (tf.abs(newton_step) <= position_tolerance) & (log_h <= log_three_quarters))
        )
        y_next = tf.where(done, y, tf.where(converged, tf.where(newton_inside, newton, y), y_next))
        return (
            i + 1,
            y_next,
            low,
            high,
            g_low,
            g_high,
            d_low,
            d_high,
            g,
            tf.abs(y_next - y),
            step_last,
            done | converged,
        )

    def cond(i: tf.Tensor, *state: Any) -> tf.Tensor:
        return (i < max_iterations) & (tf.reduce_sum(tf.cast(~state[-1], tf.int32)) > stop_count)

    result = tf.while_loop(cond, body, [steps] + list(state))
    return result[0], list(result[1:])


def _latent_error(
    x: tf.Tensor, z: tf.Tensor, log_weights: tf.Tensor, locs: tf.Tensor, log_scales: tf.Tensor
) -> tf.Tensor:
    """The residual of the root search, logit(F(x)) - z; its gradients at the root give the implicit gradients."""
    return mixture_logit_cdf(x, log_weights, locs, log_scales)[0] - z


def invert_mixture_logit_cdf(
    z: tf.Tensor, log_weights: tf.Tensor, locs: tf.Tensor, log_scales: tf.Tensor, max_iterations: int | None = None
) -> tf.Tensor:
    """x such that logit(F(x)) = z: the sampling direction, by a bracketed root search (see module docstring).

    Args:
      z: latent tensor (broadcasting with the parameters' shape without the component axis).
      log_weights, locs, log_scales: as in `mixture_logit_cdf`, shape [..., K].
      max_iterations: the search budget; defaults to `MAX_ITERATIONS[dtype]`.
    Returns:
      x of the broadcast shape, differentiable in z and the parameters (implicit gradients).
    """
    if max_iterations is None:
        max_iterations = MAX_ITERATIONS.get(tf.as_dtype(z.dtype), 40)
    # Broadcast everything to [..., K] first: the implicit gradient then returns full-shaped gradients, and
    # autodiff of the broadcasts sums them back to each parameter's own shape.
    shape = ps.broadcast_shape(ps.shape(log_weights), ps.broadcast_shape(ps.shape(locs), ps.shape(log_scales)))
    shape = ps.broadcast_shape(shape, ps.concat([ps.shape(z), [1]], axis=0))
    z = tf.broadcast_to(z, shape[:-1])
    log_weights, locs, log_scales = (tf.broadcast_to(p, shape) for p in (log_weights, locs, log_scales))
    return implicit_root(
        lambda z, w, m, s: _search(z, w, m, s, max_iterations)[0],
        _latent_error,
        z,
        log_weights,
        locs,
        log_scales,
    )


def check_component_shapes(
    named_params: dict[str, tf.Tensor],
    num_components: int | None = None,
    validate_args: bool = False,
    owner: str = "LogisticMixtureCDF",
) -> list[tf.Operation]:
    """Static (ValueError) and, with `validate_args`, run-time checks that the component axes agree.

    Args:
      named_params: dict name -> tensor, each with a trailing component axis.
      num_components: the expected K (Python int), or None to only require that they agree.
    Returns:
      a list of run-time assertions (empty without `validate_args`).
    """
    static = {}
    for name, param in named_params.items():
        rank = param.shape.rank
        if rank is not None and rank < 1:
            raise ValueError(
                f"{owner}: `{name}` must have a trailing component axis (rank >= 1); received "
                f"shape {param.shape.as_list()}"
            )
        size = param.shape[-1] if rank is not None else None
        if size is not None:
            static[name] = size
            if size < 1:
                raise ValueError(
                    f"{owner}: `{name}` must have at least 1 mixture component on its last axis; "
                    f"received shape {param.shape.as_list()}"
                )
            if num_components is not None and size != num_components:
                raise ValueError(
                    f"{owner}: `{name}` must have num_components={num_components} entries on its "
                    f"last axis; received shape {param.shape.as_list()}"
                )
    if len(set(static.values())) > 1:
        raise ValueError(f"{owner}: the component axes (last axes) must agree; received sizes {static}")
    if not validate_args:
        return []
    names = list(named_params)
    first = tf.shape(named_params[names[0]])[-1]
    assertions = [
        tf.debugging.assert_positive(
            first, message=f"{owner}: `{names[0]}` must have at least 1 mixture component on its last axis"
        )
    ]
    for name in names[1:]:
        assertions.append(
            tf.debugging.assert_equal(
                tf.shape(named_params[name])[-1],
                first,
                message=f"{owner}: `{name}` must have as many components (last axis) as `{names[0]}`",
            )
        )
    return assertions


class LogisticMixtureCDF(tfb.Bijector):
    """Elementwise logit of a K-component mixture-of-logistics CDF (Flow++); forward solves for it.

    Inverse (data x -> latent z, density direction, closed form; Ho et al. 2019, eq. (7) without its affine):

        z = logit(sum_k pi_k sigmoid((x - mu_k) / s_k)),   pi = softmax(logits), s = exp(log_scales),
        log dz/dx = log f(x) - log F(x) - log(1 - F(x)),

    Forward (latent z -> data x, sampling direction): the unique x with logit(F(x)) = z, found by a safeguarded
    Newton search inside the exact bracket [min_k (mu_k + s_k z), max_k (mu_k + s_k z)] within
    `MAX_ITERATIONS[dtype]` steps (float32 inversion error well below 1e-4 over z in [-60, 60] for the tested
    parameter ranges). Its log-det is -(log dz/dx) at the solution; its gradients are implicit (exact to first
    order). Details and numerics: the module docstring.

    Event shape: scalar (`forward_min_event_ndims=0`); the parameters' shape without the trailing component
    axis is the batch shape, which broadcasts with the input's shape.

    Args:
      logits: mixture logits, shape [..., K] (unnormalised: softmax is applied).
      locs: component locations mu_k, shape [..., K].
      log_scales: component log-scales log s_k, shape [..., K].
      validate_args: assert at run time that the component axes agree and that locs and log_scales are finite.
      name: name scope of the bijector's ops.

    Tensors, `tf.Variable`s and `DeferredTensor`s are accepted; no variables are created.

    Example:
        >>> import tensorflow as tf
        >>> from tfp_flows import LogisticMixtureCDF
        >>> bijector = LogisticMixtureCDF(logits=[0.0, 1.0], locs=[-1.0, 2.0], log_scales=[0.0, -0.5])
        >>> z = bijector.inverse(tf.constant([0.3, -4.0]))
        >>> bijector.forward(tf.identity(z)).numpy().round(4)   # up to the search tolerance
        array([ 0.3, -4. ], dtype=float32)
    """

    def __init__(
        self,
        logits: tf.Tensor,
        locs: tf.Tensor,
        log_scales: tf.Tensor,
        validate_args: bool = False,
        name: str = "logistic_mixture_cdf",
    ) -> None:
        parameters = dict(locals())
        with tf.name_scope(name) as name:
            dtype, (self._logits, self._locs, self._log_scales) = validation.float_parameters(
                "LogisticMixtureCDF", logits=logits, locs=locs, log_scales=log_scales
            )
            check_component_shapes(self._named_parameters())
            super().__init__(
                forward_min_event_ndims=0, validate_args=validate_args, parameters=parameters, dtype=dtype, name=name
            )

    @classmethod
    def _parameter_properties(cls, dtype: tf.DType, num_classes: int | None = None) -> dict[str, Any]:
        # Each parameter's last axis is the component axis: an event axis of the parameter, not a batch axis.
        return dict(
            logits=parameter_properties.ParameterProperties(event_ndims=1),
            locs=parameter_properties.ParameterProperties(event_ndims=1),
            log_scales=parameter_properties.ParameterProperties(event_ndims=1),
        )

    @property
    def logits(self) -> tf.Tensor:
        return self._logits

    @property
    def locs(self) -> tf.Tensor:
        return self._locs

    @property
    def log_scales(self) -> tf.Tensor:
        return self._log_scales

    def _named_parameters(self) -> dict[str, tf.Tensor]:
        return {"logits": self._logits, "locs": self._locs, "log_scales": self._log_scales}

    def _mixture(self) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """(log pi, mu, log s) as tensors: variables are read once per call."""
        return (
            tf.math.log_softmax(tf.convert_to_tensor(self._logits), axis=-1),
            tf.convert_to_tensor(self._locs),
            tf.convert_to_tensor(self._log_scales),
        )

    def _is_increasing(self) -> bool:
        return True

    def _forward(self, z: tf.Tensor) -> tf.Tensor:
        return invert_mixture_logit_cdf(z, *self._mixture())

    def _inverse(self, x: tf.Tensor) -> tf.Tensor:
        return mixture_logit_cdf(x, *self._mixture())[0]

    def _inverse_log_det_jacobian(self, x: tf.Tensor) -> tf.Tensor:
        return mixture_logit_cdf(x, *self._mixture())[1]

    def _forward_log_det_jacobian(self, z: tf.Tensor) -> tf.Tensor:
        # log dx/dz = -(log dz/dx) at x = forward(z); `self.forward` reuses TFP's cached solution when the
        # forward pass already ran on this tensor, so the root search is not repeated.
        return -mixture_logit_cdf(self.forward(z), *self._mixture())[1]

    def _parameter_control_dependencies(self, is_init: bool) -> list[tf.Operation]:
        if not self.validate_args:
            return []
        params = self._named_parameters()
        # At construction check plain tensors; at each call check variables (their values may have changed).
        if is_init == any(tensor_util.is_ref(p) for p in params.values()):
            return []
        tensors = {name: tf.convert_to_tensor(p) for name, p in params.items()}
        assertions = check_component_shapes(tensors, validate_args=True)
        for name in ("locs", "log_scales"):
            assertions.append(
                tf.debugging.assert_all_finite(tensors[name], message=f"LogisticMixtureCDF: `{name}` must be finite")
            )
        # A logit of -inf drops its component; NaN and +inf have no meaning (NaN < inf is False).
        assertions.append(
            tf.debugging.assert_less(
                tensors["logits"],
                tf.constant(np.inf, self.dtype),
                message="LogisticMixtureCDF: `logits` must be below +inf and not NaN (-inf drops a component)",
            )
        )
        return assertions
