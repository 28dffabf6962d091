"""AdditiveCoupling (NICE): equal to a shift-only RealNVP, and a property test of volume
preservation and inversion.
"""

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from bijector_cases.couplings import DenseConditioner, ShiftOnly
from coupling_support import (
    MAGNITUDES,
    PROPERTY_SETTINGS,
    SEEDS,
    FlatConditioner,
    assert_near,
    assert_same_bijection,
    fresh,
    mask_and_shape,
    normal,
    random_inputs,
    realnvp_fn,
)
from hypothesis import given
from hypothesis import strategies as st

from tfp_flows import AdditiveCoupling, masks

tfb = tfp.bijectors


def test_additive_coupling_equals_shift_only_realnvp():
    shift_fn = ShiftOnly(DenseConditioner(8, 1, tf.float32, seed=5))
    ours = AdditiveCoupling(masks.half(8), shift_fn)
    reference = tfb.RealNVP(num_masked=4, shift_and_log_scale_fn=realnvp_fn(shift_fn, 4, shift_only=True))
    assert_same_bijection(ours, reference, normal((3, 8), 6), event_ndims=1)
    np.testing.assert_array_equal(ours.forward_log_det_jacobian(fresh(normal((3, 8), 7)), event_ndims=1), 0.0)


@PROPERTY_SETTINGS
@given(setup=mask_and_shape(), seed=SEEDS, magnitude=MAGNITUDES, weight_scale=st.sampled_from([0.1, 1.0, 3.0]))
def test_additive_coupling_preserves_volume_and_inverts(setup, seed, magnitude, weight_scale):
    mask, shape = setup
    conditioner = FlatConditioner(mask.shape, 1, seed, weight_scale)
    coupling = AdditiveCoupling(mask, lambda h: conditioner(h)[0])
    x = random_inputs(shape, seed, magnitude)
    y = coupling.forward(fresh(x)).numpy()
    assert np.all(np.isfinite(y))
    np.testing.assert_array_equal(y[..., mask == 1], x[..., mask == 1])
    shift_scale = magnitude * (1.0 + weight_scale**2)
    assert_near(coupling.inverse(fresh(y)), x, shift_scale, "inverse(forward(x)) != x")
    np.testing.assert_array_equal(coupling.forward_log_det_jacobian(fresh(x), event_ndims=mask.ndim), 0.0)
    np.testing.assert_array_equal(coupling.inverse_log_det_jacobian(fresh(y), event_ndims=mask.ndim), 0.0)
