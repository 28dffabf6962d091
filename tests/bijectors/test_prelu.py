"""PReLU: validate_args errors, a chain with a TFP Scale under XLA, and property tests."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from elementwise_support import DTYPES, ERRORS, SETTINGS, arrays, check_invariants, floats
from hypothesis import assume, given
from hypothesis import strategies as st

from tfp_flows import PReLU

tfb = tfp.bijectors


# ---- validate_args errors name the argument ----------------------------------------------------------------------


def _message(excinfo):
    return str(excinfo.value)


@pytest.mark.parametrize("alpha", [0.0, -0.5])
def test_prelu_rejects_non_positive_alpha(alpha):
    with pytest.raises(tf.errors.InvalidArgumentError) as excinfo:
        PReLU(tf.constant(alpha), validate_args=True)
    assert "`alpha`" in _message(excinfo)
    variable = tf.Variable(alpha)
    bijector = PReLU(variable, validate_args=True)  # variables are checked when used
    with pytest.raises(tf.errors.InvalidArgumentError, match="`alpha`"):
        bijector.forward(tf.ones([2]))


def test_prelu_with_a_tfp_scale_in_a_chain_round_trips_under_xla():
    chain = tfb.Chain([tfb.Scale(tf.constant([2.0, -1.0, 0.5])), PReLU(tf.constant([0.2, 0.5, 3.0]))])
    x = tf.constant([[-1.0, 2.0, -3.0], [0.0, -0.5, 4.0]])
    y = tf.function(chain.forward, jit_compile=True)(x)
    np.testing.assert_allclose(chain.inverse(tf.identity(y)), x, rtol=1e-6)
    expected_ldj = np.log([2.0, 1.0, 0.5]).sum() + np.log([[0.2, 1.0, 3.0], [1.0, 0.5, 1.0]]).sum(-1)
    np.testing.assert_allclose(chain.forward_log_det_jacobian(x, event_ndims=1), expected_ldj, rtol=1e-6)


# ---- PReLU -------------------------------------------------------------------------------------------------------


@SETTINGS
@given(
    alpha=st.one_of(floats(1e-4, 1e4), floats(-1.0, 0.0)),
    x=arrays([4, 3], 1e6),
    dtype_name=st.sampled_from(sorted(DTYPES)),
)
def test_prelu_invariants_or_clear_error(alpha, x, dtype_name):
    dtype, rtol = DTYPES[dtype_name]
    if alpha <= 0:
        with pytest.raises(ERRORS, match="`alpha`"):
            PReLU(tf.constant(alpha, dtype), validate_args=True)
        return
    # TensorFlow flushes subnormal results to zero on CPU: alpha * x for a tiny negative x becomes 0 and lands
    # on the other side of the kink, where the slope is ambiguous anyway. Keep alpha * x normal (or exactly 0).
    tiny = np.finfo(dtype.as_numpy_dtype).tiny
    assume(np.all((x == 0) | (np.abs(x) * min(alpha, 1.0) > 2 * tiny)))
    check_invariants(
        PReLU(tf.constant(alpha, dtype), validate_args=True),
        x,
        0,
        x_tol=rtol * np.abs(x),
        ldj_tol=rtol * (1.0 + abs(np.log(alpha))),
    )
