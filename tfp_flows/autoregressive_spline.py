"""`MaskedAutoregressiveSpline`: the autoregressive neural spline flow of Durkan et al. 2019 (RQ-NSF (AR), sec. 3.3).

One step, with the same direction convention as our MAF (`tfp_flows.OnePassMaskedAutoregressiveFlow`): y is
the data side, x the latent side, and a MADE-style network (Germain et al. 2015) maps y [..., D] to the raw
parameters theta [..., D, 3K - 1] of D rational-quadratic splines, theta_d a function of y_{<d} only:

    y_d = g(x_d; theta_d(y_{<d}))                  forward (latent -> data, sampling): D network passes
    x_d = g^{-1}(y_d; theta_d(y_{<d}))             inverse (data -> latent, density): one network pass
    log|det dx/dy| = -sum_d log g'(x_d; theta_d)

g is the rational-quadratic spline on [-B, B] with identity tails of `tfp_flows.rational_quadratic_coupling`
(Appendix A there); theta_d's last axis is laid out (widths [K], heights [K], derivatives [K - 1]), normalised as
in `RationalQuadraticCoupling`. The D-pass loop is TFP's own (`tfb.MaskedAutoregressiveFlow(bijector_fn=...)`);
the density direction and its log-det share one network pass through the cache of
`OnePassMaskedAutoregressiveFlow`. Keyword arguments of the bijector's methods (a conditional input) reach
the network, `conditioner(y, **kwargs)`, as TFP's `bijector_fn(y, **kwargs)`.

Example:
    >>> import tensorflow as tf
    >>> from tfp_flows import MaskedAutoregressiveSpline
    >>> def conditioner(y):                    # y_1 gets a fixed spline, y_2 one that depends on y_1 (K = 3)
    ...     first = tf.zeros_like(y[..., :1, None]) + [1.0, 0.0, -1.0, 0.5, 0.5, 0.0, 0.2, -0.3]
    ...     second = y[..., :1, None] * [0.5, -0.5, 1.0, 0.0, 1.0, -1.0, 0.3, 0.1]
    ...     return tf.concat([first, second], axis=-2)
    >>> spline = MaskedAutoregressiveSpline(conditioner, num_bins=3, bound=2.0)
    >>> y = tf.constant([[0.5, -1.5]])
    >>> spline.forward(spline.inverse(tf.identity(y))).numpy().round(4)   # D passes back to the data
    array([[ 0.5, -1.5]], dtype=float32)
"""

from collections.abc import Callable
from typing import Any

import tensorflow as tf
from tensorflow_probability import bijectors as tfb

from tfp_flows import validation
from tfp_flows.masked_autoregressive import OnePassMaskedAutoregressiveFlow
from tfp_flows.rational_quadratic_coupling import SplineAttributes, SplineSettings

__all__ = ["MaskedAutoregressiveSpline"]


class MaskedAutoregressiveSpline(SplineAttributes, OnePassMaskedAutoregressiveFlow):
    """Autoregressive rational-quadratic spline step on vectors (event shape [D]); see the module docstring.

    Args:
      conditioner: callable, `conditioner(y, **kwargs) -> theta [..., D, 3 K - 1]` (unnormalised widths,
        heights, derivatives on the last axis), autoregressive: theta[..., d, :] depends on y[..., :d] only
        (a MADE). Its weights belong to the caller.
      num_bins: K >= 2.
      bound: B > 0; each spline acts on [-B, B], the identity outside.
      min_bin_width, min_bin_height: > 0 floors of the bin sizes (K * floor < 2B).
      min_derivative: in (0, 1), the floor of the interior knot derivatives.
      validate_args: when True, TFP's argument checks (and the spline's).
      name: name scope of the bijector's ops.
    """

    def __init__(
        self,
        conditioner: Callable[..., Any],
        num_bins: int = 8,
        bound: float = 3.0,
        min_bin_width: float = 1e-3,
        min_bin_height: float = 1e-3,
        min_derivative: float = 1e-3,
        validate_args: bool = False,
        name: str = "masked_autoregressive_spline",
    ) -> None:
        self._conditioner = validation.check_callable(
            conditioner, "conditioner", "y -> theta [..., D, 3K - 1]", owner=name
        )
        self._settings = SplineSettings(num_bins, bound, min_bin_width, min_bin_height, min_derivative, owner=name)
        super().__init__(bijector_fn=self._spline_fn, validate_args=validate_args, name=name)

    def _spline_fn(self, y: tf.Tensor, **kwargs: Any) -> tfb.Bijector:
        """TFP's `bijector_fn`: the elementwise spline whose parameters the network computes from y."""
        theta = self._conditioner(y, **kwargs)
        k = self._settings.num_bins
        expected = 3 * k - 1
        if theta.shape.rank is not None and (
            theta.shape.rank < 2
            or theta.shape[-1] not in (None, expected)
            or theta.shape[-2] not in (None, y.shape[-1])
        ):
            raise ValueError(
                f"{self.name}: `conditioner` must return theta of shape [..., D, 3 * num_bins - 1] = "
                f"[..., {y.shape[-1]}, {expected}]; received shape {theta.shape.as_list()}"
            )
        if theta.dtype != y.dtype:
            raise TypeError(
                f"{self.name}: `conditioner` output must have the input's dtype {y.dtype.name}; "
                f"received {theta.dtype.name}"
            )
        return self._settings.spline(
            theta[..., :k], theta[..., k : 2 * k], theta[..., 2 * k :], validate_args=self.validate_args
        )
