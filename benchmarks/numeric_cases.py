"""Cases without a TFP peer: the logistic-mixture coupling's root solve, and planar / radial inverses.

TFP has no logistic-mixture CDF coupling and no planar or radial bijector, so these report our own numbers: the
time of the hard direction against the easy one of the same bijector ("theirs" column = our easy direction),
and the worst reconstruction error of the hard direction on random inputs.

- Logistic mixture (Flow++): the density direction (data -> latent, `inverse`) is closed form; sampling
  (`forward`) solves F(x) = sigmoid(z) by a bracketed root search. Target: forward <= 10x inverse, max error
  <= 1e-4. Measured twice: the bare elementwise `tfp_flows.LogisticMixtureCDF` (the root solve alone) and a
  whole coupling with a randomly initialised MLP conditioner (`MixtureCouplingLayer`, what FlowPlusPlus uses;
  the conditioner runs once in either direction).
- Planar: forward (sampling) is closed form, the inverse a bracketed 1-D root solve per step.
  Radial: both closed form. Stacks of `num_steps` random (non-identity) steps.
Errors: max |x - inverse_direction(easy_direction(x))| over the batch, computed on fresh tensors so TFP's
bijector cache cannot hand back the input (docs/design.md#the-cache-can-hide-a-broken-inverse).
"""

import functools

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from harness import Record, ratio, time_alternating
from speed_cases import Call, _min_note, compiled

import tfp_flows
from keras_models.layers.logistic_mixture_coupling import MixtureCouplingLayer
from tfp_flows import masks

tfb = tfp.bijectors

SIZES = {
    "full": dict(
        mixture=dict(event_size=64, num_components=32, hidden_units=(256, 256), batch=256),
        planar=dict(event_size=64, num_steps=16, batch=1024),
        timing=dict(warmup=3, repeats=21, inner=1, min_measure_seconds=0.05),
    ),
    "quick": dict(
        mixture=dict(event_size=64, num_components=32, hidden_units=(256, 256), batch=256),
        planar=dict(event_size=64, num_steps=16, batch=1024),
        timing=dict(warmup=2, repeats=9, inner=1, min_measure_seconds=0.02),
    ),
    "dry": dict(
        mixture=dict(event_size=4, num_components=32, hidden_units=(8,), batch=4),
        planar=dict(event_size=4, num_steps=2, batch=4),
        timing=dict(warmup=0, repeats=1, inner=1),
    ),
}


def _max_error(easy, hard, x, xla):
    """(max |x - hard(easy(x))|, max |...| / max(1, |x|), number of non-finite results), in float64 on the host.

    The maxima are over the finite results; non-finite ones are counted apart (and reported, never hidden).
    """
    there = compiled(easy, xla)(x)
    back = compiled(hard, xla)(tf.identity(there))
    x, back = x.numpy().astype(np.float64), back.numpy().astype(np.float64)
    finite = np.isfinite(back)
    error = np.where(finite, np.abs(back - x), 0.0)
    return (
        float(np.max(error)),
        float(np.max(error / np.maximum(1.0, np.abs(x)))),
        int(np.size(back) - np.count_nonzero(finite)),
    )


def _direction(make_bijector, name):
    """x -> make_bijector().<name>(x): a fresh bijector per call (TFP's cache never returns a remembered input)."""

    def apply(x):
        return getattr(make_bijector(), name)(x)

    apply.__name__ = name
    return apply


def _pair_records(case, xla, device, timing, hard_name, easy_name, hard, easy, x, batch):
    """Timing of the hard vs the easy direction and the round-trip error of the hard one."""
    hard_fn, easy_fn = compiled(hard, xla), compiled(easy, xla)
    timing_result = time_alternating(Call(hard_fn, x), Call(easy_fn, x), **timing)
    t_hard, t_easy = timing_result.ours, timing_result.theirs
    max_error, max_relative, non_finite = _max_error(easy, hard, x, xla)
    warning = f"; {non_finite} of {np.size(x)} results NOT FINITE (excluded from the max)" if non_finite else ""
    return [
        Record(
            case,
            f"{hard_name}_vs_{easy_name}",
            1e3 * t_hard,
            1e3 * t_easy,
            ratio(t_hard, t_easy),
            f"ms per batch of {batch}",
            xla,
            device,
            f"no TFP peer: theirs = our own {easy_name}; ratio = {hard_name} / {easy_name}; "
            + _min_note(timing_result),
        ),
        Record(
            case,
            f"max_{hard_name}_error",
            max_error,
            None,
            None,
            "abs",
            xla,
            device,
            f"max |x - {hard_name}({easy_name}(x))| over the batch; relative max {max_relative:.2e}{warning}",
        ),
    ]


# ------------------------------------------------------------------------------------------------------------
def _random_mlp(hidden_units, output_units, seed):
    initializer = keras.initializers.GlorotNormal(seed=seed)
    layers = [keras.layers.Dense(u, activation="relu", kernel_initializer=initializer) for u in hidden_units]
    layers.append(keras.layers.Dense(output_units, kernel_initializer=initializer, bias_initializer="zeros"))
    return keras.Sequential(layers)


def mixture_case(mode, xla, device):
    size = SIZES[mode]["mixture"]
    dim, k, batch = size["event_size"], size["num_components"], size["batch"]
    rng = np.random.default_rng(3)
    x = tf.constant(rng.normal(scale=2.0, size=(batch, dim)).astype(np.float32))
    timing = SIZES[mode]["timing"]

    # The bare elementwise map: random parameters per entry, as a trained conditioner would output.
    logits = tf.constant(rng.normal(size=(batch, dim, k)).astype(np.float32))
    locs = tf.constant(rng.normal(scale=2.0, size=(batch, dim, k)).astype(np.float32))
    log_scales = tf.constant(rng.uniform(-2.0, 1.0, size=(batch, dim, k)).astype(np.float32))

    def cdf():
        return tfp_flows.LogisticMixtureCDF(logits=logits, locs=locs, log_scales=log_scales)

    records = _pair_records(
        f"logistic-mixture CDF K={k} [{batch}, {dim}]",
        xla,
        device,
        timing,
        "forward_root_solve",
        "inverse_closed_form",
        _direction(cdf, "forward"),
        _direction(cdf, "inverse"),
        x,
        batch,
    )

    layer = MixtureCouplingLayer(
        masks.half(dim), lambda units: _random_mlp(size["hidden_units"], units, seed=4), num_components=k
    )
    layer.build((None, dim))
    records += _pair_records(
        f"logistic-mixture coupling K={k} D={dim} MLP {'x'.join(map(str, size['hidden_units']))}",
        xla,
        device,
        timing,
        "forward_root_solve",
        "inverse_closed_form",
        _direction(layer.bijector, "forward"),
        _direction(layer.bijector, "inverse"),
        x,
        batch,
    )
    return records


# ------------------------------------------------------------------------------------------------------------
def _planar_parameters(dim, num_steps, rng):
    """Random steps, far from the identity: w . z + b and |u| of order 1."""
    scale = 1.0 / np.sqrt(dim)
    return [
        dict(w=rng.normal(scale=scale, size=dim), u=rng.normal(scale=scale, size=dim), b=rng.normal())
        for _ in range(num_steps)
    ]


def _radial_parameters(dim, num_steps, rng):
    """Random steps with alpha > 0 and beta >= -alpha (the invertibility condition)."""
    steps = []
    for _ in range(num_steps):
        alpha = rng.uniform(0.5, 2.0)
        steps.append(dict(z0=rng.normal(size=dim), alpha=alpha, beta=rng.uniform(-0.9 * alpha, 2.0)))
    return steps


def _chain(bijector_class, parameters):
    """A fresh chain on every call (TFP's cache then never returns a remembered input)."""
    return tfb.Chain(
        [bijector_class(**{k: tf.constant(v, tf.float32) for k, v in step.items()}) for step in parameters]
    )


def planar_radial_case(mode, xla, device):
    size = SIZES[mode]["planar"]
    dim, num_steps, batch = size["event_size"], size["num_steps"], size["batch"]
    z = tf.constant(np.random.default_rng(5).normal(size=(batch, dim)).astype(np.float32))
    records = []
    for name, bijector_class, draw in (
        ("planar", tfp_flows.Planar, _planar_parameters),
        ("radial", tfp_flows.Radial, _radial_parameters),
    ):
        parameters = draw(dim, num_steps, np.random.default_rng(6))
        make = functools.partial(_chain, bijector_class, parameters)
        records += _pair_records(
            f"{name} flow K={num_steps} D={dim}",
            xla,
            device,
            SIZES[mode]["timing"],
            "inverse",
            "forward",
            _direction(make, "inverse"),
            _direction(make, "forward"),
            z,
            batch,
        )
    return records


CASES = {"mixture": mixture_case, "planar_radial": planar_radial_case}
