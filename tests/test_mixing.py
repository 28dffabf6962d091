"""`mixing=` of the vector presets (keras_models/flows/mixing.py): one vocabulary, the learned LU map's
initialisation and log-det, and the errors. The checklist (tests/model_cases.py, "nsf-coupling-lu") trains,
reloads and exports an LU-mixed NSF."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_models import MAF, NSF, RealNVP
from keras_models.flows.mixing import random_order
from keras_models.layers import InvertibleConv1x1Layer, PermuteLayer

SMALL = {
    RealNVP: dict(num_couplings=3, hidden_units=(4,)),
    NSF: dict(num_layers=3, hidden_units=(4,), num_bins=3),
    MAF: dict(num_layers=3, hidden_units=(4,)),
}


def _mixers(model):
    return [layer for layer in model.flow_layers if isinstance(layer, (InvertibleConv1x1Layer, PermuteLayer))]


@pytest.mark.parametrize("cls", list(SMALL), ids=lambda c: c.__name__)
def test_lu_mixing_starts_at_a_rotation_and_its_log_det_is_the_sum_of_log_diag_u(cls):
    model = cls((4,), mixing="lu", **SMALL[cls])
    mixers = _mixers(model)
    assert len(mixers) == 2 and all(isinstance(layer, InvertibleConv1x1Layer) for layer in mixers)
    for layer in mixers:
        matrix = layer.bijector().forward(tf.eye(4)).numpy()  # rows: W e_i
        np.testing.assert_allclose(matrix @ matrix.T, np.eye(4), atol=1e-5)  # a rotation: log|det W| = 0
        layer.log_abs_diag.assign([0.1, -0.2, 0.3, 0.05])
        log_det = layer.bijector().forward_log_det_jacobian(tf.random.normal([5, 4], seed=1), event_ndims=1)
        np.testing.assert_allclose(log_det.numpy(), 0.25, atol=1e-6)
        np.testing.assert_allclose(np.linalg.slogdet(layer.bijector().forward(tf.eye(4)).numpy())[1], 0.25, atol=1e-5)
    # Different rotations per step, and the same ones again from the same seed (a reload rebuilds them).
    first = [layer.lower_upper().numpy() for layer in _mixers(cls((4,), mixing="lu", **SMALL[cls]))]
    again = [layer.lower_upper().numpy() for layer in _mixers(cls((4,), mixing="lu", **SMALL[cls]))]
    assert not np.allclose(first[0], first[1])
    np.testing.assert_array_equal(first[0], again[0])


@pytest.mark.parametrize("cls", list(SMALL), ids=lambda c: c.__name__)
def test_mixing_vocabulary_is_shared_and_the_defaults_are_the_measured_ones(cls):
    """RealNVP's vectors default to random permutations (benchmarks/README.md, "Random permutations with dropout");
    NSF and MAF keep their `permutation` (reverse) until their rows are measured."""
    default = cls((4,), **SMALL[cls])
    assert default.get_config()["mixing"] == ("random" if cls is RealNVP else None)
    for mixing in ("reverse", "random"):
        model = cls((4,), mixing=mixing, **SMALL[cls])
        orders = [layer.permutation.tolist() for layer in _mixers(model)]
        assert len(orders) == 2 and all(sorted(order) == [0, 1, 2, 3] for order in orders)
        if mixing == "reverse":
            assert orders == [[3, 2, 1, 0]] * 2
        assert cls.from_config(model.get_config()).get_config()["mixing"] == mixing
    expected = r"`mixing` must be one of \(None, 'reverse', 'random', 'lu'\); received 'lu2'"
    with pytest.raises(ValueError, match=expected):
        cls((4,), mixing="lu2", **SMALL[cls])


def test_nsf_and_maf_reject_mixing_together_with_a_permutation():
    with pytest.raises(ValueError, match="pass either `mixing` or `permutation`"):
        NSF((3,), mixing="lu", permutation="random", num_layers=2)
    assert [p.permutation.tolist() for p in _mixers(NSF((3,), num_layers=2, permutation="random"))] == [
        p.permutation.tolist() for p in _mixers(NSF((3,), num_layers=2, mixing="random"))
    ]


def test_realnvp_mixing_is_for_vectors_only():
    with pytest.raises(ValueError, match="`mixing` is for vectors"):
        RealNVP((4, 4, 1), mixing="lu", width=4, num_blocks=1)
    # With mixing, every coupling keeps the same half mask (the mixing decides what it transforms).
    model = RealNVP((4,), mixing="lu", num_couplings=3, hidden_units=(4,), actnorm=False)
    masks = [layer.mask.tolist() for layer in model.flow_layers if hasattr(layer, "mask")]
    assert len(masks) == 3 and masks[0] == masks[1] == masks[2]


@pytest.mark.slow
def test_lu_mixed_realnvp_trains_and_reloads(tmp_path):
    x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32") @ np.triu(np.ones((3, 3), "float32"))
    model = RealNVP((3,), mixing="lu", num_couplings=2, hidden_units=(8,))
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    layer = _mixers(model)[0]
    before = layer.lower_upper().numpy()
    model.fit(x, epochs=1, batch_size=32, verbose=0)
    assert not np.allclose(layer.lower_upper().numpy(), before)
    model.save(tmp_path / "lu.keras")
    reloaded = keras.saving.load_model(tmp_path / "lu.keras")
    np.testing.assert_allclose(reloaded.log_prob(x).numpy(), model.log_prob(x).numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("size", [8, 256])
def test_one_adam_step_moves_a_learned_mixing_by_about_the_learning_rate_whatever_its_size(size):
    # Adam moves every raw entry by about the learning rate at once; unscaled, a size x size map would move by
    # about size times that in spectral norm (a 784-D RealNVP with LU mixing was NaN within a dozen steps).
    keras.utils.set_random_seed(0)
    model = RealNVP((size,), mixing="lu", num_couplings=2, hidden_units=(8,))
    layer = _mixers(model)[0]
    before = layer.bijector().forward(tf.eye(size)).numpy()
    optimizer = keras.optimizers.Adam(1e-3)
    x = tf.random.normal([64, size], seed=2)
    with tf.GradientTape() as tape:
        loss = -tf.reduce_mean(model.log_prob(x))
    weights = [layer.lower, layer.upper]
    optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))
    change = np.linalg.norm(layer.bijector().forward(tf.eye(size)).numpy() - before, ord=2)
    assert 0 < change < 5e-3, f"one step of 1e-3 moved the {size}-D map by {change:.3g} in spectral norm"


@pytest.mark.parametrize("size", [2, 3])
def test_random_mixing_never_draws_the_identity(size):
    """An identity between two same-parity steps wastes the second: at 2 dimensions "random" is the swap."""
    rng = np.random.default_rng(0)
    orders = [random_order(size, rng) for _ in range(200)]
    assert not any(np.array_equal(order, np.arange(size)) for order in orders)
    assert len({tuple(order) for order in orders}) == math.factorial(size) - 1  # every other one is drawn
    model = RealNVP(event_shape=(2,), num_couplings=4, hidden_units=(8,), mixing="random", permutation_seed=3)
    assert [layer.permutation.tolist() for layer in _mixers(model)] == [[1, 0]] * 3
