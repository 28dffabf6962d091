"""Conditioner networks for coupling layers, and the wrapper that fits them to the coupling interface.

A coupling bijector hands its conditioner the masked input with the full event shape and expects parameters
of the full event shape back, unless the conditioner declares `block_split` (`tfp_flows.coupling`): then,
for half and channel masks, it hands over the pass-through block alone and takes back parameters for the
transformed block alone. `MaskedConditioner` declares it, so inside a coupling its network sees the D/2
pass-through entries and produces parameters for the D/2 transformed ones, with no zero-filled input or
zero-padded output in between, as in TFP's RealNVP. Called on the full masked input it still keeps the
full-shape contract (slicing the block out, padding the parameters with zeros).

Context (conditional flows, `tfp_flows.conditioning`). Built with `context_shape`, a `MaskedConditioner` is
called as `conditioner(x, conditional_input=c)` with c of shape [*batch, *context_shape]: c is flattened to a
vector of prod(context_shape) values and concatenated to the network's input, on the last axis of a vector
block, or broadcast over H x W and concatenated as channels of an image block (the conditional RealNVP/Glow of
Winkler et al. 2019, "Learning likelihoods with conditional normalizing flows"). The network's first layer is
built for the wider input, so it learns the context embedding; any network (`mlp`, `glow_conv`,
`ResidualConvNet`, a split prior's conv) takes a context this way.
"""

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_models.core.precision import in_flow_dtype
from tfp_flows.coupling import last_axis_split
from tfp_flows.validation import check_positive_ints


def checked_context_shape(context_shape, owner):
    """`context_shape` as a tuple of positive ints, or None; a ValueError naming it otherwise."""
    if context_shape is None:
        return None
    shape = tuple(context_shape) if np.ndim(context_shape) else (context_shape,)
    return tuple(int(d) for d in check_positive_ints(shape, "context_shape", owner=owner))


def checked_context(conditional_input, context_shape, batch_shape, owner, dtype):
    """The context as a [N, prod(context_shape)] tensor of `dtype`, N = prod(batch_shape) of the input, after
    checking that it is given exactly when `context_shape` is (ValueErrors name `conditional_input`).

    `batch_shape` is the input's static batch shape (a list, entries may be None): the context's leading axes
    must match it. Returns None for an unconditional network called without a context.
    """
    if context_shape is None:
        if conditional_input is not None:
            raise ValueError(
                f"{owner}: received `conditional_input` but this network was built without "
                "`context_shape` (an unconditional model); pass context_shape=... to the model to "
                "condition it"
            )
        return None
    expected = "[batch, " + ", ".join(map(str, context_shape)) + "]"
    if conditional_input is None:
        raise ValueError(
            f"{owner}: this network is conditional (context_shape={context_shape}) and needs "
            f"`conditional_input` of shape {expected}; received None"
        )
    c = tf.convert_to_tensor(conditional_input)
    if not c.dtype.is_floating:
        raise TypeError(
            f"{owner}: `conditional_input` must be floating point of shape {expected}; received dtype {c.dtype.name}"
        )
    rank = len(context_shape)
    shape = c.shape
    if shape.rank is not None:
        trailing = shape.as_list()[shape.rank - rank :] if shape.rank >= rank else None
        leading = shape.as_list()[: shape.rank - rank]
        if (
            trailing is None
            or any(t is not None and t != e for t, e in zip(trailing, context_shape))
            or len(leading) != len(batch_shape)
            or any(a is not None and b is not None and a != b for a, b in zip(leading, batch_shape))
        ):
            raise ValueError(
                f"{owner}: `conditional_input` must have shape {expected} with the input's batch "
                f"shape {list(batch_shape)} (context_shape={context_shape}); received shape "
                f"{shape.as_list()}"
            )
    return tf.reshape(tf.cast(c, dtype), [-1, int(np.prod(context_shape))])


def with_context(h, context):
    """`h` [N, ..., channels] with `context` [N, K] appended on the last axis (broadcast over the middle axes)."""
    if context is None:
        return h
    middle = h.shape.rank - 2
    context = tf.reshape(
        context, tf.concat([tf.shape(context)[:1], tf.ones([middle], tf.int32), tf.shape(context)[1:]], 0)
    )
    context = tf.broadcast_to(context, tf.concat([tf.shape(h)[:-1], tf.shape(context)[-1:]], 0))
    return tf.concat([h, context], axis=-1)


def mlp(
    hidden_units: Sequence[int],
    output_units: int,
    activation: str = "relu",
    name: str | None = None,
    dtype: Any = None,
    last_initializer: Any = "zeros",
    dropout: float = 0.0,
) -> keras.Sequential:
    """Dense network; by default the last layer starts at zero so every coupling starts as the identity (Glow
    sec. 3.3). `last_initializer` (a Keras initializer) replaces that for the last kernel; its bias stays zero.

    `dropout` > 0 puts a `keras.layers.Dropout` of that rate after every hidden layer (Srivastava et al. 2014),
    active only while training, as BayesFlow's coupling MLPs have by default (0.05): on small tables it keeps the
    flow from fitting the training rows alone (benchmarks/README.md, "Random permutations with dropout").
    `dtype` (a Keras dtype policy or name, e.g. the owning model's `dtype_policy`) reaches every Dense layer:
    Keras 3 does not pass a parent's policy down, and a float32 layer would cast float64 inputs down.
    """
    layers = []
    for units in hidden_units:
        layers.append(keras.layers.Dense(units, activation=activation, dtype=dtype))
        if dropout:
            layers.append(keras.layers.Dropout(dropout, dtype=dtype))
    layers.append(
        keras.layers.Dense(output_units, kernel_initializer=last_initializer, bias_initializer="zeros", dtype=dtype)
    )
    return keras.Sequential(layers, name=name)


def glow_conv(width, output_channels, name=None, dtype=None):
    """Glow's conditioner: 3x3 conv, 1x1 conv (ReLU), zero-initialised 3x3 conv (Kingma & Dhariwal 2018).

    `dtype` (a Keras dtype policy or name) reaches every Conv2D, as in `mlp`.
    """
    return keras.Sequential(
        [
            keras.layers.Conv2D(width, 3, padding="same", activation="relu", dtype=dtype),
            keras.layers.Conv2D(width, 1, padding="same", activation="relu", dtype=dtype),
            keras.layers.Conv2D(
                output_channels, 3, padding="same", kernel_initializer="zeros", bias_initializer="zeros", dtype=dtype
            ),
        ],
        name=name,
    )


@keras.saving.register_keras_serializable(package="tfp_flows")
class ResidualConvNet(keras.layers.Layer):
    """RealNVP's conditioner: a 3x3 conv in, `num_blocks` residual blocks, a zero-initialised 3x3 conv out."""

    def __init__(self, width, num_blocks, output_channels, **kwargs):
        super().__init__(**kwargs)
        self.width, self.num_blocks, self.output_channels = width, num_blocks, output_channels
        dtype = self.dtype_policy  # Keras 3 does not hand a layer's policy to its sub-layers by itself
        self.conv_in = keras.layers.Conv2D(width, 3, padding="same", dtype=dtype)
        self.blocks = [
            [
                keras.layers.Conv2D(width, 3, padding="same", activation="relu", dtype=dtype),
                keras.layers.Conv2D(width, 3, padding="same", dtype=dtype),
            ]
            for _ in range(num_blocks)
        ]
        self.conv_out = keras.layers.Conv2D(
            output_channels, 3, padding="same", kernel_initializer="zeros", bias_initializer="zeros", dtype=dtype
        )

    def build(self, input_shape):
        self.conv_in.build(input_shape)
        hidden_shape = tuple(input_shape[:-1]) + (self.width,)
        for first, second in self.blocks:
            first.build(hidden_shape)
            second.build(hidden_shape)
        self.conv_out.build(hidden_shape)
        self.built = True

    def call(self, x):
        h = self.conv_in(x)
        for first, second in self.blocks:
            h = h + second(first(tf.nn.relu(h)))
        return self.conv_out(tf.nn.relu(h))

    def get_config(self):
        config = super().get_config()
        config.update(width=self.width, num_blocks=self.num_blocks, output_channels=self.output_channels)
        return config


class MaskedConditioner(keras.layers.Layer):
    """Adapts `network` to the coupling interface, in either of its two forms.

    Full form (any mask): the masked input [*batch, *event] in, parameters [*batch, *event, *trailing] out,
    zeros on the pass-through entries. Block form (half and channel masks, `block_split` is not None): the
    pass-through block [*batch, *event[:-1], pass_channels] in, parameters of the transformed block
    [*batch, *event[:-1], trans_channels, *trailing] out. `call` picks the form from the static size of the
    input's last axis (pass_channels < the event's last axis, so the two cannot be confused).

    Args:
      network: a Keras layer mapping [N, *pass_shape] to [N, *trans_shape[:-1], trans_channels * width], where
        width = sum over parameters of prod(trailing shape) (e.g. 2 for (shift, log_scale)).
      mask: the coupling's 0/1 mask (NumPy, event shape).
      param_trailing_shapes: one tuple per returned parameter: () for event-shaped parameters, (K,) for
        parameters with a trailing axis of K mixture components.
      context_shape: None (unconditional), or the shape of one context c: then `call(x, conditional_input=c)`
        needs c [*batch, *context_shape], appended to the network's input (module docstring).
    """

    def __init__(self, network, mask, param_trailing_shapes=((), ()), context_shape=None, **kwargs):
        super().__init__(**kwargs)
        self.network = network
        self.context_shape = checked_context_shape(context_shape, "MaskedConditioner")
        self.context_size = 0 if self.context_shape is None else int(np.prod(self.context_shape))
        self.mask = np.asarray(mask, np.float32)
        self.param_trailing_shapes = [tuple(s) for s in param_trailing_shapes]
        self.split = last_axis_split(self.mask)
        channels = self.mask.shape[-1]
        if self.split is None:
            self.pass_channels = self.trans_channels = channels
        else:
            index, pass_first = self.split  # the second block starts at `index`
            if pass_first:
                self.pass_channels, self.trans_channels = index, channels - index
                self._pass_slice = slice(0, index)
            else:
                self.pass_channels, self.trans_channels = channels - index, index
                self._pass_slice = slice(index, channels)
        self.output_width = int(sum(int(np.prod(s)) for s in self.param_trailing_shapes))

    @property
    def block_split(self):
        """`last_axis_split(mask)`: the coupling protocol's declaration that this conditioner takes blocks."""
        return self.split

    @property
    def network_output_channels(self):
        return self.trans_channels * self.output_width

    def build(self, input_shape=None):
        self.network.build((None,) + self.mask.shape[:-1] + (self.pass_channels + self.context_size,))
        self.built = True

    def _context(self, x, conditional_input):
        """The checked context [N, K] for input `x` (None when unconditional)."""
        if self.context_shape is None and conditional_input is None:
            return None
        rank = x.shape.rank
        batch = x.shape.as_list()[: rank - self.mask.ndim] if rank is not None else []
        return checked_context(conditional_input, self.context_shape, batch, self.name, self.compute_dtype)

    def call(self, x, conditional_input=None):
        context = self._context(x, conditional_input)
        if self.block_split is not None and x.shape.rank is not None and x.shape[-1] == self.pass_channels:
            return self._call_on_block(x, context)
        event_rank = self.mask.ndim
        batch_shape = tf.shape(x)[: tf.rank(x) - event_rank]
        flat = tf.reshape(x, tf.concat([[-1], self.mask.shape], axis=0))
        if self.split is not None:
            flat = flat[..., self._pass_slice]
        params = []
        for piece, trailing in zip(
            self._split_output(self.network(with_context(flat, context))), self.param_trailing_shapes
        ):
            if self.split is not None:
                piece = self._pad_to_event(piece, len(trailing))
            params.append(tf.reshape(piece, tf.concat([batch_shape, self.mask.shape, trailing], 0)))
        return in_flow_dtype(tuple(params), self.variable_dtype)

    def _call_on_block(self, x_pass, context=None):
        """Block form: the same network and the same slices of its output, without zeros in or out."""
        event_rank = self.mask.ndim
        # One batch axis is what the network takes: no reshape then (the usual case inside a model).
        one_batch_axis = x_pass.shape.rank == event_rank + 1
        if not one_batch_axis:
            batch_shape = tf.shape(x_pass)[: tf.rank(x_pass) - event_rank]
            block_shape = self.mask.shape[:-1] + (self.trans_channels,)
            x_pass = tf.reshape(x_pass, (-1,) + self.mask.shape[:-1] + (self.pass_channels,))
        params = self._split_output(self.network(with_context(x_pass, context)))
        if not one_batch_axis:
            params = [
                tf.reshape(piece, tf.concat([batch_shape, block_shape, trailing], 0))
                for piece, trailing in zip(params, self.param_trailing_shapes)
            ]
        return in_flow_dtype(tuple(params), self.variable_dtype)

    def _split_output(self, out):
        """The network's output [..., trans_channels * width] as one tensor per parameter of the transformed
        block, [..., trans_channels, *trailing]."""
        params, start = [], 0
        for trailing in self.param_trailing_shapes:
            size = int(np.prod(trailing))
            piece = out[..., start * self.trans_channels : (start + size) * self.trans_channels]
            start += size
            if trailing:
                piece = tf.reshape(piece, tf.concat([tf.shape(piece)[:-1], [self.trans_channels], trailing], 0))
            params.append(piece)
        return params

    def _pad_to_event(self, piece, num_trailing):
        """Zeros on the pass-through block, so the parameter has the full event shape the coupling expects."""
        _, pass_first = self.split
        axis = piece.shape.rank - 1 - num_trailing
        # Static paddings: XLA needs the zeros' shape at compile time, also when the batch size is not fixed.
        paddings = [[0, 0]] * piece.shape.rank
        paddings[axis] = [self.pass_channels, 0] if pass_first else [0, self.pass_channels]
        return tf.pad(piece, paddings)
