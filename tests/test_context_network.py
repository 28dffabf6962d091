"""`FlowModel(context_network=...)`: one learned embedding e = h(c) of the raw context, computed once per call or
train step and read by every conditioner and by a conditional base (keras_models/core/context_networks.py).

Every conditional preset of the registry gets a small case here (a new conditional preset without one fails
`test_every_conditional_preset_has_a_case`); the set encoder's own property (order of the set does not matter)
and the save, export and error paths run on RealNVP.
"""

import keras
import model_checks
import numpy as np
import pytest
import tensorflow as tf

from keras_models import (
    CNF,
    MAF,
    NSF,
    ConditionalGaussianBase,
    DeepSetsEmbedding,
    Glow,
    MLPEmbedding,
    RealNVP,
)
from keras_models.flows.presets import PRESETS, build_model
from keras_models.serving.export import export_saved_model, load_serving_model

SET_SIZE, SET_DIM = 5, 2  # a context is a set of 5 observations in R^2


class CountingEmbedding(MLPEmbedding):
    """An `MLPEmbedding` that counts its calls in a variable, so calls inside a compiled train step count too."""

    def build(self, input_shape):
        super().build(input_shape)
        self.calls = self.add_weight(shape=(), initializer="zeros", trainable=False, name="calls")

    def call(self, c):
        self.calls.assign_add(1.0)
        return super().call(c)


def vector_data(n, seed=0, size=2):
    """x [n, size] shifted by the mean of a set c [n, SET_SIZE, SET_DIM] of observations, so x depends on c."""
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(n, SET_SIZE, SET_DIM)).astype(np.float32)
    x = rng.normal(size=(n, size)) + c.mean(axis=1)[:, :1]
    return x.astype(np.float32), c


def image_data(n, seed=0):
    """Images [n, 4, 4, 1] in [0, 1] (Glow's support) with the set contexts of `vector_data`."""
    rng = np.random.default_rng(seed)
    _, c = vector_data(n, seed)
    return rng.uniform(0.1, 0.9, size=(n, 4, 4, 1)).astype(np.float32), c


CONTEXT = {"context_shape": (SET_SIZE, SET_DIM)}
# Per conditional preset: (a model built with `context_network`, its data). Vector cases add a conditional base,
# which must read the same embedding.
CASES = {
    "realnvp": (
        lambda net: RealNVP(
            (2,),
            num_couplings=2,
            hidden_units=(8,),
            dropout=0.0,  # these checks compare exact densities; dropout's own test is in test_model_realnvp.py
            context_network=net,
            base_distribution=ConditionalGaussianBase(),
            **CONTEXT,
        ),
        vector_data,
    ),
    "maf": (
        lambda net: MAF(
            (3,),
            num_layers=2,
            hidden_units=(8,),
            context_network=net,
            base_distribution=ConditionalGaussianBase(),
            **CONTEXT,
        ),
        lambda n, seed=0: vector_data(n, seed, size=3),
    ),
    "nsf": (
        lambda net: NSF((2,), num_layers=2, hidden_units=(8,), num_bins=3, bound=4.0, context_network=net, **CONTEXT),
        vector_data,
    ),
    "glow": (
        lambda net: Glow(
            (4, 4, 1), num_levels=1, num_steps=1, hidden_channels=4, seed=0, context_network=net, **CONTEXT
        ),
        image_data,
    ),
    "cnf": (
        lambda net: CNF((2,), hidden_units=(8,), context_network=net, **CONTEXT),
        vector_data,
    ),
}


def test_every_conditional_preset_has_a_case():
    conditional = {name for name, entry in PRESETS.items() if entry.conditional}
    assert conditional == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.slow
def test_the_context_network_runs_once_per_call_and_per_train_step(name):
    keras.utils.set_random_seed(0)
    make, data = CASES[name]
    net = CountingEmbedding(embedding_dim=3, hidden_units=(8,))
    model = make(net)
    assert model.step_context_shape == (3,)
    x, c = data(8)
    calls = lambda: int(net.calls.numpy())  # noqa: E731
    start = calls()  # building the model may call it once to learn the embedding's shape
    model.log_prob(x, c)
    assert calls() == start + 1
    model.sample(4, c[0], seed=1)  # one context for every sample: embedded once, then broadcast
    model.sample_and_log_prob(8, c, seed=1)
    assert calls() == start + 3
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    initialisation = 1 if model._layers_needing_init() else 0  # ActNorm's, from the first batch
    model.fit(x, c, batch_size=4, epochs=1, verbose=0)  # 2 train steps
    assert calls() == start + 3 + initialisation + 2


@pytest.mark.slow
def test_gradients_reach_the_context_network_and_it_trains_with_the_flow():
    keras.utils.set_random_seed(1)
    make, data = CASES["realnvp"]
    model = model_checks.perturb(make(DeepSetsEmbedding(embedding_dim=3, phi_units=(8,), rho_units=(8,))), 0.3)
    x, c = data(16)
    with tf.GradientTape() as tape:
        loss = -tf.reduce_mean(model.log_prob(x, c))
    weights = model.context_network.trainable_weights
    gradients = tape.gradient(loss, weights)
    assert all(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in gradients), [w.path for w in weights]
    before = [w.numpy().copy() for w in weights]
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(x, c, batch_size=8, epochs=1, verbose=0)
    assert all(np.any(w.numpy() != b) for w, b in zip(weights, before))


def perturbed_realnvp(network="deepsets"):
    keras.utils.set_random_seed(2)
    make, data = CASES["realnvp"]
    model = make(network)
    x, c = data(6, seed=3)
    model.initialize_from_data(x, c)
    return model_checks.perturb(model, 0.3), x, c


def test_a_deep_sets_embedding_ignores_the_order_of_the_set_but_not_its_values():
    model, x, c = perturbed_realnvp()
    assert isinstance(model.context_network, DeepSetsEmbedding)
    shuffled = c[:, np.random.default_rng(0).permutation(SET_SIZE)]
    np.testing.assert_allclose(model.log_prob(x, shuffled).numpy(), model.log_prob(x, c).numpy(), rtol=1e-5)
    assert np.max(np.abs(model.log_prob(x, c + 1.0).numpy() - model.log_prob(x, c).numpy())) > 1e-3


def test_the_tfp_distribution_with_bijector_kwargs_is_the_model_on_the_raw_context():
    model, x, c = perturbed_realnvp()
    via_tfp = model.conditional_distribution(c).log_prob(x, bijector_kwargs=model.bijector_kwargs(c))
    np.testing.assert_allclose(via_tfp.numpy(), model.log_prob(x, c).numpy(), rtol=1e-5)
    assert model.embed_context(c).shape == (6, 16)


def test_a_keras_file_keeps_the_context_network_and_the_log_prob(tmp_path):
    model, x, c = perturbed_realnvp({"class_name": "deepsets", "config": {"embedding_dim": 4, "phi_units": [8]}})
    reloaded = model_checks.assert_keras_round_trip(model, (x, c), tmp_path)
    assert isinstance(reloaded.context_network, DeepSetsEmbedding)
    assert reloaded.context_network.get_config() == model.context_network.get_config()
    assert reloaded.step_context_shape == (4,)


@pytest.mark.slow
def test_a_saved_model_takes_the_raw_context(tmp_path):
    model, x, c = perturbed_realnvp(MLPEmbedding(embedding_dim=3, hidden_units=(8,)))
    served = load_serving_model(export_saved_model(model, base_dir=str(tmp_path)))
    assert served.signatures["log_prob"].structured_input_signature[1]["context"].shape.as_list() == [
        None,
        SET_SIZE,
        SET_DIM,
    ]
    answer = served.signatures["log_prob"](x=tf.constant(x), context=tf.constant(c))["log_prob"]
    np.testing.assert_allclose(answer.numpy(), model.log_prob(x, c).numpy(), rtol=1e-5, atol=1e-5)
    samples = served.signatures["sample"](
        num_samples=tf.constant(6), temperature=tf.constant(1.0), seed=tf.constant([1, 2]), context=tf.constant(c)
    )["samples"]
    np.testing.assert_allclose(samples.numpy(), model.sample(6, c, seed=[1, 2]).numpy(), rtol=1e-5, atol=1e-5)


def test_a_context_of_the_wrong_shape_is_refused_naming_c():
    model, x, c = perturbed_realnvp()
    with pytest.raises(ValueError, match=r"`c` must have shape \[batch, 5, 2\]"):
        model.log_prob(x, c[:, :4])
    with pytest.raises(ValueError, match="`c`"):
        model.sample(3, np.zeros([SET_SIZE, SET_DIM + 1], np.float32))


def test_a_context_network_needs_a_conditional_model_and_a_layer():
    with pytest.raises(ValueError, match="`context_network`.*context_shape=None"):
        RealNVP((2,), num_couplings=2, hidden_units=(8,), context_network="mlp")
    with pytest.raises(ValueError, match=r"`context_network` must be one of \['deepsets', 'mlp'\]"):
        RealNVP((2,), num_couplings=2, hidden_units=(8,), context_shape=(3,), context_network="transformer")
    with pytest.raises(TypeError, match="`context_network` must be a Keras layer"):
        RealNVP((2,), num_couplings=2, hidden_units=(8,), context_shape=(3,), context_network=3)
    with pytest.raises(ValueError, match=r"DeepSetsEmbedding.*\[batch, n, d\]"):
        RealNVP((2,), num_couplings=2, hidden_units=(8,), context_shape=(3,), context_network="deepsets")


def test_the_registry_builds_a_preset_with_a_context_network_from_json_arguments():
    """What `tfp-flows train --model-args '{"context_network": ...}'` hands the constructor."""
    model = build_model(
        "nsf",
        (2,),
        context_shape=(SET_SIZE, SET_DIM),
        context_network={"class_name": "mlp", "config": {"embedding_dim": 5}},
    )
    assert isinstance(model.context_network, MLPEmbedding) and model.step_context_shape == (5,)
    x, c = vector_data(4)
    assert model.log_prob(x, c).shape == (4,)


def _sbc_benchmark():
    # Loaded from its file under a private name: benchmarks/ is not a package (tests/test_benchmarks.py does the same).
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "sbc_deepsets.py"
    spec = importlib.util.spec_from_file_location("_sbc_deepsets", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("task", ["mean", "scale"])
def test_the_sbc_benchmarks_analytic_posterior_is_prior_times_likelihood_normalised(task):
    """benchmarks/sbc_deepsets.py judges the flow by its analytic posterior: log p(theta | x) - log p(theta) -
    log p(x | theta) must be the same (-log p(x)) for every theta, and its moments those of the density."""
    from scipy import stats

    bench = _sbc_benchmark()
    rng = np.random.default_rng(0)
    _, x = bench.simulate(task, 1, rng)
    mean, std = bench.posterior_moments(task, x)
    theta = mean + std * rng.uniform(-2, 2, size=(50, mean.shape[1]))  # points around the posterior
    if task == "mean":
        prior = stats.norm(0, 1).logpdf(theta).sum(axis=1)
        scale = np.full(len(theta), bench.SIGMA)
        mu = theta
    else:
        mu, scale = theta[:, :2], np.exp(theta[:, 2])
        variance = scale**2  # prior density of (mu, log sigma): InvGamma(sigma^2) N(mu; 0, sigma^2 / k0) 2 sigma^2
        prior = (
            stats.invgamma(bench.A0, scale=bench.B0).logpdf(variance)
            + np.log(2 * variance)
            + stats.norm(0, scale[:, None] / np.sqrt(bench.K0)).logpdf(mu).sum(axis=1)
        )
    likelihood = stats.norm(mu[:, None], scale[:, None, None]).logpdf(x).sum(axis=(1, 2))
    evidence = prior + likelihood - bench.posterior_log_prob(task, theta, np.repeat(x, len(theta), axis=0))
    np.testing.assert_allclose(evidence, evidence[0], atol=1e-8)
    # Self-normalised importance sampling from a wide Gaussian: the posterior's mean and std match the formulas.
    proposal = stats.norm(mean, 3 * std)
    draws = proposal.rvs(size=(200_000, mean.shape[1]), random_state=1)
    log_w = bench.posterior_log_prob(task, draws, np.repeat(x, len(draws), axis=0)) - proposal.logpdf(draws).sum(1)
    w = np.exp(log_w - log_w.max())
    w /= w.sum()
    is_mean = w @ draws
    is_std = np.sqrt(w @ (draws - is_mean) ** 2)
    np.testing.assert_allclose(is_mean, mean[0], atol=0.05 * std.max())
    np.testing.assert_allclose(is_std, std[0], rtol=0.05)
