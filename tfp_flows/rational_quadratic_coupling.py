"""`RationalQuadraticCoupling`: the neural spline coupling of Durkan, Bekasov, Murray & Papamakarios 2019.

Each transformed entry goes through a monotonic rational-quadratic spline on [-B, B] with K bins, the identity
outside (linear tails of slope 1, sec. 3.1), whose knots come from a conditioner applied to the pass-through
entries. In bin k, with knots (x_k, y_k), bin width w_k, height h_k, slope s_k = h_k / w_k, derivatives
d_k, d_{k+1} at the knots (d_0 = d_K = 1 at +-B, matching the tails) and xi = (x - x_k) / w_k in [0, 1]:

    g(x)  = y_k + h_k [s_k xi^2 + d_k xi (1 - xi)] / [s_k + (d_{k+1} + d_k - 2 s_k) xi (1 - xi)]   (App. A.1)
    g'(x) = s_k^2 [d_{k+1} xi^2 + 2 s_k xi (1 - xi) + d_k (1 - xi)^2]
            / [s_k + (d_{k+1} + d_k - 2 s_k) xi (1 - xi)]^2                                            (App. A.2)

and the inverse is the root in [0, 1] of a quadratic in xi (Appendix A.3): both directions are closed
form. The spline itself is TFP's `tfb.RationalQuadraticSpline` (same formulas, its Appendix A references).

Unnormalised parameters (widths w~, heights h~ [..., K], derivatives d~ [..., K - 1]) become knots as in the
paper and TFP's docstring recipe, so the bins tile [-B, B] and no bin or slope collapses:

    w = min_w + (2B - K min_w) softmax(w~),   h = min_h + (2B - K min_h) softmax(h~),
    d = min_d + softplus(d~).

With w~ = h~ = 0 and d~ = softplus^{-1}(1 - min_d) the spline is the identity (`IDENTITY_RAW_DERIVATIVE`).

Example:
    >>> import tensorflow as tf
    >>> from tfp_flows import RationalQuadraticCoupling, masks
    >>> def conditioner(h):                      # a toy conditioner: K = 4 bins from h reversed
    ...     r = tf.reverse(h, axis=[-1])[..., None]
    ...     return r * [1.0, -1.0, 0.5, 0.0], r * [0.0, 1.0, -1.0, 2.0], r * [0.3, -0.2, 0.1]
    >>> spline = RationalQuadraticCoupling(masks.half(4), conditioner, num_bins=4, bound=3.0)
    >>> z = spline.inverse(tf.constant([[0.5, -1.0, 2.0, 4.0]]))     # data -> latent; 4.0 is outside [-3, 3]
    >>> z.numpy().round(3)
    array([[ 0.5  , -1.   ,  1.472,  4.   ]], dtype=float32)
    >>> spline.forward(tf.identity(z)).numpy().round(3)               # back to the data (a fresh tensor)
    array([[ 0.5, -1. ,  2. ,  4. ]], dtype=float32)
"""

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy.typing as npt
import tensorflow as tf
from tensorflow_probability import bijectors as tfb

from tfp_flows import validation
from tfp_flows.additive_coupling import checked_conditioner_output
from tfp_flows.coupling import MaskedCoupling

__all__ = ["RationalQuadraticCoupling", "SplineAttributes", "SplineSettings", "identity_raw_derivative"]


_OUTPUT_NAMES = ("widths", "heights", "derivatives")


def identity_raw_derivative(min_derivative: float) -> float:
    """d~ with min_derivative + softplus(d~) = 1: with zero width and height logits the spline is the identity."""
    return math.log(math.expm1(1.0 - min_derivative))


class SplineSettings:
    """The checked settings of a rational-quadratic spline and the map from raw parameters to its knots.

    Shared by `RationalQuadraticCoupling` and `MaskedAutoregressiveSpline`. Errors name the argument.
    """

    def __init__(
        self,
        num_bins: int,
        bound: float,
        min_bin_width: float,
        min_bin_height: float,
        min_derivative: float,
        owner: str,
    ) -> None:
        self.num_bins = validation.check_int(
            num_bins, "num_bins", minimum=2, owner=owner, hint="a spline needs at least one interior knot"
        )
        self.bound = validation.check_number(bound, "bound", minimum=0, strict=True, owner=owner)
        for arg_name, value in (("min_bin_width", min_bin_width), ("min_bin_height", min_bin_height)):
            validation.check_number(value, arg_name, minimum=0, strict=True, owner=owner)
            if self.num_bins * value >= 2 * self.bound:
                raise ValueError(
                    f"{owner}: `{arg_name}` must be < 2 * bound / num_bins = "
                    f"{2 * self.bound / self.num_bins:g} (the bins tile [-bound, bound]); received "
                    f"{value!r}"
                )
        self.min_bin_width, self.min_bin_height = float(min_bin_width), float(min_bin_height)
        self.min_derivative = validation.check_number(
            min_derivative, "min_derivative", minimum=0, strict=True, owner=owner
        )
        if self.min_derivative >= 1:
            raise ValueError(
                f"{owner}: `min_derivative` must be < 1 (the tails have slope 1, and the identity "
                f"needs derivative 1 inside); received {min_derivative!r}"
            )
        self.owner = owner

    @property
    def raw_sizes(self) -> tuple[int, int, int]:
        """Number of raw parameters per entry for (widths, heights, derivatives): (K, K, K - 1)."""
        return self.num_bins, self.num_bins, self.num_bins - 1

    def check_sizes(self, params: Sequence[tf.Tensor], what: str) -> None:
        """Raise ValueError when the static last axes of (widths, heights, derivatives) are not (K, K, K - 1)."""
        for value, name, size in zip(params, _OUTPUT_NAMES, self.raw_sizes):
            got = value.shape[-1] if value.shape.rank else None
            if value.shape.rank == 0 or (got is not None and got != size):
                raise ValueError(
                    f"{self.owner}: {what} `{name}` must have a last axis of {size} (num_bins = "
                    f"{self.num_bins}); received shape {value.shape.as_list()}"
                )

    def spline(
        self, widths: tf.Tensor, heights: tf.Tensor, derivatives: tf.Tensor, validate_args: bool = False
    ) -> tfb.RationalQuadraticSpline:
        """`tfb.RationalQuadraticSpline` on [-bound, bound] from raw parameters (the module docstring's map)."""
        dtype = widths.dtype
        span = 2.0 * self.bound
        k = self.num_bins

        def bins(raw: tf.Tensor, minimum: float) -> tf.Tensor:
            scale = tf.constant(span - k * minimum, dtype)
            return tf.math.softmax(raw, axis=-1) * scale + tf.constant(minimum, dtype)

        return tfb.RationalQuadraticSpline(
            bin_widths=bins(widths, self.min_bin_width),
            bin_heights=bins(heights, self.min_bin_height),
            knot_slopes=tf.math.softplus(derivatives) + tf.constant(self.min_derivative, dtype),
            range_min=tf.constant(-self.bound, dtype),
            validate_args=validate_args,
        )


class SplineAttributes:
    """The read-only attributes both spline bijectors expose: `conditioner`, `num_bins`, `bound`."""

    _conditioner: Callable[..., Any]
    _settings: "SplineSettings"

    @property
    def conditioner(self) -> Callable[..., Any]:
        return self._conditioner

    @property
    def num_bins(self) -> int:
        return self._settings.num_bins

    @property
    def bound(self) -> float:
        return self._settings.bound


class RationalQuadraticCoupling(SplineAttributes, MaskedCoupling):
    """Neural spline coupling: a K-bin rational-quadratic spline on [-B, B] per transformed entry.

    Forward (latent -> data) and inverse are both closed form (module docstring; Durkan et al. 2019, sec. 3.1 and
    Appendix A); outside [-B, B] the map is the identity and its log-det is 0.

    Event shape: the shape of `mask` ([D] or [H, W, C]); any leading batch shape. Half and channel masks are
    applied by slicing, other masks by multiplying (`tfp_flows.coupling`).

    Args:
      mask: static 0/1 array of the event shape (1 = pass through and condition, 0 = transform).
      conditioner: callable, `conditioner(x * mask) -> (widths, heights, derivatives)`, unnormalised, of the
        input's full shape plus a trailing axis of K, K and K - 1 entries. Only entries where mask = 0 are used.
        Its weights belong to the caller. With a half or channel mask, a conditioner that declares
        `block_split` (`tfp_flows.coupling`) gets the pass-through block and returns the transformed block's.
      num_bins: K >= 2.
      bound: B > 0; the spline acts on [-B, B].
      min_bin_width, min_bin_height: > 0 floors of the bin sizes (K * floor < 2B).
      min_derivative: in (0, 1), the floor of the interior knot derivatives.
      validate_args: when True, assert that the conditioner outputs are finite (and TFP's spline checks).
      name: name scope of the bijector's ops.
    """

    def __init__(
        self,
        mask: npt.ArrayLike,
        conditioner: Callable[..., Any],
        num_bins: int = 8,
        bound: float = 3.0,
        min_bin_width: float = 1e-3,
        min_bin_height: float = 1e-3,
        min_derivative: float = 1e-3,
        validate_args: bool = False,
        name: str = "rational_quadratic_coupling",
    ) -> None:
        parameters = dict(locals())
        self._conditioner = validation.check_callable(
            conditioner, "conditioner", "x_masked -> (widths, heights, derivatives)", owner=name
        )
        self._settings = SplineSettings(num_bins, bound, min_bin_width, min_bin_height, min_derivative, owner=name)
        super().__init__(
            mask=mask, validate_args=validate_args, parameters=parameters, name=name, conditioner=conditioner
        )

    def _conditioner_params(
        self, x_masked: tf.Tensor, conditional_input: tf.Tensor | None = None
    ) -> tuple[tf.Tensor, ...]:
        outputs = self._call_conditioner(self._conditioner, x_masked, conditional_input)
        if not isinstance(outputs, (tuple, list)) or len(outputs) != 3:
            received = f"{len(outputs)} outputs" if isinstance(outputs, (tuple, list)) else type(outputs).__name__
            raise ValueError(
                f"{self.name}: `conditioner` must return 3 tensors (widths, heights, derivatives); received {received}"
            )
        params = tuple(
            checked_conditioner_output(value, self.validate_args, "conditioner", what)
            for value, what in zip(outputs, _OUTPUT_NAMES)
        )
        for what, value in zip(_OUTPUT_NAMES, params):
            if value.dtype != x_masked.dtype:
                raise TypeError(
                    f"{self.name}: `conditioner` output `{what}` must have the input's dtype "
                    f"{x_masked.dtype.name}; received {value.dtype.name}"
                )
        self._settings.check_sizes(params, "conditioner output")
        return params

    def _spline(self, params: Sequence[tf.Tensor]) -> tfb.RationalQuadraticSpline:
        widths, heights, derivatives = params
        return self._settings.spline(widths, heights, derivatives, validate_args=self.validate_args)

    def _transform(self, x: tf.Tensor, params: tuple[tf.Tensor, ...]) -> tuple[tf.Tensor, tf.Tensor]:
        spline = self._spline(params)
        return spline.forward(x), spline.forward_log_det_jacobian(x, event_ndims=0)

    def _untransform(self, y: tf.Tensor, params: tuple[tf.Tensor, ...]) -> tuple[tf.Tensor, tf.Tensor]:
        spline = self._spline(params)
        x = spline.inverse(y)
        return x, -spline.forward_log_det_jacobian(x, event_ndims=0)
