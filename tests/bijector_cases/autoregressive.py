"""Registry cases for the autoregressive bijectors (`OnePassMaskedAutoregressiveFlow`).

The network is a small masked MLP (`MaskedNetwork`, MADE masks of Germain et al. 2015) whose weights are
`tf.Variable`s of the dtype under test, drawn from fixed NumPy seeds (so the float32 and float64 builds hold the
same numbers). Its hidden layer is tanh, so the log-scales stay bounded and large inputs stay finite.
"""

import numpy as np
import tensorflow as tf

from bijector_cases import BijectorCase
from tfp_flows import OnePassMaskedAutoregressiveFlow

EVENT_SIZE = 5


def made_masks(event_size, hidden):
    """Input -> hidden (degree(in) <= degree(hidden)) and hidden -> output (strict <) 0/1 masks, one hidden layer."""
    in_degrees = np.arange(1, event_size + 1)
    hidden_degrees = 1 + np.arange(hidden) % max(event_size - 1, 1)
    return (
        (in_degrees[:, None] <= hidden_degrees[None, :]).astype(np.float64),
        (hidden_degrees[:, None] < in_degrees[None, :]).astype(np.float64),
    )


class MaskedNetwork(tf.Module):
    """x [..., D] -> (shift, log_scale) [..., D] with output d a function of x_1..x_{d-1} only.

    `params=1` returns only the shift (log-scale None: a volume-preserving step). `stacked=True` returns one
    tensor [..., D, 2] (TFP unstacks it), as `tfb.AutoregressiveNetwork(params=2)` does.
    """

    def __init__(self, dtype, seed, hidden=12, params=2, stacked=False, event_size=EVENT_SIZE):
        super().__init__(name="masked_network")
        rng = np.random.default_rng(seed)
        mask_in, mask_out = made_masks(event_size, hidden)
        self.params, self.stacked, self.event_size = params, stacked, event_size
        self.mask_in = tf.constant(mask_in, dtype)
        self.mask_out = tf.constant(np.repeat(mask_out, params, axis=1), dtype)
        self.w1 = tf.Variable(rng.normal(size=(event_size, hidden)) / np.sqrt(event_size), dtype=dtype)
        self.b1 = tf.Variable(rng.normal(size=hidden) * 0.1, dtype=dtype)
        self.w2 = tf.Variable(rng.normal(size=(hidden, params * event_size)) * 0.5 / np.sqrt(hidden), dtype=dtype)
        self.b2 = tf.Variable(rng.normal(size=params * event_size) * 0.1, dtype=dtype)

    def __call__(self, x):
        hidden = tf.math.tanh(tf.einsum("...i,ij->...j", x, self.w1 * self.mask_in) + self.b1)
        out = tf.einsum("...i,ij->...j", hidden, self.w2 * self.mask_out) + self.b2
        out = tf.reshape(out, tf.concat([tf.shape(x)[:-1], [self.event_size, self.params]], axis=0))
        if self.params == 1:
            return out[..., 0], None
        return out if self.stacked else (out[..., 0], out[..., 1])


def _maf(**network_kwargs):
    def make(dtype):
        return OnePassMaskedAutoregressiveFlow(shift_and_log_scale_fn=MaskedNetwork(dtype, **network_kwargs))

    return make


_rng = np.random.default_rng(11)
_X = _rng.normal(size=[6, EVENT_SIZE])
_EDGES = [np.zeros([2, EVENT_SIZE]), np.full([2, EVENT_SIZE], 1e3), _rng.normal(size=[2, EVENT_SIZE]) * 1e2]

CASES = {
    "OnePassMaskedAutoregressiveFlow-shift-log-scale": BijectorCase(
        make=_maf(seed=1), x=_X, event_ndims=1, edge_inputs=_EDGES
    ),
    "OnePassMaskedAutoregressiveFlow-stacked-params-batch-3d": BijectorCase(
        make=_maf(seed=2, stacked=True), x=_rng.normal(size=[2, 3, EVENT_SIZE]), event_ndims=1, edge_inputs=_EDGES
    ),
    "OnePassMaskedAutoregressiveFlow-shift-only": BijectorCase(
        make=_maf(seed=3, params=1), x=_X, event_ndims=1, edge_inputs=_EDGES
    ),
}
