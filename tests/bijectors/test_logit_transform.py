"""LogitTransform: agreement with TFP's Sigmoid after an affine shrink, finite latents at the data
end points, validate_args errors, and property tests of the data and latent sides.
"""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from elementwise_support import DTYPES, SETTINGS, arrays, const64, floats
from hypothesis import given
from hypothesis import strategies as st

from tfp_flows import LogitTransform

tfb = tfp.bijectors


def test_logit_transform_matches_tfp_sigmoid_with_affine_shrink():
    alpha = 0.05
    ours = LogitTransform(alpha)
    # data -> latent: scale by (1 - 2 alpha), shift by alpha, then logit (the inverse of tfb.Sigmoid).
    reference = tfb.Chain([tfb.Invert(tfb.Sigmoid()), tfb.Shift(const64(alpha)), tfb.Scale(const64(1 - 2 * alpha))])
    data = const64(np.concatenate([[0.0, 1.0, 1e-9, 1 - 1e-9], np.linspace(0.0, 1.0, 41)]))
    np.testing.assert_allclose(ours.inverse(data), reference.forward(data), rtol=1e-10)
    np.testing.assert_allclose(
        ours.inverse_log_det_jacobian(data, event_ndims=0),
        reference.forward_log_det_jacobian(data, event_ndims=0),
        rtol=1e-10,
    )
    latent = const64(np.linspace(-2.9, 2.9, 31))
    np.testing.assert_allclose(ours.forward(latent), reference.inverse(latent), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(
        ours.forward_log_det_jacobian(latent, event_ndims=0),
        reference.inverse_log_det_jacobian(latent, event_ndims=0),
        rtol=1e-10,
    )


def test_logit_transform_data_end_points_give_finite_latents_in_float32():
    bijector = LogitTransform(1e-6)
    data = tf.constant([0.0, 1.0, 0.5])
    z = bijector.inverse(data).numpy()
    np.testing.assert_allclose(z, [np.log(1e-6), -np.log(1e-6), 0.0], rtol=1e-3, atol=1e-6)
    assert np.all(np.isfinite(bijector.inverse_log_det_jacobian(data, event_ndims=0)))
    np.testing.assert_allclose(bijector.forward(tf.constant(z)), data, atol=1e-6)


def test_logit_transform_rejects_data_outside_the_unit_interval():
    bijector = LogitTransform(0.05, validate_args=True)
    for bad in ([0.5, -0.01], [1.2, 0.5]):
        with pytest.raises(tf.errors.InvalidArgumentError, match="`y` must lie in \\[0, 1\\]"):
            bijector.inverse(tf.constant(bad))
        with pytest.raises(tf.errors.InvalidArgumentError, match="`y` must lie in \\[0, 1\\]"):
            bijector.inverse_log_det_jacobian(tf.constant(bad), event_ndims=1)
    bijector.inverse(tf.constant([0.0, 1.0]))  # the closed interval is fine


@pytest.mark.parametrize("alpha", [0.0, 0.5, -1e-3, 0.7])
def test_logit_transform_rejects_alpha_outside_zero_to_half(alpha):
    with pytest.raises(ValueError, match="`alpha`"):
        LogitTransform(alpha)
    variable = tf.Variable(alpha)
    bijector = LogitTransform(variable, validate_args=True)
    with pytest.raises(tf.errors.InvalidArgumentError, match="`alpha`"):
        bijector.forward(tf.zeros([2]))


# ---- LogitTransform ----------------------------------------------------------------------------------------------


@SETTINGS
@given(
    alpha=st.one_of(floats(1e-6, 0.49), st.sampled_from([0.0, 0.5, 0.7, -1e-3])),
    data=st.lists(
        st.one_of(st.sampled_from([0.0, 1.0, 1e-30]), floats(0.0, 1.0), floats(-5.0, 5.0)), min_size=4, max_size=4
    ),
    dtype_name=st.sampled_from(sorted(DTYPES)),
)
def test_logit_transform_data_side_invariants_or_clear_error(alpha, data, dtype_name):
    """Data x in [0, 1] (the inverse's domain): z = inverse(x) finite, forward(z) == x, ildj(x) == -fldj(z)."""
    dtype, rtol = DTYPES[dtype_name]
    if not 0.0 < alpha < 0.5:
        with pytest.raises(ValueError, match="`alpha`"):
            LogitTransform(alpha, validate_args=True)
        return
    bijector = LogitTransform(alpha, validate_args=True)
    data = np.asarray(data).astype(dtype.as_numpy_dtype)  # what the bijector sees (-1e-228 is -0.0 in float32)
    data[np.abs(data) < np.finfo(data.dtype).tiny] = 0.0  # and TensorFlow flushes subnormals to zero
    if np.any((data < 0) | (data > 1)):
        with pytest.raises(tf.errors.InvalidArgumentError, match="`y` must lie in \\[0, 1\\]"):
            bijector.inverse(tf.constant(data, dtype))
        return
    x = tf.constant(data, dtype)
    z = bijector.inverse(x)
    ildj = bijector.inverse_log_det_jacobian(x, event_ndims=0)
    x_back = bijector.forward(tf.constant(z.numpy()))
    fldj = bijector.forward_log_det_jacobian(tf.constant(z.numpy()), event_ndims=0)
    for what, value in (("inverse", z), ("ildj", ildj), ("forward", x_back), ("fldj", fldj)):
        assert np.all(np.isfinite(value.numpy())), f"{what} is not finite: {value.numpy()}"
    # forward(z) is computed from sigmoid(z), whose absolute resolution is the dtype's epsilon: the data
    # round trip is accurate to a few epsilons in absolute terms, amplified by 1 / (1 - 2 alpha).
    np.testing.assert_allclose(x_back, data, rtol=0, atol=4 * rtol / (1 - 2 * alpha))
    np.testing.assert_allclose(ildj, -fldj.numpy(), rtol=0, atol=10 * rtol * (1 + np.max(np.abs(ildj))))


@SETTINGS
@given(alpha=floats(1e-6, 0.49), z=arrays([5], 60.0), dtype_name=st.sampled_from(sorted(DTYPES)))
def test_logit_transform_latent_side_is_finite_for_any_latent(alpha, z, dtype_name):
    """Any latent z in R gives a finite forward value and log-det, even where sigmoid saturates."""
    dtype, _ = DTYPES[dtype_name]
    bijector = LogitTransform(alpha)
    x = bijector.forward(tf.constant(z, dtype)).numpy()
    fldj = bijector.forward_log_det_jacobian(tf.constant(z, dtype), event_ndims=0).numpy()
    assert np.all(np.isfinite(x)) and np.all(np.isfinite(fldj))
    bound = alpha / (1 - 2 * alpha)  # the forward image is (-bound, 1 + bound); allow float32 rounding
    assert np.all((x >= -bound * (1 + 1e-5) - 1e-6) & (x <= (1 + bound) * (1 + 1e-5)))
