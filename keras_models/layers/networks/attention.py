"""Flow++'s conditioner: gated residual convolutions with an optional light self-attention block.

Ho et al. 2019, "Flow++", sec. 3.3: the coupling parameters come from a stack of blocks

    h <- LayerNorm(h + gate(conv(concat_elu(h))))                             (gated convolution)
    h <- LayerNorm(h + gate(W [MultiHeadAttention(h + P)]))                    (gated self-attention, optional)

where gate(a, b) = a * sigmoid(b) splits the channels in two, P is a learned position embedding and the
attention runs over the H * W flattened positions. The stack starts with a 3x3 convolution to `width` channels and
ends with a zero-initialised 3x3 convolution, so every coupling starts as the identity (Glow sec. 3.3).

Flow++ used 96 channels, 10 blocks and 4 heads on CIFAR-10; the defaults here are far smaller (see `FlowPlusPlus`).

Example:
    >>> import tensorflow as tf
    >>> net = GatedConvAttentionNet(width=16, num_blocks=1, output_channels=6, use_attention=True, num_heads=2)
    >>> net.build((None, 4, 4, 1))
    >>> net(tf.zeros([3, 4, 4, 1])).shape                    # zero-initialised output
    TensorShape([3, 4, 4, 6])
"""

import keras
import numpy as np
import tensorflow as tf


def concat_elu(x):
    """elu([x, -x]) on the channel axis (PixelCNN++ / Flow++ nonlinearity): keeps both signs' information."""
    return tf.nn.elu(tf.concat([x, -x], axis=-1))


def gate(x):
    """a * sigmoid(b) for x = [a, b] split on the channel axis (gated linear unit)."""
    a, b = tf.split(x, 2, axis=-1)
    return a * tf.sigmoid(b)


class GatedConvBlock(keras.layers.Layer):
    """h + gate(conv1x1(concat_elu(conv3x3(concat_elu(h))))), then layer norm (Flow++'s `gated_conv` + `ln`)."""

    def __init__(self, width, **kwargs):
        super().__init__(**kwargs)
        self.width = width
        dtype = self.dtype_policy
        self.conv = keras.layers.Conv2D(width, 3, padding="same", dtype=dtype)
        self.gate_conv = keras.layers.Conv2D(2 * width, 1, padding="same", dtype=dtype)
        self.norm = keras.layers.LayerNormalization(epsilon=1e-5, dtype=dtype)

    def build(self, input_shape):
        spatial = tuple(input_shape[:-1])
        self.conv.build(spatial + (2 * self.width,))
        self.gate_conv.build(spatial + (2 * self.width,))
        self.norm.build(spatial + (self.width,))
        self.built = True

    def call(self, h):
        c = self.gate_conv(concat_elu(self.conv(concat_elu(h))))
        return self.norm(h + gate(c))


class GatedSelfAttentionBlock(keras.layers.Layer):
    """h + gate(dense(MultiHeadAttention(h + P))) over the flattened positions, then layer norm.

    Flow++'s `gated_attn`: P is a learned [H, W, width] position embedding (initial std 0.01); attention cost is
    O((H W)^2) per image, which is why it stays optional and light.
    """

    def __init__(self, width, num_heads, **kwargs):
        super().__init__(**kwargs)
        if width % num_heads:
            raise ValueError(f"`num_heads` must divide the conditioner width {width}; received num_heads={num_heads}")
        self.width, self.num_heads = width, num_heads
        dtype = self.dtype_policy
        self.attention = keras.layers.MultiHeadAttention(num_heads=num_heads, key_dim=width // num_heads, dtype=dtype)
        self.gate_dense = keras.layers.Dense(2 * width, dtype=dtype)
        self.norm = keras.layers.LayerNormalization(epsilon=1e-5, dtype=dtype)

    def build(self, input_shape):
        height, width_px = int(input_shape[-3]), int(input_shape[-2])
        self.position_embedding = self.add_weight(
            name="position_embedding",
            shape=(height, width_px, self.width),
            initializer=keras.initializers.RandomNormal(stddev=0.01),
        )
        sequence_shape = (None, height * width_px, self.width)
        self.attention.build(sequence_shape, sequence_shape)
        self.gate_dense.build(sequence_shape)
        self.norm.build(tuple(input_shape))
        self.built = True

    def call(self, h):
        shape = tf.shape(h)
        sequence = tf.reshape(h + self.position_embedding, [shape[0], -1, self.width])
        attended = self.attention(sequence, sequence)
        c = tf.reshape(self.gate_dense(attended), tf.concat([shape[:-1], [2 * self.width]], axis=0))
        return self.norm(h + gate(c))


@keras.saving.register_keras_serializable(package="tfp_flows")
class GatedConvAttentionNet(keras.layers.Layer):
    """The Flow++ conditioner network: [N, H, W, C_in] -> [N, H, W, output_channels].

    Args:
      width: hidden channels.
      num_blocks: gated-convolution blocks (each followed by a self-attention block when `use_attention`).
      output_channels: channels of the output (the coupling's parameters).
      use_attention: add the gated multi-head self-attention block after every convolution block.
      num_heads: attention heads (must divide `width`).
      extra_input: optional constant [H, W, E] array concatenated to the input channels, e.g. the coupling's
        checkerboard mask, so the translation-equivariant convolutions know which positions are transformed.
      zero_init_output: start the last convolution at zero (coupling starts as the identity).
    """

    def __init__(
        self,
        width,
        num_blocks,
        output_channels,
        use_attention=False,
        num_heads=4,
        extra_input=None,
        zero_init_output=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.width, self.num_blocks, self.output_channels = int(width), int(num_blocks), int(output_channels)
        self.use_attention, self.num_heads = bool(use_attention), int(num_heads)
        self.extra_input = None if extra_input is None else np.asarray(extra_input, np.float32)
        self.zero_init_output = zero_init_output
        dtype = self.dtype_policy
        self.conv_in = keras.layers.Conv2D(self.width, 3, padding="same", dtype=dtype)
        self.blocks = []
        for _ in range(self.num_blocks):
            self.blocks.append(GatedConvBlock(self.width, dtype=dtype))
            if self.use_attention:
                self.blocks.append(GatedSelfAttentionBlock(self.width, self.num_heads, dtype=dtype))
        out_init = "zeros" if zero_init_output else "glorot_uniform"
        self.conv_out = keras.layers.Conv2D(
            self.output_channels, 3, padding="same", kernel_initializer=out_init, bias_initializer="zeros", dtype=dtype
        )

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        extra = 0 if self.extra_input is None else self.extra_input.shape[-1]
        self.conv_in.build(input_shape[:-1] + (input_shape[-1] + extra,))
        hidden_shape = input_shape[:-1] + (self.width,)
        for block in self.blocks:
            block.build(hidden_shape)
        self.conv_out.build(hidden_shape[:-1] + (2 * self.width,))
        self.built = True

    def call(self, x):
        if self.extra_input is not None:
            extra = tf.cast(self.extra_input, x.dtype)
            extra = tf.broadcast_to(extra, tf.concat([tf.shape(x)[:1], tf.shape(extra)], axis=0))
            x = tf.concat([x, extra], axis=-1)
        h = self.conv_in(x)
        for block in self.blocks:
            h = block(h)
        return self.conv_out(concat_elu(h))

    def get_config(self):
        config = super().get_config()
        config.update(
            width=self.width,
            num_blocks=self.num_blocks,
            output_channels=self.output_channels,
            use_attention=self.use_attention,
            num_heads=self.num_heads,
            extra_input=None if self.extra_input is None else self.extra_input.tolist(),
            zero_init_output=self.zero_init_output,
        )
        return config
