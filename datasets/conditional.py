"""Conditional toy densities p(x | c): the toy data with the class that made each point as the condition c.

- `two_moons`: c selects the moon (one-hot of 2), p(x | k) = (1/pi) integral_0^pi N(x; c_k(t), 0.2^2 I) dt.
- `eight_gaussians`: c is the component (one-hot of 8), p(x | k) = N(x; mu_k, 0.354^2 I).

Both are equal mixtures (`synthetic.ClassMixtureDensity`): p(c = k) = 1/K and
sum_k p(c = k) p(x | c = k) = p(x), the unconditional density of the same name, term by term: the
unconditional mixture is built from these very parts (`synthetic._equal_mixture_of`), so the identity is exact
up to floating-point rounding. `sample(n, seed)` draws (x, c) jointly, and its x are exactly
`synthetic.get_density(name).sample(n, seed)`; `sample(n, seed, classes=k)` draws x ~ p(x | k).

c is a float one-hot vector [..., K], as `make_dataset(..., conditional=True)` yields it: a flow's conditioner
takes a vector context (Winkler et al. 2019, "Learning Likelihoods with Conditional Normalizing Flows"), and a
one-hot code imposes no order or distance between classes, which an integer label would.

Example:
    >>> from tfp_flows.datasets.conditional import get_conditional_density
    >>> moons = get_conditional_density("two_moons")
    >>> x, c = moons.sample(4, seed=0)
    >>> x.shape, c.shape, c.sum(axis=-1).tolist()
    ((4, 2), (4, 2), [1.0, 1.0, 1.0, 1.0])
    >>> moons.log_prob(x, c).shape
    TensorShape([4])
"""

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import tensorflow as tf

from . import _checks, synthetic

__all__ = ["ConditionalToyDensity", "CONDITIONAL_DENSITIES", "get_conditional_density"]


class ConditionalToyDensity:
    """p(x | c) of a `synthetic.ClassMixtureDensity`, c a one-hot class vector; p(c) uniform.

    Attributes:
      name: the toy density's name (`make_dataset(name, conditional=True)` yields this data).
      density: the unconditional `ToyDensity`, p(x) = sum_c p(c) p(x | c).
      num_classes: K, the length of c.
      class_names: a name per class, for figures.
    """

    def __init__(self, density: synthetic.ClassMixtureDensity) -> None:
        if not isinstance(density, synthetic.ClassMixtureDensity):
            raise TypeError(f"`density` must be a synthetic.ClassMixtureDensity; received {type(density).__name__}")
        self.density = density
        self.name = density.name
        self.num_classes = density.num_classes
        self.class_names = tuple(density.class_names)

    @property
    def context_shape(self) -> tuple[int]:
        return (self.num_classes,)

    def sample(
        self,
        num_samples: int,
        seed: int | Sequence[int] = 0,
        dtype: npt.DTypeLike = np.float32,
        classes: npt.ArrayLike | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(x [n, 2], c one-hot [n, K]) of `dtype`.

        Args:
          num_samples: n.
          seed: anything `np.random.default_rng` accepts; same seed, same draws.
          dtype: NumPy float dtype of both arrays.
          classes: None to draw c ~ p(c) jointly with x (then x equals the unconditional `sample(n, seed)`),
            or an int / int array [n] of class indices to draw x ~ p(x | c) for them.
        """
        x, labels = self.sample_labels(num_samples, seed=seed, dtype=dtype, classes=classes)
        return x, np.eye(self.num_classes, dtype=dtype)[labels]

    def sample_labels(
        self,
        num_samples: int,
        seed: int | Sequence[int] = 0,
        dtype: npt.DTypeLike = np.float32,
        classes: npt.ArrayLike | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """As `sample`, with the classes as int64 indices [n] instead of one-hot vectors."""
        return self.density.sample_with_classes(num_samples, seed=seed, dtype=dtype, classes=classes)

    def log_prob(self, x: tf.Tensor, c: tf.Tensor) -> tf.Tensor:
        """The true log p(x | c): x [..., 2] and one-hot c [..., K] -> [...], in the dtype of x.

        log p(x | c) = sum_k c_k log p(x | k), which for a one-hot c picks its class's log-density (every
        log p(x | k) is finite: a log-sum-exp of Gaussian kernels). One-hot rows are checked when eager.
        """
        per_class = self.density.class_log_prob(x)
        c = _checks.check_one_hot(c, self.num_classes, per_class.dtype, "c")
        return tf.reduce_sum(c * per_class, axis=-1)

    def prior_log_prob(self) -> float:
        """log p(c = k) = -log K for every class (the classes are equally likely)."""
        return -math.log(self.num_classes)

    def __repr__(self) -> str:
        return f"ConditionalToyDensity({self.density!r})"


CONDITIONAL_DENSITIES = {
    name: ConditionalToyDensity(density)
    for name, density in synthetic.DENSITIES.items()
    if isinstance(density, synthetic.ClassMixtureDensity)
}


def get_conditional_density(name: str) -> ConditionalToyDensity:
    """The `ConditionalToyDensity` of toy density `name`; ValueError listing the names that have one."""
    if name not in CONDITIONAL_DENSITIES:
        raise ValueError(
            f"`name` must be one of {sorted(CONDITIONAL_DENSITIES)} (toy densities with a condition); received {name!r}"
        )
    return CONDITIONAL_DENSITIES[name]
