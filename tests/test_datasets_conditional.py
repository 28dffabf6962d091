"""Conditional toy densities p(x | c): the classes mix back to the unconditional density exactly, each p(x | k)
integrates to 1, samples for a class land on it, joint samples are the unconditional points, bad c is refused."""

import numpy as np
import pytest
import tensorflow as tf

from tfp_flows.datasets import CONDITIONAL_DENSITIES, get_conditional_density, get_density

NAMES = sorted(CONDITIONAL_DENSITIES)


def test_the_conditional_densities_are_two_moons_and_eight_gaussians():
    assert NAMES == ["eight_gaussians", "two_moons"]
    assert get_conditional_density("two_moons").context_shape == (2,)
    assert get_conditional_density("eight_gaussians").context_shape == (8,)
    with pytest.raises(ValueError, match="`name` must be one of .*received 'rings'"):
        get_conditional_density("rings")


@pytest.mark.parametrize("name", NAMES)
def test_sum_over_classes_of_prior_times_conditional_is_the_unconditional_density(name):
    density = get_conditional_density(name)
    x = tf.constant(np.random.default_rng(1).uniform(-5.0, 5.0, size=(300, 2)))  # float64, tails included
    log_terms = [
        density.prior_log_prob()
        + density.log_prob(x, tf.one_hot(tf.fill([300], k), density.num_classes, dtype=tf.float64)).numpy()
        for k in range(density.num_classes)
    ]
    np.testing.assert_allclose(
        np.logaddexp.reduce(log_terms, axis=0), get_density(name).log_prob(x).numpy(), rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize("name", NAMES)
def test_each_class_density_integrates_to_one(name):
    density = get_conditional_density(name)
    (x_lo, x_hi), (y_lo, y_hi) = density.density.limits
    n = 200
    xs, ys = np.linspace(x_lo, x_hi, n + 1), np.linspace(y_lo, y_hi, n + 1)
    mid = np.stack(np.meshgrid((xs[1:] + xs[:-1]) / 2, (ys[1:] + ys[:-1]) / 2, indexing="ij"), -1).reshape(-1, 2)
    cell = (xs[1] - xs[0]) * (ys[1] - ys[0])
    per_class = density.density.class_log_prob(tf.constant(mid)).numpy()  # [points, K]
    np.testing.assert_allclose(np.exp(per_class).sum(axis=0) * cell, np.ones(density.num_classes), atol=1e-3)


@pytest.mark.parametrize("name", NAMES)
def test_samples_of_a_class_land_on_that_class(name):
    density = get_conditional_density(name)
    for k in range(density.num_classes):
        x, c = density.sample(1000, seed=[3, k], classes=k)
        np.testing.assert_array_equal(c, np.eye(density.num_classes, dtype=np.float32)[np.full(1000, k)])
        # The class whose p(x | j) is largest is k for all but the few points in the overlap (< 0.5 % here).
        most_likely = density.density.class_log_prob(x.astype(np.float64)).numpy().argmax(axis=-1)
        assert np.mean(most_likely == k) > 0.98, (k, np.mean(most_likely == k))


@pytest.mark.parametrize("name", NAMES)
def test_joint_samples_are_the_unconditional_points_with_their_classes(name):
    density = get_conditional_density(name)
    x, c = density.sample(2000, seed=4)
    np.testing.assert_array_equal(x, get_density(name).sample(2000, seed=4))
    assert c.dtype == np.float32 and set(np.unique(c)) == {0.0, 1.0} and np.all(c.sum(axis=-1) == 1)
    labels = c.argmax(axis=-1)
    assert np.all(np.bincount(labels, minlength=density.num_classes) > 2000 / density.num_classes * 0.7)
    most_likely = density.density.class_log_prob(x.astype(np.float64)).numpy().argmax(axis=-1)
    assert np.mean(most_likely == labels) > 0.98
    _, again = density.sample_labels(2000, seed=4)
    np.testing.assert_array_equal(again, labels)


def test_log_prob_refuses_a_c_that_is_not_one_hot():
    density = get_conditional_density("two_moons")
    x = np.zeros((3, 2), np.float32)
    with pytest.raises(ValueError, match=r"`c` must be one-hot.*received the row \[0.5, 0.5\]"):
        density.log_prob(x, [[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])
    with pytest.raises(ValueError, match=r"`c` must be one-hot with shape \[\.\.\., 2\]; received shape \(3, 8\)"):
        density.log_prob(x, np.eye(8)[:3])
    with pytest.raises(ValueError, match=r"`classes` must lie in 0..1; received values from 0 to 2"):
        density.sample(3, classes=[0, 1, 2])


@pytest.mark.slow
def test_log_prob_follows_the_dtype_of_x_and_compiles_under_xla():
    density = get_conditional_density("eight_gaussians")
    x, c = density.sample(64, seed=5)
    eager = density.log_prob(x.astype(np.float64), c).numpy()
    compiled = tf.function(density.log_prob, jit_compile=True)(tf.constant(x), tf.constant(c))
    assert compiled.dtype == tf.float32
    np.testing.assert_allclose(compiled.numpy(), eager, rtol=1e-5)
