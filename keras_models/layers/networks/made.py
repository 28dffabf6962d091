"""`MADE`: a masked autoencoder for distribution estimation as a Keras 3 layer (Germain et al. 2015).

TFP's `tfb.AutoregressiveNetwork` is a tf_keras layer whose variables Keras 3 does not track, so training a
Keras 3 model through it silently changes nothing. This layer owns its weights as Keras 3 variables.

The kernels are stored masked, so `call` is plain dense layers (no mask product per call, nor in its
gradient). The autoregressive property still holds whatever is written to the weights: each kernel is a
`MaskedKernel`, a Keras variable whose `assign` (and so `assign_add`/`assign_sub`) multiplies the value by the
mask. That covers the initializer, the optimizer (Keras re-assigns every variable with a constraint after each
update, as TFP's `AutoregressiveNetwork` masks through its kernel constraint), `set_weights` on the layer or
the model, `.keras` / `.weights.h5` loading, and `tf.train.Checkpoint` restores of the kernel variables. (Writing
to the underlying `tf.Variable`, `kernel.value.assign(...)`, bypasses Keras and this guarantee.)

Masks (Germain et al. 2015, sec. 4; the same degrees as TFP's `AutoregressiveNetwork` with
`hidden_degrees="equal"`, so weights can be copied between the two):
    input degrees       m_0(i) = i,  i = 1..D (left to right)
    hidden degrees      m_l(k) = max(min(min m_{l-1}, D - 1), ceil(k (D - 1) / (H_l + 1))),  k = 1..H_l
    hidden masks        M_l[j, k] = 1  iff  m_{l-1}(j) <= m_l(k)
    output mask         M_out[j, d] = 1  iff  m_L(j) < d
so output d depends on inputs 1..d-1 only. Each output d carries (shift_d, log_scale_d), laid out as unit
index 2 d + p (TFP's `params=2` layout); the last layer starts at zero, so a MAF step starts as the identity.

Context (`context_shape`, as TFP's `AutoregressiveNetwork(conditional=True, conditional_event_shape=...,
conditional_input_layers="all_layers")`): `call(x, conditional_input=c)` adds c V_l, an unmasked dense map of the
flattened context, to the pre-activation of every hidden layer l (Papamakarios et al. 2017, sec. 3.4: the
context may feed any unit, since it is not one of the autoregressive inputs). Output d then depends on
x_1..x_{d-1} and c.
"""

import keras
import numpy as np
import tensorflow as tf

from keras_models.core.precision import in_flow_dtype
from keras_models.layers.networks.conditioners import checked_context, checked_context_shape
from tfp_flows.validation import check_int, check_positive_ints

__all__ = ["MADE", "MaskedKernel", "made_degrees", "made_masks"]


def made_degrees(event_size, hidden_units):
    """Degrees of the input and hidden units (the module docstring's formulas), as int NumPy arrays."""
    degrees = [np.arange(1, event_size + 1)]
    for units in hidden_units:
        min_degree = min(int(np.min(degrees[-1])), event_size - 1)
        spread = np.ceil(np.arange(1, units + 1) * (event_size - 1) / float(units + 1)).astype(np.int64)
        degrees.append(np.maximum(min_degree, spread))
    return degrees


def made_masks(degrees):
    """0/1 float masks [in, out] per layer: hidden masks use <=, the output mask uses strict < (module docstring)."""
    hidden = [(d_in[:, None] <= d_out[None, :]) for d_in, d_out in zip(degrees[:-1], degrees[1:])]
    output = degrees[-1][:, None] < degrees[0][None, :]
    return [m.astype(np.float32) for m in hidden + [output]]


@keras.saving.register_keras_serializable(package="tfp_flows")
class MADE(keras.layers.Layer):
    """x [..., D] -> (shift [..., D], log_scale [..., D]) with output d a function of x_1..x_{d-1} only.

    Args:
      event_size: D, the number of autoregressive dimensions.
      hidden_units: widths of the masked hidden layers.
      activation: hidden activation (any Keras activation name or callable).
      log_scale_limit: c > 0 bounds the log-scale softly, log_scale = c tanh(raw / c) (|log_scale| < c); None
        leaves it unbounded.
      context_shape: None (unconditional), or the shape of one context: `call(x, conditional_input=c)` then
        needs c [*batch, *context_shape] (module docstring).

    Example:
        >>> import tensorflow as tf
        >>> made = MADE(event_size=3, hidden_units=(16,))
        >>> shift, log_scale = made(tf.random.normal([5, 3]))   # zeros until trained
        >>> shift.shape, log_scale.shape
        (TensorShape([5, 3]), TensorShape([5, 3]))
    """

    def __init__(
        self, event_size, hidden_units=(256, 256), activation="relu", log_scale_limit=2.0, context_shape=None, **kwargs
    ):
        super().__init__(**kwargs)
        self.context_shape = checked_context_shape(context_shape, "MADE")
        event_size, hidden_units = (
            check_int(event_size, "event_size"),
            check_positive_ints(hidden_units, "hidden_units"),
        )
        if log_scale_limit is not None and not log_scale_limit > 0:
            raise ValueError(f"`log_scale_limit` must be None or > 0; received {log_scale_limit!r}")
        self.event_size = int(event_size)
        self.hidden_units = hidden_units
        self.activation = keras.activations.get(activation)
        self._activation_config = (
            activation if isinstance(activation, str) else keras.activations.serialize(self.activation)
        )
        self.log_scale_limit = log_scale_limit
        masks = made_masks(made_degrees(self.event_size, self.hidden_units))
        # The output mask is repeated for (shift, log_scale): unit 2 d + p reads what output d may read.
        masks[-1] = np.repeat(masks[-1], 2, axis=1)
        self.masks = masks

    def build(self, input_shape=None):
        self.kernels, self.biases = [], []  # tracked lists: weights stay ordered kernel_0, bias_0, kernel_1, ...
        for i, mask in enumerate(self.masks):
            last = i == len(self.masks) - 1
            with keras.name_scope(self.name, caller=self):  # the path add_weight would give: <layer>/kernel_i
                kernel = MaskedKernel(
                    mask,
                    initializer="zeros" if last else keras.initializers.GlorotUniform(),
                    shape=mask.shape,
                    dtype=self.variable_dtype,
                    name=f"kernel_{i}",
                )
            kernel.constraint = _reassign  # the optimizer re-assigns (so masks) the kernel after every update
            self.kernels.append(kernel)
            self.biases.append(self.add_weight(name=f"bias_{i}", shape=(mask.shape[1],), initializer="zeros"))
        self.context_kernels = []  # unmasked: the context is no autoregressive input
        if self.context_shape is not None:
            size = int(np.prod(self.context_shape))
            self.context_kernels = [
                self.add_weight(name=f"context_kernel_{i}", shape=(size, units), initializer="glorot_uniform")
                for i, units in enumerate(self.hidden_units)
            ]
        self.built = True

    def raw_outputs(self, x, conditional_input=None):
        """The last layer's units as [..., D, units per dimension] (unit p of dimension d: index P d + p)."""
        # No mask here: every kernel is stored masked (MaskedKernel), so these are plain dense layers.
        x = tf.convert_to_tensor(x, self.compute_dtype)
        context = None
        if conditional_input is not None or self.context_shape is not None:
            batch = x.shape.as_list()[:-1] if x.shape.rank is not None else []
            context = checked_context(conditional_input, self.context_shape, batch, self.name, self.compute_dtype)
        batch_shape = tf.shape(x)[:-1]
        h = tf.reshape(x, [-1, self.event_size])
        for i, (kernel, bias) in enumerate(zip(self.kernels, self.biases)):
            h = tf.matmul(h, kernel) + bias
            if i < len(self.kernels) - 1:
                if context is not None:
                    h = h + tf.matmul(context, self.context_kernels[i])
                h = self.activation(h)
        per_dimension = self.masks[-1].shape[1] // self.event_size
        h = in_flow_dtype(h, self.variable_dtype)  # the bijector's parameters, in float32 under a mixed policy
        return tf.reshape(h, tf.concat([batch_shape, [self.event_size, per_dimension]], axis=0))

    def call(self, x, conditional_input=None):
        h = self.raw_outputs(x, conditional_input)
        shift, raw_log_scale = h[..., 0], h[..., 1]
        if self.log_scale_limit is None:
            return shift, raw_log_scale
        limit = tf.constant(self.log_scale_limit, raw_log_scale.dtype)
        return shift, limit * tf.math.tanh(raw_log_scale / limit)

    def get_config(self):
        config = super().get_config()
        config.update(
            event_size=self.event_size,
            hidden_units=list(self.hidden_units),
            activation=self._activation_config,
            log_scale_limit=self.log_scale_limit,
            context_shape=None if self.context_shape is None else list(self.context_shape),
        )
        return config


class MaskedKernel(keras.Variable):
    """A Keras variable that is zero wherever `mask` is: every value assigned to it is multiplied by the mask.

    `assign_add` / `assign_sub` go through `assign`, and so do the optimizer's constraint step, `set_weights`
    and weight loading; a `tf.train.Checkpoint` restore is masked too. The initial value is masked as well.

    Args:
      mask: 0/1 array of the variable's shape.
      initializer: a Keras initializer (object or name); its values are masked.
      shape: the variable's shape.
      **kwargs: further `keras.Variable` arguments (dtype, trainable, name, ...).
    """

    def __init__(self, mask, initializer, shape, **kwargs):
        self._mask = np.asarray(mask)
        if self._mask.shape != tuple(shape):
            raise ValueError(
                f"MaskedKernel: `mask` must have the variable's shape {tuple(shape)}; received shape {self._mask.shape}"
            )
        super().__init__(initializer=self._masked_initializer(initializer), shape=shape, **kwargs)

    @property
    def mask(self):
        """The 0/1 mask (NumPy array of the variable's shape)."""
        return self._mask

    def _apply_mask(self, value):
        value = tf.cast(self._convert_to_tensor(value), self._dtype)
        return value * tf.constant(self._mask, self._dtype)

    def _masked_initializer(self, initializer):
        initializer = keras.initializers.get(initializer)
        return lambda shape, dtype=None: self._apply_mask(initializer(shape, dtype=dtype))

    def assign(self, value):
        return super().assign(self._apply_mask(value))

    def _restore_from_tensors(self, restored_tensors):
        # tf.train.Checkpoint writes to the underlying tf.Variable, not through `assign`: mask what it restores.
        return super()._restore_from_tensors(
            {
                key: self._apply_mask(value) if value.shape == self.shape else value
                for key, value in restored_tensors.items()
            }
        )


def _reassign(kernel):
    # A kernel "constraint" that returns the kernel unchanged: Keras' optimizer then calls
    # `kernel.assign(kernel)` after each update, and MaskedKernel.assign zeroes what the update moved off the
    # mask (one product per kernel per step, as TFP's kernel constraint). A product here would mask twice.
    return kernel
