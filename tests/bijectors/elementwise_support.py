"""Helpers shared by the tests of the elementwise bijectors (Planar, Radial, PReLU,
LogitTransform, Squeeze): float64 constants, hypothesis settings and strategies, and the invariant check of
their property tests.

Property tests: random parameters and inputs (extreme magnitudes included) either satisfy the invariants or
raise a clear ValueError / InvalidArgumentError (validate_args=True) - never a silent NaN in the documented domain.

Invariants checked per example: values and log-dets are finite; the round trip x -> y -> x holds through a fresh
tensor (no cache); fldj(x) == -ildj(f(x)). Tolerances scale with the input's magnitude and, for Planar and
Radial, with the inverse's condition number, which the generated parameters bound (see each strategy).
"""

import numpy as np
import tensorflow as tf
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

F64 = tf.float64


def const64(value):
    return tf.constant(value, F64)


SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
DTYPES = {"float32": (tf.float32, 2e-6), "float64": (tf.float64, 1e-13)}  # (dtype, relative tolerance)
ERRORS = (ValueError, tf.errors.InvalidArgumentError)


def floats(low, high):
    # TensorFlow flushes subnormal numbers to zero on CPU, so a subnormal input is not the number the test sees.
    return st.floats(low, high, allow_subnormal=False)


def magnitudes(max_abs):
    """Floats from all scales: zero, tiny, order one and up to max_abs, either sign."""
    return st.one_of(
        st.sampled_from([0.0, max_abs, -max_abs]),
        floats(-1.0, 1.0),
        floats(-max_abs, max_abs),
    )


def arrays(shape, max_abs):
    size = int(np.prod(shape))
    return st.lists(magnitudes(max_abs), min_size=size, max_size=size).map(lambda v: np.reshape(v, shape))


def check_invariants(bijector, x, event_ndims, x_tol, ldj_tol):
    """Finite values; |inverse(forward(x)) - x| <= x_tol; |fldj(x) + ildj(f(x))| <= ldj_tol."""
    dtype = bijector.dtype or tf.as_dtype(x.dtype)
    x = tf.constant(x, dtype)
    y = bijector.forward(x)
    x_back = bijector.inverse(tf.constant(y.numpy()))
    fldj = bijector.forward_log_det_jacobian(tf.constant(x.numpy()), event_ndims=event_ndims)
    ildj = bijector.inverse_log_det_jacobian(tf.constant(y.numpy()), event_ndims=event_ndims)
    for what, value in (("forward", y), ("inverse", x_back), ("fldj", fldj), ("ildj", ildj)):
        assert np.all(np.isfinite(value.numpy())), f"{what} is not finite: {value.numpy()}"
    error = np.abs(x_back.numpy() - x.numpy())
    assert np.all(error <= x_tol), f"inverse(forward(x)) != x: errors {error} above {x_tol} at x = {x.numpy()}"
    fldj, ildj = np.broadcast_arrays(fldj.numpy(), ildj.numpy())
    np.testing.assert_allclose(fldj, -ildj, rtol=0, atol=ldj_tol, err_msg="fldj(x) != -ildj(f(x))")
    return fldj
