"""Conditional bijectors (tfp_flows/conditioning.py): the context reaches every conditioner, TFP's routing.

Conformance with the context held fixed (round trips, log-det vs the autodiff Jacobian, eager/graph/XLA), the
contract of `MaskedCoupling` (the conditioner gets `conditional_input=` only when one is given), one network
pass per step in `log_prob` with a context, and `conditional_kwargs` through Chain, Invert, ChannelSlice and
TransformedDistribution.
"""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from bijector_cases.autoregressive import made_masks

from tfp_flows import (
    ActNorm,
    AdditiveCoupling,
    AffineCoupling,
    ChannelSlice,
    LogisticMixtureCoupling,
    OnePassMaskedAutoregressiveFlow,
    RationalQuadraticCoupling,
    conditional_kwargs,
    masks,
)
from tfp_flows.conditioning import is_conditional
from tfp_flows.testing import assert_bijector_invariants, with_fixed_kwargs

tfb = tfp.bijectors
tfd = tfp.distributions

D, C = 4, 3  # event size, context size


class _ContextNet(tf.Module):
    """The hidden layer the test conditioners share: tanh(x W + c V), c left out when not given; counts calls."""

    def __init__(self, name, rng, size, hidden):
        super().__init__(name=name)
        self.w = tf.Variable(rng.normal(size=(size, hidden)) / 2, dtype=tf.float32)
        self.v = tf.Variable(rng.normal(size=(C, hidden)), dtype=tf.float32)
        self.calls = 0

    def hidden(self, x, conditional_input):
        self.calls += 1
        h = tf.einsum("...i,ij->...j", x, self.w)
        if conditional_input is not None:
            h = h + tf.einsum("...i,ij->...j", conditional_input, self.v)
        return tf.tanh(h)


class ContextConditioner(_ContextNet):
    """x [..., D], c [..., C] -> (shift, log_scale) [..., D]: tanh(x W + c V) read out linearly."""

    def __init__(self, seed, hidden=8, size=D):
        rng = np.random.default_rng(seed)
        super().__init__("context_conditioner", rng, size, hidden)
        self.out = tf.Variable(rng.normal(size=(hidden, 2 * size)) * 0.3, dtype=tf.float32)

    def __call__(self, x, conditional_input=None):
        return tuple(tf.split(tf.einsum("...i,ij->...j", self.hidden(x, conditional_input), self.out), 2, axis=-1))


class ContextMADE(tf.Module):
    """A one-hidden-layer MADE whose hidden layer also reads the context, unmasked (TFP's conditional MADE)."""

    def __init__(self, seed, hidden=12):
        super().__init__(name="context_made")
        rng = np.random.default_rng(seed)
        mask_in, mask_out = made_masks(D, hidden)
        self.mask_in = tf.constant(mask_in, tf.float32)
        self.mask_out = tf.constant(np.repeat(mask_out, 2, axis=1), tf.float32)
        self.w1 = tf.Variable(rng.normal(size=(D, hidden)) / 2, dtype=tf.float32)
        self.v = tf.Variable(rng.normal(size=(C, hidden)), dtype=tf.float32)
        self.w2 = tf.Variable(rng.normal(size=(hidden, 2 * D)) * 0.3, dtype=tf.float32)
        self.calls = 0

    def __call__(self, x, conditional_input=None):
        self.calls += 1
        h = tf.einsum("...i,ij->...j", x, self.w1 * self.mask_in)
        if conditional_input is not None:
            h = h + tf.einsum("...i,ij->...j", conditional_input, self.v)
        out = tf.einsum("...i,ij->...j", tf.tanh(h), self.w2 * self.mask_out)
        out = tf.reshape(out, tf.concat([tf.shape(x)[:-1], [D, 2]], axis=0))
        return out[..., 0], out[..., 1]


class ContextParams(_ContextNet):
    """x [..., D], c [..., C] -> one tensor per entry of `widths`: [..., D] for None, else [..., D, width].

    tanh(x W + c V) read out linearly, for the couplings whose conditioners return more than (shift, log_scale):
    the spline's (widths, heights, derivatives) and the logistic mixture's (a, b, logits, locs, log_scales).
    """

    def __init__(self, seed, widths, hidden=8):
        rng = np.random.default_rng(seed)
        super().__init__("context_params", rng, D, hidden)
        self.widths = [1 if w is None else w for w in widths]
        self.squeeze = [w is None for w in widths]
        self.out = tf.Variable(rng.normal(size=(hidden, D, sum(self.widths))) * 0.5, dtype=tf.float32)

    def __call__(self, x, conditional_input=None):
        out = tf.split(tf.einsum("...j,jdk->...dk", self.hidden(x, conditional_input), self.out), self.widths, axis=-1)
        return tuple(o[..., 0] if squeeze else o for o, squeeze in zip(out, self.squeeze))


def normal(shape, seed):
    return tf.constant(np.random.default_rng(seed).normal(size=shape), tf.float32)


def coupling(seed, name="affine_coupling", parity=0, size=D):
    return AffineCoupling(masks.half(size, parity=parity), ContextConditioner(seed, size=size), name=name)


def maf(seed, name="maf"):
    return OnePassMaskedAutoregressiveFlow(shift_and_log_scale_fn=ContextMADE(seed), name=name)


def spline(seed, name="rational_quadratic_coupling", bins=4):
    return RationalQuadraticCoupling(
        masks.half(D), ContextParams(seed, (bins, bins, bins - 1)), num_bins=bins, bound=3.0, name=name
    )


def mixture(seed, name="logistic_mixture_coupling", components=2):
    return LogisticMixtureCoupling(
        masks.half(D), ContextParams(seed, (None, None) + (components,) * 3), num_components=components, name=name
    )


MAKERS = {
    "affine-coupling": coupling,
    "maf": maf,
    "rational-quadratic-coupling": spline,
    "logistic-mixture-coupling": mixture,
}


def network_of(bijector):
    """The conditioner (with its `calls` counter) of a bijector built by one of the MAKERS."""
    for attribute in ("params_fn", "conditioner", "_shift_and_log_scale_fn"):
        network = getattr(bijector, attribute, None)
        if network is not None:
            return network
    raise AttributeError(f"no conditioner found on {bijector.name}")


# The spline and mixture couplings share MaskedCoupling's context path with the affine one, and the bijector
# registry checks their conformance already; here they would add ~10 s (XLA compiles) for no new code path.
@pytest.mark.parametrize("kind", ["affine-coupling", "maf"])
@pytest.mark.slow
def test_conformance_with_the_context_held_fixed(kind):
    bijector = MAKERS[kind](seed=1)
    fixed = with_fixed_kwargs(bijector, {"conditional_input": normal((6, C), 2)})
    assert_bijector_invariants(fixed, normal((6, D), 3), event_ndims=1)


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_the_context_changes_the_transform(kind):
    bijector, x = MAKERS[kind](seed=4), normal((5, D), 5)
    y1 = bijector.forward(x, conditional_input=normal((5, C), 6))
    y2 = bijector.forward(tf.identity(x), conditional_input=normal((5, C), 7))
    assert np.max(np.abs(y1 - y2)) > 1e-2


def test_the_conditioner_gets_the_context_only_when_one_is_given():
    seen = []

    def shift_fn(x, **kwargs):
        seen.append(sorted(kwargs))
        return tf.zeros_like(x)

    bijector = AdditiveCoupling(masks.half(D), shift_fn)
    bijector.forward(normal((2, D), 8))
    bijector.forward(normal((2, D), 8), conditional_input=normal((2, C), 9))
    assert seen == [[], ["conditional_input"]]


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_log_prob_with_a_context_runs_each_network_once(kind):
    bijector = MAKERS[kind](seed=10)
    dist = tfd.TransformedDistribution(tfd.MultivariateNormalDiag(tf.zeros(D)), tfb.Chain([bijector]))
    network = network_of(bijector)
    c, x = normal((3, C), 11), normal((3, D), 12)
    log_prob = dist.log_prob(x, bijector_kwargs=conditional_kwargs(dist.bijector, c))
    assert np.all(np.isfinite(log_prob))
    assert network.calls == 1
    # The routed context reached the network: another context gives another density.
    other = dist.log_prob(tf.identity(x), bijector_kwargs=conditional_kwargs(dist.bijector, normal((3, C), 26)))
    assert np.max(np.abs(log_prob - other)) > 1e-3


def test_routing_through_chain_invert_and_channel_slice_with_repeated_names():
    first, second, third, iaf = coupling(13), coupling(14, parity=1), coupling(15, size=2), maf(16)
    inner = ChannelSlice(tfb.Chain([third], name="inner"), num_channels=2, event_ndims=1)
    flow = tfb.Chain(
        [
            first,
            tfb.Permute(list(range(D))[::-1]),
            second,
            tfb.Invert(iaf, name="iaf"),
            ActNorm(tf.zeros(D), tf.zeros(D)),
            tfb.Chain([inner], name="level"),
        ]
    )
    c = normal((3, C), 17)
    kwargs = conditional_kwargs(flow, c)
    route = {"conditional_input": c}
    assert kwargs == {"affine_coupling": route, "iaf": route, "level": {"channel_slice": {"affine_coupling": route}}}
    # The density TFP's routing gives is the one of the steps applied by hand, each with the context.
    x = normal((3, D), 18)
    dist = tfd.TransformedDistribution(tfd.MultivariateNormalDiag(tf.zeros(D)), flow)
    z, ildj = x, 0.0
    for step in flow.bijectors:  # Chain([f1, f2]) = f1 o f2: the inverse starts with f1, on the data side
        step_kwargs = kwargs.get(step.name, {})
        ildj += step.inverse_log_det_jacobian(z, event_ndims=1, **step_kwargs)
        z = step.inverse(z, **step_kwargs)
    expected = dist.distribution.log_prob(z) + ildj
    np.testing.assert_allclose(dist.log_prob(x, bijector_kwargs=kwargs), expected, rtol=1e-5, atol=1e-5)
    # Every coupling saw the context: dropping it changes the density.
    assert not np.allclose(dist.log_prob(x, bijector_kwargs=kwargs), _zero_context_log_prob(flow, x), atol=1e-3)


def _zero_context_log_prob(flow, x):
    """log p(x) with every conditioner given a zero context (a context-free density of the same flow)."""
    dist = tfd.TransformedDistribution(tfd.MultivariateNormalDiag(tf.zeros(D)), flow)
    return dist.log_prob(tf.identity(x), bijector_kwargs=conditional_kwargs(flow, tf.zeros([x.shape[0], C])))


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_sampling_routes_the_context_too(kind):
    first = MAKERS[kind](seed=19)
    flow = tfb.Chain([first, tfb.Permute(list(range(D))[::-1]), maf(20, name="maf_last")])
    dist = tfd.TransformedDistribution(tfd.MultivariateNormalDiag(tf.zeros(D)), flow)
    c = normal((4, C), 21)
    kwargs = conditional_kwargs(flow, c)
    x = dist.sample(4, seed=(1, 2), bijector_kwargs=kwargs)
    z = dist.distribution.sample(4, seed=(1, 2))
    np.testing.assert_allclose(x, flow.forward(z, **kwargs), rtol=1e-5, atol=1e-5)
    # The step under test read its routed context: another context for it alone gives another sample.
    other = flow.forward(tf.identity(z), **dict(kwargs, **{first.name: {"conditional_input": normal((4, C), 27)}}))
    assert np.max(np.abs(x - other)) > 1e-2


def test_non_conditional_bijectors_get_nothing():
    assert conditional_kwargs(tfb.Chain([tfb.Permute([1, 0]), tfb.Exp()]), normal((2, C), 22)) == {}
    assert conditional_kwargs(coupling(23), None) == {}
    assert not is_conditional(tfb.Exp())


def test_tfps_maf_is_conditional_only_with_a_conditional_network():
    conditional = tfb.AutoregressiveNetwork(
        params=2, event_shape=[D], conditional=True, conditional_event_shape=[C], hidden_units=[8]
    )
    plain = tfb.AutoregressiveNetwork(params=2, event_shape=[D], hidden_units=[8])
    assert is_conditional(tfb.MaskedAutoregressiveFlow(conditional))
    assert not is_conditional(tfb.MaskedAutoregressiveFlow(plain))


def test_a_name_shared_by_conditional_and_plain_parts_is_refused():
    flow = tfb.Chain([coupling(24, name="step"), tfb.Shift(1.0, name="step")])
    with pytest.raises(ValueError, match="'step' is shared"):
        conditional_kwargs(flow, normal((2, C), 25))
