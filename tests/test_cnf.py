"""`CNF`: what the model checklist (tests/model_cases.py: cnf, cnf-conditional, cnf-hutchinson-maximum-likelihood)
does not check: the direction and sign of the log-density against fields with a known flow, normalisation of a
trained density, the two objectives, conditioning, Hutchinson's fixed probes and the argument checks."""

import keras
import numpy as np
import pytest
import scipy.linalg
import tensorflow as tf
from scipy import stats

from keras_models import CNF
from tfp_flows.continuous_flow import ContinuousFlow


def standard_normal_log_prob(z):
    return stats.norm.logpdf(np.asarray(z, np.float64)).sum(-1)


def with_field(model, field):
    """`model` whose velocity is `field(x, t)` instead of its MLP (solver, trace and base unchanged)."""
    model.flow.velocity = lambda x, t, c=None: field(x, t)
    return model


def moons(n, seed=0):
    from sklearn.datasets import make_moons

    x = make_moons(n, noise=0.05, random_state=seed)[0]
    return ((x - [0.5, 0.25]) / [0.87, 0.5]).astype(np.float32)  # about zero mean and unit spread


def dataset(x, c=None, batch_size=128, seed=0):
    slices = x if c is None else (x, c)
    return tf.data.Dataset.from_tensor_slices(slices).shuffle(len(x), seed=seed).batch(batch_size).repeat()


@pytest.mark.parametrize("trace", ["exact", "hutchinson"])
@pytest.mark.slow
def test_linear_field_gives_the_analytic_flow_and_log_density(trace):
    """v(x, t) = a x: x(1) = e^a z, log|det df/dz| = a D, so log p(x) = log N(e^-a x) - a D (forward = t: 0 -> 1).
    Rademacher probes give the exact trace of a diagonal Jacobian, so both traces must match."""
    a = 0.7
    model = with_field(CNF((2,), trace=trace, rtol=1e-7, atol=1e-7), lambda x, t: a * x)
    x = np.array([[0.3, -1.2], [2.0, 0.5], [-0.4, 0.1]], np.float32)
    expected = standard_normal_log_prob(x * np.exp(-a)) - a * 2
    np.testing.assert_allclose(model.log_prob(x).numpy(), expected, rtol=1e-5, atol=1e-5)
    z = np.array([[1.0, -2.0]], np.float32)
    np.testing.assert_allclose(model.decode(z).numpy(), z * np.exp(a), rtol=1e-5)
    samples, log_prob = model.sample_and_log_prob(4, seed=3)
    expected = standard_normal_log_prob(samples.numpy() * np.exp(-a)) - a * 2
    np.testing.assert_allclose(log_prob.numpy(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_time_dependent_rotation_field_matches_the_matrix_exponential():
    """v(x, t) = 2t A x with A not diagonal: x(1) = expm(A) z, log-det tr A (exact trace)."""
    a = np.array([[0.3, 1.0], [-0.5, -0.1]], np.float32)
    model = with_field(CNF((2,), trace="exact", rtol=1e-7, atol=1e-7), lambda x, t: 2.0 * t * tf.linalg.matvec(a, x))
    x = np.array([[0.3, -1.2], [2.0, 0.5]], np.float32)
    z = x @ scipy.linalg.expm(-a.astype(np.float64)).T
    np.testing.assert_allclose(model.encode(x).numpy(), z, rtol=1e-5, atol=1e-5)
    expected = standard_normal_log_prob(z) - np.trace(a)
    np.testing.assert_allclose(model.log_prob(x).numpy(), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_hutchinson_probes_are_fixed_and_shared_by_every_example():
    """The same x gets the same estimate on every call and in any batch (the probes come from `probe_seed`), a
    value that differs from the exact trace for a non-diagonal field and changes with the seed."""
    a = np.array([[0.3, 1.0], [-0.5, -0.1]], np.float32)

    def build(**kwargs):
        return with_field(CNF((2,), rtol=1e-7, atol=1e-7, **kwargs), lambda x, t: tf.linalg.matvec(a, x))

    x = np.array([[0.3, -1.2], [2.0, 0.5], [-0.4, 0.1]], np.float32)
    hutchinson = build(trace="hutchinson", probe_seed=4)
    first = hutchinson.log_prob(x).numpy()
    np.testing.assert_array_equal(hutchinson.log_prob(x).numpy(), first)
    np.testing.assert_allclose(hutchinson.log_prob(x[1:2]).numpy(), first[1:2], rtol=1e-5, atol=1e-5)
    exact = build(trace="exact").log_prob(x).numpy()
    # eps^T A eps = tr A +- (A_12 + A_21) for Rademacher eps: off by 0.5 nats in either direction.
    np.testing.assert_allclose(np.abs(first - exact), 0.5, atol=1e-4)
    seeds = {round(float(build(trace="hutchinson", probe_seed=s).log_prob(x[:1])[0] - exact[0]), 3) for s in range(8)}
    assert seeds == {-0.5, 0.5}, seeds


def test_flow_matching_never_calls_the_solver(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the ODE solver was called during a flow-matching step")

    monkeypatch.setattr(ContinuousFlow, "_solve_ode", refuse)
    model = CNF((2,), hidden_units=(16,), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(dataset(moons(256)), epochs=1, steps_per_epoch=3, verbose=0)
    assert sorted(history.history) == ["loss"]  # no NLL: it would need the solver


@pytest.mark.slow
def test_flow_matching_reduces_its_loss():
    keras.utils.set_random_seed(0)
    model = CNF((2,), hidden_units=(32, 32), seed=0)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    losses = model.fit(dataset(moons(1024)), epochs=3, steps_per_epoch=40, verbose=0).history["loss"]
    # From E||x1 - x0||^2 ~ 4 (v = 0) down; the optimum stays above 0 (the conditional velocity's variance).
    assert losses[0] < 4.0 and losses[-1] < losses[0] - 0.3, losses


@pytest.mark.slow
def test_maximum_likelihood_reduces_the_nll():
    keras.utils.set_random_seed(0)
    model = CNF((2,), hidden_units=(16,), objective="maximum_likelihood", rtol=1e-3, atol=1e-3, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(2e-2))
    history = model.fit(dataset(moons(256), batch_size=64), epochs=2, steps_per_epoch=4, verbose=0).history
    assert sorted(history) == ["loss", "nll"]
    assert history["nll"][-1] < history["nll"][0] - 0.02, history["nll"]


@pytest.mark.slow
def test_trained_density_integrates_to_one_and_agrees_with_its_samples():
    """After flow matching on two moons: the density sums to 1 on a grid, beats a Gaussian, and
    sample_and_log_prob's log-density is log_prob's at the samples."""
    keras.utils.set_random_seed(0)
    x = moons(4096)
    model = CNF((2,), hidden_units=(64, 64), rtol=1e-5, atol=1e-5, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(dataset(x, batch_size=256), epochs=1, steps_per_epoch=600, verbose=0)
    step = 0.08
    axis = np.arange(-4.0, 4.0, step) + step / 2
    grid = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2).astype(np.float32)
    mass = float(np.sum(np.exp(model.log_prob(grid).numpy())) * step**2)
    assert abs(mass - 1.0) < 0.03, mass
    nll = -float(np.mean(model.log_prob(x[:1024]).numpy()))
    gaussian = -float(np.mean(stats.multivariate_normal(x.mean(0), np.cov(x.T)).logpdf(x[:1024])))
    assert nll < gaussian - 0.3, (nll, gaussian)
    samples, log_prob = model.sample_and_log_prob(256, seed=5)
    np.testing.assert_allclose(log_prob.numpy(), model.log_prob(samples).numpy(), atol=2e-3)


@pytest.mark.slow
def test_conditional_cnf_learns_a_context_dependent_density():
    """x ~ N(c, 0.3^2) per example: after flow matching, samples given c centre on c and log p(x | c) prefers
    the true context."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    c = rng.uniform(-2, 2, size=(2048, 1)).astype(np.float32)
    x = (c + 0.3 * rng.normal(size=(2048, 2))).astype(np.float32)
    model = CNF((2,), hidden_units=(32, 32), context_shape=(1,), rtol=1e-4, atol=1e-4, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    model.fit(dataset(x, c, batch_size=256), epochs=1, steps_per_epoch=300, verbose=0)
    for value in (-1.5, 1.0):
        samples = model.sample(200, np.array([value], np.float32), seed=1).numpy()
        np.testing.assert_allclose(samples.mean(0), [value, value], atol=0.15)
    right = model.log_prob(x[:64], c[:64]).numpy()
    wrong = model.log_prob(x[:64], -c[:64]).numpy()
    assert np.mean(right - wrong) > 2.0, np.mean(right - wrong)


@pytest.mark.slow
def test_reload_keeps_the_objective_and_solver_settings(tmp_path):
    model = CNF(
        (3,),
        hidden_units=(8,),
        objective="maximum_likelihood",
        trace="hutchinson",
        num_probes=2,
        probe_seed=7,
        rtol=1e-4,
        atol=1e-6,
        max_num_steps=500,
        seed=3,
    )
    for weight in model.trainable_weights:
        weight.assign(weight + 0.2 * tf.random.stateless_normal(weight.shape, [1, 2]))
    path = str(tmp_path / "cnf.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    config = reloaded.get_config()
    assert {k: config[k] for k in ("objective", "trace", "num_probes", "probe_seed", "rtol", "atol")} == dict(
        objective="maximum_likelihood", trace="hutchinson", num_probes=2, probe_seed=7, rtol=1e-4, atol=1e-6
    )
    assert reloaded.flow.trace == "hutchinson" and reloaded.flow.max_num_steps == 500
    x = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    np.testing.assert_allclose(reloaded.log_prob(x).numpy(), model.log_prob(x).numpy(), rtol=1e-6, atol=1e-6)


def test_auto_trace_is_exact_for_small_dimensions_only():
    assert CNF((8,), hidden_units=(4,)).flow.trace == "exact"
    assert CNF((9,), hidden_units=(4,)).flow.trace == "hutchinson"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(objective="score_matching"), r"`objective` must be one of \('flow_matching', 'maximum_likelihood'\)"),
        (dict(trace="diagonal"), r"`trace` must be one of \('auto', 'exact', 'hutchinson'\); received 'diagonal'"),
        (dict(rtol=0.0), r"`rtol` must be a finite number > 0; received 0.0"),
        (dict(num_probes=0), r"`num_probes` must be an int >= 1; received 0"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CNF((2,), **kwargs)


def test_image_event_shapes_are_refused():
    with pytest.raises(ValueError, match=r"CNF"):
        CNF((4, 4, 1))


def test_ot_assignment_is_the_cheapest_pairing_of_the_batch():
    import itertools

    from keras_models.flows.cnf import ot_assignment

    rng = np.random.default_rng(3)
    x1, x0 = rng.normal(size=[6, 2]), rng.normal(size=[6, 2])
    indices = ot_assignment(tf.constant(x1), tf.constant(x0)).numpy()
    cost = lambda order: float(np.sum((x1 - x0[list(order)]) ** 2))  # noqa: E731
    best = min(itertools.permutations(range(6)), key=cost)
    assert sorted(indices) == list(range(6))
    np.testing.assert_allclose(cost(indices), cost(best))
    assert cost(indices) < cost(range(6))  # the independent pairing costs more


def test_ot_coupling_trains_reloads_and_refuses_a_context(tmp_path):
    keras.utils.set_random_seed(0)
    model = CNF((2,), hidden_units=(8,), coupling="ot", seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    losses = model.fit(dataset(moons(256)), epochs=1, steps_per_epoch=3, verbose=0).history["loss"]
    assert np.isfinite(losses).all()
    model.save(tmp_path / "ot.keras")
    assert keras.saving.load_model(tmp_path / "ot.keras").coupling == "ot"
    with pytest.raises(ValueError, match="coupling='ot' pairs x0 and x1 across the batch"):
        CNF((2,), coupling="ot", context_shape=(1,))
    with pytest.raises(ValueError, match="coupling"):
        CNF((2,), coupling="sinkhorn")
