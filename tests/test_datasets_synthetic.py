"""The toy 2-D densities: each sampler draws from exactly the density its log_prob evaluates.

Checks: log_prob integrates to 1 over its mass box (midpoint rule; tolerance 1e-3, and the checkerboard's grid is
aligned with its squares so its sum is exact), a histogram of samples matches the probability of each bin
(binomial tolerance), samples are deterministic for a seed, the quadrature-based densities agree with a much
finer rule, float32/float64/XLA agree, and bad input raises clear errors.
"""

import math

import numpy as np
import pytest
import tensorflow as tf

from tfp_flows.datasets import synthetic
from tfp_flows.datasets.mixture import GaussianMixture2D, curve_quadrature

NAMES = sorted(synthetic.DENSITIES)
BINS = 6  # histogram bins per axis
CELLS_PER_BIN = {"prelu": 60}  # integration cells per histogram bin and axis (default below)


def _grid_log_prob(density, cells_per_bin):
    """log p at the midpoints of a regular grid over `density.limits`, and the cell area."""
    (x_lo, x_hi), (y_lo, y_hi) = density.limits
    n = BINS * cells_per_bin
    hx, hy = (x_hi - x_lo) / n, (y_hi - y_lo) / n
    xs = x_lo + hx * (np.arange(n) + 0.5)
    ys = y_lo + hy * (np.arange(n) + 0.5)
    grid = np.stack(np.meshgrid(xs, ys, indexing="ij"), axis=-1)  # [n, n, 2]
    # Row by row keeps the [points, mixture components] intermediate small.
    log_p = np.stack([density.log_prob(tf.constant(row)).numpy() for row in grid])
    return log_p, hx * hy


@pytest.fixture(scope="module")
def grids():
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = _grid_log_prob(synthetic.DENSITIES[name], CELLS_PER_BIN.get(name, 40))
        return cache[name]

    return get


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.slow_params("pinwheel", "two_moons")
def test_log_prob_integrates_to_one(name, grids):
    log_p, cell_area = grids(name)
    total = np.exp(log_p).sum() * cell_area
    assert abs(total - 1.0) < 1e-3, f"{name}: integral over the mass box = {total}"


def test_checkerboard_integral_is_exact_on_an_aligned_grid(grids):
    log_p, cell_area = grids("checkerboard")  # 240 cells over [-4, 4): square edges fall on cell edges
    assert abs(np.exp(log_p).sum() * cell_area - 1.0) < 1e-9


@pytest.mark.parametrize("name", NAMES)
def test_histogram_of_samples_matches_density(name, grids):
    density = synthetic.DENSITIES[name]
    log_p, cell_area = grids(name)
    cells = log_p.shape[0] // BINS
    # Probability of each histogram bin from the density: sum the integration cells inside it.
    bin_prob = (np.exp(log_p) * cell_area).reshape(BINS, cells, BINS, cells).sum(axis=(1, 3))
    num_samples = 20_000
    x = density.sample(num_samples, seed=123).astype(np.float64)
    (x_lo, x_hi), (y_lo, y_hi) = density.limits
    counts, _, _ = np.histogram2d(x[:, 0], x[:, 1], bins=BINS, range=[[x_lo, x_hi], [y_lo, y_hi]])
    freq = counts / num_samples
    tolerance = 5.0 * np.sqrt(bin_prob * (1.0 - bin_prob) / num_samples) + 2e-3
    worst = np.max(np.abs(freq - bin_prob) - tolerance)
    assert worst <= 0.0, f"{name}: empirical bin frequencies deviate from the density\n{freq}\n{bin_prob}"
    assert counts.sum() >= num_samples * (1 - 1e-3), f"{name}: samples fall outside the mass box"


def test_a_wrong_density_fails_the_histogram_check(grids):
    # The check above can fail: moons' samples against the rings' density are far off.
    log_p, cell_area = grids("rings")
    cells = log_p.shape[0] // BINS
    bin_prob = (np.exp(log_p) * cell_area).reshape(BINS, cells, BINS, cells).sum(axis=(1, 3))
    x = synthetic.DENSITIES["two_moons"].sample(20_000, seed=123)
    (x_lo, x_hi), (y_lo, y_hi) = synthetic.DENSITIES["rings"].limits
    counts, _, _ = np.histogram2d(x[:, 0], x[:, 1], bins=BINS, range=[[x_lo, x_hi], [y_lo, y_hi]])
    assert np.max(np.abs(counts / 20_000 - bin_prob)) > 0.02


@pytest.mark.parametrize("name", NAMES)
def test_sampler_is_deterministic_for_a_seed(name):
    density = synthetic.DENSITIES[name]
    a, b, c = density.sample(100, seed=7), density.sample(100, seed=7), density.sample(100, seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == (100, 2) and a.dtype == np.float32
    assert density.sample(5, seed=[7, 1], dtype=np.float64).dtype == np.float64


@pytest.mark.parametrize("name", NAMES)
def test_float32_float64_and_xla_agree(name):
    density = synthetic.DENSITIES[name]
    x64 = density.sample(64, seed=3, dtype=np.float64)
    want = density.log_prob(x64).numpy()
    assert want.shape == (64,) and np.all(np.isfinite(want))
    got32 = density.log_prob(x64.astype(np.float32))
    assert got32.dtype == tf.float32
    np.testing.assert_allclose(got32.numpy(), want, rtol=1e-4, atol=1e-4)
    xla = tf.function(density.log_prob, jit_compile=True)
    np.testing.assert_allclose(xla(tf.constant(x64)).numpy(), want, rtol=1e-10, atol=1e-10)
    # Batch shapes pass through.
    assert density.log_prob(x64.reshape(8, 8, 2)).shape == (8, 8)


def test_closed_forms_at_hand_points():
    # Eight Gaussians at a centre: 1/8 N(0; 0, s^2 I) plus 7 far components.
    eight = synthetic.DENSITIES["eight_gaussians"]
    r, s = 2.0 * math.sqrt(2.0), 0.5 / math.sqrt(2.0)
    angles = np.arange(8) * math.pi / 4
    centres = r * np.stack([np.cos(angles), np.sin(angles)], -1)
    point = np.array([r, 0.0])
    want = np.log(np.mean(np.exp(-np.sum((point - centres) ** 2, -1) / (2 * s * s)) / (2 * math.pi * s * s)))
    np.testing.assert_allclose(eight.log_prob(point[None]).numpy()[0], want, rtol=1e-12)
    # PReLU density.
    prelu = synthetic.DENSITIES["prelu"]
    x1, x2 = 5.0, 3.0
    want = (
        -0.5 * (x2 / 4) ** 2
        - math.log(4 * math.sqrt(2 * math.pi))
        - 0.5 * (x1 - x2 * x2 / 4) ** 2
        - math.log(math.sqrt(2 * math.pi))
    )
    np.testing.assert_allclose(prelu.log_prob(np.array([[x1, x2]])).numpy()[0], want, rtol=1e-12)
    # Checkerboard: black square, white square, outside.
    board = synthetic.DENSITIES["checkerboard"].log_prob(np.array([[-3.0, -3.0], [-1.0, -3.0], [4.5, 0.0]])).numpy()
    np.testing.assert_allclose(board[0], -math.log(32.0))
    assert board[1] == -np.inf and board[2] == -np.inf


def test_rings_closed_form_matches_angle_quadrature():
    # Independent check of the Bessel form: integrate the angle numerically.
    rings = synthetic.DENSITIES["rings"]
    theta = np.linspace(0, 2 * math.pi, 20_000, endpoint=False)
    points = np.array([[0.0, 0.0], [0.7, 0.3], [2.2, -0.5], [3.1, 0.2]])
    s2 = rings.noise**2
    want = []
    for p in points:
        total = 0.0
        for r in rings.radii:
            circle = r * np.stack([np.cos(theta), np.sin(theta)], -1)
            total += np.mean(np.exp(-np.sum((p - circle) ** 2, -1) / (2 * s2))) / (2 * math.pi * s2)
        want.append(np.log(total / len(rings.radii)))
    np.testing.assert_allclose(rings.log_prob(points).numpy(), want, rtol=1e-9)


@pytest.mark.parametrize("name", ["two_moons", "pinwheel"])
@pytest.mark.slow_params("pinwheel")
def test_quadrature_agrees_with_a_four_times_finer_rule(name):
    density = synthetic.DENSITIES[name]
    if name == "two_moons":
        curves, latent, (lo, hi) = [density._upper, density._lower], np.zeros_like, (0.0, math.pi)
    else:
        curves, latent, lo, hi = (
            [density._arm(k) for k in range(density.num_arms)],
            density._latent_log_density,
            *density.s_range,
        )
    centers, log_weights = [], []
    for curve in curves:
        c, lw = curve_quadrature(curve, latent, lo, hi, max_panel_length=density.noise / 4, nodes_per_panel=16)
        centers.append(c)
        log_weights.append(lw - np.logaddexp.reduce(lw) - math.log(len(curves)))
    fine = GaussianMixture2D(np.concatenate(centers), np.concatenate(log_weights), density.noise)
    x = np.concatenate(
        [density.sample(2000, seed=1, dtype=np.float64), np.random.default_rng(0).uniform(-5, 5, size=(2000, 2))]
    )
    reference = fine.log_prob(x).numpy()
    keep = reference > -40.0  # far tails (p < e^-40) are irrelevant for any estimate
    np.testing.assert_allclose(density.log_prob(x).numpy()[keep], reference[keep], atol=1e-6, rtol=0)


def test_bad_input_raises_clear_errors():
    density = synthetic.DENSITIES["two_moons"]
    with pytest.raises(ValueError, match="num_samples"):
        density.sample(0)
    with pytest.raises(ValueError, match="`num_samples` must be an int >= 1; received 2.5 of type float"):
        density.sample(2.5)
    with pytest.raises(ValueError, match=r"\[\.\.\., 2\]"):
        density.log_prob(np.zeros([4, 3], np.float32))
    with pytest.raises(TypeError, match="floating-point"):
        density.log_prob(np.zeros([4, 2], np.int32))
    with pytest.raises(ValueError, match="two_moons"):
        synthetic.get_density("moons")
