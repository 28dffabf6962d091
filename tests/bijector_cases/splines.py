"""Registry cases for the neural spline bijectors (RationalQuadraticCoupling, MaskedAutoregressiveSpline).

Conditioner weights are `tf.Variable`s of the dtype under test, drawn from fixed NumPy seeds (so the float32 and
float64 builds hold the same numbers); their read-out biases are spread (scale 1) so the splines are far from
the identity. Inputs are drawn at scale 2 with a bound of 2 or 3, so some entries fall inside the spline's
interval and some on its identity tails; the edges are zeros, exactly +-bound (the outermost knots) and +-1e3.
"""

import numpy as np
import tensorflow as tf

from bijector_cases import BijectorCase
from bijector_cases.autoregressive import MaskedNetwork
from tfp_flows import MaskedAutoregressiveSpline, RationalQuadraticCoupling, coupling, masks


class SplineConditioner(tf.Module):
    """x [..., *event] (or the pass-through block, `block=True`) -> (widths [.., K], heights [.., K],
    derivatives [.., K - 1]) per transformed entry: one tanh hidden layer on the flattened input."""

    def __init__(self, mask, num_bins, dtype, seed, hidden=8, block=False):
        super().__init__(name="spline_conditioner")
        rng = np.random.default_rng(seed)
        self.mask = np.asarray(mask)
        self.num_bins = num_bins
        self._block = block
        split = coupling.last_axis_split(self.mask) if block else None
        if split is not None:
            index, pass_first = split
            size = self.mask.shape[-1]
            self.in_shape = list(self.mask.shape[:-1]) + [index if pass_first else size - index]
            self.out_shape = list(self.mask.shape[:-1]) + [size - index if pass_first else index]
        else:
            self.in_shape = self.out_shape = list(self.mask.shape)
        width = 3 * num_bins - 1
        size_in, size_out = int(np.prod(self.in_shape)), int(np.prod(self.out_shape))
        self.w1 = tf.Variable(rng.normal(size=(size_in, hidden)) / np.sqrt(size_in), dtype=dtype, name="w1")
        self.w2 = tf.Variable(rng.normal(size=(hidden, size_out * width)) / np.sqrt(hidden), dtype=dtype, name="w2")
        self.b2 = tf.Variable(rng.normal(size=size_out * width), dtype=dtype, name="b2")

    @property
    def block_split(self):
        return coupling.last_axis_split(self.mask) if self._block else None

    def __call__(self, x):
        shape = tf.shape(x)
        batch_shape = shape[: tf.size(shape) - len(self.in_shape)]
        flat = tf.reshape(x, tf.concat([batch_shape, [-1]], axis=0))
        out = tf.matmul(tf.math.tanh(tf.matmul(flat, self.w1)), self.w2) + self.b2
        out = tf.reshape(out, tf.concat([batch_shape, self.out_shape, [3 * self.num_bins - 1]], axis=0))
        k = self.num_bins
        return out[..., :k], out[..., k : 2 * k], out[..., 2 * k :]


def _coupling(mask, num_bins, bound, seed, block=False):
    def make(dtype):
        return RationalQuadraticCoupling(
            mask,
            SplineConditioner(mask, num_bins, dtype, seed, block=block),
            num_bins=num_bins,
            bound=bound,
            validate_args=True,
        )

    return make


def _autoregressive(num_bins, bound, seed):
    def make(dtype):
        network = MaskedNetwork(dtype, seed, params=3 * num_bins - 1, stacked=True)
        return MaskedAutoregressiveSpline(network, num_bins=num_bins, bound=bound, validate_args=True)

    return make


def _normal(shape, seed, scale=2.0):
    return (np.random.default_rng(seed).normal(size=shape) * scale).astype(np.float32)


def _edges(shape, bound):
    """Zeros, the outermost knots +-bound, and +-1e3 (far on the identity tails)."""
    signs = np.where(np.arange(int(np.prod(shape))).reshape(shape) % 2 == 0, 1.0, -1.0)
    return [np.zeros(shape, np.float32), (bound * signs).astype(np.float32), (1e3 * signs).astype(np.float32)]


CASES = {
    "RationalQuadraticCoupling-half-K8-B3": BijectorCase(
        make=_coupling(masks.half(6), 8, 3.0, seed=1),
        x=_normal((5, 6), 2),
        event_ndims=1,
        edge_inputs=_edges((2, 6), 3.0),
    ),
    "RationalQuadraticCoupling-half-odd-parity1-block-K4-B2": BijectorCase(
        make=_coupling(masks.half(5, parity=1), 4, 2.0, seed=3, block=True),
        x=_normal((4, 5), 4),
        event_ndims=1,
        edge_inputs=_edges((2, 5), 2.0),
    ),
    "RationalQuadraticCoupling-checkerboard-K2-B2": BijectorCase(
        make=_coupling(masks.checkerboard(2, 2, 2), 2, 2.0, seed=5),
        x=_normal((3, 2, 2, 2), 6),
        event_ndims=3,
        edge_inputs=_edges((2, 2, 2, 2), 2.0),
    ),
    "MaskedAutoregressiveSpline-K5-B2": BijectorCase(
        make=_autoregressive(5, 2.0, seed=7), x=_normal((6, 5), 8), event_ndims=1, edge_inputs=_edges((2, 5), 2.0)
    ),
    "MaskedAutoregressiveSpline-K3-B3-batch-3d": BijectorCase(
        make=_autoregressive(3, 3.0, seed=9), x=_normal((2, 3, 5), 10), event_ndims=1, edge_inputs=_edges((2, 5), 3.0)
    ),
}
