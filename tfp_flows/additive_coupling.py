"""NICE's additive coupling (Dinh, Krueger & Bengio 2015, "NICE: Non-linear Independent Components Estimation")."""

from collections.abc import Callable
from typing import Any

import numpy.typing as npt
import tensorflow as tf

from tfp_flows import validation
from tfp_flows.coupling import MaskedCoupling

__all__ = ["AdditiveCoupling"]


def checked_conditioner_output(value: tf.Tensor, validate_args: bool, fn_name: str, what: str) -> tf.Tensor:
    """The conditioner output as a tensor; with `validate_args`, an assertion that it is finite."""
    value = tf.convert_to_tensor(value)
    if validate_args:
        value = tf.debugging.assert_all_finite(value, message=f"`{fn_name}` returned a non-finite {what}")
    return value


class AdditiveCoupling(MaskedCoupling):
    """Additive (volume-preserving) coupling: a shift of the masked-out entries conditioned on the rest.

    Forward (latent -> data), with `mask` of the event shape (1 = pass through, 0 = transform):

        y = x                          where mask = 1
        y = x + t(x * mask)            where mask = 0
        log|det dy/dx| = 0

    Inverse: x = y - t(y * mask) where mask = 0 (the conditioner sees only pass-through entries, which are
    equal in x and y). Source: Dinh et al. 2015, eq. (5)-(6).

    Event shape: the shape of `mask` (for example [D] or [H, W, C]); any leading batch shape.
    Half and channel masks (`tfp_flows.masks.half`, `.channel`) are applied by slicing the last axis.

    Args:
      mask: static 0/1 array of the event shape.
      shift_fn: callable, `shift_fn(x * mask) -> t`, returning a tensor of the input's full shape (only the
        entries where mask = 0 are used). Its weights belong to the caller (for example a Keras layer). With a
        half or channel mask, a `shift_fn` that declares `block_split` (see `tfp_flows.coupling`) is called on
        the pass-through block instead and returns the shift of the transformed block only.
      validate_args: when True, assert that the shift is finite.
      name: name scope of the bijector's ops.

    Example:
        >>> import tensorflow as tf
        >>> from tfp_flows import AdditiveCoupling, masks
        >>> coupling = AdditiveCoupling(masks.half(4), shift_fn=lambda h: tf.reverse(h, axis=[-1]))
        >>> coupling.forward(tf.constant([[1.0, 2.0, 3.0, 4.0]])).numpy()  # shift = reverse([1, 2, 0, 0])
        array([[1., 2., 5., 5.]], dtype=float32)
    """

    def __init__(
        self,
        mask: npt.ArrayLike,
        shift_fn: Callable[..., Any],
        validate_args: bool = False,
        name: str = "additive_coupling",
    ) -> None:
        parameters = dict(locals())
        self._shift_fn = validation.check_callable(shift_fn, "shift_fn", "x_masked -> shift")
        super().__init__(mask=mask, validate_args=validate_args, parameters=parameters, name=name, conditioner=shift_fn)

    @property
    def shift_fn(self) -> Callable[..., Any]:
        return self._shift_fn

    def _conditioner_params(
        self, x_masked: tf.Tensor, conditional_input: tf.Tensor | None = None
    ) -> tuple[tf.Tensor, ...]:
        shift = self._call_conditioner(self._shift_fn, x_masked, conditional_input)
        return (checked_conditioner_output(shift, self.validate_args, "shift_fn", "shift"),)

    def _transform(self, x: tf.Tensor, params: tuple[tf.Tensor, ...]) -> tuple[tf.Tensor, tf.Tensor]:
        (shift,) = params
        return x + shift, tf.zeros_like(x)

    def _untransform(self, y: tf.Tensor, params: tuple[tf.Tensor, ...]) -> tuple[tf.Tensor, tf.Tensor]:
        (shift,) = params
        return y - shift, tf.zeros_like(y)
