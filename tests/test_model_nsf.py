"""NSF: both variants start as the identity (the derivative offset), the autoregressive MADE stays
autoregressive, and argument errors (the shared checklist runs in tests/model_checklist.py)."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from keras_models.flows.nsf import NSF
from keras_models.layers.autoregressive_spline import SplineMADE

tfd = tfp.distributions


@pytest.mark.parametrize("variant", ["coupling", "autoregressive"])
def test_a_fresh_model_is_the_identity(variant):
    model = NSF((3,), variant=variant, num_layers=2, hidden_units=(8,), num_bins=4, bound=2.0, actnorm=False)
    x = np.random.default_rng(0).uniform(-2.5, 2.5, size=(16, 3)).astype(np.float32)  # inside and outside [-B, B]
    np.testing.assert_allclose(model.encode(x), x[:, ::-1], atol=1e-5)  # the reversal between the two steps
    np.testing.assert_allclose(model.log_prob(x), tfd.Sample(tfd.Normal(0.0, 1.0), [3]).log_prob(x), atol=1e-5)


def test_spline_made_output_d_ignores_inputs_d_and_later():
    made = SplineMADE(event_size=4, num_params=5, hidden_units=(12,))
    made.build((None, 4))
    rng = np.random.default_rng(1)
    for weight in made.trainable_weights:
        weight.assign(rng.normal(size=weight.shape).astype(np.float32))
    x = tf.constant(rng.normal(size=(3, 4)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        theta = made(x)  # [3, 4, 5]
    jacobian = tape.batch_jacobian(theta, x).numpy()  # [3, 4, 5, 4]: d theta[d, p] / d x[j]
    dependence = np.abs(jacobian).sum(axis=(0, 2))  # [d, j]
    assert theta.shape == (3, 4, 5)
    assert np.all(dependence[np.triu_indices(4)] == 0)  # j >= d: no dependence
    assert np.all(dependence[np.tril_indices(4, -1)] > 0)  # j < d: some dependence


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"variant": "spline"}, "`variant` must be one of"),
        ({"num_bins": 1}, "`num_bins` must be an int >= 2"),
        ({"bound": 0}, "`bound` must be a finite number > 0"),
        ({"permutation": "shuffle"}, "`permutation` must be one of"),
        ({"actnorm": "on"}, "`actnorm` must be one of"),
        ({"dropout": 1.5}, r"`dropout` must be a number in \[0, 1\)"),
        ({"variant": "autoregressive", "dropout": 0.1}, "`dropout` is for the MLP conditioners of variant='coupling'"),
    ],
    ids=["variant", "num_bins", "bound", "permutation", "actnorm", "dropout", "dropout-autoregressive"],
)
def test_bad_arguments_raise_naming_them(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NSF((2,), **kwargs)


def test_images_are_refused():
    with pytest.raises(ValueError, match=r"NSF models vectors: `event_shape` must be \(D,\)"):
        NSF((4, 4, 1))


@pytest.mark.slow
def test_actnorm_auto_means_what_it_means_for_every_preset():
    """ "auto" places ActNorms wherever data initialise them: every vector density preset, not IAF or images."""
    from keras_models import IAF, MAF, NICE, RealNVP

    vectors = [NSF((2,)), MAF((2,), hidden_units=(4,)), NICE((2,), hidden_units=(4,)), RealNVP((2,), hidden_units=(4,))]
    assert all(model.actnorm for model in vectors)
    assert not IAF((2,), hidden_units=(4,)).actnorm
    assert not RealNVP((4, 4, 1), width=4, num_blocks=0, num_scales=1).actnorm
    assert not NSF((2,), actnorm=False).actnorm and NSF((2,), actnorm=True).actnorm
