"""Conditional bijectors p(x | c): which bijectors take a context, and the `bijector_kwargs` that route it.

A conditional flow x = f(z; c) has every conditioner take the context c as well as its usual input (Papamakarios
et al. 2017, "Masked autoregressive flow for density estimation", sec. 3.4; Winkler et al. 2019, "Learning
likelihoods with conditional normalizing flows"):

    log p(x | c) = log p_Z(f^{-1}(x; c)) + log|det d f^{-1}(x; c) / dx|.

TFP passes such a context as a keyword argument of the bijector's methods (`**kwargs`), named
`conditional_input` as in `tfb.AutoregressiveNetwork(conditional=True)`. A `tfb.Chain` (any `Composition`)
routes keyword arguments to its parts by name: `chain.forward(x, **{part.name: {"conditional_input": c}})`
(composition.py / chain.py: `kwargs.get(bij.name, {})`), and `tfb.Invert` (like `tfp_flows.ChannelSlice`) hands
its own to the bijector it wraps. `conditional_kwargs(bijector, c)` builds that nested dict for every conditional
part of a (nested) composition, so that

    dist.log_prob(x, bijector_kwargs=conditional_kwargs(dist.bijector, c))

works on any `tfd.TransformedDistribution`. Parts with the same name get the same entry, which is right when
they are all conditional; a conditional and a non-conditional part sharing a name cannot be told apart by
TFP's routing, and raise a ValueError naming the name.

Which bijectors are conditional: instances of `ConditionalBijector` (tfp_flows' couplings and MAF declare it),
and any `tfb.MaskedAutoregressiveFlow` (subclasses included) whose network is a conditional
`tfb.AutoregressiveNetwork` or declares a `context_shape`.

TFP's cache keys every entry on its keyword arguments (`cache_util`, tensors by identity), so the one-pass
caches (`tfp_flows.one_pass`, `OnePassMaskedAutoregressiveFlow`) still pay one conditioner pass per step in
`log_prob`: the inverse and its log-det are asked with the same context tensor.

Example:
    >>> import tensorflow as tf, tensorflow_probability as tfp
    >>> from tfp_flows import AffineCoupling, masks
    >>> from tfp_flows.conditioning import conditional_kwargs
    >>> def fn(h, conditional_input=None):                      # shift = context, log-scale = 0
    ...     return tf.broadcast_to(conditional_input, tf.shape(h)), tf.zeros_like(h)
    >>> flow = tfp.bijectors.Chain([AffineCoupling(masks.half(2), fn), tfp.bijectors.Permute([1, 0])])
    >>> dist = tfp.distributions.TransformedDistribution(
    ...     tfp.distributions.Sample(tfp.distributions.Normal(0., 1.), [2]), flow)
    >>> c = tf.constant([[3.0]])
    >>> kwargs = conditional_kwargs(dist.bijector, c)
    >>> {name: {key: value.numpy().tolist() for key, value in parts.items()} for name, parts in kwargs.items()}
    {'affine_coupling': {'conditional_input': [[3.0]]}}
    >>> x = tf.constant([[0.0, 3.0]])                            # z = (0, 3 - c) = (0, 0)
    >>> float(dist.log_prob(x, bijector_kwargs=kwargs)[0]) == float(dist.distribution.log_prob([[0.0, 0.0]])[0])
    True
"""

from typing import Any

import tensorflow as tf
from tensorflow_probability import bijectors as tfb
from tensorflow_probability.python.bijectors import invert as invert_lib

# `tfb.Invert(b)` returns a `_Invert` (the non-CompositeTensor base class) when `b` is not a CompositeTensor, as our
# Keras-built bijectors are not: an isinstance check needs the base class.
_INVERT_TYPES = (invert_lib._Invert,)

__all__ = ["CONDITIONAL_INPUT", "ConditionalBijector", "conditional_kwargs", "is_conditional"]

CONDITIONAL_INPUT = "conditional_input"  # the keyword TFP's AutoregressiveNetwork uses


class ConditionalBijector:
    """Mixin marking a bijector whose methods accept `conditional_input=` (routed by `conditional_kwargs`)."""

    accepts_conditional_input = True


def is_conditional(bijector: tfb.Bijector) -> bool:
    """Whether `bijector` itself (not its parts) takes `conditional_input`."""
    if getattr(bijector, "accepts_conditional_input", False):
        return True
    if isinstance(bijector, tfb.MaskedAutoregressiveFlow):
        # TFP's conditional AutoregressiveNetwork, or a network declaring a context shape (keras_models' MADE).
        network = getattr(bijector, "_shift_and_log_scale_fn", None) or getattr(
            bijector, "conditioner", None
        )  # MaskedAutoregressiveSpline's network
        return bool(getattr(network, "_conditional", False) or getattr(network, "context_shape", None) is not None)
    return False


def _parts(bijector: tfb.Bijector) -> list[tfb.Bijector] | None:
    """The sub-bijectors a composition routes keyword arguments to by name (None if not a composition)."""
    if isinstance(bijector, tfb.Composition):
        return list(bijector.bijectors)
    return None


def conditional_kwargs(bijector: tfb.Bijector, conditional_input: tf.Tensor) -> dict[str, Any]:
    """The `bijector_kwargs` that hand `conditional_input` to every conditional part of `bijector`.

    Returns {} when nothing is conditional (pass it anyway: TFP then calls every part as without a context),
    `{"conditional_input": c}` for a conditional bijector itself, and for a composition the nested dict keyed
    by part names that TFP's `Composition` routes (a `tfb.Invert` or `tfp_flows.ChannelSlice`
    passes its arguments to the bijector it wraps). A ValueError
    names a part name that is shared by a conditional and a non-conditional part.
    """
    if conditional_input is None:
        return {}
    if is_conditional(bijector):
        return {CONDITIONAL_INPUT: conditional_input}
    if isinstance(bijector, _INVERT_TYPES) or getattr(bijector, "passes_kwargs_to_bijector", False):
        return conditional_kwargs(bijector.bijector, conditional_input)
    parts = _parts(bijector)
    if parts is None:
        return {}
    routed: dict[str, dict[str, Any]] = {}
    unrouted: set[str] = set()
    for part in parts:
        kwargs = conditional_kwargs(part, conditional_input)
        if kwargs:
            if part.name in routed and routed[part.name].keys() != kwargs.keys():
                raise ValueError(_name_clash(bijector, part.name))
            routed.setdefault(part.name, {}).update(kwargs)
        else:
            unrouted.add(part.name)
    clashes = sorted(unrouted & routed.keys())
    if clashes:
        raise ValueError(_name_clash(bijector, clashes[0]))
    return routed


def _name_clash(bijector: tfb.Bijector, name: str) -> str:
    return (
        f"conditional_kwargs: in {bijector.name!r}, the name {name!r} is shared by a part that takes "
        f"`conditional_input` and one that does not; TFP routes keyword arguments by name, so give them "
        f"distinct names"
    )
