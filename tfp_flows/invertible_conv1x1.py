"""Glow's invertible 1x1 convolution, LU-parametrised (Kingma & Dhariwal 2018, sec. 3.2)."""

from typing import Any

import numpy as np
import numpy.typing as npt
import tensorflow as tf
from tensorflow_probability import bijectors as tfb
from tensorflow_probability.python.internal import assert_util, dtype_util, parameter_properties, tensor_util
from tensorflow_probability.python.internal import prefer_static as ps

from tfp_flows import validation
from tfp_flows.actnorm import (
    PerChannel,
    assert_finite_parameter,
    channel_count,
)
from tfp_flows.instance_cache import InstanceKeyedCache

__all__ = ["InvertibleConv1x1", "random_rotation_lower_upper"]


class InvertibleConv1x1(PerChannel, InstanceKeyedCache, tfb.Bijector):
    """A learned linear map W over the channel (last) axis, the same at every position: Glow's 1x1 convolution.

    W is stored through its pivoted LU factorisation, in the packed convention of `tf.linalg.lu` and
    `tfb.ScaleMatvecLU`: W = P L U, with L unit lower triangular (strictly below the diagonal of
    `lower_upper`), U upper triangular (on and above the diagonal), and P the row permutation with
    W[permutation[j], :] = (L U)[j, :]. Forward (latent -> data), for every position:

        y = W x,                 inverse x = U^-1 L^-1 (y[permutation])   (two triangular solves)
        log|det dy/dx| = sum_c log|U_cc|                 for a vector event [C] (event_ndims=1),
                       = H * W * sum_c log|U_cc|         for an image event [H, W, C] (event_ndims=3).

    (Kingma & Dhariwal 2018, sec. 3.2, eq. (10)-(11).) Equal to `tfb.ScaleMatvecLU(lower_upper, permutation)`
    applied to the channel vector; the minimal event is the channel vector and TFP sums the log-det over extra
    event axes. The inverse never forms W^-1.

    Args:
      lower_upper: float tensor [..., C, C], the packed L and U (`tf.linalg.lu(W)[0]`); a nonzero diagonal.
      permutation: int tensor [..., C], a permutation of 0..C-1 (`tf.linalg.lu(W)[1]`).
      validate_args: when True, assert that `permutation` is a permutation, the diagonal of U is nonzero and
        inputs have C channels.
      name: name scope of the bijector's ops.

    Example:
        >>> import tensorflow as tf
        >>> from tfp_flows import InvertibleConv1x1
        >>> from tfp_flows.invertible_conv1x1 import random_rotation_lower_upper
        >>> lower_upper, permutation = random_rotation_lower_upper(3, seed=0)
        >>> conv = InvertibleConv1x1(lower_upper, permutation)
        >>> x = tf.random.normal([2, 4, 4, 3])
        >>> float(tf.reduce_max(tf.abs(conv.inverse(conv.forward(x)) - x))) < 1e-5
        True
    """

    _channel_param = "lower_upper"

    def __init__(
        self,
        lower_upper: tf.Tensor,
        permutation: tf.Tensor,
        validate_args: bool = False,
        name: str = "invertible_conv1x1",
    ) -> None:
        parameters = dict(locals())
        with tf.name_scope(name) as name:
            dtype = dtype_util.common_dtype([lower_upper], dtype_hint=tf.float32)
            if not dtype_util.is_floating(dtype):
                raise TypeError(f"InvertibleConv1x1: `lower_upper` must be floating point; received {dtype.name}")
            self._lower_upper = tensor_util.convert_nonref_to_tensor(lower_upper, dtype=dtype, name="lower_upper")
            # Checked before conversion: the int32 hint would silently cast a float array.
            given_dtype = getattr(permutation, "dtype", None)
            if given_dtype is not None and not tf.as_dtype(given_dtype).is_integer:
                raise TypeError(
                    "InvertibleConv1x1: `permutation` must have an integer dtype; received "
                    f"{tf.as_dtype(given_dtype).name}"
                )
            self._permutation = tensor_util.convert_nonref_to_tensor(
                permutation, dtype_hint=tf.int32, name="permutation"
            )
            self._channels = self._check_static_shapes()
            super().__init__(
                forward_min_event_ndims=1,
                is_constant_jacobian=True,
                dtype=dtype,
                validate_args=validate_args,
                parameters=parameters,
                name=name,
            )

    def _check_static_shapes(self) -> int | None:
        channels = channel_count(self._lower_upper, "lower_upper", 2, "InvertibleConv1x1")
        rows = self._lower_upper.shape[-2] if self._lower_upper.shape.rank is not None else None
        if rows is not None and channels is not None and rows != channels:
            raise ValueError(
                "InvertibleConv1x1: `lower_upper` must be square [..., C, C]; received shape "
                f"{self._lower_upper.shape.as_list()}"
            )
        perm_channels = channel_count(self._permutation, "permutation", 1, "InvertibleConv1x1")
        if perm_channels is not None and channels is not None and perm_channels != channels:
            raise ValueError(
                f"InvertibleConv1x1: `permutation` must have {channels} entries, the size of "
                f"`lower_upper` [..., C, C]; received shape {self._permutation.shape.as_list()}"
            )
        return channels if channels is not None else perm_channels

    @classmethod
    def _parameter_properties(cls, dtype: tf.DType, num_classes: int | None = None) -> dict[str, Any]:
        return {
            "lower_upper": parameter_properties.ParameterProperties(
                event_ndims=2, shape_fn=lambda sample_shape: ps.concat([sample_shape, sample_shape[-1:]], axis=0)
            ),
            "permutation": parameter_properties.ParameterProperties(
                event_ndims=1, default_constraining_bijector_fn=parameter_properties.BIJECTOR_NOT_IMPLEMENTED
            ),
        }

    @property
    def lower_upper(self) -> tf.Tensor:
        return self._lower_upper

    @property
    def permutation(self) -> tf.Tensor:
        return self._permutation

    def _factors(self) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """(L with a unit diagonal, U, permutation) as tensors."""
        lower_upper = tf.convert_to_tensor(self._lower_upper)
        ones = tf.ones_like(tf.linalg.diag_part(lower_upper))
        lower = tf.linalg.set_diag(tf.linalg.band_part(lower_upper, -1, 0), ones)
        upper = tf.linalg.band_part(lower_upper, 0, -1)
        return lower, upper, tf.convert_to_tensor(self._permutation)

    def _unbatched(self) -> bool:
        """True when the parameters have no batch axes: one matrix for every position (the Glow case)."""
        return self._lower_upper.shape.rank == 2 and self._permutation.shape.rank == 1

    def _forward(self, x: tf.Tensor) -> tf.Tensor:
        x = self._checked(x, "x")
        lower, upper, permutation = self._factors()
        channels = tf.shape(lower)[-1]
        # Q y = y[permutation] (row j of Q is one_hot(permutation[j])); W = Q^T L U, exact in any batch shape.
        q = tf.one_hot(permutation, channels, dtype=lower.dtype)
        weights = tf.matmul(q, tf.matmul(lower, upper), transpose_a=True)
        if self._unbatched():
            # One [N, C] x [C, C] product over all positions: what a 1x1 convolution computes.
            flat = tf.reshape(x, [-1, channels])
            return tf.reshape(tf.matmul(flat, weights, transpose_b=True), tf.shape(x))
        return tf.linalg.matvec(weights, x)

    def _inverse(self, y: tf.Tensor) -> tf.Tensor:
        y = self._checked(y, "y")
        lower, upper, permutation = self._factors()
        channels = tf.shape(lower)[-1]
        if self._unbatched():
            # Solve for all positions at once: the right-hand side is [C, N].
            flat = tf.reshape(y, [-1, channels])
            rhs = tf.transpose(tf.gather(flat, permutation, axis=-1))
            solved = tf.linalg.triangular_solve(upper, tf.linalg.triangular_solve(lower, rhs, lower=True), lower=False)
            return tf.reshape(tf.transpose(solved), tf.shape(y))
        q = tf.one_hot(permutation, channels, dtype=lower.dtype)
        rhs = tf.linalg.matvec(q, y)[..., tf.newaxis]  # triangular_solve broadcasts the batch axes
        solved = tf.linalg.triangular_solve(upper, tf.linalg.triangular_solve(lower, rhs, lower=True), lower=False)
        return solved[..., 0]

    def _log_abs_det(self) -> tf.Tensor:
        return tf.reduce_sum(tf.math.log(tf.math.abs(tf.linalg.diag_part(self._lower_upper))), axis=-1)

    def _parameter_control_dependencies(self, is_init: bool) -> list[tf.Operation]:
        if not self.validate_args:
            return []
        assertions = []
        if is_init != tensor_util.is_ref(self._permutation):
            permutation = tf.convert_to_tensor(self._permutation)
            expected = tf.broadcast_to(
                tf.range(tf.shape(permutation)[-1], dtype=permutation.dtype), tf.shape(permutation)
            )
            assertions.append(
                assert_util.assert_equal(
                    tf.sort(permutation, axis=-1),
                    expected,
                    message=f"{self.name}: `permutation` must be a permutation of 0..C-1 on its last axis",
                )
            )
        if is_init != tensor_util.is_ref(self._lower_upper):
            lower_upper = tf.convert_to_tensor(self._lower_upper)
            assertions.append(
                assert_util.assert_none_equal(
                    tf.linalg.diag_part(lower_upper),
                    tf.zeros([], lower_upper.dtype),
                    message=f"{self.name}: `lower_upper` must have a nonzero diagonal (U invertible)",
                )
            )
            assertions.append(assert_finite_parameter(lower_upper, f"{self.name}: `lower_upper` must be finite"))
        return [a for a in assertions if a is not None]


def _lu_partial_pivoting(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(packed lower_upper, permutation) with matrix[permutation] = L U, as `tf.linalg.lu` returns."""
    packed = np.array(matrix, dtype=np.float64)
    size = packed.shape[0]
    permutation = np.arange(size)
    for k in range(size):
        pivot = k + int(np.argmax(np.abs(packed[k:, k])))
        if pivot != k:
            packed[[k, pivot]] = packed[[pivot, k]]
            permutation[[k, pivot]] = permutation[[pivot, k]]
        packed[k + 1 :, k] /= packed[k, k]
        packed[k + 1 :, k + 1 :] -= np.outer(packed[k + 1 :, k], packed[k, k + 1 :])
    return packed, permutation


def random_rotation_lower_upper(
    channels: int, seed: int | None = None, dtype: npt.DTypeLike = np.float32
) -> tuple[np.ndarray, np.ndarray]:
    """Glow's initialisation: the LU factors of a random orthogonal C x C matrix (log|det W| = 0).

    The matrix is Q from the QR decomposition of a standard normal matrix (signs fixed so Q is Haar
    distributed), factorised with partial pivoting in float64 (Kingma & Dhariwal 2018, sec. 3.2).

    Args:
      channels: C >= 1.
      seed: seed for `numpy.random.default_rng` (None: fresh entropy).
      dtype: NumPy float dtype of `lower_upper`.
    Returns:
      (lower_upper [C, C] of `dtype`, permutation [C] int32), NumPy arrays for `InvertibleConv1x1` or
      `tfb.ScaleMatvecLU`.
    """
    channels = validation.check_int(channels, "channels")
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.floating):
        raise ValueError(f"`dtype` must be a floating-point dtype; received {dtype.name}")
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.standard_normal((channels, channels)))
    q = q * np.where(np.diag(r) < 0, -1.0, 1.0)[np.newaxis, :]
    lower_upper, permutation = _lu_partial_pivoting(q)
    return lower_upper.astype(dtype), permutation.astype(np.int32)
