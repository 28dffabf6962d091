"""Registry cases for the structural helpers (ChannelSlice)."""

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from bijector_cases import BijectorCase
from tfp_flows.channel_slice import ChannelSlice

tfb = tfp.bijectors
_rng = np.random.default_rng(7)


def _slice_of_scale_matvec(dtype):
    # A dense (non-diagonal) inner map so the log-det check sees off-diagonal Jacobian entries.
    matrix = tf.Variable(np.array([[1.5, 0.3], [-0.4, 0.8]]), dtype=dtype, name="matrix")
    return ChannelSlice(tfb.ScaleMatvecTriL(scale_tril=tf.linalg.band_part(matrix, -1, 0)), 2, event_ndims=1)


_SHIFT, _LOG_SCALE = _rng.normal(size=[2]), _rng.normal(size=[2]) * 0.3


def _slice_of_image_shift_scale(dtype):
    shift = tf.Variable(_SHIFT, dtype=dtype, name="shift")
    log_scale = tf.Variable(_LOG_SCALE, dtype=dtype, name="log_scale")
    inner = tfb.Chain([tfb.Shift(shift), tfb.Scale(log_scale=log_scale)])
    return ChannelSlice(inner, 2, event_ndims=3)


CASES = {
    "ChannelSlice-vector-trilmatvec": BijectorCase(
        make=_slice_of_scale_matvec,
        x=_rng.normal(size=[5, 3]),
        event_ndims=1,
        edge_inputs=[np.zeros([2, 3]), np.full([2, 3], 1e3)],
    ),
    "ChannelSlice-image-affine": BijectorCase(
        make=_slice_of_image_shift_scale,
        x=_rng.normal(size=[3, 2, 2, 3]),
        event_ndims=3,
        edge_inputs=[np.zeros([1, 2, 2, 3]), np.full([1, 2, 2, 3], -1e3)],
    ),
}
