"""The classic 2-D toy densities of the flow literature, each with an exact sampler and its true log-density.

- `two_moons`: sklearn's two half circles (scaled by 2 and shifted by (-1, -0.2) as in FFJORD), angle
  t ~ U(0, pi), plus N(0, 0.2^2 I) noise. log_prob: quadrature over t (see `mixture`).
- `eight_gaussians`: equal mixture of 8 N(mu_k, 0.354^2 I), mu_k on the circle of radius 2 sqrt(2). Closed form.
- `checkerboard`: uniform on the 8 black 2x2 squares of a 4x4 board on [-4, 4)^2. Closed form (-log 32 or -inf).
- `rings`: 4 circles of radii 0.75, 1.5, 2.25, 3 (equal weights), uniform angle, N(0, 0.08^2 I) noise. Closed
  form (Bessel I0).
- `pinwheel`: 5 spiral arms; radius parameter s ~ N(1, 0.3^2) truncated to +-4 sd, angle 2 pi k / 5 + 0.25 e^s,
  point 2 s (cos, -sin), plus N(0, 0.2^2 I) noise. log_prob: quadrature over s.
- `prelu`: x2 ~ N(0, 4^2), x1 ~ N(x2^2 / 4, 1) (the PReLU tutorial density), columns [x1, x2]. Closed form.

Sources: the shapes follow FFJORD's toy data (Grathwohl et al. 2019, `lib/toy_data.py`) and the PReLU / custom
bijector tutorial (E. Jang, "Normalizing Flows Tutorial, Part 1", 2018). Where FFJORD draws points on a regular
grid of angles or leaves the density implicit, we draw the latent at random and define the dataset as the
continuous mixture it is, so that `log_prob` is the TRUE density of exactly what `sample` draws (the KL-gap
quality benchmark depends on it). For `two_moons` and `pinwheel` that density is a 1-D integral over the latent
angle, evaluated by Gauss-Legendre quadrature with panels shorter than the noise scale; it agrees with a four
times finer rule to 1e-6 in log-density wherever log p > -40 (checked in the tests). FFJORD's pinwheel puts its
tangential noise inside the spiral map, which gives no tractable density; ours adds isotropic noise after the map
instead (same look, exact density).

Every density: event shape [2]; `sample(n, seed)` returns a NumPy array [n, 2], the same for the same seed;
`log_prob(x)` takes x of shape [..., 2] in float32 or float64 and returns [...], with no Python control flow on
tensor values (it compiles under XLA).

Example:
    >>> from tfp_flows.datasets import get_density
    >>> moons = get_density("two_moons")
    >>> x = moons.sample(1000, seed=0)
    >>> x.shape, x.dtype
    ((1000, 2), dtype('float32'))
    >>> bool(moons.log_prob(x).numpy().mean() > -3.0)
    True
"""

import abc
import math
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
import tensorflow as tf

from tfp_flows.validation import check_int

from . import _checks
from .mixture import GaussianMixture2D, curve_quadrature

__all__ = [
    "ToyDensity",
    "ClassMixtureDensity",
    "TwoMoons",
    "EightGaussians",
    "Checkerboard",
    "Rings",
    "Pinwheel",
    "PReLUTutorial",
    "DENSITIES",
    "get_density",
]

_SQRT2 = math.sqrt(2.0)


class ToyDensity(abc.ABC):
    """A 2-D density with a seeded sampler and its log-density.

    Attributes:
      name: registry name.
      limits: ((x_lo, x_hi), (y_lo, y_hi)), a box holding all but a negligible part (< 1e-5) of the mass;
        the tests integrate `log_prob` over it.
      plot_limits: a box that frames the picture (may cut the far tails).
    """

    name: str
    limits: tuple[tuple[float, float], tuple[float, float]]
    plot_limits: tuple[tuple[float, float], tuple[float, float]]

    def sample(self, num_samples: int, seed: int | Sequence[int] = 0, dtype: npt.DTypeLike = np.float32) -> np.ndarray:
        """Draw `num_samples` points as a NumPy array [num_samples, 2].

        `seed` is anything `np.random.default_rng` accepts (an int or a sequence of ints); the same seed gives
        the same points.
        """
        num_samples = check_int(num_samples, "num_samples")
        rng = np.random.default_rng(seed)
        return self._sample(num_samples, rng).astype(dtype)

    def log_prob(self, x: tf.Tensor) -> tf.Tensor:
        """The true log-density at x, shape [..., 2] -> [...], in the dtype of x (float32 or float64)."""
        x = _checks.check_points_2d(x, "x")
        return self._log_prob(x)

    def prob(self, x: tf.Tensor) -> tf.Tensor:
        """The true density at x, shape [..., 2] -> [...]."""
        return tf.exp(self.log_prob(x))

    @abc.abstractmethod
    def _sample(self, num_samples: int, rng: np.random.Generator) -> np.ndarray:
        """float64 array [num_samples, 2]."""

    @abc.abstractmethod
    def _log_prob(self, x: tf.Tensor) -> tf.Tensor:
        """log p(x) for a float tensor of shape [..., 2]."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ClassMixtureDensity(ToyDensity):
    """A toy density that is an equal mixture of `num_classes` parts, the class k being how a point was made.

    k ~ U{0, ..., K-1}, x ~ p(x | k), so p(x) = (1/K) sum_k p(x | k). Subclasses set `num_classes`,
    `class_names` and `class_mixtures` (K `GaussianMixture2D`s, the k-th evaluating p(x | k)) and implement
    `_sample_given_class(classes, rng)`; `sample` draws the classes first, then the points, so the points
    `sample` returns are exactly those of `sample_with_classes` for the same seed
    (`conditional.ConditionalToyDensity` builds p(x | c) on this).
    """

    num_classes: int
    class_names: tuple[str, ...]
    class_mixtures: list[GaussianMixture2D]

    def sample_with_classes(
        self,
        num_samples: int,
        seed: int | Sequence[int] = 0,
        dtype: npt.DTypeLike = np.float32,
        classes: npt.ArrayLike | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(points [n, 2] of `dtype`, classes int64 [n]): the classes drawn uniformly, or the `classes` given.

        With `classes=None` the points equal `sample(num_samples, seed)` point for point.
        """
        num_samples = check_int(num_samples, "num_samples")
        rng = np.random.default_rng(seed)
        if classes is None:
            classes = rng.integers(0, self.num_classes, size=num_samples)
        else:
            classes = _checks.check_classes(classes, num_samples, self.num_classes, "classes")
        return self._sample_given_class(classes, rng).astype(dtype), classes.astype(np.int64)

    def class_log_prob(self, x: tf.Tensor) -> tf.Tensor:
        """log p(x | k) for every class k: x [..., 2] -> [..., K], in the dtype of x."""
        x = _checks.check_points_2d(x, "x")
        return tf.stack([mixture.log_prob(x) for mixture in self.class_mixtures], axis=-1)

    def _sample(self, num_samples: int, rng: np.random.Generator) -> np.ndarray:
        # The same draws as sample_with_classes: classes first, then the points given them.
        return self._sample_given_class(rng.integers(0, self.num_classes, size=num_samples), rng)

    @abc.abstractmethod
    def _sample_given_class(self, classes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """float64 array [len(classes), 2], point i drawn from p(x | classes[i])."""


def _curve_mixtures(
    curves: Sequence[Callable[[np.ndarray], np.ndarray]],
    latent_log_density: Callable[[np.ndarray], np.ndarray],
    lo: float,
    hi: float,
    noise: float,
) -> list[GaussianMixture2D]:
    """One `GaussianMixture2D` per curve: p(x | k) for x = c_k(t) + noise * eps, t ~ pi on [lo, hi]."""
    mixtures = []
    for curve in curves:
        curve_centers, curve_log_weights = curve_quadrature(curve, latent_log_density, lo, hi, max_panel_length=noise)
        mixtures.append(GaussianMixture2D(curve_centers, curve_log_weights, noise))  # normalised to 1
    return mixtures


def _equal_mixture_of(mixtures: Sequence[GaussianMixture2D]) -> GaussianMixture2D:
    """The `GaussianMixture2D` (1/K) sum_k p_k(x) of K mixtures with one common scale."""
    # Each part gets exactly its share 1/K, whatever the quadrature error in its own normalisation.
    log_share = math.log(len(mixtures))
    return GaussianMixture2D(
        np.concatenate([m.centers for m in mixtures]),
        np.concatenate([m.log_weights - log_share for m in mixtures]),
        mixtures[0].scale,
    )


class TwoMoons(ClassMixtureDensity):
    """Two interleaved half circles (sklearn's `make_moons` geometry, scaled and shifted as in FFJORD).

    x = c_k(t) + noise * eps, k ~ U{0, 1}, t ~ U(0, pi), eps ~ N(0, I_2), with
    c_0(t) = 2 (cos t, sin t) + (-1, -0.2) and c_1(t) = 2 (1 - cos t, 0.5 - sin t) + (-1, -0.2).
    p(x) = 1/2 sum_k (1/pi) integral_0^pi N(x; c_k(t), noise^2 I) dt, evaluated by quadrature over t.
    Class k: the moon, p(x | k) = (1/pi) integral_0^pi N(x; c_k(t), noise^2 I) dt (`class_mixtures[k]`).
    """

    name = "two_moons"
    limits = ((-4.5, 4.5), (-3.0, 3.5))
    plot_limits = ((-3.5, 3.5), (-2.0, 2.5))

    num_classes = 2
    class_names = ("upper moon", "lower moon")

    def __init__(self, noise: float = 0.2) -> None:
        self.noise = float(noise)
        self.class_mixtures = _curve_mixtures(
            [self._upper, self._lower], lambda t: np.zeros_like(t), 0.0, math.pi, self.noise
        )
        self._mixture = _equal_mixture_of(self.class_mixtures)

    @staticmethod
    def _upper(t: np.ndarray) -> np.ndarray:
        return np.stack([2.0 * np.cos(t) - 1.0, 2.0 * np.sin(t) - 0.2], axis=-1)

    @staticmethod
    def _lower(t: np.ndarray) -> np.ndarray:
        return np.stack([2.0 * (1.0 - np.cos(t)) - 1.0, 2.0 * (0.5 - np.sin(t)) - 0.2], axis=-1)

    def _sample_given_class(self, component: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        t = rng.uniform(0.0, math.pi, size=len(component))
        points = np.where(component[:, None] == 0, self._upper(t), self._lower(t))
        return points + self.noise * rng.standard_normal((len(component), 2))

    def _log_prob(self, x: tf.Tensor) -> tf.Tensor:
        return self._mixture.log_prob(x)


class EightGaussians(ClassMixtureDensity):
    """Equal mixture of 8 isotropic Gaussians N(mu_k, scale^2 I), mu_k = radius (cos(k pi/4), sin(k pi/4)).

    FFJORD's version: radius 4 / sqrt(2) = 2.83, scale 0.5 / sqrt(2) = 0.354 (FFJORD divides by 1.414).
    p(x) = (1/8) sum_k N(x; mu_k, scale^2 I), exact. Class k: the component, p(x | k) = N(x; mu_k, scale^2 I).
    """

    name = "eight_gaussians"
    limits = ((-5.5, 5.5), (-5.5, 5.5))
    plot_limits = ((-4.0, 4.0), (-4.0, 4.0))
    num_classes = 8
    class_names = tuple(f"{45 * k} deg" for k in range(8))  # the angle of the component's centre

    def __init__(self, radius: float = _SQRT2 * 2.0, scale: float = 0.5 / _SQRT2) -> None:
        self.radius, self.scale = float(radius), float(scale)
        angles = np.arange(8) * (math.pi / 4.0)
        self.centers = self.radius * np.stack([np.cos(angles), np.sin(angles)], axis=-1)
        self.class_mixtures = [
            GaussianMixture2D(center[np.newaxis], np.zeros(1), self.scale) for center in self.centers
        ]
        self._mixture = GaussianMixture2D(self.centers, np.zeros(8), self.scale)

    def _sample_given_class(self, component: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.centers[component] + self.scale * rng.standard_normal((len(component), 2))

    def _log_prob(self, x: tf.Tensor) -> tf.Tensor:
        return self._mixture.log_prob(x)


class Checkerboard(ToyDensity):
    """Uniform on the black squares of a 4x4 checkerboard of 2x2 squares covering [-4, 4)^2 (as in FFJORD).

    The square [2i - 4, 2i - 2) x [2j - 4, 2j - 2) is black when i + j is even (8 black squares, area 32), so
    p(x) = 1/32 on them and 0 elsewhere: log p = -log 32 or -inf. Exact.
    """

    name = "checkerboard"
    limits = ((-4.0, 4.0), (-4.0, 4.0))
    plot_limits = ((-4.0, 4.0), (-4.0, 4.0))

    def __init__(self) -> None:
        cells = [(i, j) for i in range(4) for j in range(4) if (i + j) % 2 == 0]
        self.black_cells = np.array(cells, np.float64)

    def _sample(self, num_samples: int, rng: np.random.Generator) -> np.ndarray:
        cell = self.black_cells[rng.integers(0, len(self.black_cells), size=num_samples)]
        return -4.0 + 2.0 * (cell + rng.uniform(size=(num_samples, 2)))

    def _log_prob(self, x: tf.Tensor) -> tf.Tensor:
        inside = tf.reduce_all((x >= -4.0) & (x < 4.0), axis=-1)
        cell = tf.floor(x / 2.0)
        black = tf.equal(tf.math.floormod(cell[..., 0] + cell[..., 1], 2.0), 0.0)
        log_density = tf.constant(-math.log(32.0), x.dtype)
        return tf.where(inside & black, log_density, tf.constant(-np.inf, x.dtype))


class Rings(ToyDensity):
    """Concentric noisy circles: k ~ U{1..K}, theta ~ U(0, 2 pi), x = r_k (cos theta, sin theta) + noise * eps.

    FFJORD's rings: radii 0.75, 1.5, 2.25, 3, noise 0.08. Integrating the angle out in closed form,
    p(x) = (1/K) sum_k exp(-(rho - r_k)^2 / (2 s^2)) I0e(r_k rho / s^2) / (2 pi s^2), rho = |x|, s = noise,
    with I0e(z) = exp(-z) I0(z) the scaled modified Bessel function (stable for large arguments). Exact.
    """

    name = "rings"
    limits = ((-4.0, 4.0), (-4.0, 4.0))
    plot_limits = ((-3.5, 3.5), (-3.5, 3.5))

    def __init__(self, radii: Sequence[float] = (0.75, 1.5, 2.25, 3.0), noise: float = 0.08) -> None:
        self.radii = np.asarray(radii, np.float64)
        self.noise = float(noise)

    def _sample(self, num_samples: int, rng: np.random.Generator) -> np.ndarray:
        radius = self.radii[rng.integers(0, len(self.radii), size=num_samples)]
        theta = rng.uniform(0.0, 2.0 * math.pi, size=num_samples)
        circle = radius[:, None] * np.stack([np.cos(theta), np.sin(theta)], axis=-1)
        return circle + self.noise * rng.standard_normal((num_samples, 2))

    def _log_prob(self, x: tf.Tensor) -> tf.Tensor:
        dtype = x.dtype
        radii = tf.constant(self.radii, dtype)
        variance = self.noise**2
        rho = tf.norm(x, axis=-1, keepdims=True)
        log_ring = -tf.square(rho - radii) / (2.0 * variance) + tf.math.log(
            tf.math.special.bessel_i0e(radii * rho / variance)
        )
        log_norm = math.log(2.0 * math.pi * variance) + math.log(len(self.radii))
        return tf.reduce_logsumexp(log_ring, axis=-1) - tf.constant(log_norm, dtype)


class Pinwheel(ToyDensity):
    """Spiral arms: arm k ~ U{0..K-1}, s ~ N(1, radial_std^2) truncated to 1 +- 4 radial_std,
    alpha = 2 pi k / K + rate e^s, x = 2 s (cos alpha, -sin alpha) + noise * eps.

    FFJORD's pinwheel (K = 5, radial_std = 0.3, rate = 0.25, tangential noise 2 * 0.1) with the noise moved
    outside the spiral map so the density is tractable:
    p(x) = (1/K) sum_k integral pi(s) N(x; c_k(s), noise^2 I) ds, pi the truncated normal, by quadrature over s.
    """

    name = "pinwheel"
    limits = ((-6.0, 6.0), (-6.0, 6.0))
    plot_limits = ((-4.5, 4.5), (-4.5, 4.5))

    def __init__(
        self,
        num_arms: int = 5,
        radial_std: float = 0.3,
        rate: float = 0.25,
        noise: float = 0.2,
        truncation: float = 4.0,
    ) -> None:
        self.num_arms, self.radial_std, self.rate = int(num_arms), float(radial_std), float(rate)
        self.noise, self.truncation = float(noise), float(truncation)
        self.s_range = (1.0 - truncation * radial_std, 1.0 + truncation * radial_std)
        curves = [self._arm(k) for k in range(self.num_arms)]
        self._mixture = _equal_mixture_of(_curve_mixtures(curves, self._latent_log_density, *self.s_range, self.noise))

    def _arm(self, k: int) -> Callable[[np.ndarray], np.ndarray]:
        def curve(s: np.ndarray) -> np.ndarray:
            return self._arm_points(np.full_like(s, k, dtype=np.float64), s)

        return curve

    def _arm_points(self, arm: np.ndarray, s: np.ndarray) -> np.ndarray:
        alpha = 2.0 * math.pi * arm / self.num_arms + self.rate * np.exp(s)
        return 2.0 * s[..., None] * np.stack([np.cos(alpha), -np.sin(alpha)], axis=-1)

    def _latent_log_density(self, s: tf.Tensor) -> np.ndarray:
        return -0.5 * np.square((s - 1.0) / self.radial_std)

    def _sample(self, num_samples: int, rng: np.random.Generator) -> np.ndarray:
        arm = rng.integers(0, self.num_arms, size=num_samples).astype(np.float64)
        s = np.empty(num_samples)
        missing = np.arange(num_samples)
        while missing.size:  # rejection sampling of the truncated normal (acceptance > 99.99 %)
            s[missing] = 1.0 + self.radial_std * rng.standard_normal(missing.size)
            missing = missing[(s[missing] < self.s_range[0]) | (s[missing] > self.s_range[1])]
        return self._arm_points(arm, s) + self.noise * rng.standard_normal((num_samples, 2))

    def _log_prob(self, x: tf.Tensor) -> tf.Tensor:
        return self._mixture.log_prob(x)


class PReLUTutorial(ToyDensity):
    """The density of the PReLU / custom-bijector tutorial: x2 ~ N(0, 4^2), x1 ~ N(x2^2 / 4, 1), x = [x1, x2].

    log p(x) = log N(x2; 0, 4^2) + log N(x1; x2^2 / 4, 1), exact.
    """

    name = "prelu"
    limits = ((-6.0, 106.0), (-20.0, 20.0))
    plot_limits = ((-5.0, 40.0), (-12.0, 12.0))

    def _sample(self, num_samples: int, rng: np.random.Generator) -> np.ndarray:
        x2 = 4.0 * rng.standard_normal(num_samples)
        x1 = 0.25 * np.square(x2) + rng.standard_normal(num_samples)
        return np.stack([x1, x2], axis=-1)

    def _log_prob(self, x: tf.Tensor) -> tf.Tensor:
        x1, x2 = x[..., 0], x[..., 1]
        log_two_pi = tf.constant(math.log(2.0 * math.pi), x.dtype)
        log_p_x2 = -0.5 * tf.square(x2 / 4.0) - math.log(4.0) - 0.5 * log_two_pi
        log_p_x1 = -0.5 * tf.square(x1 - 0.25 * tf.square(x2)) - 0.5 * log_two_pi
        return log_p_x2 + log_p_x1


DENSITIES = {
    density.name: density
    for density in (TwoMoons(), EightGaussians(), Checkerboard(), Rings(), Pinwheel(), PReLUTutorial())
}


def get_density(name: str) -> ToyDensity:
    """The `ToyDensity` registered as `name` (see `DENSITIES`); ValueError listing the names otherwise."""
    if name not in DENSITIES:
        raise ValueError(f"`name` must be one of {sorted(DENSITIES)}; received {name!r}")
    return DENSITIES[name]
