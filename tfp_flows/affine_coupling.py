"""Affine coupling with a bounded log-scale.

RealNVP: Dinh, Sohl-Dickstein & Bengio 2017; Glow: Kingma & Dhariwal 2018.
"""

import math
from collections.abc import Callable
from typing import Any

import numpy.typing as npt
import tensorflow as tf

from tfp_flows import validation
from tfp_flows.additive_coupling import checked_conditioner_output
from tfp_flows.coupling import MaskedCoupling

__all__ = ["AffineCoupling", "LOG_SCALE_BOUNDS", "MAX_SIGMOID_LIMIT", "checked_log_scale_limit"]

LOG_SCALE_BOUNDS = ("tanh", "sigmoid", None)
MAX_SIGMOID_LIMIT = 60.0  # largest finite c of the sigmoid floor: exp(-c) stays a normal float32


def checked_log_scale_limit(log_scale_limit: float, log_scale_bound: str) -> float:
    """`log_scale_limit` as a float, or ValueError naming it: a finite number > 0; with the "sigmoid" bound at
    most MAX_SIGMOID_LIMIT, or math.inf (no floor)."""
    sigmoid = log_scale_bound == "sigmoid"
    limit = validation.check_number(
        log_scale_limit,
        "log_scale_limit",
        minimum=0,
        strict=True,
        allow_inf=sigmoid,
        hint=f"with log_scale_bound={log_scale_bound!r}" + ("" if sigmoid else "; math.inf only with 'sigmoid'"),
    )
    if sigmoid and MAX_SIGMOID_LIMIT < limit < math.inf:
        raise ValueError(
            f"`log_scale_limit` of the sigmoid bound must be <= {MAX_SIGMOID_LIMIT} (a floor "
            f"exp(-c) that float32 represents) or math.inf for no floor; received {log_scale_limit!r}"
        )
    return limit


class AffineCoupling(MaskedCoupling):
    """Affine coupling: the masked-out entries are scaled and shifted, conditioned on the rest.

    Forward (latent -> data), with `mask` of the event shape (1 = pass through, 0 = transform) and
    `(t, r) = shift_and_log_scale_fn(x * mask)` (TFP's order: shift first, then the raw log-scale):

        y = x                          where mask = 1
        y = x * exp(s) + t             where mask = 0,     s = bound(r)
        log|det dy/dx| = sum_{mask = 0} s

    Inverse: x = (y - t) * exp(-s) where mask = 0 (Dinh et al. 2017, eq. (7)-(9)).

    The raw log-scale r is bounded so one step cannot blow up training (`log_scale_bound`):
      "tanh" (default): s = c * tanh(r / c), c = `log_scale_limit` (default 2.0), so |s| < c and every
        coupling scales by a factor in (exp(-c), exp(c)); s ~ r near 0 (a soft clip, as in RealNVP's tanh-scaled
        log-scale).
      "sigmoid": Glow's form (Kingma & Dhariwal 2018, the `affine` coupling of the reference code), with a floor:
        in the density direction (data -> latent, Glow's encoder) the transformed entries are multiplied by
            g = exp(-c) + (1 - exp(-c)) * sigmoid(r + 2)   in (exp(-c), 1),
        so  x = (y - t) * g  and the forward log-scale is s = -log g in [0, c). The density-direction log-det is
        <= 0: the model cannot raise the likelihood by inflating scales. The floor exp(-c) bounds what sampling
        (which divides by g) can expand per coupling; without it (c = math.inf, exactly Glow's g = sigmoid(r + 2))
        latents off the data manifold can drive g to ~0 and samples to inf. (Glow adds its shift before scaling;
        here the shift follows the scaling, as in TFP; the conditioner absorbs the difference.)
      None: s = r, unbounded; exactly `tfb.RealNVP`'s affine transform.

    Event shape: the shape of `mask` (for example [D] or [H, W, C]); any leading batch shape.
    Half and channel masks (`tfp_flows.masks.half`, `.channel`) are applied by slicing the last axis.

    Args:
      mask: static 0/1 array of the event shape.
      shift_and_log_scale_fn: callable, `fn(x * mask) -> (shift, raw_log_scale)`, both of the input's full
        shape (only the entries where mask = 0 are used). Its weights belong to the caller. With a half or
        channel mask, a fn that declares `block_split` (`tfp_flows.coupling`) gets the pass-through block.
      log_scale_bound: "tanh", "sigmoid" or None (see above).
      log_scale_limit: c > 0, the bound on |s| for "tanh" and "sigmoid" (ignored for None); "sigmoid" also takes
        math.inf (no floor: exactly Glow's scale); finite values up to MAX_SIGMOID_LIMIT = 60.
      validate_args: when True, assert that the conditioner outputs are finite.
      name: name scope of the bijector's ops.

    Example:
        >>> import tensorflow as tf
        >>> from tfp_flows import AffineCoupling, masks
        >>> fn = lambda h: (tf.reverse(h, axis=[-1]), tf.zeros_like(h))  # shift, raw log-scale
        >>> coupling = AffineCoupling(masks.half(4), fn)
        >>> coupling.forward(tf.constant([[1.0, 2.0, 3.0, 4.0]])).numpy()
        array([[1., 2., 5., 5.]], dtype=float32)
    """

    def __init__(
        self,
        mask: npt.ArrayLike,
        shift_and_log_scale_fn: Callable[..., Any],
        log_scale_bound: str = "tanh",
        log_scale_limit: float = 2.0,
        validate_args: bool = False,
        name: str = "affine_coupling",
    ) -> None:
        parameters = dict(locals())
        self._shift_and_log_scale_fn = validation.check_callable(
            shift_and_log_scale_fn, "shift_and_log_scale_fn", "x_masked -> (shift, log_scale)"
        )
        self._log_scale_bound = validation.check_one_of(log_scale_bound, "log_scale_bound", LOG_SCALE_BOUNDS)
        self._log_scale_limit = checked_log_scale_limit(log_scale_limit, log_scale_bound)
        super().__init__(
            mask=mask, validate_args=validate_args, parameters=parameters, name=name, conditioner=shift_and_log_scale_fn
        )

    @property
    def shift_and_log_scale_fn(self) -> Callable[..., Any]:
        return self._shift_and_log_scale_fn

    @property
    def log_scale_bound(self) -> str:
        return self._log_scale_bound

    @property
    def log_scale_limit(self) -> float:
        return self._log_scale_limit

    def _conditioner_params(
        self, x_masked: tf.Tensor, conditional_input: tf.Tensor | None = None
    ) -> tuple[tf.Tensor, ...]:
        outputs = self._call_conditioner(self._shift_and_log_scale_fn, x_masked, conditional_input)
        if not isinstance(outputs, (tuple, list)) or len(outputs) != 2:
            raise ValueError(
                f"`shift_and_log_scale_fn` must return a pair (shift, log_scale); received {type(outputs).__name__}"
            )
        shift, raw_log_scale = outputs
        return (
            checked_conditioner_output(shift, self.validate_args, "shift_and_log_scale_fn", "shift"),
            checked_conditioner_output(raw_log_scale, self.validate_args, "shift_and_log_scale_fn", "log_scale"),
        )

    def _log_scale(self, raw: tf.Tensor) -> tf.Tensor:
        """The bounded forward log-scale s = bound(raw)."""
        if self._log_scale_bound == "tanh":
            limit = tf.constant(self._log_scale_limit, dtype=raw.dtype)
            return limit * tf.math.tanh(raw / limit)
        if self._log_scale_bound == "sigmoid":
            return -self._density_scale(raw)[1]
        return raw

    def _density_scale(self, raw: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """(g, log g) of the sigmoid bound, g = exp(-c) + (1 - exp(-c)) sigmoid(r + 2).

        With a floor, g >= exp(-c) >= exp(-MAX_SIGMOID_LIMIT), so log g is taken directly (one sigmoid and one log:
        few intermediates kept for the gradient). Without one, g = sigmoid(r + 2) may underflow: log g is then
        log_sigmoid(r + 2).
        """
        shifted = raw + tf.constant(2.0, dtype=raw.dtype)
        if math.isinf(self._log_scale_limit):
            return tf.math.sigmoid(shifted), tf.math.log_sigmoid(shifted)
        floor = math.exp(-self._log_scale_limit)
        g = tf.constant(floor, dtype=raw.dtype) + tf.constant(1.0 - floor, dtype=raw.dtype) * tf.math.sigmoid(shifted)
        # g <= 1, but floor + (1 - floor) * 1 can round to 1 + ulp.
        return g, tf.minimum(tf.math.log(g), tf.zeros([], raw.dtype))

    def _transform(self, x: tf.Tensor, params: tuple[tf.Tensor, ...]) -> tuple[tf.Tensor, tf.Tensor]:
        shift, raw_log_scale = params
        if self._log_scale_bound == "sigmoid":
            g, log_g = self._density_scale(raw_log_scale)
            return x / g + shift, -log_g
        log_scale = self._log_scale(raw_log_scale)
        return x * tf.math.exp(log_scale) + shift, log_scale

    def _untransform(self, y: tf.Tensor, params: tuple[tf.Tensor, ...]) -> tuple[tf.Tensor, tf.Tensor]:
        shift, raw_log_scale = params
        if self._log_scale_bound == "sigmoid":
            g, log_g = self._density_scale(raw_log_scale)
            return (y - shift) * g, log_g
        log_scale = self._log_scale(raw_log_scale)
        return (y - shift) * tf.math.exp(-log_scale), -log_scale
