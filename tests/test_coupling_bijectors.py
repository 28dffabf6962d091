"""Couplings, ActNorm and the invertible 1x1 convolution: equivalence with TFP built-ins, the two mask paths,
ActNorm's data-dependent init, the mask helpers, and errors that name the argument."""
import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from bijector_cases.couplings import ConvConditioner, DenseConditioner, ShiftOnly
from tfp_flows import (ActNorm, AdditiveCoupling, AffineCoupling, InvertibleConv1x1, actnorm_initial_parameters,
                       coupling, masks)
from tfp_flows.invertible_conv1x1 import random_rotation_lower_upper

tfb = tfp.bijectors


def fresh(x, dtype=tf.float32):
    """A new tensor (defeats TFP's cache, so every inverse is really computed)."""
    return tf.constant(np.asarray(x), dtype=dtype)


def normal(shape, seed, scale=1.0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32) * scale


def assert_same_bijection(ours, reference, x, event_ndims, rtol=1e-5, atol=1e-5):
    """Forward, inverse and both log-dets agree, each on fresh tensors."""
    y = reference.forward(fresh(x)).numpy()
    np.testing.assert_allclose(ours.forward(fresh(x)), y, rtol=rtol, atol=atol, err_msg="forward")
    np.testing.assert_allclose(ours.inverse(fresh(y)), reference.inverse(fresh(y)), rtol=rtol, atol=atol,
                               err_msg="inverse")
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


# --- Equivalence with TFP built-ins -------------------------------------------------------------------------

@pytest.mark.parametrize("event_size", [6, 7])
def test_affine_coupling_half_mask_unbounded_equals_realnvp(event_size):
    conditioner = DenseConditioner(event_size, 2, tf.float32, seed=1, linear_skip=True)
    num_masked = event_size // 2
    ours = AffineCoupling(masks.half(event_size), conditioner, log_scale_bound=None)
    reference = tfb.RealNVP(num_masked=num_masked, shift_and_log_scale_fn=realnvp_fn(conditioner, num_masked))
    assert_same_bijection(ours, reference, normal((5, event_size), 2), event_ndims=1)


def test_affine_coupling_tanh_bound_equals_realnvp_with_bounded_log_scale():
    conditioner = DenseConditioner(6, 2, tf.float32, seed=3, linear_skip=True)

    def bounded(x):  # the documented bound, applied by hand
        shift, raw = conditioner(x)
        return shift, 1.5 * tf.math.tanh(raw / 1.5)

    ours = AffineCoupling(masks.half(6), conditioner, log_scale_bound="tanh", log_scale_limit=1.5)
    reference = tfb.RealNVP(num_masked=3, shift_and_log_scale_fn=realnvp_fn(bounded, 3))
    assert_same_bijection(ours, reference, normal((4, 6), 4, scale=5.0), event_ndims=1)


def test_additive_coupling_equals_shift_only_realnvp():
    shift_fn = ShiftOnly(DenseConditioner(8, 1, tf.float32, seed=5))
    ours = AdditiveCoupling(masks.half(8), shift_fn)
    reference = tfb.RealNVP(num_masked=4, shift_and_log_scale_fn=realnvp_fn(shift_fn, 4, shift_only=True))
    assert_same_bijection(ours, reference, normal((3, 8), 6), event_ndims=1)
    np.testing.assert_array_equal(ours.forward_log_det_jacobian(fresh(normal((3, 8), 7)), event_ndims=1), 0.0)


@pytest.mark.parametrize("shape,event_ndims", [((3, 2, 2, 4), 3), ((5, 4), 1), ((2, 3, 4), 2)])
def test_invertible_conv1x1_equals_scale_matvec_lu_over_channels(shape, event_ndims):
    lower_upper, permutation = random_rotation_lower_upper(4, seed=8)
    lower_upper = lower_upper + np.diag([0.5, -0.2, 0.3, 0.1]).astype(np.float32)  # log|det| != 0
    ours = InvertibleConv1x1(lower_upper, permutation)
    reference = tfb.ScaleMatvecLU(lower_upper, permutation)
    assert_same_bijection(ours, reference, normal(shape, 9), event_ndims)
    # The documented value: positions * sum(log|diag U|).
    positions = int(np.prod(shape[len(shape) - event_ndims:-1]))
    expected = positions * np.sum(np.log(np.abs(np.diag(lower_upper))))
    fldj = ours.forward_log_det_jacobian(fresh(normal(shape, 10)), event_ndims)
    assert fldj.shape == shape[:-event_ndims]
    np.testing.assert_allclose(fldj, np.full(shape[:-event_ndims], expected), rtol=1e-5)


def test_invertible_conv1x1_with_batched_parameters_equals_scale_matvec_lu():
    factors = [random_rotation_lower_upper(3, seed=s) for s in (11, 12)]
    lower_upper = np.stack([f[0] * 1.3 for f in factors])  # [2, 3, 3]: scales U's diagonal too
    permutation = np.stack([f[1] for f in factors])
    ours = InvertibleConv1x1(lower_upper, permutation)
    reference = tfb.ScaleMatvecLU(lower_upper, permutation)
    assert_same_bijection(ours, reference, normal((4, 2, 3), 13), event_ndims=1)


@pytest.mark.parametrize("shape,event_ndims", [((4, 5), 1), ((2, 3, 3, 5), 3)])
def test_actnorm_equals_shift_after_scale(shape, event_ndims):
    loc, log_scale = normal(5, 14), normal(5, 15, scale=0.7)
    ours = ActNorm(loc, log_scale)
    reference = tfb.Chain([tfb.Shift(loc), tfb.Scale(np.exp(log_scale))])
    assert_same_bijection(ours, reference, normal(shape, 16), event_ndims)
    # The log-det has x's batch shape (not a bare scalar), for both directions.
    assert ours.forward_log_det_jacobian(fresh(normal(shape, 17)), event_ndims).shape == shape[:-event_ndims]
    assert ours.inverse_log_det_jacobian(fresh(normal(shape, 17)), event_ndims).shape == shape[:-event_ndims]


# --- The slicing and the multiplicative mask paths -----------------------------------------------------------

def test_half_and_channel_masks_take_the_slicing_path_and_checkerboard_does_not():
    assert coupling.last_axis_split(masks.half(6)) == (3, True)
    assert coupling.last_axis_split(masks.half(7, parity=1)) == (3, False)
    assert coupling.last_axis_split(masks.channel(2, 3, 4, parity=1)) == (2, False)
    assert coupling.last_axis_split(masks.checkerboard(2, 2, 4)) is None


def _forced_multiplicative(monkeypatch, make):
    """Build a coupling with the mask split disabled, so it multiplies by the mask."""
    with monkeypatch.context() as patch:
        patch.setattr(coupling, "last_axis_split", lambda mask: None)
        return make()


@pytest.mark.parametrize("mask,shape,make_conditioner", [
    (masks.half(6), (4, 6), lambda: DenseConditioner(6, 2, tf.float32, seed=17)),
    (masks.half(5, parity=1), (4, 5), lambda: DenseConditioner(5, 2, tf.float32, seed=18)),
    (masks.channel(2, 2, 4, parity=1), (3, 2, 2, 4), lambda: ConvConditioner(4, 2, tf.float32, seed=19)),
], ids=["half", "half-odd-parity1", "channel-parity1"])
@pytest.mark.parametrize("bound", ["tanh", "sigmoid", None])
def test_slicing_and_multiplicative_paths_agree(monkeypatch, mask, shape, make_conditioner, bound):
    conditioner = make_conditioner()
    sliced = AffineCoupling(mask, conditioner, log_scale_bound=bound)
    multiplied = _forced_multiplicative(monkeypatch, lambda: AffineCoupling(mask, conditioner, log_scale_bound=bound))
    assert sliced._split is not None and multiplied._split is None  # the two paths really differ
    assert_same_bijection(multiplied, sliced, normal(shape, 20), event_ndims=len(mask.shape), rtol=1e-6, atol=1e-6)


def test_additive_slicing_and_multiplicative_paths_agree(monkeypatch):
    shift_fn = ShiftOnly(ConvConditioner(4, 1, tf.float32, seed=21))
    mask = masks.channel(2, 2, 4)
    sliced = AdditiveCoupling(mask, shift_fn)
    multiplied = _forced_multiplicative(monkeypatch, lambda: AdditiveCoupling(mask, shift_fn))
    assert_same_bijection(multiplied, sliced, normal((2, 2, 2, 4), 22), event_ndims=3, rtol=1e-6, atol=1e-6)


class ComponentShiftCoupling(coupling.MaskedCoupling):
    """A test coupling whose parameter has a trailing component axis (as the mixture coupling's do):
    y = x + sum_k shift[..., k] * (k + 1) on the transformed entries."""

    def __init__(self, mask, num_components=3):
        self._num_components = num_components
        super().__init__(mask=mask, validate_args=False, parameters=dict(mask=mask), name="component_shift")

    def _conditioner_params(self, x_masked):
        k = tf.range(1, self._num_components + 1, dtype=x_masked.dtype)
        return (tf.math.sin(x_masked[..., tf.newaxis] * k + tf.reduce_sum(x_masked, -1, keepdims=True)[..., None]),)

    def _transform(self, x, params):
        k = tf.range(1, self._num_components + 1, dtype=x.dtype)
        return x + tf.reduce_sum(params[0] * k, axis=-1), tf.zeros_like(x)

    def _untransform(self, y, params):
        k = tf.range(1, self._num_components + 1, dtype=y.dtype)
        return y - tf.reduce_sum(params[0] * k, axis=-1), tf.zeros_like(y)


@pytest.mark.parametrize("shape", [(5,), (3, 5), (2, 3, 5)], ids=["unbatched", "batch3", "batch2x3"])
@pytest.mark.parametrize("parity", [0, 1])
def test_parameters_with_trailing_axes_are_sliced_on_the_event_axis(monkeypatch, shape, parity):
    mask = masks.half(5, parity)
    sliced = ComponentShiftCoupling(mask)
    multiplied = _forced_multiplicative(monkeypatch, lambda: ComponentShiftCoupling(mask))
    assert sliced._split is not None
    x = normal(shape, 24)
    assert_same_bijection(multiplied, sliced, x, event_ndims=1, rtol=1e-6, atol=1e-6)
    y = sliced.forward(fresh(x)).numpy()
    np.testing.assert_array_equal(y[..., mask == 1], x[..., mask == 1])
    assert np.all(np.abs(y[..., mask == 0] - x[..., mask == 0]) > 0)


def test_pass_through_entries_are_unchanged_and_conditioner_sees_only_them():
    mask = masks.checkerboard(4, 4, 2)
    seen = []

    def fn(x_masked):
        seen.append(x_masked)
        return tf.ones_like(x_masked), tf.ones_like(x_masked)

    x = normal((2, 4, 4, 2), 23)
    y = AffineCoupling(mask, fn, log_scale_bound=None).forward(fresh(x)).numpy()
    np.testing.assert_array_equal(y[..., mask == 1], x[..., mask == 1])
    np.testing.assert_allclose(y[..., mask == 0], x[..., mask == 0] * np.e + 1.0, rtol=1e-6)
    np.testing.assert_array_equal(seen[0].numpy(), x * mask)


# --- The log-scale bounds ------------------------------------------------------------------------------------

def _constant_conditioner(raw_log_scale):
    return lambda x: (tf.zeros_like(x), tf.fill(tf.shape(x), tf.constant(raw_log_scale, x.dtype)))


@pytest.mark.parametrize("raw", [-1e4, -3.0, 0.0, 2.5, 1e4])
def test_tanh_bound_formula_and_limit(raw):
    bijector = AffineCoupling(masks.half(4), _constant_conditioner(raw), log_scale_limit=2.0)
    x = normal((3, 4), 24)
    y = bijector.forward(fresh(x)).numpy()
    expected_s = 2.0 * np.tanh(raw / 2.0)
    np.testing.assert_allclose(y[:, 2:], x[:, 2:] * np.exp(expected_s), rtol=1e-5)
    fldj = bijector.forward_log_det_jacobian(fresh(x), event_ndims=1).numpy()
    np.testing.assert_allclose(fldj, 2 * expected_s, rtol=1e-5, atol=1e-6)
    assert np.all(np.abs(fldj) <= 2 * 2.0)


@pytest.mark.parametrize("raw", [-20.0, -2.0, 0.0, 3.0, 1e4])
def test_sigmoid_bound_without_floor_is_glows_density_direction_scale(raw):
    bijector = AffineCoupling(masks.half(4), _constant_conditioner(raw), log_scale_bound="sigmoid",
                              log_scale_limit=math.inf)
    y = normal((3, 4), 25)
    x = bijector.inverse(fresh(y)).numpy()
    sigmoid = 1.0 / (1.0 + np.exp(-(raw + 2.0)))
    np.testing.assert_allclose(x[:, 2:], y[:, 2:] * sigmoid, rtol=1e-5)
    np.testing.assert_array_equal(x[:, :2], y[:, :2])
    ildj = bijector.inverse_log_det_jacobian(fresh(y), event_ndims=1).numpy()
    np.testing.assert_allclose(ildj, 2 * np.log(sigmoid), rtol=1e-5, atol=1e-6)
    assert np.all(ildj <= 0.0)  # the density direction never expands volume


@pytest.mark.parametrize("limit", [0.5, 2.0, 6.0, 60.0])
@pytest.mark.parametrize("raw", [-1e4, -20.0, -2.0, 0.0, 3.0, 1e4])
def test_sigmoid_bound_floor_limits_the_sampling_expansion(raw, limit):
    """g = exp(-c) + (1 - exp(-c)) sigmoid(r + 2): the density direction multiplies by g, sampling divides by it,
    so one coupling expands samples by at most exp(c) whatever the conditioner outputs."""
    bijector = AffineCoupling(masks.half(4), _constant_conditioner(raw), log_scale_bound="sigmoid",
                              log_scale_limit=limit)
    floor = np.exp(-limit)
    g = floor + (1.0 - floor) * 0.5 * (1.0 + np.tanh((raw + 2.0) / 2.0))  # sigmoid, without exp overflow
    y = normal((3, 4), 25)
    x = bijector.inverse(fresh(y)).numpy()
    np.testing.assert_allclose(x[:, 2:], y[:, 2:] * g, rtol=1e-5)
    ildj = bijector.inverse_log_det_jacobian(fresh(y), event_ndims=1).numpy()
    np.testing.assert_allclose(ildj, 2 * np.log(g), rtol=1e-5, atol=1e-6)
    z = normal((3, 4), 26)
    forward = bijector.forward(fresh(z)).numpy()
    np.testing.assert_allclose(forward[:, 2:], z[:, 2:] / g, rtol=1e-5)
    fldj = bijector.forward_log_det_jacobian(fresh(z), event_ndims=1).numpy()
    assert np.all(np.isfinite(forward)) and np.all((0.0 <= fldj) & (fldj <= 2 * limit * (1 + 1e-6)))


def test_bounded_coupling_stays_finite_where_unbounded_overflows():
    conditioner = DenseConditioner(6, 2, tf.float32, seed=26, linear_skip=True)
    x = np.full((2, 6), 1e3, np.float32)
    unbounded = AffineCoupling(masks.half(6), conditioner, log_scale_bound=None).forward(fresh(x))
    bounded = AffineCoupling(masks.half(6), conditioner, log_scale_bound="tanh").forward(fresh(x))
    assert not np.all(np.isfinite(unbounded))  # the edge case really is extreme for this conditioner
    assert np.all(np.isfinite(bounded))


# --- The conditioner is run once per log_prob ----------------------------------------------------------------

def test_log_prob_runs_the_conditioner_once():
    calls = []
    conditioner = DenseConditioner(4, 2, tf.float32, seed=27)

    def counting(x):
        calls.append(1)
        return conditioner(x)

    flow = tfp.distributions.TransformedDistribution(
        tfp.distributions.MultivariateNormalDiag(tf.zeros(4)), AffineCoupling(masks.half(4), counting))
    log_prob = flow.log_prob(fresh(normal((3, 4), 28)))
    assert np.all(np.isfinite(log_prob))
    assert len(calls) == 1


# --- Parameters: Variables, DeferredTensors, dtypes ----------------------------------------------------------

def test_actnorm_tracks_variable_updates_and_deferred_tensors():
    log_scale = tf.Variable([0.0, 0.0])
    scale = tfp.util.DeferredTensor(log_scale, tf.identity)
    loc = tf.Variable([1.0, -1.0])
    bijector = ActNorm(loc, scale)
    x = np.ones((2, 2), np.float32)
    np.testing.assert_allclose(bijector.forward(fresh(x)), [[2.0, 0.0]] * 2)
    log_scale.assign([np.log(2.0), 0.0])
    np.testing.assert_allclose(bijector.forward(fresh(x)), [[3.0, 0.0]] * 2, rtol=1e-6)
    with tf.GradientTape() as tape:
        fldj = bijector.forward_log_det_jacobian(fresh(x), event_ndims=1)
    np.testing.assert_allclose(fldj, [np.log(2.0)] * 2, rtol=1e-6)
    np.testing.assert_allclose(tape.gradient(fldj, log_scale), [2.0, 2.0])  # d/ds of the sum over 2 rows
    assert len(bijector.trainable_variables) == 2


def test_invertible_conv1x1_gradient_reaches_lower_upper_variable():
    lower_upper = tf.Variable(random_rotation_lower_upper(3, seed=29)[0])
    bijector = InvertibleConv1x1(lower_upper, random_rotation_lower_upper(3, seed=29)[1])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(bijector.inverse(fresh(normal((2, 2, 2, 3), 30))) ** 2)
        loss += tf.reduce_sum(bijector.inverse_log_det_jacobian(fresh(normal((2, 2, 2, 3), 31)), event_ndims=3))
    grad = tape.gradient(loss, lower_upper)
    assert grad is not None and np.all(np.isfinite(grad)) and np.any(grad.numpy() != 0)


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_parameter_dtype_is_kept(dtype):
    actnorm = ActNorm(tf.zeros([3], dtype), tf.zeros([3], dtype))
    conv = InvertibleConv1x1(*random_rotation_lower_upper(3, seed=0, dtype=dtype.as_numpy_dtype))
    for bijector in (actnorm, conv):
        assert bijector.dtype == dtype
        assert bijector.forward(tf.ones([2, 3], dtype)).dtype == dtype


def test_batch_shapes_come_from_parameters():
    assert ActNorm(tf.zeros([2, 3]), tf.zeros([3])).experimental_batch_shape() == [2]
    factors = [random_rotation_lower_upper(3, seed=s) for s in (1, 2)]
    conv = InvertibleConv1x1(np.stack([f[0] for f in factors]), np.stack([f[1] for f in factors]))
    assert conv.experimental_batch_shape() == [2]


# --- random_rotation_lower_upper -----------------------------------------------------------------------------

@pytest.mark.parametrize("channels", [1, 2, 5, 16])
def test_random_rotation_lower_upper_follows_tf_linalg_lu_convention(channels):
    lower_upper, permutation = random_rotation_lower_upper(channels, seed=channels, dtype=np.float64)
    assert lower_upper.dtype == np.float64 and permutation.dtype == np.int32
    assert sorted(permutation.tolist()) == list(range(channels))
    weights = tfp.math.lu_reconstruct(tf.constant(lower_upper), permutation).numpy()
    np.testing.assert_allclose(weights @ weights.T, np.eye(channels), atol=1e-10)
    tf_lower_upper, tf_permutation = tf.linalg.lu(weights)  # the same factorisation as TensorFlow's
    np.testing.assert_allclose(tf_lower_upper, lower_upper, atol=1e-10)
    np.testing.assert_array_equal(tf_permutation, permutation)


def test_random_rotation_is_reproducible_and_seed_dependent():
    a, b, c = (random_rotation_lower_upper(4, seed=s)[0] for s in (7, 7, 8))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    with pytest.raises(ValueError, match="channels"):
        random_rotation_lower_upper(0)


# --- actnorm_initial_parameters -------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(256, 3), (16, 4, 4, 3)])
def test_actnorm_initial_parameters_standardise_the_batch(shape):
    rng = np.random.default_rng(32)
    x = (rng.normal(size=shape) * [0.01, 1.0, 300.0] + [5.0, -2.0, 1e3]).astype(np.float32)
    loc, log_scale = actnorm_initial_parameters(fresh(x))
    assert loc.shape == [3] and log_scale.shape == [3]
    z = ActNorm(loc, log_scale).inverse(fresh(x)).numpy().reshape(-1, 3)
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-3)
    np.testing.assert_allclose(z.std(axis=0), 1.0, rtol=1e-3)


def test_actnorm_initial_parameters_of_a_constant_batch_are_finite():
    x = np.zeros((8, 2, 2, 3), np.float32)
    x[..., 1] = 4.0  # constant but nonzero channel
    x[..., 2] = normal((8, 2, 2), 33)
    loc, log_scale = actnorm_initial_parameters(fresh(x), epsilon=1e-6)
    assert np.all(np.isfinite(loc)) and np.all(np.isfinite(log_scale))
    np.testing.assert_allclose(log_scale[:2], np.log(1e-6), rtol=1e-6)
    bijector = ActNorm(loc, log_scale)
    z = bijector.inverse(fresh(x)).numpy()
    np.testing.assert_allclose(z[..., :2], 0.0, atol=1e-6)
    assert np.all(np.isfinite(bijector.inverse_log_det_jacobian(fresh(x), event_ndims=3)))


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), True])
def test_actnorm_initial_parameters_reject_bad_epsilon(bad):
    with pytest.raises(ValueError, match="epsilon"):
        actnorm_initial_parameters(tf.ones([4, 2]), epsilon=bad)


def test_actnorm_initial_parameters_need_a_batch():
    with pytest.raises(ValueError, match="x"):
        actnorm_initial_parameters(tf.ones([3]))
    with pytest.raises(TypeError, match="x"):
        actnorm_initial_parameters(tf.ones([4, 3], tf.int32))


# --- Mask helpers ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [2, 3, 6, 7])
def test_half_mask(size):
    even, odd = masks.half(size), masks.half(size, parity=1)
    assert even.shape == (size,) and even.dtype == np.float32
    assert even.sum() == size // 2 and np.all(even[: size // 2] == 1)  # floor(size / 2) ones first
    np.testing.assert_array_equal(odd, 1.0 - even)


def test_checkerboard_mask():
    mask = masks.checkerboard(3, 4, 2)
    assert mask.shape == (3, 4, 2) and mask.dtype == np.float32
    assert mask[0, 0, 0] == 1
    np.testing.assert_array_equal(mask[..., 0], mask[..., 1])
    assert np.all(mask[1:, :] != mask[:-1, :]) and np.all(mask[:, 1:] != mask[:, :-1])  # neighbours differ
    np.testing.assert_array_equal(masks.checkerboard(3, 4, 2, parity=1), 1.0 - mask)
    assert mask.sum() == 12


def test_channel_mask():
    mask = masks.channel(2, 3, 5)
    assert mask.shape == (2, 3, 5) and mask.dtype == np.float32
    np.testing.assert_array_equal(mask[1, 2], [1, 1, 0, 0, 0])
    np.testing.assert_array_equal(masks.channel(2, 3, 5, parity=1), 1.0 - mask)


@pytest.mark.parametrize("call,argument", [
    (lambda: masks.half(1), "event_size"),
    (lambda: masks.half(4.0), "event_size"),
    (lambda: masks.half(4, parity=2), "parity"),
    (lambda: masks.channel(2, 2, 1), "channels"),
    (lambda: masks.channel(0, 2, 4), "height"),
    (lambda: masks.checkerboard(1, 1, 3), "pixels"),
    (lambda: masks.checkerboard(2, 2, 3, parity=-1), "parity"),
    (lambda: masks.checkerboard(2, 0, 3), "width"),
])
def test_mask_helpers_reject_bad_arguments(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()


# --- Errors that name the argument ----------------------------------------------------------------------------

def test_coupling_rejects_input_of_the_wrong_event_shape():
    bijector = AffineCoupling(masks.half(4), lambda x: (x, x))
    with pytest.raises(ValueError, match="`x`.*event shape \\[4\\]"):
        bijector.forward(tf.zeros([2, 5]))
    with pytest.raises(ValueError, match="`y`"):
        bijector.inverse(tf.zeros([2, 3]))


def test_coupling_rejects_conditioner_output_of_the_wrong_shape():
    bijector = AffineCoupling(masks.half(4), lambda x: (x[..., :1], x))
    with pytest.raises(ValueError, match="conditioner output 0"):
        bijector.forward(tf.zeros([2, 4]))
    with pytest.raises(ValueError, match="pair"):
        AffineCoupling(masks.half(4), lambda x: x).forward(tf.zeros([2, 4]))


def test_coupling_constructor_errors_name_the_argument():
    with pytest.raises(ValueError, match="log_scale_bound"):
        AffineCoupling(masks.half(4), lambda x: (x, x), log_scale_bound="exp")
    with pytest.raises(ValueError, match="log_scale_limit"):
        AffineCoupling(masks.half(4), lambda x: (x, x), log_scale_limit=0.0)
    with pytest.raises(ValueError, match="log_scale_limit"):
        AffineCoupling(masks.half(4), lambda x: (x, x), log_scale_limit=float("nan"), log_scale_bound="sigmoid")
    with pytest.raises(ValueError, match="log_scale_limit"):  # c tanh(r / c) has no infinite limit
        AffineCoupling(masks.half(4), lambda x: (x, x), log_scale_limit=math.inf, log_scale_bound="tanh")
    with pytest.raises(ValueError, match="<= 60"):  # exp(-c) would underflow float32: use math.inf
        AffineCoupling(masks.half(4), lambda x: (x, x), log_scale_limit=100.0, log_scale_bound="sigmoid")
    with pytest.raises(TypeError, match="shift_and_log_scale_fn"):
        AffineCoupling(masks.half(4), None)
    with pytest.raises(TypeError, match="shift_fn"):
        AdditiveCoupling(masks.half(4), "not callable")
    with pytest.raises(ValueError, match="mask"):
        AdditiveCoupling(np.ones(4), lambda x: x)


def test_coupling_validate_args_rejects_non_finite_conditioner_output():
    bijector = AffineCoupling(masks.half(4), lambda x: (x, x / 0.0), validate_args=True)
    with pytest.raises(tf.errors.InvalidArgumentError, match="shift_and_log_scale_fn"):
        bijector.forward(tf.ones([1, 4]))


def test_actnorm_errors_name_the_argument():
    with pytest.raises(ValueError, match="`x`.*3 channels.*log_scale"):
        ActNorm(tf.zeros([3]), tf.zeros([3])).forward(tf.zeros([2, 4]))
    with pytest.raises(ValueError, match="`y`"):
        ActNorm(tf.zeros([3]), tf.zeros([3])).inverse_log_det_jacobian(tf.zeros([2, 4]), event_ndims=1)
    with pytest.raises(ValueError, match="`loc` and `log_scale`"):
        ActNorm(tf.zeros([3]), tf.zeros([4]))
    with pytest.raises(ValueError, match="log_scale.*rank"):
        ActNorm(tf.zeros([3]), 0.0)
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError), match="log_scale.*finite"):
        ActNorm(tf.zeros([2]), [0.0, np.inf], validate_args=True)
    log_scale = tf.Variable([0.0, 0.0])
    bijector = ActNorm(tf.zeros([2]), log_scale, validate_args=True)
    log_scale.assign([np.nan, 0.0])  # checked at every call, since a Variable can change
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError), match="log_scale.*finite"):
        bijector.forward(tf.zeros([1, 2]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="log_scale.*finite"):
        tf.function(bijector.forward)(tf.zeros([1, 2]))


def test_actnorm_validate_args_checks_channels_of_dynamically_shaped_input():
    bijector = ActNorm(tf.zeros([3]), tf.zeros([3]), validate_args=True)
    forward = tf.function(bijector.forward, input_signature=[tf.TensorSpec([None, None])])
    with pytest.raises(tf.errors.InvalidArgumentError, match="channels"):
        forward(tf.zeros([2, 4]))


def test_invertible_conv1x1_errors_name_the_argument():
    lower_upper, permutation = random_rotation_lower_upper(3, seed=0)
    with pytest.raises(ValueError, match="`x`.*3 channels.*lower_upper"):
        InvertibleConv1x1(lower_upper, permutation).forward(tf.zeros([2, 2, 2, 4]))
    with pytest.raises(ValueError, match="permutation"):
        InvertibleConv1x1(lower_upper, [0, 1])
    with pytest.raises(ValueError, match="square"):
        InvertibleConv1x1(lower_upper[:2], permutation)
    with pytest.raises(TypeError, match="permutation"):
        InvertibleConv1x1(lower_upper, permutation.astype(np.float32))
    with pytest.raises(tf.errors.InvalidArgumentError, match="permutation"):
        InvertibleConv1x1(lower_upper, [0, 2, 2], validate_args=True)
    singular = lower_upper.copy()
    singular[1, 1] = 0.0
    with pytest.raises(tf.errors.InvalidArgumentError, match="lower_upper.*nonzero"):
        InvertibleConv1x1(singular, permutation, validate_args=True)


def test_validate_args_bijectors_compile_under_xla():
    lower_upper, permutation = random_rotation_lower_upper(4, seed=1)
    bijectors = [InvertibleConv1x1(tf.Variable(lower_upper), permutation, validate_args=True),
                 ActNorm(tf.Variable(tf.zeros([4])), tf.Variable(tf.ones([4])), validate_args=True),
                 AffineCoupling(masks.channel(2, 2, 4), ConvConditioner(4, 2, tf.float32, seed=2),
                                validate_args=True)]
    x = normal((2, 2, 2, 4), 3)
    for bijector in bijectors:
        run = tf.function(lambda t, b=bijector: b.inverse(tf.identity(b.forward(t))), jit_compile=True)
        np.testing.assert_allclose(run(fresh(x)), x, rtol=1e-4, atol=1e-4, err_msg=bijector.name)
