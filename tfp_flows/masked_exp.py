"""MaskedExp: exp on the entries a boolean mask selects, the identity on the others (an elementwise bijector).

    y = exp(x) where mask,   y = x elsewhere;        log|dy/dx| = x where mask, 0 elsewhere.

The log transform of positive data columns as a flow step (a per-column `tfb.Exp`, as zuko's and BayesFlow's
"log" adapters apply before standardising), so the density of the raw positive values counts its Jacobian:
log p(x) = log p(log x) - sum over the masked entries of log x. Forward is the sampling direction (latent ->
data): the inverse takes the log of the masked entries, which must be > 0.

Example:
    >>> import tensorflow as tf
    >>> from tfp_flows import MaskedExp
    >>> bijector = MaskedExp([True, False])
    >>> bijector.forward(tf.constant([[0.0, 2.0]])).numpy()
    array([[1., 2.]], dtype=float32)
    >>> float(bijector.inverse_log_det_jacobian(tf.constant([[4.0, 2.0]]), event_ndims=1)[0])  # -log(4)
    -1.3862943649291992
"""

from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow_probability import bijectors as tfb

from tfp_flows.instance_cache import InstanceKeyedCache

__all__ = ["MaskedExp"]


class MaskedExp(InstanceKeyedCache, tfb.Bijector):
    """Elementwise y = exp(x) where `mask` is True, y = x where it is False.

    Event shape: elementwise (`forward_min_event_ndims=0`); `mask` broadcasts against the input's trailing axes
    (a [D] mask picks columns of [batch, D] rows). The cache is keyed per instance (`InstanceKeyedCache`): the
    mask is a constant, and instances with equal masks must not share entries across traced graphs.
    """

    def __init__(
        self, mask: Any, dtype: tf.DType = tf.float32, validate_args: bool = False, name: str = "masked_exp"
    ) -> None:
        """Build the bijector.

        Args:
          mask: booleans (array-like), True where exp applies; broadcasts with the input.
          dtype: the float dtype of the inputs.
          validate_args: if True, the inverse asserts that the masked entries are > 0.
          name: name scope of the ops.
        """
        parameters = dict(locals())
        mask = np.asarray(mask)
        if mask.dtype != bool:
            raise TypeError(f"MaskedExp: `mask` must hold booleans; received dtype {mask.dtype}")
        with tf.name_scope(name) as name:
            self._mask = tf.constant(mask)
            super().__init__(
                forward_min_event_ndims=0,
                validate_args=validate_args,
                dtype=tf.as_dtype(dtype),
                parameters=parameters,
                name=name,
            )

    @property
    def mask(self) -> tf.Tensor:
        """Where exp applies."""
        return self._mask

    @classmethod
    def _parameter_properties(cls, dtype: tf.DType) -> dict[str, Any]:
        return {}

    def _is_increasing(self) -> bool:
        return True

    def _forward(self, x: tf.Tensor) -> tf.Tensor:
        # exp of 0 off the mask: an unselected exp(x) = inf would give NaN gradients through tf.where.
        return tf.where(self._mask, tf.exp(tf.where(self._mask, x, tf.zeros_like(x))), x)

    def _inverse(self, y: tf.Tensor) -> tf.Tensor:
        if self.validate_args:
            positive = tf.reduce_all(tf.where(self._mask, y > 0, True))
            tf.debugging.assert_equal(positive, True, message="MaskedExp: masked entries of `y` must be > 0")
        return tf.where(self._mask, tf.math.log(tf.where(self._mask, y, tf.ones_like(y))), y)

    def _forward_log_det_jacobian(self, x: tf.Tensor) -> tf.Tensor:
        return tf.where(self._mask, x, tf.zeros_like(x))

    def _inverse_log_det_jacobian(self, y: tf.Tensor) -> tf.Tensor:
        return -tf.where(self._mask, tf.math.log(tf.where(self._mask, y, tf.ones_like(y))), tf.zeros_like(y))
