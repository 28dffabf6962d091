"""OnePassMaskedAutoregressiveFlow: TFP's MaskedAutoregressiveFlow, same numbers, one network pass for density.

The conformance kit (tests/bijectors/test_conformance.py, registry cases in bijector_cases/autoregressive.py)
checks the invariants; this file checks agreement with TFP's own class, the number of network passes,
gradients, and TFP's cache pitfalls (docs/design.md#tfp-shares-its-cache-between-equal-bijectors,
docs/design.md#the-cache-can-hide-a-broken-inverse).
"""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from bijector_cases.autoregressive import EVENT_SIZE, MaskedNetwork

from tfp_flows import OnePassMaskedAutoregressiveFlow

tfb = tfp.bijectors
tfd = tfp.distributions


class Counting:
    """Wraps a network and counts its calls (a plain callable, so each bijector sees the same function)."""

    def __init__(self, network):
        self.network, self.calls = network, 0

    def __call__(self, x, **kwargs):
        self.calls += 1
        return self.network(x, **kwargs)


def points(seed, shape=(7, EVENT_SIZE)):
    return tf.constant(np.random.default_rng(seed).normal(size=shape).astype(np.float32))


def density(bijector):
    return tfd.TransformedDistribution(tfd.Sample(tfd.Normal(0.0, 1.0), [EVENT_SIZE]), bijector)


def test_is_tfps_masked_autoregressive_flow():
    maf = OnePassMaskedAutoregressiveFlow(shift_and_log_scale_fn=MaskedNetwork(tf.float32, seed=0))
    assert isinstance(maf, tfb.MaskedAutoregressiveFlow)


@pytest.mark.parametrize("mode", ["eager", "function", "xla"])
@pytest.mark.parametrize("network_kwargs", [{}, dict(stacked=True), dict(params=1)])
@pytest.mark.slow_params(
    "network_kwargs0-function",
    "network_kwargs0-xla",
    "network_kwargs1-xla",
    "network_kwargs2-xla",
)
def test_same_numbers_as_tfps_class(mode, network_kwargs):
    network = MaskedNetwork(tf.float32, seed=1, **network_kwargs)
    ours = OnePassMaskedAutoregressiveFlow(shift_and_log_scale_fn=network)
    theirs = tfb.MaskedAutoregressiveFlow(shift_and_log_scale_fn=network)

    def evaluate(bijector, x, y):
        # Fresh tensors everywhere: no value may come from a cache filled by the other direction.
        return (
            bijector.forward(tf.identity(x)),
            bijector.forward_log_det_jacobian(tf.identity(x), event_ndims=1),
            bijector.inverse(y),
            bijector.inverse_log_det_jacobian(y, event_ndims=1),
            density(bijector).log_prob(tf.identity(y)),
        )

    if mode != "eager":
        evaluate = tf.function(evaluate, jit_compile=mode == "xla")
    x, y = points(2), points(3)
    for got, want in zip(evaluate(ours, x, y), evaluate(theirs, x, y)):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6, atol=1e-6)


def test_same_numbers_as_tfps_class_with_bijector_fn_and_conditional_kwargs():
    network = MaskedNetwork(tf.float32, seed=4)

    def bijector_fn(y, offset):
        shift, log_scale = network(y)
        return tfb.Chain([tfb.Shift(shift + offset), tfb.Scale(log_scale=log_scale)])

    ours = OnePassMaskedAutoregressiveFlow(bijector_fn=bijector_fn)
    theirs = tfb.MaskedAutoregressiveFlow(bijector_fn=bijector_fn)
    y, offset = points(5), tf.constant(0.7)
    for method in ("inverse", "inverse_log_det_jacobian"):
        kwargs = dict(event_ndims=1) if method != "inverse" else {}
        np.testing.assert_allclose(
            getattr(ours, method)(tf.identity(y), offset=offset, **kwargs).numpy(),
            getattr(theirs, method)(tf.identity(y), offset=offset, **kwargs).numpy(),
            rtol=1e-6,
            atol=1e-6,
        )


def test_inverse_then_its_log_det_take_one_network_pass():
    counting = Counting(MaskedNetwork(tf.float32, seed=6))
    maf = OnePassMaskedAutoregressiveFlow(shift_and_log_scale_fn=counting)
    y = points(7)
    x = maf.inverse(y)  # kept: TFP's cache holds the (y, x) entry, log-det included, only while x lives
    maf.inverse_log_det_jacobian(y, event_ndims=1)
    assert counting.calls == 1 and x is maf.inverse(y)
    density(maf).log_prob(tf.identity(y))  # fresh tensor: inverse then log-det, as TransformedDistribution asks
    assert counting.calls == 2
    # TFP's own class runs it twice (masked_autoregressive.py, `_inverse` and `_inverse_log_det_jacobian`).
    counting.calls = 0
    tfp_maf = tfb.MaskedAutoregressiveFlow(shift_and_log_scale_fn=counting)
    tfp_maf.inverse(y), tfp_maf.inverse_log_det_jacobian(y, event_ndims=1)
    assert counting.calls == 2


@pytest.mark.parametrize("xla", [False, True])
@pytest.mark.slow_params("True")
def test_log_prob_traces_one_network_pass_and_its_gradients_match_tfps(xla):
    counting = Counting(MaskedNetwork(tf.float32, seed=8))
    variables = counting.network.trainable_variables
    y = points(9)

    def loss_and_grads(bijector):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(density(bijector).log_prob(y))
        return loss, tape.gradient(loss, variables)

    @tf.function(jit_compile=xla)
    def ours():
        return loss_and_grads(OnePassMaskedAutoregressiveFlow(shift_and_log_scale_fn=counting))

    loss, grads = ours()
    assert counting.calls == 1  # traced once, one pass
    tfp_loss, tfp_grads = tf.function(
        lambda: loss_and_grads(tfb.MaskedAutoregressiveFlow(shift_and_log_scale_fn=counting.network)), jit_compile=xla
    )()
    np.testing.assert_allclose(loss.numpy(), tfp_loss.numpy(), rtol=1e-6)
    for got, want in zip(grads, tfp_grads):
        assert got is not None
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)


def test_forward_log_det_is_minus_the_inverse_log_det_at_the_output():
    maf = OnePassMaskedAutoregressiveFlow(shift_and_log_scale_fn=MaskedNetwork(tf.float32, seed=10))
    x = points(11)
    y = maf.forward(x)
    fldj = maf.forward_log_det_jacobian(x, event_ndims=1)  # y's cache entry holds x but no log-det yet
    np.testing.assert_allclose(
        fldj.numpy(), -maf.inverse_log_det_jacobian(tf.identity(y), event_ndims=1).numpy(), rtol=1e-5, atol=1e-6
    )
    assert maf.inverse(y) is x  # TFP's cache: the input of the forward call


def test_instances_never_share_cache_entries():
    """Two steps around the same network must not hand each other cached tensors (see
    docs/design.md#tfp-shares-its-cache-between-equal-bijectors)."""
    counting = Counting(MaskedNetwork(tf.float32, seed=12))
    first = OnePassMaskedAutoregressiveFlow(shift_and_log_scale_fn=counting)
    second = OnePassMaskedAutoregressiveFlow(shift_and_log_scale_fn=counting)
    assert first != second
    y = points(13)
    first.inverse(y)
    second.inverse_log_det_jacobian(y, event_ndims=1)
    assert counting.calls == 2


def test_bijectors_rebuilt_per_trace_do_not_leak_graph_tensors():
    """As a Keras layer does: a new step per call around the same network, in several live traced graphs and
    eagerly, all fed the same tensor: the same numbers, and no graph's tensor reaches another."""
    network = MaskedNetwork(tf.float32, seed=14)
    y = points(15)

    def log_prob():
        return density(OnePassMaskedAutoregressiveFlow(shift_and_log_scale_fn=network)).log_prob(y)

    functions = [tf.function(log_prob), tf.function(log_prob, jit_compile=True)]  # both graphs stay alive
    results = [f().numpy() for f in functions] + [log_prob().numpy()]
    for result in results[1:]:
        np.testing.assert_allclose(result, results[0], rtol=1e-5, atol=1e-5)
