"""Helpers shared by the LogisticMixtureCDF and LogisticMixtureCoupling tests: fresh tensors,
hypothesis settings and strategies, and a finiteness check.
"""

import numpy as np
import tensorflow as tf
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st


def fresh(x, dtype=tf.float32):
    """A new tensor (defeats TFP's cache, so every inverse is really computed)."""
    return tf.constant(np.asarray(x), dtype=dtype)


SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def floats(low, high):
    # TensorFlow flushes subnormal numbers to zero on CPU: keep inputs normal.
    return st.floats(low, high, allow_subnormal=False, allow_nan=False)


def magnitudes(max_abs):
    """Zero, order one, and anything up to max_abs, either sign."""
    return st.one_of(st.sampled_from([0.0, max_abs, -max_abs]), floats(-1.0, 1.0), floats(-max_abs, max_abs))


def assert_finite(what, value):
    value = np.asarray(value)
    assert np.all(np.isfinite(value)), f"{what} is not finite: {value}"
