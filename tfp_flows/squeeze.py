"""Squeeze: Glow's / RealNVP's space-to-depth reshaping of image events (Dinh et al. 2017 sec. 3.6; Kingma &
Dhariwal 2018 sec. 3).

Direction (TFP's convention: forward = latent -> data, inverse = data -> latent). A multi-scale flow squeezes
on the way from data to latent, so:

    inverse (data -> latent):  space-to-depth  [..., H, W, C]         -> [..., H/f, W/f, C f^2]
    forward (latent -> data):  depth-to-space  [..., H, W, C f^2]     -> [..., H f, W f, C]

with the channel order of `tf.nn.space_to_depth`: the f x f block at (i, j) becomes the channels
(dh * f + dw) * C + c. It only permutes entries, so log|det J| = 0.

Written with reshape/transpose over a flattened batch, so any number of batch dimensions (including none)
works, unlike the rank-4-only `tf.nn.space_to_depth`.
"""

from collections.abc import Sequence
from typing import Any

import tensorflow as tf
from tensorflow_probability import bijectors as tfb
from tensorflow_probability.python.internal import prefer_static as ps

from tfp_flows import validation

__all__ = ["Squeeze"]


class Squeeze(tfb.Bijector):
    """Depth-to-space forward (latent -> data), space-to-depth inverse (data -> latent), by a factor f.

    Event shape: [H, W, C] (`forward_min_event_ndims=3`); the inverse needs H and W divisible by `factor`, the
    forward needs C divisible by `factor**2`. A statically known shape that breaks this raises ValueError at
    once; with `validate_args=True` shapes known only at run time are asserted. log-det 0
    (`is_constant_jacobian=True`).

    Example:
        >>> import tensorflow as tf
        >>> from tfp_flows import Squeeze
        >>> squeeze = Squeeze(factor=2)
        >>> images = tf.random.normal([8, 4, 4, 3])
        >>> squeeze.inverse(images).shape              # data -> latent
        TensorShape([8, 2, 2, 12])
        >>> squeeze.inverse_event_shape([4, 4, 3])
        TensorShape([2, 2, 12])
    """

    def __init__(self, factor: int = 2, validate_args: bool = False, name: str = "squeeze") -> None:
        """Build the bijector.

        Args:
          factor: Python int >= 1, the block size f.
          validate_args: if True, assert divisibility of shapes known only at run time.
          name: name scope of the ops.
        """
        parameters = dict(locals())
        self._factor = validation.check_int(factor, "factor", owner="Squeeze")
        with tf.name_scope(name) as name:
            super().__init__(
                forward_min_event_ndims=3,
                inverse_min_event_ndims=3,
                is_constant_jacobian=True,
                validate_args=validate_args,
                parameters=parameters,
                name=name,
            )

    @property
    def factor(self) -> int:
        return self._factor

    @classmethod
    def _parameter_properties(cls, dtype: tf.DType) -> dict[str, Any]:
        return {}  # `factor` is a static Python int, not a tensor parameter.

    # --- shape bookkeeping -------------------------------------------------------------------------------------

    def _check_static(self, shape: Any, divisible_dims: Sequence[tuple[int, int]], what: str, arg_name: str) -> None:
        """ValueError when the statically known event dims at `divisible_dims` are not multiples of their divisor."""
        shape = tf.TensorShape(shape)
        if shape.rank is None:
            return
        if shape.rank < 3:
            raise ValueError(
                f"Squeeze: `{arg_name}` must have event shape [H, W, C] (rank >= 3); received shape {shape.as_list()}"
            )
        for axis, divisor in divisible_dims:
            size = shape[axis]
            if size is not None and size % divisor:
                raise ValueError(
                    f"Squeeze: {what} of `{arg_name}` must be divisible by {divisor} (factor="
                    f"{self._factor}); received shape {shape.as_list()}"
                )

    def _assert_divisible(
        self, shape_tensor: tf.Tensor, divisible_dims: Sequence[tuple[int, int]], what: str, arg_name: str
    ) -> list[tf.Operation]:
        if not self.validate_args:
            return []
        return [
            tf.debugging.assert_equal(
                shape_tensor[axis] % divisor,
                0,
                message=f"Squeeze: {what} of `{arg_name}` must be divisible by {divisor} (factor={self._factor})",
            )
            for axis, divisor in divisible_dims
        ]

    @property
    def _space_dims(self) -> tuple[tuple[int, int], ...]:
        return ((-3, self._factor), (-2, self._factor))

    @property
    def _depth_dims(self) -> tuple[tuple[int, int], ...]:
        return ((-1, self._factor**2),)

    def _forward_event_shape(self, input_shape: tf.TensorShape) -> tf.TensorShape:
        self._check_static(input_shape, self._depth_dims, "the channel dimension C", "x")
        if input_shape.rank is None:
            return tf.TensorShape(None)
        f = self._factor
        height, width, channels = input_shape[-3:]
        scale = lambda d, k: None if d is None else d * k  # noqa: E731
        return input_shape[:-3].concatenate(
            [scale(height, f), scale(width, f), None if channels is None else channels // f**2]
        )

    def _inverse_event_shape(self, output_shape: tf.TensorShape) -> tf.TensorShape:
        self._check_static(output_shape, self._space_dims, "the height H and width W", "y")
        if output_shape.rank is None:
            return tf.TensorShape(None)
        f = self._factor
        height, width, channels = output_shape[-3:]
        return output_shape[:-3].concatenate(
            [
                None if height is None else height // f,
                None if width is None else width // f,
                None if channels is None else channels * f**2,
            ]
        )

    def _forward_event_shape_tensor(self, input_shape: tf.Tensor) -> tf.Tensor:
        f = self._factor
        with tf.control_dependencies(
            self._assert_divisible(input_shape, self._depth_dims, "the channel dimension C", "x")
        ):
            return ps.concat(
                [input_shape[:-3], [input_shape[-3] * f, input_shape[-2] * f, input_shape[-1] // f**2]], axis=0
            )

    def _inverse_event_shape_tensor(self, output_shape: tf.Tensor) -> tf.Tensor:
        f = self._factor
        with tf.control_dependencies(
            self._assert_divisible(output_shape, self._space_dims, "the height H and width W", "y")
        ):
            return ps.concat(
                [output_shape[:-3], [output_shape[-3] // f, output_shape[-2] // f, output_shape[-1] * f**2]], axis=0
            )

    # --- the maps ----------------------------------------------------------------------------------------------

    def _forward(self, x: tf.Tensor) -> tf.Tensor:
        """depth-to-space: [..., H, W, C f^2] -> [..., H f, W f, C]."""
        self._check_static(x.shape, self._depth_dims, "the channel dimension C", "x")
        f = self._factor
        shape = ps.shape(x)
        height, width, channels = shape[-3], shape[-2], shape[-1]
        with tf.control_dependencies(self._assert_divisible(shape, self._depth_dims, "the channel dimension C", "x")):
            blocks = tf.reshape(x, [-1, height, width, f, f, channels // f**2])
        # [n, H, W, dh, dw, C] -> [n, H, dh, W, dw, C]: each channel block becomes an f x f spatial block.
        spatial = tf.transpose(blocks, [0, 1, 3, 2, 4, 5])
        return tf.reshape(spatial, ps.concat([shape[:-3], [height * f, width * f, channels // f**2]], axis=0))

    def _inverse(self, y: tf.Tensor) -> tf.Tensor:
        """space-to-depth: [..., H, W, C] -> [..., H/f, W/f, C f^2], channel order of tf.nn.space_to_depth."""
        self._check_static(y.shape, self._space_dims, "the height H and width W", "y")
        f = self._factor
        shape = ps.shape(y)
        height, width, channels = shape[-3], shape[-2], shape[-1]
        with tf.control_dependencies(self._assert_divisible(shape, self._space_dims, "the height H and width W", "y")):
            blocks = tf.reshape(y, [-1, height // f, f, width // f, f, channels])
        # [n, H/f, dh, W/f, dw, C] -> [n, H/f, W/f, dh, dw, C]: the block offsets move into the channels.
        depth = tf.transpose(blocks, [0, 1, 3, 2, 4, 5])
        return tf.reshape(depth, ps.concat([shape[:-3], [height // f, width // f, channels * f**2]], axis=0))

    def _forward_log_det_jacobian(self, x: tf.Tensor) -> tf.Tensor:
        return tf.zeros([], dtype=x.dtype)

    def _inverse_log_det_jacobian(self, y: tf.Tensor) -> tf.Tensor:
        return tf.zeros([], dtype=y.dtype)
