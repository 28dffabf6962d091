"""Helpers shared by the tests of the couplings, ActNorm and InvertibleConv1x1: fresh tensors,
random inputs, the TFP-equivalence check, a coupling forced onto its multiplicative path, hypothesis settings
and strategies.

Property tests (hypothesis) for the couplings, ActNorm and the invertible 1x1 convolution: random parameters,
masks and inputs, including zero and large magnitudes; the invariants hold, or a clear error is raised.

Checks run eagerly on fresh tensors (TFP's cache cannot hide a broken inverse); the compiled paths are covered
by the conformance kit.
"""

import numpy as np
import tensorflow as tf
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tfp_flows import coupling, masks


def fresh(x, dtype=tf.float32):
    """A new tensor (defeats TFP's cache, so every inverse is really computed)."""
    return tf.constant(np.asarray(x), dtype=dtype)


def normal(shape, seed, scale=1.0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32) * scale


def assert_same_bijection(ours, reference, x, event_ndims, rtol=1e-5, atol=1e-5):
    """Forward, inverse and both log-dets agree, each on fresh tensors."""
    y = reference.forward(fresh(x)).numpy()
    np.testing.assert_allclose(ours.forward(fresh(x)), y, rtol=rtol, atol=atol, err_msg="forward")
    np.testing.assert_allclose(
        ours.inverse(fresh(y)), reference.inverse(fresh(y)), rtol=rtol, atol=atol, err_msg="inverse"
    )
    fldj = ours.forward_log_det_jacobian(fresh(x), event_ndims=event_ndims)
    expected_fldj = reference.forward_log_det_jacobian(fresh(x), event_ndims=event_ndims)
    np.testing.assert_allclose(*np.broadcast_arrays(fldj, expected_fldj), rtol=rtol, atol=atol, err_msg="fldj")
    ildj = ours.inverse_log_det_jacobian(fresh(y), event_ndims=event_ndims)
    expected_ildj = reference.inverse_log_det_jacobian(fresh(y), event_ndims=event_ndims)
    np.testing.assert_allclose(*np.broadcast_arrays(ildj, expected_ildj), rtol=rtol, atol=atol, err_msg="ildj")


def realnvp_fn(full_fn, num_masked, shift_only=False):
    """Adapt a full-event conditioner to tfb.RealNVP's signature fn(x0, output_units) on the first block."""

    def fn(x0, output_units):
        zeros = tf.zeros(tf.concat([tf.shape(x0)[:-1], [output_units]], axis=0), dtype=x0.dtype)
        outputs = full_fn(tf.concat([x0, zeros], axis=-1))
        if shift_only:
            return outputs[..., num_masked:], None
        shift, log_scale = outputs
        return shift[..., num_masked:], log_scale[..., num_masked:]

    return fn


def forced_multiplicative(monkeypatch, make):
    """Build a coupling with the mask split disabled, so it multiplies by the mask."""
    with monkeypatch.context() as patch:
        patch.setattr(coupling, "last_axis_split", lambda mask: None)
        return make()


PROPERTY_SETTINGS = settings(
    max_examples=20, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)


MAGNITUDES = st.sampled_from([0.0, 1e-3, 1.0, 10.0, 1e2, 1e3])
SEEDS = st.integers(0, 2**31 - 1)


class FlatConditioner(tf.Module):
    """Any event shape -> `num_outputs` tensors of that shape: tanh layer plus a term linear in x (unbounded)."""

    def __init__(self, event_shape, num_outputs, seed, weight_scale, dtype=tf.float32):
        super().__init__()
        rng = np.random.default_rng(seed)
        size = int(np.prod(event_shape))
        self.event_shape, self.num_outputs = list(event_shape), num_outputs
        self.w1 = tf.Variable(rng.normal(size=(size, 6)) * weight_scale, dtype=dtype)
        self.w2 = tf.Variable(rng.normal(size=(6, num_outputs * size)) * weight_scale, dtype=dtype)
        self.skip = tf.Variable(rng.normal(size=(size, num_outputs * size)) * weight_scale / size, dtype=dtype)

    def __call__(self, x):
        batch = tf.shape(x)[: x.shape.rank - len(self.event_shape)]
        flat = tf.reshape(x, tf.concat([batch, [-1]], axis=0))
        out = tf.math.tanh(flat @ self.w1) @ self.w2 + flat @ self.skip
        outputs = tf.split(out, self.num_outputs, axis=-1)
        return tuple(tf.reshape(o, tf.concat([batch, self.event_shape], axis=0)) for o in outputs)


@st.composite
def mask_and_shape(draw):
    """A mask of any supported kind (including a random non-contiguous one) and a batch shape of inputs."""
    kind = draw(st.sampled_from(["half", "checkerboard", "channel", "random"]))
    parity = draw(st.integers(0, 1))
    if kind in ("half", "random"):
        size = draw(st.integers(2, 8))
        if kind == "half":
            mask = masks.half(size, parity)
        else:
            bits = draw(st.lists(st.integers(0, 1), min_size=size, max_size=size).filter(lambda b: 0 < sum(b) < size))
            mask = np.array(bits, np.float32)
    else:
        height, width, channels = draw(st.integers(1, 3)), draw(st.integers(2, 3)), draw(st.integers(2, 3))
        helper = masks.checkerboard if kind == "checkerboard" else masks.channel
        mask = helper(height, width, channels, parity)
    batch = draw(st.integers(1, 3))
    return mask, (batch,) + mask.shape


def random_inputs(shape, seed, magnitude):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=shape) * magnitude).astype(np.float32)


def assert_near(actual, desired, magnitude, what, rtol=1e-4):
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=1e-4 * (1.0 + magnitude), err_msg=what)
