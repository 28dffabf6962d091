"""U1-U4 of Rezende & Mohamed (2015, Table 1) against values worked out by hand and a plain-math re-derivation."""

import math

import numpy as np
import pytest
import tensorflow as tf

from tfp_flows.datasets import energies


def _paper(name, z1, z2):
    """Table 1 of the paper, transcribed with the math module (no TensorFlow, no shared helpers)."""
    w1 = math.sin(2 * math.pi * z1 / 4)
    w2 = 3 * math.exp(-0.5 * ((z1 - 1) / 0.6) ** 2)
    w3 = 3 / (1 + math.exp(-(z1 - 1) / 0.3))
    if name == "u1":
        return 0.5 * ((math.hypot(z1, z2) - 2) / 0.4) ** 2 - math.log(
            math.exp(-0.5 * ((z1 - 2) / 0.6) ** 2) + math.exp(-0.5 * ((z1 + 2) / 0.6) ** 2)
        )
    if name == "u2":
        return 0.5 * ((z2 - w1) / 0.4) ** 2
    if name == "u3":
        return -math.log(math.exp(-0.5 * ((z2 - w1) / 0.35) ** 2) + math.exp(-0.5 * ((z2 - w1 + w2) / 0.35) ** 2))
    return -math.log(math.exp(-0.5 * ((z2 - w1) / 0.4) ** 2) + math.exp(-0.5 * ((z2 - w1 + w3) / 0.35) ** 2))


def test_hand_computed_points():
    # U1 on the ring |z| = 2 at z1 = 0: both bumps equal, U1 = (2/0.6)^2 / 2 - log 2.
    np.testing.assert_allclose(energies.u1(np.array([0.0, 2.0])).numpy(), (2 / 0.6) ** 2 / 2 - math.log(2), rtol=1e-6)
    # U1 at (2, 0): on the ring and on the right bump; the far bump adds -log(1 + exp(-(4/0.6)^2/2)).
    np.testing.assert_allclose(
        energies.u1(np.array([2.0, 0.0])).numpy(), -math.log1p(math.exp(-((4 / 0.6) ** 2) / 2)), atol=1e-7
    )
    # U2 vanishes on the curve z2 = sin(pi z1 / 2): at (1, 1) and (0, 0); at (0, 0.4) it is 1/2.
    np.testing.assert_allclose(
        energies.u2(np.array([[1.0, 1.0], [0.0, 0.0], [0.0, 0.4]])).numpy(), [0.0, 0.0, 0.5], atol=1e-6
    )
    # U3 at (1, 1): w1 = 1, w2 = 3 -> -log(1 + exp(-(3/0.35)^2/2)).
    np.testing.assert_allclose(
        energies.u3(np.array([1.0, 1.0], np.float64)).numpy(),
        -math.log1p(math.exp(-((3 / 0.35) ** 2) / 2)),
        rtol=1e-12,
        atol=1e-14,
    )
    # U4 at (1, 1): w3 = 3/2 -> -log(1 + exp(-(1.5/0.35)^2/2)).
    np.testing.assert_allclose(
        energies.u4(np.array([1.0, 1.0], np.float64)).numpy(),
        -math.log1p(math.exp(-((1.5 / 0.35) ** 2) / 2)),
        rtol=1e-12,
    )


@pytest.mark.parametrize("name", sorted(energies.ENERGIES))
def test_matches_table_1_at_random_points(name):
    z = np.random.default_rng(0).uniform(-4, 4, size=(50, 2))
    want = [_paper(name, a, b) for a, b in z]
    got = energies.ENERGIES[name](z).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    got32 = energies.get_energy(name.upper())(z.astype(np.float32))
    assert got32.dtype == tf.float32
    np.testing.assert_allclose(got32.numpy(), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", sorted(energies.ENERGIES))
def test_finite_far_away_batched_and_under_xla(name):
    fn = energies.ENERGIES[name]
    far = tf.constant([[40.0, -40.0], [-1e3, 1e3]], tf.float32)
    assert np.all(np.isfinite(fn(far).numpy()))
    z = tf.random.stateless_normal([3, 4, 2], seed=[1, 2], dtype=tf.float64)
    assert fn(z).shape == (3, 4)
    np.testing.assert_allclose(tf.function(fn, jit_compile=True)(z).numpy(), fn(z).numpy(), rtol=1e-12)


def test_unknown_energy_lists_the_names():
    with pytest.raises(ValueError, match="u1"):
        energies.get_energy("u5")
