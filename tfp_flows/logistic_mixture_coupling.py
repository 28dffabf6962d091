"""`LogisticMixtureCoupling`: Flow++'s mixture-of-logistics CDF coupling (Ho et al. 2019, sec. 3.2, eq. (7)).

Density direction (inverse, data x -> latent z), with `mask` of the event shape (1 = pass through, 0 = transform)
and `(a_raw, b, logits, mu, log_s) = params_fn(x * mask)`:

    z = x                                                       where mask = 1
    z = exp(a) * logit(F(x; pi, mu, s)) + b                     where mask = 0
    a = tanh(a_raw),  pi = softmax(logits),  s = exp(max(log_s, -7)),
    F(x; pi, mu, s) = sum_k pi_k sigmoid((x - mu_k) / s_k),
    log|det dz/dx| = sum_{mask = 0} [a + log f(x) - log F(x) - log(1 - F(x))].

Forward (latent -> data, sampling): x = F^{-1}(sigmoid((z - b) exp(-a))) on the transformed entries, by the
bracketed root search of `LogisticMixtureCDF` (the conditioner sees only pass-through entries, equal in x and z).

The bounds follow the Flow++ reference code: a = tanh(a_raw), so each coupling rescales by a factor in
(1/e, e) and training cannot blow the scale up; log-scales are floored at -7 (`MIN_LOG_SCALE`), so no
component becomes a near-step that the root search and float32 could not resolve.

Event shape: the shape of `mask` ([D] or [H, W, C]); any leading batch shape. Half and channel masks are applied
by slicing (no multiplication), checkerboard and custom masks by multiplying (see `tfp_flows.coupling`).

Example:
    >>> import tensorflow as tf
    >>> from tfp_flows import LogisticMixtureCoupling, masks
    >>> def params_fn(h):                       # a toy conditioner: 2 components per entry, from h reversed
    ...     r = tf.reverse(h, axis=[-1])
    ...     k = tf.stack([r, 1.0 - r], axis=-1)
    ...     return 0.5 * r, r, k, 2.0 * k, -0.5 * k
    >>> coupling = LogisticMixtureCoupling(masks.half(4), params_fn, num_components=2)
    >>> z = coupling.inverse(tf.constant([[0.5, -1.0, 2.0, 0.3]]))     # data -> latent
    >>> z.numpy().round(3)
    array([[ 0.5  , -1.   , -2.886, -0.648]], dtype=float32)
    >>> coupling.forward(tf.identity(z)).numpy().round(3)              # back to the data (a fresh tensor)
    array([[ 0.5, -1. ,  2. ,  0.3]], dtype=float32)
"""

from collections.abc import Callable
from typing import Any

import numpy.typing as npt
import tensorflow as tf

from tfp_flows import validation
from tfp_flows.additive_coupling import checked_conditioner_output
from tfp_flows.coupling import MaskedCoupling
from tfp_flows.logistic_mixture_cdf import check_component_shapes, invert_mixture_logit_cdf, mixture_logit_cdf

__all__ = ["LogisticMixtureCoupling", "MIN_LOG_SCALE"]

# Flow++ reference code: `ml_logscales = tf.maximum(ml_logscales, -7.)`.
MIN_LOG_SCALE = -7.0

_OUTPUT_NAMES = ("a", "b", "logits", "locs", "log_scales")


class LogisticMixtureCoupling(MaskedCoupling):
    """Flow++ coupling: a K-component mixture-of-logistics CDF, its logit, then an affine map, per entry.

    Inverse (data x -> latent z, density direction), on the entries where mask = 0:

        z = exp(a) * logit(sum_k pi_k sigmoid((x - mu_k) / s_k)) + b,
        a = tanh(a_raw), pi = softmax(logits), s = exp(max(log_s, -7)),
        log|dz/dx| = a + log f(x) - log F(x) - log(1 - F(x))          (Ho et al. 2019, eq. (7));

    forward (latent -> data): the inverse of that map, by the bracketed root search of `LogisticMixtureCDF`
    (`tfp_flows.logistic_mixture_cdf.invert_mixture_logit_cdf`; float32 error well below 1e-4).

    Event shape: the shape of `mask`; any leading batch shape.

    Args:
      mask: static 0/1 array of the event shape (1 = pass through and condition, 0 = transform).
      params_fn: callable, `params_fn(x * mask) -> (a_raw, b, logits, locs, log_scales)`: `a_raw` and `b` of
        the input's full shape, the other three with a trailing axis of size `num_components`. Only entries
        where mask = 0 are used. Its weights belong to the caller (for example a Keras layer). With a half or
        channel mask, a params_fn that declares `block_split` (`tfp_flows.coupling`) gets the pass-through block.
      num_components: K >= 1, the number of logistic components.
      validate_args: when True, assert that the conditioner outputs are finite and that their component axes
        have `num_components` entries.
      name: name scope of the bijector's ops.

    Example:
        >>> import tensorflow as tf
        >>> from tfp_flows import LogisticMixtureCoupling, masks
        >>> def params_fn(h):
        ...     r = tf.reverse(h, axis=[-1])
        ...     k = tf.stack([r, 1.0 - r], axis=-1)
        ...     return 0.5 * r, r, k, 2.0 * k, -0.5 * k
        >>> coupling = LogisticMixtureCoupling(masks.half(4), params_fn, num_components=2)
        >>> x = tf.constant([[0.5, -1.0, 2.0, 0.3]])
        >>> coupling.forward(tf.identity(coupling.inverse(x))).numpy().round(3)  # x, to the search's tolerance
        array([[ 0.5, -1. ,  2. ,  0.3]], dtype=float32)
    """

    def __init__(
        self,
        mask: npt.ArrayLike,
        params_fn: Callable[..., Any],
        num_components: int,
        validate_args: bool = False,
        name: str = "logistic_mixture_coupling",
    ) -> None:
        parameters = dict(locals())
        self._params_fn = validation.check_callable(
            params_fn, "params_fn", "x_masked -> (a, b, logits, locs, log_scales)"
        )
        self._num_components = validation.check_int(num_components, "num_components")
        super().__init__(
            mask=mask, validate_args=validate_args, parameters=parameters, name=name, conditioner=params_fn
        )

    @property
    def params_fn(self) -> Callable[..., Any]:
        return self._params_fn

    @property
    def num_components(self) -> int:
        return self._num_components

    def _conditioner_params(
        self, x_masked: tf.Tensor, conditional_input: tf.Tensor | None = None
    ) -> tuple[tf.Tensor, ...]:
        outputs = self._call_conditioner(self._params_fn, x_masked, conditional_input)
        if not isinstance(outputs, (tuple, list)) or len(outputs) != 5:
            received = f"{len(outputs)} outputs" if isinstance(outputs, (tuple, list)) else type(outputs).__name__
            raise ValueError(f"`params_fn` must return 5 tensors (a, b, logits, locs, log_scales); received {received}")
        a, b, logits, locs, log_scales = (
            checked_conditioner_output(value, self.validate_args, "params_fn", what)
            for value, what in zip(outputs, _OUTPUT_NAMES)
        )
        for what, value in zip(_OUTPUT_NAMES, (a, b, logits, locs, log_scales)):
            if value.dtype != x_masked.dtype:
                raise TypeError(
                    f"{self.name}: `params_fn` output `{what}` must have the input's dtype "
                    f"{x_masked.dtype.name}; received {value.dtype.name}"
                )
        mixture = {"logits": logits, "locs": locs, "log_scales": log_scales}
        assertions = check_component_shapes(
            mixture, self._num_components, self.validate_args, owner=f"{self.name}: `params_fn` output"
        )
        if assertions:
            with tf.control_dependencies(assertions):
                logits = tf.identity(logits)
        return (
            tf.math.tanh(a),
            b,
            tf.math.log_softmax(logits, axis=-1),
            locs,
            tf.maximum(log_scales, tf.constant(MIN_LOG_SCALE, log_scales.dtype)),
        )

    def _transform(self, z: tf.Tensor, params: tuple[tf.Tensor, ...]) -> tuple[tf.Tensor, tf.Tensor]:
        # Latent -> data: undo the affine map, then the root search for the mixture CDF's logit.
        a, b, log_weights, locs, log_scales = params
        x = invert_mixture_logit_cdf((z - b) * tf.math.exp(-a), log_weights, locs, log_scales)
        _, log_det = mixture_logit_cdf(x, log_weights, locs, log_scales)
        return x, -(a + log_det)

    def _untransform(self, x: tf.Tensor, params: tuple[tf.Tensor, ...]) -> tuple[tf.Tensor, tf.Tensor]:
        # Data -> latent (closed form).
        a, b, log_weights, locs, log_scales = params
        logit_cdf, log_det = mixture_logit_cdf(x, log_weights, locs, log_scales)
        return tf.math.exp(a) * logit_cdf + b, a + log_det
