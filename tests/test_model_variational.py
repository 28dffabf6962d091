"""VariationalFlow: reverse-KL fitting of flows to Rezende & Mohamed's energies with `fit`."""

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from keras_models import PlanarFlow, RadialFlow, VariationalFlow
from keras_models.flows.maf import IAF  # not (yet) exported by keras_models.__init__
from keras_models.flows.variational import summarise_importance_weights
from tfp_flows.datasets.energies import u1


def log_normaliser_of_u1():
    """log Z = log of the integral of exp(-U1) by quadrature on [-8, 8]^2 (the mass outside is negligible)."""
    grid = np.linspace(-8.0, 8.0, 801)
    z = np.stack(np.meshgrid(grid, grid), axis=-1)
    return float(np.log(np.sum(np.exp(-u1(z).numpy().astype(np.float64))) * (grid[1] - grid[0]) ** 2))


@pytest.fixture(scope="module")
def trained_on_u1():
    keras.utils.set_random_seed(0)
    vi = VariationalFlow(PlanarFlow(event_shape=(2,), num_layers=8), target_log_prob="U1", batch_size=128, seed=1)
    before = float(vi.elbo(4096, seed=5))
    samples_before = vi.sample(4096, seed=2)
    vi.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = vi.fit(epochs=2, steps_per_epoch=100, verbose=0)
    return vi, before, samples_before, history


@pytest.mark.slow
def test_fit_on_u1_raises_the_elbo_towards_log_z(trained_on_u1):
    vi, before, _, history = trained_on_u1
    after = float(vi.elbo(4096, seed=5))
    log_z = log_normaliser_of_u1()
    assert after > before + 2.0, (before, after)
    assert after < log_z + 0.05, (after, log_z)  # the ELBO is a lower bound on log Z (up to Monte-Carlo error)
    assert after > log_z - 1.5, (after, log_z)
    np.testing.assert_allclose(history.history["loss"], -np.asarray(history.history["elbo"]), rtol=1e-5)
    np.testing.assert_allclose(history.history["iw_elbo"], history.history["elbo"], rtol=1e-6)  # K = 1


def test_samples_concentrate_where_u1_is_low(trained_on_u1):
    vi, _, samples_before, _ = trained_on_u1
    samples_after = vi.sample(4096, seed=2)
    energy_before, energy_after = np.mean(u1(samples_before)), np.mean(u1(samples_after))
    assert energy_after < energy_before - 1.0, (energy_before, energy_after)

    # U1 is a ring of radius 2 (width 0.4): much more of q's mass lies near it than under N(0, I) (47%).
    def near_ring(samples):
        return np.mean(np.abs(np.linalg.norm(samples.numpy(), axis=-1) - 2.0) < 0.8)

    assert near_ring(samples_after) > max(0.6, near_ring(samples_before) + 0.15), (
        near_ring(samples_before),
        near_ring(samples_after),
    )


def test_log_q_from_the_forward_pass_equals_the_flow_density(trained_on_u1):
    """The inverse-free estimate log base(eps) - fldj(eps) is the flow's own log_prob at z = f(eps)."""
    vi, _, _, _ = trained_on_u1
    z, log_q = vi.sample_and_log_prob(16, seed=3)
    np.testing.assert_allclose(log_q.numpy(), vi.flow.log_prob(tf.identity(z)).numpy(), rtol=1e-4, atol=1e-4)


def test_keras_round_trip_keeps_the_elbo(trained_on_u1, tmp_path):
    vi, _, _, _ = trained_on_u1
    path = str(tmp_path / "vi.keras")
    vi.save(path)
    reloaded = keras.saving.load_model(path)
    assert isinstance(reloaded.flow, PlanarFlow) and reloaded.target_log_prob == "U1"
    np.testing.assert_allclose(float(reloaded.elbo(512, seed=7)), float(vi.elbo(512, seed=7)), rtol=1e-6)


@pytest.mark.parametrize(
    "flow",
    [
        lambda: RadialFlow(event_shape=(2,), num_layers=3),
        lambda: IAF(event_shape=(2,), num_layers=2, hidden_units=(8,)),  # one pass to sample: cheap as q
    ],
    ids=["radial", "iaf"],
)
@pytest.mark.slow
def test_any_flow_model_trains_by_reverse_kl_under_xla(flow):
    vi = VariationalFlow(flow(), target_log_prob="U2", batch_size=32, seed=0)
    vi.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=True)
    history = vi.fit(epochs=1, steps_per_epoch=3, verbose=0)
    assert np.all(np.isfinite(history.history["elbo"]))
    z, log_q = vi.sample_and_log_prob(8, seed=1)
    np.testing.assert_allclose(log_q.numpy(), vi.flow.log_prob(tf.identity(z)).numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_the_batch_of_a_dataset_sets_the_number_of_samples():
    vi = VariationalFlow(PlanarFlow(event_shape=(2,), num_layers=2), target_log_prob="U3", seed=0)
    assert vi(tf.zeros([5])).shape == (5,)
    vi.compile(optimizer="adam")
    dataset = tf.data.Dataset.from_tensors(tf.ones([16])).repeat(3)
    history = vi.fit(dataset, epochs=1, verbose=0)
    assert np.isfinite(history.history["elbo"][0])


def test_a_callable_target_is_used_as_the_log_density():
    """A Gaussian target q can match exactly: the untrained flow (identity) is N(0, I), so its ELBO is log Z."""
    log_z = np.log(2.0 * np.pi)  # of the unnormalised exp(-|z|^2 / 2) in 2-D
    vi = VariationalFlow(
        RadialFlow(event_shape=(2,), num_layers=2),
        target_log_prob=lambda z: -0.5 * tf.reduce_sum(tf.square(z), axis=-1),
    )
    terms = vi.elbo_terms(64, seed=2).numpy()
    np.testing.assert_allclose(terms, log_z, rtol=1e-5)


@pytest.mark.parametrize("name", ["U1", "U2", "U3", "u4"])
def test_the_four_energies_give_finite_elbos(name):
    vi = VariationalFlow(PlanarFlow(event_shape=(2,), num_layers=2), target_log_prob=name)
    assert np.isfinite(float(vi.elbo(64, seed=0)))


def test_saved_weights_carry_the_sampler_state(tmp_path):
    """Keras saves no SeedGenerator state: without it, a fit resumed from a backup would redraw the first epochs'
    samples."""

    def vi():
        return VariationalFlow(PlanarFlow(event_shape=(2,), num_layers=1), target_log_prob="U2", seed=4)

    drawn = vi()
    for _ in range(3):
        drawn._next_seed()
    path = str(tmp_path / "vi.weights.h5")
    drawn.save_weights(path)
    restored = vi()
    restored.load_weights(path)
    np.testing.assert_array_equal(restored.seed_generator.state.numpy(), drawn.seed_generator.state.numpy())
    assert not np.array_equal(vi().seed_generator.state.numpy(), drawn.seed_generator.state.numpy())
    np.testing.assert_array_equal(restored._next_seed().numpy(), drawn._next_seed().numpy())


def test_bad_arguments_are_named():
    flow = PlanarFlow(event_shape=(2,), num_layers=2)
    with pytest.raises(ValueError, match="u1"):
        VariationalFlow(flow, target_log_prob="U9")
    with pytest.raises(ValueError, match="event_shape"):
        VariationalFlow(PlanarFlow(event_shape=(3,), num_layers=2), target_log_prob="U1")
    with pytest.raises(TypeError, match="flow"):
        VariationalFlow(keras.Sequential(), target_log_prob="U1")
    with pytest.raises(TypeError, match="target_log_prob"):
        VariationalFlow(flow, target_log_prob=3.0)
    with pytest.raises(ValueError, match="batch_size"):
        VariationalFlow(flow, batch_size=0)
    vi = VariationalFlow(flow)
    vi.compile(optimizer="adam")
    with pytest.raises(ValueError, match="steps_per_epoch"):
        vi.fit(epochs=1)
    with pytest.raises(ValueError, match="loss"):
        vi.compile(optimizer="adam", loss="mse")


# ----------------------------------------------------------------------------------------------------------
# Importance weighting: the IWAE bound and the log-normaliser estimate, on a target whose log Z is known.
MIXTURE_SCALE, MIXTURE_MASSES = 0.6, (3.0, 5.0)  # kernels exp(-|z - m|^2 / (2 s^2)) at m = (-1, 0), (1, 0)


@keras.saving.register_keras_serializable(package="tests_variational")
def unnormalised_mixture(z):
    """log(3 exp(-|z - m1|^2 / 2s^2) + 5 exp(-|z - m2|^2 / 2s^2)): Z = (3 + 5) 2 pi s^2 in closed form."""
    kernels = [
        np.log(mass) - 0.5 * tf.reduce_sum(tf.square(z - [centre, 0.0]), axis=-1) / MIXTURE_SCALE**2
        for mass, centre in zip(MIXTURE_MASSES, (-1.0, 1.0))
    ]
    return tf.reduce_logsumexp(tf.stack(kernels, axis=-1), axis=-1)


def mixture_log_z(masses=MIXTURE_MASSES):
    return float(np.log(sum(masses) * 2.0 * np.pi * MIXTURE_SCALE**2))


@pytest.fixture(scope="module")
def fitted_to_the_mixture():
    keras.utils.set_random_seed(0)
    vi = VariationalFlow(
        PlanarFlow(event_shape=(2,), num_layers=4), target_log_prob=unnormalised_mixture, batch_size=64, seed=1
    )
    vi.compile(optimizer=keras.optimizers.Adam(1e-2))
    vi.fit(epochs=1, steps_per_epoch=30, verbose=0)
    return vi


@pytest.mark.slow
def test_log_normalizer_estimate_brackets_the_closed_form_log_z(fitted_to_the_mixture):
    estimate = fitted_to_the_mixture.estimate_log_normalizer(50_000, seed=3, chunk_size=20_000)
    log_z = mixture_log_z()
    assert estimate.num_samples == 50_000 and 0.5 * 50_000 < estimate.ess <= 50_000, estimate
    assert estimate.standard_error < 0.01, estimate  # tight enough to tell a wrong constant
    assert abs(estimate.log_z - log_z) < 3.0 * estimate.standard_error, (estimate, log_z)
    assert abs(estimate.log_z - mixture_log_z((3.0, 4.5))) > 3.0 * estimate.standard_error, estimate
    assert estimate.elbo < log_z, (estimate, log_z)


def test_importance_weight_summary_matches_the_direct_formulas():
    log_w = np.random.default_rng(0).normal(3.0, 1.5, size=2000)
    w = np.exp(log_w)
    log_z, standard_error, ess = summarise_importance_weights(
        tf.reduce_logsumexp(log_w), tf.reduce_logsumexp(2.0 * log_w), log_w.size
    )
    np.testing.assert_allclose(log_z, np.log(np.mean(w)), rtol=1e-10)
    np.testing.assert_allclose(standard_error, np.std(w, ddof=1) / np.sqrt(w.size) / np.mean(w), rtol=1e-8)
    np.testing.assert_allclose(ess, np.sum(w) ** 2 / np.sum(w**2), rtol=1e-8)


def test_an_exact_q_gives_log_z_with_no_error_in_any_chunking():
    """Target = N(0, I) unnormalised, q = the untrained (identity) flow: every weight is Z = 2 pi."""
    vi = VariationalFlow(
        RadialFlow(event_shape=(2,), num_layers=2),
        target_log_prob=lambda z: -0.5 * tf.reduce_sum(tf.square(z), axis=-1),
    )
    estimate = vi.estimate_log_normalizer(1000, seed=1, chunk_size=300)  # chunks of 300, 300, 300, 100
    np.testing.assert_allclose(estimate.log_z, np.log(2.0 * np.pi), rtol=1e-6)
    np.testing.assert_allclose(estimate.ess, 1000, rtol=1e-4)
    assert estimate.num_samples == 1000 and estimate.standard_error < 1e-3, estimate


def test_the_importance_weighted_bound_lies_between_the_elbo_and_log_z(fitted_to_the_mixture):
    """ELBO = L_1 <= L_4 <= L_16 <= log Z (Burda et al. 2016, theorem 1), on the same 2^15 draws regrouped."""
    vi, log_z = fitted_to_the_mixture, mixture_log_z()
    bounds = {k: vi.log_weights(2**15 // k, k, seed=4) for k in (1, 4, 16)}
    elbo = float(tf.reduce_mean(bounds[1]))
    iw = {k: float(vi.iw_elbo(2**15 // k, k, seed=4)) for k in bounds}
    np.testing.assert_allclose(iw[1], elbo, rtol=1e-6)
    assert elbo + 0.02 < iw[4] < iw[16], (elbo, iw)
    terms = tfp.math.reduce_logmeanexp(bounds[16], axis=-1).numpy()
    assert iw[16] < log_z + 3.0 * terms.std() / np.sqrt(terms.size), (iw, log_z)


def test_the_bound_is_tfp_monte_carlo_variational_loss_with_importance_samples(fitted_to_the_mixture):
    vi, seed = fitted_to_the_mixture, tf.constant([5, 6], tf.int32)
    sample_seed, _ = tfp.random.split_seed(seed, 2)  # how tfp.vi splits its seed
    tfp_loss = tfp.vi.monte_carlo_variational_loss(
        unnormalised_mixture, vi.flow.distribution, sample_size=256, importance_sample_size=4, seed=seed
    )
    np.testing.assert_allclose(float(vi.iw_elbo(256, 4, seed=sample_seed)), -float(tfp_loss), rtol=1e-5)


@pytest.mark.slow
def test_fit_on_the_iw_elbo_minimises_minus_the_bound(tmp_path):
    vi = VariationalFlow(
        PlanarFlow(event_shape=(2,), num_layers=2),
        target_log_prob=unnormalised_mixture,
        batch_size=16,
        seed=0,
        objective="iw-elbo",
        num_importance_samples=4,
    )
    assert vi(tf.zeros([5])).shape == (5, 4)
    vi.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = vi.fit(epochs=2, steps_per_epoch=3, verbose=0).history
    np.testing.assert_allclose(history["loss"], -np.asarray(history["iw_elbo"]), rtol=1e-5)
    assert np.all(np.asarray(history["iw_elbo"]) > np.asarray(history["elbo"])), history
    path = str(tmp_path / "iw.keras")
    vi.save(path)
    reloaded = keras.saving.load_model(path)
    assert (reloaded.objective, reloaded.num_importance_samples) == ("iw-elbo", 4)
    np.testing.assert_allclose(float(reloaded.iw_elbo(64, seed=2)), float(vi.iw_elbo(64, seed=2)), rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(objective="iwae"), "`objective` must be one of"),
        (
            dict(objective="iw-elbo", num_importance_samples=0),
            "`num_importance_samples` must be an int >= 1; received 0",
        ),
        (dict(objective="iw-elbo", num_importance_samples=True), "`num_importance_samples`.*received True"),
        (dict(objective="iw-elbo", num_importance_samples=2.0), "`num_importance_samples`.*received 2.0"),
        (dict(num_importance_samples=4), "`num_importance_samples` must be 1 with objective='elbo'.*received 4"),
    ],
    ids=["unknown-objective", "zero", "bool", "float", "k-without-iw"],
)
def test_bad_importance_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VariationalFlow(PlanarFlow(event_shape=(2,), num_layers=1), target_log_prob="U2", **kwargs)


def test_bad_log_normalizer_arguments_are_named():
    vi = VariationalFlow(PlanarFlow(event_shape=(2,), num_layers=1), target_log_prob="U2")
    with pytest.raises(ValueError, match="`num_samples` must be an int >= 2; received 1"):
        vi.estimate_log_normalizer(1)
    with pytest.raises(ValueError, match="`chunk_size` must be an int >= 1; received 0"):
        vi.estimate_log_normalizer(10, chunk_size=0)


def test_a_mixture_base_trains_its_weights_only_when_reparameterised():
    """A categorical draw has no gradient: the ELBO would leave the mixture weights where they start."""
    from keras_models.core.base_distributions import GaussianMixtureBase

    def flow(reparameterize):
        base = GaussianMixtureBase(num_components=2, kmeans_init=False, reparameterize=reparameterize)
        return PlanarFlow(event_shape=(2,), num_layers=1, base_distribution=base)

    with pytest.raises(ValueError, match=r"`base_distribution` must be fully reparameterised.*NOT_REPARAMETERIZED"):
        VariationalFlow(flow(False), target_log_prob="U1")
    vi = VariationalFlow(flow(True), target_log_prob="U1")
    with tf.GradientTape() as tape:
        loss = -vi.elbo(256, seed=0)
    logits = vi.flow.base_layer.logits
    grad = tape.gradient(loss, logits.value)
    assert grad is not None and np.all(np.isfinite(grad)) and np.any(np.abs(grad) > 1e-6), grad
