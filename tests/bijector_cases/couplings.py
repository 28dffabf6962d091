"""Registry cases for the coupling bijectors, ActNorm and the invertible 1x1 convolution.

Conditioners are small `tf.Module`s whose weights are `tf.Variable`s of the dtype under test (so the kit's
gradient checks reach them through `bijector.trainable_variables`); their initial values come from fixed NumPy
seeds, so the float32 and float64 builds hold the same numbers. Event sizes stay <= 32 so the Jacobian checks
are cheap.
"""

import math

import numpy as np
import tensorflow as tf

from bijector_cases import BijectorCase
from tfp_flows import ActNorm, AdditiveCoupling, AffineCoupling, InvertibleConv1x1, coupling, masks
from tfp_flows.invertible_conv1x1 import random_rotation_lower_upper


class DenseConditioner(tf.Module):
    """x [..., D] -> `num_outputs` tensors [..., D]: one tanh hidden layer, a linear read-out.

    `linear_skip=True` adds a term linear in x, so the outputs grow without bound with |x|: the bounded
    log-scales must keep the coupling finite at large inputs anyway.
    """

    def __init__(self, event_size, num_outputs, dtype, seed, hidden=8, linear_skip=False):
        super().__init__(name="dense_conditioner")
        rng = np.random.default_rng(seed)
        self.num_outputs = num_outputs
        self.w1 = tf.Variable(rng.normal(size=(event_size, hidden)) / np.sqrt(event_size), dtype=dtype)
        self.b1 = tf.Variable(rng.normal(size=hidden) * 0.1, dtype=dtype)
        self.w2 = tf.Variable(rng.normal(size=(hidden, num_outputs * event_size)) * 0.5 / np.sqrt(hidden), dtype=dtype)
        self.b2 = tf.Variable(rng.normal(size=num_outputs * event_size) * 0.1, dtype=dtype)
        self.skip = (
            tf.Variable(rng.normal(size=(event_size, num_outputs * event_size)) * 0.3, dtype=dtype)
            if linear_skip
            else None
        )

    def __call__(self, x):
        hidden = tf.math.tanh(tf.einsum("...i,ij->...j", x, self.w1) + self.b1)
        out = tf.einsum("...i,ij->...j", hidden, self.w2) + self.b2
        if self.skip is not None:
            out = out + tf.einsum("...i,ij->...j", x, self.skip)
        return tuple(tf.split(out, self.num_outputs, axis=-1))


class ConvConditioner(tf.Module):
    """x [..., H, W, C] -> `num_outputs` tensors [..., H, W, C]: a 3x3 tanh conv, then a 1x1 conv."""

    def __init__(self, channels, num_outputs, dtype, seed, hidden=4):
        super().__init__(name="conv_conditioner")
        rng = np.random.default_rng(seed)
        self.num_outputs = num_outputs
        self.k1 = tf.Variable(rng.normal(size=(3, 3, channels, hidden)) / np.sqrt(9 * channels), dtype=dtype)
        self.k2 = tf.Variable(
            rng.normal(size=(1, 1, hidden, num_outputs * channels)) * 0.5 / np.sqrt(hidden), dtype=dtype
        )
        self.b2 = tf.Variable(rng.normal(size=num_outputs * channels) * 0.1, dtype=dtype)

    def __call__(self, x):
        shape = tf.shape(x)
        images = tf.reshape(x, tf.concat([[-1], shape[-3:]], axis=0))
        hidden = tf.math.tanh(tf.nn.conv2d(images, self.k1, strides=1, padding="SAME"))
        out = tf.nn.conv2d(hidden, self.k2, strides=1, padding="SAME") + self.b2
        out = tf.reshape(out, tf.concat([shape[:-1], [-1]], axis=0))
        return tuple(tf.split(out, self.num_outputs, axis=-1))


class ShiftOnly(tf.Module):
    """Adapter: the first output of a conditioner, as AdditiveCoupling's `shift_fn`."""

    def __init__(self, conditioner):
        super().__init__(name="shift_only")
        self.conditioner = conditioner

    @property
    def block_split(self):
        """The wrapped conditioner's (a block conditioner stays one)."""
        return getattr(self.conditioner, "block_split", None)

    def __call__(self, x):
        return self.conditioner(x)[0]


class BlockConditioner(tf.Module):
    """A block conditioner (`block_split`, see `tfp_flows.coupling`) for a half or channel `mask`: the
    pass-through block [..., P] -> `num_outputs` tensors [..., T] for the transformed block, through one tanh
    hidden layer applied per position (a dense layer on the last axis, so vectors and images alike)."""

    def __init__(self, mask, num_outputs, dtype, seed, hidden=8):
        super().__init__(name="block_conditioner")
        self._mask = np.asarray(mask)
        index, pass_first = coupling.last_axis_split(self._mask)
        size = self._mask.shape[-1]
        num_pass = index if pass_first else size - index
        rng = np.random.default_rng(seed)
        self.num_outputs = num_outputs
        self.w1 = tf.Variable(rng.normal(size=(num_pass, hidden)) / np.sqrt(num_pass), dtype=dtype)
        self.b1 = tf.Variable(rng.normal(size=hidden) * 0.1, dtype=dtype)
        self.w2 = tf.Variable(
            rng.normal(size=(hidden, num_outputs * (size - num_pass))) * 0.5 / np.sqrt(hidden), dtype=dtype
        )
        self.b2 = tf.Variable(rng.normal(size=num_outputs * (size - num_pass)) * 0.1, dtype=dtype)

    @property
    def block_split(self):
        return coupling.last_axis_split(self._mask)

    def __call__(self, x_pass):
        hidden = tf.math.tanh(tf.einsum("...i,ij->...j", x_pass, self.w1) + self.b1)
        out = tf.einsum("...i,ij->...j", hidden, self.w2) + self.b2
        return tuple(tf.split(out, self.num_outputs, axis=-1))


def _normal(shape, seed, scale=1.0):
    return (np.random.default_rng(seed).normal(size=shape) * scale).astype(np.float32)


def _edges(shape, seed):
    """Zeros, and large magnitudes of both signs."""
    signs = np.sign(_normal(shape, seed))
    return (np.zeros(shape, np.float32), (1e3 * signs).astype(np.float32), _normal(shape, seed + 1, scale=1e2))


def _lower_upper(channels, seed, diag_scale, dtype):
    """LU of a random rotation with the diagonal of U rescaled: a well-conditioned W with log|det W| != 0."""
    lower_upper, permutation = random_rotation_lower_upper(channels, seed=seed, dtype=np.float64)
    lower_upper = lower_upper + np.diag(np.diag(lower_upper) * (np.asarray(diag_scale) - 1.0))
    return tf.Variable(lower_upper, dtype=dtype, name="lower_upper"), tf.constant(permutation)


def _affine(mask, conditioner_fn, bound, **kwargs):
    def make(dtype):
        return AffineCoupling(mask, conditioner_fn(dtype), log_scale_bound=bound, **kwargs)

    return make


VECTOR_SHAPE = (5, 6)
IMAGE_SHAPE = (3, 4, 4, 2)
CHANNEL_IMAGE_SHAPE = (3, 2, 2, 4)

CASES = {
    # Linear skip: the raw log-scale grows like |x|; tanh keeps |s| < 2 at the 1e3 edge inputs.
    "AffineCoupling-half-tanh": BijectorCase(
        make=_affine(masks.half(6), lambda dtype: DenseConditioner(6, 2, dtype, seed=1, linear_skip=True), "tanh"),
        x=_normal(VECTOR_SHAPE, 10),
        event_ndims=1,
        edge_inputs=_edges(VECTOR_SHAPE, 11),
    ),
    "AffineCoupling-half-odd-parity1-unbounded": BijectorCase(
        make=_affine(masks.half(5, parity=1), lambda dtype: DenseConditioner(5, 2, dtype, seed=2), None),
        x=_normal((4, 5), 12),
        event_ndims=1,
        edge_inputs=_edges((4, 5), 13),
    ),
    # Glow's sigmoid with the default floor exp(-2) on the density-direction scale.
    "AffineCoupling-checkerboard-sigmoid": BijectorCase(
        make=_affine(masks.checkerboard(4, 4, 2), lambda dtype: ConvConditioner(2, 2, dtype, seed=3), "sigmoid"),
        x=_normal(IMAGE_SHAPE, 14),
        event_ndims=3,
        edge_inputs=_edges(IMAGE_SHAPE, 15),
    ),
    # Exactly Glow's sigmoid (no floor) bounds the density direction only; the conditioner's tanh layer bounds the
    # raw scale here.
    "AffineCoupling-half-sigmoid-no-floor": BijectorCase(
        make=_affine(
            masks.half(6), lambda dtype: DenseConditioner(6, 2, dtype, seed=7), "sigmoid", log_scale_limit=math.inf
        ),
        x=_normal(VECTOR_SHAPE, 40),
        event_ndims=1,
        edge_inputs=_edges(VECTOR_SHAPE, 41),
    ),
    # Linear skip: the raw log-scale grows like |x|; the floor exp(-c) keeps sampling finite at the edge inputs.
    "AffineCoupling-half-sigmoid-floor-limit3": BijectorCase(
        make=_affine(
            masks.half(6),
            lambda dtype: DenseConditioner(6, 2, dtype, seed=8, linear_skip=True),
            "sigmoid",
            log_scale_limit=3.0,
        ),
        x=_normal(VECTOR_SHAPE, 42),
        event_ndims=1,
        edge_inputs=_edges(VECTOR_SHAPE, 43),
    ),
    "AffineCoupling-channel-tanh-limit1": BijectorCase(
        make=_affine(
            masks.channel(2, 2, 4, parity=1),
            lambda dtype: ConvConditioner(4, 2, dtype, seed=4),
            "tanh",
            log_scale_limit=1.0,
        ),
        x=_normal(CHANNEL_IMAGE_SHAPE, 16),
        event_ndims=3,
        edge_inputs=_edges(CHANNEL_IMAGE_SHAPE, 17),
    ),
    "AdditiveCoupling-half": BijectorCase(
        make=lambda dtype: AdditiveCoupling(masks.half(6), ShiftOnly(DenseConditioner(6, 1, dtype, seed=5))),
        x=_normal(VECTOR_SHAPE, 18),
        event_ndims=1,
        edge_inputs=_edges(VECTOR_SHAPE, 19),
    ),
    "AdditiveCoupling-channel": BijectorCase(
        make=lambda dtype: AdditiveCoupling(masks.channel(2, 2, 4), ShiftOnly(ConvConditioner(4, 1, dtype, seed=6))),
        x=_normal(CHANNEL_IMAGE_SHAPE, 20),
        event_ndims=3,
        edge_inputs=_edges(CHANNEL_IMAGE_SHAPE, 21),
    ),
    "AdditiveCoupling-checkerboard-parity1": BijectorCase(
        make=lambda dtype: AdditiveCoupling(
            masks.checkerboard(4, 4, 2, parity=1), ShiftOnly(ConvConditioner(2, 1, dtype, seed=7))
        ),
        x=_normal(IMAGE_SHAPE, 22),
        event_ndims=3,
        edge_inputs=_edges(IMAGE_SHAPE, 23),
    ),
    # Block conditioners: the coupling hands over the pass-through block and takes back the transformed block's
    # parameters (odd sizes: the two blocks differ in size).
    "AffineCoupling-half-odd-parity1-block-tanh": BijectorCase(
        make=_affine(
            masks.half(7, parity=1), lambda dtype: BlockConditioner(masks.half(7, parity=1), 2, dtype, seed=60), "tanh"
        ),
        x=_normal((4, 7), 61),
        event_ndims=1,
        edge_inputs=_edges((4, 7), 62),
    ),
    "AdditiveCoupling-channel-odd-block": BijectorCase(
        make=lambda dtype: AdditiveCoupling(
            masks.channel(2, 2, 3), ShiftOnly(BlockConditioner(masks.channel(2, 2, 3), 1, dtype, seed=63))
        ),
        x=_normal((3, 2, 2, 3), 64),
        event_ndims=3,
        edge_inputs=_edges((3, 2, 2, 3), 65),
    ),
    "ActNorm-vector": BijectorCase(
        make=lambda dtype: ActNorm(
            tf.Variable(_normal(5, 30), dtype=dtype, name="loc"),
            tf.Variable(_normal(5, 31, scale=0.5), dtype=dtype, name="log_scale"),
        ),
        x=_normal((4, 5), 32),
        event_ndims=1,
        edge_inputs=_edges((4, 5), 33),
    ),
    "ActNorm-image": BijectorCase(
        make=lambda dtype: ActNorm(
            tf.Variable(_normal(3, 34), dtype=dtype, name="loc"),
            tf.Variable(_normal(3, 35, scale=0.5), dtype=dtype, name="log_scale"),
        ),
        x=_normal((2, 4, 4, 3), 36),
        event_ndims=3,
        edge_inputs=_edges((2, 4, 4, 3), 37),
    ),
    # Parameters with a batch shape [2]: x [n, 2, C], one set of parameters per batch member.
    "ActNorm-vector-batched-parameters": BijectorCase(
        make=lambda dtype: ActNorm(
            tf.Variable(_normal((2, 3), 38), dtype=dtype, name="loc"),
            tf.Variable(_normal((2, 3), 39, scale=0.5), dtype=dtype, name="log_scale"),
        ),
        x=_normal((4, 2, 3), 40),
        event_ndims=1,
        edge_inputs=_edges((4, 2, 3), 41),
    ),
    "InvertibleConv1x1-C4-image": BijectorCase(
        make=lambda dtype: InvertibleConv1x1(*_lower_upper(4, 50, [1.5, 0.8, 1.2, 0.6], dtype)),
        x=_normal((2, 2, 2, 4), 51),
        event_ndims=3,
        edge_inputs=_edges((2, 2, 2, 4), 52),
    ),
    "InvertibleConv1x1-C3-vector": BijectorCase(
        make=lambda dtype: InvertibleConv1x1(*_lower_upper(3, 53, [-1.3, 0.9, 2.0], dtype)),
        x=_normal((6, 3), 54),
        event_ndims=1,
        edge_inputs=_edges((6, 3), 55),
    ),
    "InvertibleConv1x1-C2-image-rotation": BijectorCase(
        make=lambda dtype: InvertibleConv1x1(*_lower_upper(2, 56, [1.0, 1.0], dtype)),
        x=_normal((2, 4, 4, 2), 57),
        event_ndims=3,
        edge_inputs=_edges((2, 4, 4, 2), 58),
    ),
}
