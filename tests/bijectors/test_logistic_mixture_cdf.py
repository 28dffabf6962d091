"""LogisticMixtureCDF (Flow++): inversion accuracy against an independent float64
bisection, densities against tfd.MixtureSameFamily, the K = 1 reduction, XLA, implicit gradients against finite
differences, argument errors, and property tests.

Invariants per example: values, log-dets and gradients are finite; round trips hold in both directions through
fresh tensors; fldj(z) == -ildj(f(z)); in float64 the inverse log-det equals the mixture's log-density minus
the standard logistic's (tfd.MixtureSameFamily as the closed-form reference).

Tolerances are backward errors: float arithmetic on u_k = (x - mu_k) / s_k carries an absolute error of about
eps * (|x| + |mu_k|) / s_k, which no algorithm can beat, so the latent tolerance grows with that quantity; a
data-space error is the latent error divided by dz/dx (large only where the CDF is flat and x is ill-defined).
Generated parameters: up to 6 components, |logits| <= 10, |locs| <= 20, log_scales in [-4, 3].
"""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from hypothesis import given
from hypothesis import strategies as st
from mixture_support import SETTINGS, assert_finite, floats, fresh, magnitudes

from tfp_flows import LogisticMixtureCDF
from tfp_flows import logistic_mixture_cdf as lmc

tfb = tfp.bijectors
tfd = tfp.distributions


# --- An independent float64 reference (NumPy only) ---------------------------------------------------------


def reference_logit_cdf(x, logits, locs, log_scales):
    """logit(F(x)) in float64 NumPy, in log space."""
    log_weights = logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)
    u = (np.asarray(x, np.float64)[..., None] - locs) * np.exp(-log_scales)
    log_cdf = np.logaddexp.reduce(log_weights - np.logaddexp(0.0, -u), axis=-1)
    log_sf = np.logaddexp.reduce(log_weights - np.logaddexp(0.0, u), axis=-1)
    return log_cdf - log_sf


def reference_quantile(z, logits, locs, log_scales, iterations=200):
    """x with logit(F(x)) = z by plain float64 bisection on a generous bracket."""
    z = np.asarray(z, np.float64)
    spread = np.exp(log_scales).max() * (np.abs(z) + 50.0)
    low = np.full(z.shape, locs.min()) - spread
    high = np.full(z.shape, locs.max()) + spread
    for _ in range(iterations):
        mid = 0.5 * (low + high)
        below = reference_logit_cdf(mid, logits, locs, log_scales) < z
        low, high = np.where(below, mid, low), np.where(below, high, mid)
    return 0.5 * (low + high)


def random_mixture(seed, num_components, loc_spread=2.0, log_scale_spread=0.7):
    rng = np.random.default_rng(seed)
    return (
        rng.normal(size=num_components) * 1.5,
        rng.normal(size=num_components) * loc_spread,
        rng.normal(size=num_components) * log_scale_spread,
    )


def make_bijector(params, dtype=tf.float32, **kwargs):
    return LogisticMixtureCDF(*(tf.constant(p, dtype) for p in params), **kwargs)


LATENT_GRID = np.concatenate([np.linspace(-20.0, 20.0, 401), [-60.0, -40.0, -30.0, 30.0, 40.0, 60.0]])


DRAWS = [
    (seed, k, loc_spread, scale_spread)
    for seed, (k, loc_spread, scale_spread) in enumerate(
        [
            (1, 1.0, 1.0),
            (2, 3.0, 0.5),
            (3, 2.0, 1.0),
            (4, 1.0, 0.3),
            (8, 2.0, 0.7),
            (8, 4.0, 1.0),
            (32, 1.0, 0.5),
            (32, 2.0, 0.8),
        ]
    )
]


# --- Inversion accuracy ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed,num_components,loc_spread,scale_spread", DRAWS)
def test_float32_inversion_error_below_1e4_over_bulk_and_tails(seed, num_components, loc_spread, scale_spread):
    params = random_mixture(seed, num_components, loc_spread, scale_spread)
    # The reference uses the float32-rounded parameters: the same problem the float32 search solves.
    params32 = tuple(np.float32(p).astype(np.float64) for p in params)
    z = LATENT_GRID.astype(np.float32)
    x = make_bijector(params).forward(fresh(z)).numpy().astype(np.float64)
    assert np.all(np.isfinite(x))
    # Latent round trip, evaluated in float64 so only the search's error is measured.
    z_back = reference_logit_cdf(x, *params32)
    latent_error = np.abs(z_back - z) / np.maximum(1.0, np.abs(z) / 20.0)
    assert latent_error.max() <= 1e-4, (
        f"latent round-trip error {latent_error.max():.2e} at z = {z[latent_error.argmax()]}"
    )
    # Data-space error against an independent bisection.
    x_true = reference_quantile(z, *params32)
    data_error = np.abs(x - x_true) / np.maximum(1.0, np.abs(x_true))
    assert data_error.max() <= 1e-4, f"data error {data_error.max():.2e} at z = {z[data_error.argmax()]}"


@pytest.mark.parametrize("dtype,tolerance", [(tf.float32, 1e-4), (tf.float64, 1e-9)])
def test_round_trip_in_data_space(dtype, tolerance):
    params = random_mixture(11, 6)
    x = np.concatenate([np.linspace(-10.0, 10.0, 81), [-300.0, -50.0, 50.0, 300.0]])
    bijector = make_bijector(params, dtype)
    x_back = bijector.forward(bijector.inverse(fresh(x, dtype))).numpy()
    np.testing.assert_allclose(x_back, x, rtol=tolerance, atol=tolerance)


def test_search_converges_within_its_budget(monkeypatch):
    """The budget bounds the worst case; on the tested draws the search stops because it converged."""
    iterations = []
    original = lmc._search

    def recording(*args, **kwargs):
        root, steps = original(*args, **kwargs)
        iterations.append(int(steps))
        return root, steps

    monkeypatch.setattr(lmc, "_search", recording)
    for seed, num_components, loc_spread, scale_spread in DRAWS:
        params = random_mixture(seed, num_components, loc_spread, scale_spread)
        make_bijector(params).forward(fresh(LATENT_GRID))
    assert len(iterations) == len(DRAWS)
    # Stopped by convergence on every draw, never by running out of steps.
    assert max(iterations) < lmc.MAX_ITERATIONS[tf.float32], iterations


def search_arguments(params, z, dtype=tf.float32):
    """`lmc._search`'s arguments for one mixture and latents z: parameters broadcast to [len(z), K]."""
    logits, locs, log_scales = (np.broadcast_to(p, (len(z), len(p))) for p in params)
    return (
        tf.constant(z, dtype),
        tf.math.log_softmax(tf.constant(logits, dtype)),
        tf.constant(locs, dtype),
        tf.constant(log_scales, dtype),
    )


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_single_component_is_found_by_the_initial_guess(dtype):
    """For K = 1 the moment-matched guess is the exact root: one evaluation confirms it."""
    z = np.array([-200.0, -30.0, -1.0, 0.0, 0.5, 12.0, 200.0])
    _, steps = lmc._search(*search_arguments(([0.7], [1.5], [-1.2]), z, dtype), 40)
    assert int(steps) == 1


def flow_plus_plus_like_batch(seed, size=4096, num_components=32):
    """Random Flow++-like mixtures (as a conditioner at initialisation gives them) and base-distribution latents."""
    rng = np.random.default_rng(seed)
    params = (
        rng.normal(size=(size, num_components)),
        rng.normal(scale=2.0, size=(size, num_components)),
        rng.uniform(-2.0, 1.0, size=(size, num_components)),
    )
    return params, rng.logistic(size=size)


def test_slow_elements_finish_alone_after_a_few_full_passes(monkeypatch):
    """The full batch is searched until at most 1/16 of it is left; those finish in a gathered second phase."""
    phases = []
    original = lmc._newton_loop

    def recording(constants, state, steps, max_iterations, stop_count):
        result = original(constants, state, steps, max_iterations, stop_count)
        phases.append((int(state[0].shape[0]), int(result[0])))
        return result

    monkeypatch.setattr(lmc, "_newton_loop", recording)
    (logits, locs, log_scales), z = flow_plus_plus_like_batch(seed=1)
    params32 = tuple(np.float32(p).astype(np.float64) for p in (logits, locs, log_scales))
    log_weights = tf.math.log_softmax(tf.constant(logits, tf.float32))
    x, steps = lmc._search(
        tf.constant(z, tf.float32),
        log_weights,
        tf.constant(locs, tf.float32),
        tf.constant(log_scales, tf.float32),
        lmc.MAX_ITERATIONS[tf.float32],
    )
    (full_size, full_steps), (tail_size, total_steps) = phases
    assert (full_size, tail_size) == (4096, 4096 // lmc.TAIL_FRACTION)
    # Newton from the moment-matched guess: 4 passes here (Chandrupatla took 11 over the whole batch).
    assert full_steps <= 5, phases
    assert full_steps < total_steps == int(steps) < lmc.MAX_ITERATIONS[tf.float32], phases
    latent_error = np.abs(reference_logit_cdf(x.numpy().astype(np.float64), *params32) - z)
    assert latent_error.max() <= 1e-4


@pytest.mark.parametrize("jit_compile", [False, True])
@pytest.mark.slow
def test_gathered_second_phase_matches_searching_every_element_to_the_end(monkeypatch, jit_compile):
    (logits, locs, log_scales), z = flow_plus_plus_like_batch(seed=2, size=1000, num_components=8)
    arguments = (
        tf.constant(z, tf.float32),
        tf.math.log_softmax(tf.constant(logits, tf.float32)),
        tf.constant(locs, tf.float32),
        tf.constant(log_scales, tf.float32),
    )

    def search(*arguments):
        return lmc._search(*arguments, lmc.MAX_ITERATIONS[tf.float32])

    two_phases, _ = tf.function(search, jit_compile=jit_compile)(*arguments)
    # TAIL_FRACTION = 1: the first phase stops at once and every element is "gathered" in its own order.
    monkeypatch.setattr(lmc, "TAIL_FRACTION", 1)
    one_phase, _ = tf.function(search, jit_compile=jit_compile)(*arguments)
    np.testing.assert_allclose(two_phases, one_phase, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("z", [-7.0, -0.5, 0.0, 2.0, 40.0])
def test_initial_guess_is_the_quantile_of_the_moment_matched_logistic(z):
    params = random_mixture(13, 5)
    mixture = mixture_distribution(params, tf.float64)
    matched_scale = np.sqrt(3.0 * mixture.variance().numpy()) / np.pi
    sign = -1.0 if z > 0 else 1.0  # the search's variable is y = sign * x
    logits, locs, log_scales = (tf.constant(p, tf.float64) for p in params)
    guess = lmc._moment_matched_guess(
        tf.constant(abs(z), tf.float64),
        tf.constant(sign, tf.float64),
        tf.math.log_softmax(logits),
        locs,
        tf.exp(log_scales),
    )
    np.testing.assert_allclose(sign * guess.numpy(), mixture.mean().numpy() + matched_scale * z, rtol=1e-12)


def test_first_unconverged_lists_the_open_elements_in_order_padded_with_zero():
    done = tf.constant([True, False, True, False, False, True])
    np.testing.assert_array_equal(lmc._first_unconverged(done, 2), [1, 3])
    np.testing.assert_array_equal(lmc._first_unconverged(done, 5), [1, 3, 4, 0, 0])


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_a_component_with_logit_minus_infinity_is_dropped(dtype):
    params = random_mixture(12, 3)
    with_dropped = tuple(np.append(p, extra) for p, extra in zip(params, (-np.inf, -30.0, 2.5)))
    z = LATENT_GRID
    np.testing.assert_allclose(
        make_bijector(with_dropped, dtype).forward(fresh(z, dtype)),
        make_bijector(params, dtype).forward(fresh(z, dtype)),
        rtol=1e-6,
        atol=1e-6,
    )


# --- Densities -------------------------------------------------------------------------------------------------


def mixture_distribution(params, dtype=tf.float32):
    logits, locs, log_scales = (tf.constant(p, dtype) for p in params)
    return tfd.MixtureSameFamily(tfd.Categorical(logits=logits), tfd.Logistic(locs, tf.exp(log_scales)))


@pytest.mark.parametrize("seed,num_components", [(21, 1), (22, 3), (23, 8)])
def test_logistic_pushed_through_the_forward_is_the_mixture(seed, num_components):
    params = random_mixture(seed, num_components)
    bijector = make_bijector(params, tf.float64)
    base = tfd.Logistic(tf.constant(0.0, tf.float64), tf.constant(1.0, tf.float64))
    flow = tfd.TransformedDistribution(base, bijector)
    mixture = mixture_distribution(params, tf.float64)
    x = np.concatenate([np.linspace(-12.0, 12.0, 97), [-80.0, 80.0]])
    # Density direction: log p(x) = log p_Z(inverse(x)) + ildj(x).
    np.testing.assert_allclose(flow.log_prob(fresh(x, tf.float64)), mixture.log_prob(x), rtol=1e-9, atol=1e-9)
    ildj = bijector.inverse_log_det_jacobian(fresh(x, tf.float64), event_ndims=0)
    logistic_log_pdf = base.log_prob(bijector.inverse(fresh(x, tf.float64)))
    np.testing.assert_allclose(ildj, mixture.log_prob(x) - logistic_log_pdf, rtol=1e-9, atol=1e-9)
    # Sampling direction: log p_Z(z) - fldj(z) is the mixture density at forward(z).
    z = np.linspace(-15.0, 15.0, 61)
    x_of_z = bijector.forward(fresh(z, tf.float64))
    fldj = bijector.forward_log_det_jacobian(fresh(z, tf.float64), event_ndims=0)
    np.testing.assert_allclose(base.log_prob(z) - fldj, mixture.log_prob(x_of_z), rtol=1e-8, atol=1e-8)


def test_samples_follow_the_mixture_cdf():
    params = random_mixture(24, 4, loc_spread=3.0)
    flow = tfd.TransformedDistribution(tfd.Logistic(0.0, 1.0), make_bijector(params))
    samples = np.sort(flow.sample(4000, seed=7).numpy())
    cdf = mixture_distribution(params).cdf(samples).numpy()
    empirical = np.arange(1, samples.size + 1) / samples.size
    # Kolmogorov-Smirnov at the 99.9% level: 1.95 / sqrt(n).
    assert np.max(np.abs(cdf - empirical)) < 1.95 / np.sqrt(samples.size)


def test_inverse_log_det_is_finite_and_exact_deep_in_the_tails():
    params = (np.array([0.0, 2.0, -1.0]), np.array([-1.0, 0.5, 3.0]), np.array([-3.0, -1.0, 0.5]))
    x = np.array([-1e3, -200.0, 200.0, 1e3])
    ildj32 = make_bijector(params).inverse_log_det_jacobian(fresh(x), event_ndims=0).numpy()
    ildj64 = make_bijector(params, tf.float64).inverse_log_det_jacobian(fresh(x, tf.float64), event_ndims=0)
    assert np.all(np.isfinite(ildj32))
    np.testing.assert_allclose(ildj32, ildj64, rtol=1e-5, atol=1e-3)


# --- K = 1 and repeated components ---------------------------------------------------------------------------


@pytest.mark.parametrize("loc,log_scale", [(0.0, 0.0), (1.5, 2.0), (-3.0, -1.5)])
def test_single_component_is_an_affine_map(loc, log_scale):
    """logit(sigmoid((x - mu) / s)) = (x - mu) / s: the forward is x = mu + s z, log-det log s."""
    bijector = make_bijector(([0.7], [loc], [log_scale]), tf.float64)
    affine = tfb.Shift(tf.constant(loc, tf.float64))(tfb.Scale(tf.constant(np.exp(log_scale), tf.float64)))
    z = np.array([-200.0, -30.0, -1.0, 0.0, 0.5, 12.0, 200.0])
    np.testing.assert_allclose(bijector.forward(fresh(z, tf.float64)), affine.forward(z), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(
        bijector.forward_log_det_jacobian(fresh(z, tf.float64), event_ndims=0),
        np.full(z.shape, log_scale),
        rtol=1e-10,
        atol=1e-10,
    )
    np.testing.assert_allclose(bijector.inverse(fresh(z, tf.float64)), affine.inverse(z), rtol=1e-10, atol=1e-10)


def test_identical_components_reduce_to_one():
    single = make_bijector(([0.0], [0.8], [0.4]))
    repeated = make_bijector(([0.3, -2.0, 1.0], [0.8] * 3, [0.4] * 3))
    z = np.linspace(-25.0, 25.0, 11)
    np.testing.assert_allclose(repeated.forward(fresh(z)), single.forward(fresh(z)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        repeated.forward_log_det_jacobian(fresh(z), event_ndims=0),
        single.forward_log_det_jacobian(fresh(z), event_ndims=0),
        rtol=1e-5,
        atol=1e-5,
    )


# --- XLA ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
@pytest.mark.slow
def test_root_search_compiles_with_xla(dtype):
    bijector = make_bijector(random_mixture(31, 5), dtype)

    @tf.function(jit_compile=True)
    def sample_direction(z):
        return bijector.forward(z), bijector.forward_log_det_jacobian(z, event_ndims=0)

    z = fresh(np.linspace(-30.0, 30.0, 13), dtype)
    hlo = sample_direction.experimental_get_compiler_ir(z)(stage="hlo")
    assert "while" in hlo  # the search is one bounded XLA loop
    x_xla, fldj_xla = sample_direction(z)
    np.testing.assert_allclose(x_xla, bijector.forward(fresh(z, dtype)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        fldj_xla, bijector.forward_log_det_jacobian(fresh(z, dtype), event_ndims=0), rtol=1e-5, atol=1e-5
    )


# --- Gradients ---------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_forward_gradients_match_finite_differences():
    """The implicit gradients of the root search, against central differences in float64."""
    logits, locs, log_scales = (tf.Variable(p, dtype=tf.float64) for p in random_mixture(41, 4))
    bijector = LogisticMixtureCDF(logits, locs, log_scales)
    z = tf.constant([-12.0, -1.3, 0.0, 0.4, 2.5, 9.0], tf.float64)

    def objective():
        return tf.reduce_sum(tf.sin(bijector.forward(tf.identity(z))))  # a non-linear read-out of x

    with tf.GradientTape() as tape:
        tape.watch(z)
        value = tf.reduce_sum(tf.sin(bijector.forward(z)))
    grads = tape.gradient(value, [z, logits, locs, log_scales])
    step = 1e-6
    for var, grad in zip([logits, locs, log_scales], grads[1:]):
        numeric = np.zeros(var.shape)
        for i in range(var.shape[0]):
            original = var.numpy()
            for sign in (1.0, -1.0):
                shifted = original.copy()
                shifted[i] += sign * step
                var.assign(shifted)
                numeric[i] += sign * objective().numpy() / (2 * step)
            var.assign(original)
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7, err_msg=f"gradient w.r.t. {var.name}")
    # dx/dz is exp(fldj): the Jacobian of the forward is its own log-det.
    x = bijector.forward(tf.identity(z))
    expected = np.cos(x.numpy()) * np.exp(bijector.forward_log_det_jacobian(tf.identity(z), event_ndims=0))
    np.testing.assert_allclose(grads[0], expected, rtol=1e-8)


def test_gradients_are_finite_deep_in_the_tails():
    params = [
        tf.Variable(p, dtype=tf.float32)
        for p in (np.array([0.0, 2.0, -1.0]), np.array([-1.0, 0.5, 3.0]), np.array([-3.0, -1.0, 0.5]))
    ]
    bijector = LogisticMixtureCDF(*params)
    x = tf.constant([-1e3, -200.0, -20.0, 0.0, 20.0, 200.0, 1e3])
    z = tf.constant([-200.0, -60.0, -15.0, 0.0, 15.0, 60.0, 200.0])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x, z])
        density = tf.reduce_sum(bijector.inverse(x) + bijector.inverse_log_det_jacobian(x, event_ndims=0))
        sampling = tf.reduce_sum(bijector.forward(z) + bijector.forward_log_det_jacobian(z, event_ndims=0))
    for name, objective in (("density", density), ("sampling", sampling)):
        assert np.isfinite(objective.numpy()), name
        for grad in tape.gradient(objective, [x, z] + params):
            if grad is not None:
                assert np.all(np.isfinite(tf.convert_to_tensor(grad).numpy())), name


# --- Parameters: shapes, variables, deferred tensors -----------------------------------------------------------


def test_batch_shape_comes_from_the_parameters_without_their_component_axis():
    bijector = LogisticMixtureCDF(tf.zeros([3, 1, 4]), tf.zeros([5, 4]), tf.zeros([4]))
    assert bijector.experimental_batch_shape() == [3, 5]
    x = bijector.forward(tf.zeros([2, 3, 5]))
    assert x.shape == [2, 3, 5]


def test_variables_and_deferred_tensors_are_used_not_copied():
    logits = tf.Variable([0.0, 0.5])
    locs = tf.Variable([-1.0, 1.0])
    scales = tf.Variable([1.0, 0.5])
    bijector = LogisticMixtureCDF(logits, locs, tfp.util.DeferredTensor(scales, tf.math.log))
    assert {v.ref() for v in bijector.trainable_variables} == {logits.ref(), locs.ref(), scales.ref()}
    z = tf.constant([0.3, -2.0])
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(bijector.forward(z))
    assert all(g is not None for g in tape.gradient(value, [logits, locs, scales]))
    before = bijector.forward(tf.identity(z)).numpy()
    locs.assign_add([1.0, 1.0])  # shifting every component shifts the quantiles
    np.testing.assert_allclose(bijector.forward(tf.identity(z)), before + 1.0, rtol=1e-5, atol=1e-5)
    assert not LogisticMixtureCDF([0.0], [0.0], [0.0]).variables  # no variables of its own


# --- Errors that name the argument -------------------------------------------------------------------------------


def test_mismatched_component_axes_raise():
    with pytest.raises(ValueError, match="component axes"):
        LogisticMixtureCDF(tf.zeros([3]), tf.zeros([4]), tf.zeros([3]))


def test_zero_components_raise():
    with pytest.raises(ValueError, match="`logits` must have at least 1 mixture component"):
        LogisticMixtureCDF(tf.zeros([0]), tf.zeros([0]), tf.zeros([0]))


def test_scalar_parameters_raise():
    with pytest.raises(ValueError, match="`locs` must have a trailing component axis"):
        LogisticMixtureCDF(tf.zeros([2]), 0.0, tf.zeros([2]))


def test_integer_parameters_raise():
    with pytest.raises(TypeError, match="floating-point"):
        LogisticMixtureCDF(tf.zeros([2], tf.int32), tf.zeros([2], tf.int32), tf.zeros([2], tf.int32))


def test_validate_args_checks_dynamic_component_axes_and_finiteness():
    @tf.function(input_signature=[tf.TensorSpec([None])] * 3)
    def build_and_run(logits, locs, log_scales):
        return LogisticMixtureCDF(logits, locs, log_scales, validate_args=True).inverse(tf.constant([0.5]))

    with pytest.raises(tf.errors.InvalidArgumentError, match="`locs` must have as many components"):
        build_and_run(tf.zeros([3]), tf.zeros([2]), tf.zeros([3]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="`log_scales` must be finite"):
        build_and_run(tf.zeros([2]), tf.zeros([2]), tf.constant([0.0, np.inf]))
    variable = tf.Variable([0.0, 0.0])
    bijector = LogisticMixtureCDF([0.0, 0.0], variable, [0.0, 0.0], validate_args=True)
    variable.assign([0.0, np.nan])  # variables are checked when used, not only when built
    with pytest.raises(tf.errors.InvalidArgumentError, match="`locs` must be finite"):
        bijector.forward(tf.constant([0.5]))


tfd = tfp.distributions
DTYPES = {"float32": tf.float32, "float64": tf.float64}


def _vectors(size, elements):
    return st.lists(elements, min_size=size, max_size=size).map(np.array)


@st.composite
def mixtures(draw):
    k = draw(st.integers(1, 6))
    return (
        draw(_vectors(k, floats(-10.0, 10.0))),
        draw(_vectors(k, floats(-20.0, 20.0))),
        draw(_vectors(k, floats(-4.0, 3.0))),
    )


def _tensor(value, dtype):
    return tf.constant(np.asarray(value), dtype)


def _latent_tolerance(z, x, params, dtype):
    """Backward-error bound on |logit F(x) - z| for float evaluation of F at x (see the module docstring)."""
    eps = np.finfo(dtype.as_numpy_dtype).eps
    _, locs, log_scales = params
    conditioning = (np.abs(x) + np.abs(locs).max()) * np.exp(-log_scales.min())
    return 3.0 * eps**0.75 + 64.0 * eps * (np.abs(z) + conditioning)


def _finite_gradients(bijector, inputs, direction):
    variables = list(bijector.trainable_variables)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        if direction == "forward":
            objective = bijector.forward(inputs) + bijector.forward_log_det_jacobian(inputs, event_ndims=0)
        else:
            objective = bijector.inverse(inputs) + bijector.inverse_log_det_jacobian(inputs, event_ndims=0)
    for name, grad in zip(["input"] + [v.name for v in variables], tape.gradient(objective, [inputs] + variables)):
        if grad is not None:
            assert_finite(f"{direction} gradient w.r.t. {name}", tf.convert_to_tensor(grad))


@SETTINGS
@given(params=mixtures(), z=_vectors(6, magnitudes(200.0)), dtype_name=st.sampled_from(sorted(DTYPES)))
@pytest.mark.slow
def test_sampling_direction_round_trips(params, z, dtype_name):
    dtype = DTYPES[dtype_name]
    bijector = LogisticMixtureCDF(*(tf.Variable(p, dtype=dtype) for p in params), validate_args=True)
    x = bijector.forward(_tensor(z, dtype)).numpy()
    fldj = bijector.forward_log_det_jacobian(_tensor(z, dtype), event_ndims=0).numpy()
    z_back = bijector.inverse(_tensor(x, dtype)).numpy()
    ildj = bijector.inverse_log_det_jacobian(_tensor(x, dtype), event_ndims=0).numpy()
    for what, value in (("forward", x), ("fldj", fldj), ("inverse", z_back), ("ildj", ildj)):
        assert_finite(what, value)
    z = z.astype(dtype.as_numpy_dtype)
    error = np.abs(z_back - z)
    tolerance = _latent_tolerance(z, x, params, dtype)
    assert np.all(error <= tolerance), f"z -> x -> z errors {error} above {tolerance} at z = {z}"
    np.testing.assert_allclose(fldj, -ildj, rtol=1e-5, atol=1e-5, err_msg="fldj(z) != -ildj(f(z))")
    _finite_gradients(bijector, _tensor(z, dtype), "forward")


@SETTINGS
@given(params=mixtures(), x=_vectors(6, magnitudes(1e3)), dtype_name=st.sampled_from(sorted(DTYPES)))
@pytest.mark.slow
def test_density_direction_round_trips_and_matches_the_mixture(params, x, dtype_name):
    dtype = DTYPES[dtype_name]
    bijector = LogisticMixtureCDF(*(tf.Variable(p, dtype=dtype) for p in params), validate_args=True)
    z = bijector.inverse(_tensor(x, dtype)).numpy()
    ildj = bijector.inverse_log_det_jacobian(_tensor(x, dtype), event_ndims=0).numpy()
    x_back = bijector.forward(_tensor(z, dtype)).numpy()
    for what, value in (("inverse", z), ("ildj", ildj), ("forward", x_back)):
        assert_finite(what, value)
    x = x.astype(dtype.as_numpy_dtype)
    eps = np.finfo(dtype.as_numpy_dtype).eps
    # A latent error maps to the data side divided by dz/dx = exp(ildj).
    tolerance = (
        2.0 * _latent_tolerance(z, x, params, dtype) * np.exp(-ildj.astype(np.float64))
        + 8.0 * eps * np.abs(x)
        + eps**0.75
    )
    error = np.abs(x_back - x)
    assert np.all(error <= tolerance), f"x -> z -> x errors {error} above {tolerance} at x = {x}"
    if dtype == tf.float64:
        logits, locs, log_scales = params
        mixture = tfd.MixtureSameFamily(tfd.Categorical(logits=logits), tfd.Logistic(locs, np.exp(log_scales)))
        expected = mixture.log_prob(x).numpy() - tfd.Logistic(np.float64(0.0), 1.0).log_prob(z).numpy()
        np.testing.assert_allclose(ildj, expected, rtol=1e-9, atol=1e-7, err_msg="ildj != log mixture - log logistic")
    _finite_gradients(bijector, _tensor(x, dtype), "inverse")


@SETTINGS
@given(
    params=mixtures(),
    bad=st.sampled_from([np.nan, np.inf, -np.inf]),
    which=st.sampled_from([0, 1, 2]),
    index=st.integers(0, 5),
)
def test_non_finite_parameters_raise_instead_of_returning_nan(params, bad, which, index):
    params = [np.array(p) for p in params]
    params[which][index % params[which].size] = bad
    bijector = LogisticMixtureCDF(*(tf.Variable(p, dtype=tf.float32) for p in params), validate_args=True)
    name = ["logits", "locs", "log_scales"][which]
    if name == "logits" and bad == -np.inf:
        # A logit of -inf drops that component: still a valid mixture unless every component is dropped.
        if np.all(params[0] == -np.inf):
            return
        x = bijector.forward(tf.constant([0.0, 3.0, -40.0]))
        assert_finite("forward with a dropped component", x)
        assert_finite("inverse with a dropped component", bijector.inverse(tf.constant(x.numpy())))
        return
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"`{name}` must be"):
        bijector.forward(tf.constant([0.0, 3.0]))
