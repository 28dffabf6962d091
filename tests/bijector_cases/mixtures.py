"""Registry cases for LogisticMixtureCDF and LogisticMixtureCoupling (see bijector_cases/__init__.py).

Parameters and conditioner weights are `tf.Variable`s of the dtype under test, drawn from fixed NumPy seeds so
the float32 and float64 builds hold the same numbers. Inputs are latents (the forward domain is all of R): the
bulk comes from a standard logistic, the edges are zero and deep tails (|z| = 15, 40, 200; the search works in
log space, so float32 still inverts there), and for the couplings +-1e3 in every entry (pass-through entries
saturate the conditioner, transformed ones land far in the mixture's tails). Event sizes stay <= 16.
"""

import numpy as np
import tensorflow as tf

from bijector_cases import BijectorCase
from tfp_flows import LogisticMixtureCDF, LogisticMixtureCoupling, masks


def _draw(shape, seed, scale=1.0, offset=0.0):
    return offset + scale * np.random.default_rng(seed).standard_normal(shape)


def _logistic(shape, seed, scale=1.0):
    return (scale * np.random.default_rng(seed).logistic(size=shape)).astype(np.float32)


def _mixture(logits, locs, log_scales):
    def make(dtype):
        return LogisticMixtureCDF(
            tf.Variable(logits, dtype=dtype, name="logits"),
            tf.Variable(locs, dtype=dtype, name="locs"),
            tf.Variable(log_scales, dtype=dtype, name="log_scales"),
            validate_args=True,
        )

    return make


def _tails(shape, magnitudes=(15.0, 40.0, 200.0)):
    """Zero, and alternating-sign constants deep in both tails."""
    signs = np.where(np.arange(int(np.prod(shape))).reshape(shape) % 2 == 0, 1.0, -1.0)
    return [np.zeros(shape, np.float32)] + [(m * signs).astype(np.float32) for m in magnitudes]


class MixtureConditioner(tf.Module):
    """x [..., *event] -> (a, b [..., *event]; logits, locs, log_scales [..., *event, K]).

    Flattens the event, one tanh hidden layer, a linear read-out of (2 + 3K) numbers per event entry. The
    read-out biases spread the component locations over about [-2, 2] and the log-scales over about [-1, 1],
    so the mixtures are multi-modal rather than near-identity.
    """

    def __init__(self, event_shape, num_components, dtype, seed, hidden=8):
        super().__init__(name="mixture_conditioner")
        rng = np.random.default_rng(seed)
        self.event_shape = list(event_shape)
        self.num_components = num_components
        size = int(np.prod(event_shape))
        outputs = size * (2 + 3 * num_components)
        self.w1 = tf.Variable(rng.normal(size=(size, hidden)) / np.sqrt(size), dtype=dtype, name="w1")
        self.w2 = tf.Variable(rng.normal(size=(hidden, outputs)) * 0.5 / np.sqrt(hidden), dtype=dtype, name="w2")
        bias = rng.normal(size=(size, 2 + 3 * num_components)) * 0.3
        bias[:, 2 + num_components : 2 + 2 * num_components] += rng.uniform(-2, 2, (size, num_components))
        bias[:, 2 + 2 * num_components :] += rng.uniform(-1, 1, (size, num_components))
        self.b2 = tf.Variable(bias.reshape(-1), dtype=dtype, name="b2")

    def __call__(self, x):
        shape = tf.shape(x)
        batch_shape = shape[: tf.size(shape) - len(self.event_shape)]
        flat = tf.reshape(x, tf.concat([batch_shape, [-1]], axis=0))
        hidden = tf.math.tanh(tf.matmul(flat, self.w1))
        out = tf.matmul(hidden, self.w2) + self.b2
        out = tf.reshape(out, tf.concat([batch_shape, self.event_shape, [2 + 3 * self.num_components]], axis=0))
        k = self.num_components
        return out[..., 0], out[..., 1], out[..., 2 : 2 + k], out[..., 2 + k : 2 + 2 * k], out[..., 2 + 2 * k :]


def _coupling(mask, num_components, seed):
    def make(dtype):
        conditioner = MixtureConditioner(mask.shape, num_components, dtype, seed)
        return LogisticMixtureCoupling(mask, conditioner, num_components, validate_args=True)

    return make


def _coupling_edges(shape):
    return [np.zeros(shape, np.float32), _tails(shape, (15.0,))[1], _tails(shape, (1e3,))[1]]


_K4 = (_draw(4, 1), _draw(4, 2, scale=2.0), _draw(4, 3, scale=0.7))
_K8_SHARP = (_draw(8, 4, scale=0.5), np.linspace(-6.0, 6.0, 8), _draw(8, 5, scale=0.3, offset=-2.0))
# Parameters of batch shape [3]: x [n, 3] gets one mixture per column.
_K3_BATCH = (_draw((3, 3), 6), _draw((3, 3), 7, scale=2.0), _draw((3, 3), 8, scale=0.5))

CASES = {
    "LogisticMixtureCDF-K4": BijectorCase(
        make=_mixture(*_K4), x=_logistic((6, 3), 20, scale=2.0), event_ndims=0, edge_inputs=_tails((2, 3))
    ),
    # One component: an affine map of a logit, with a wide scale (s = e^2).
    "LogisticMixtureCDF-K1-wide": BijectorCase(
        make=_mixture([0.3], [1.5], [2.0]),
        x=_logistic((5, 2), 21, scale=3.0),
        event_ndims=0,
        edge_inputs=_tails((2, 2)),
    ),
    # Separated sharp components (s ~ e^-2, 1.7 apart): a staircase CDF, the search's hardest bulk.
    "LogisticMixtureCDF-K8-sharp": BijectorCase(
        make=_mixture(*_K8_SHARP), x=_logistic((4, 5), 22, scale=3.0), event_ndims=0, edge_inputs=_tails((2, 5))
    ),
    "LogisticMixtureCDF-K3-batch-parameters": BijectorCase(
        make=_mixture(*_K3_BATCH), x=_logistic((4, 3), 23, scale=2.0), event_ndims=1, edge_inputs=_tails((2, 3))
    ),
    "LogisticMixtureCoupling-half-K4": BijectorCase(
        make=_coupling(masks.half(6), 4, seed=30),
        x=_logistic((5, 6), 31, scale=2.0),
        event_ndims=1,
        edge_inputs=_coupling_edges((2, 6)),
    ),
    "LogisticMixtureCoupling-half-odd-parity1-K1": BijectorCase(
        make=_coupling(masks.half(5, parity=1), 1, seed=32),
        x=_logistic((4, 5), 33, scale=2.0),
        event_ndims=1,
        edge_inputs=_coupling_edges((2, 5)),
    ),
    "LogisticMixtureCoupling-checkerboard-K3": BijectorCase(
        make=_coupling(masks.checkerboard(2, 4, 2), 3, seed=34),
        x=_logistic((3, 2, 4, 2), 35, scale=2.0),
        event_ndims=3,
        edge_inputs=_coupling_edges((2, 2, 4, 2)),
    ),
    "LogisticMixtureCoupling-channel-K2": BijectorCase(
        make=_coupling(masks.channel(2, 2, 4, parity=1), 2, seed=36),
        x=_logistic((3, 2, 2, 4), 37, scale=2.0),
        event_ndims=3,
        edge_inputs=_coupling_edges((2, 2, 2, 4)),
    ),
}
