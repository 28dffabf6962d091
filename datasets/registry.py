"""The datasets `make_dataset` knows, and what models need to know about each (`dataset_info`).

- two_moons, eight_gaussians, checkerboard, rings, pinwheel, prelu: event shape [2], continuous; splits
  train / validation / test; generated locally (`toy_builder`).
- digits: [8, 8, 1] images of 17 grey levels stored on the 8-bit scale; train / validation / test;
  scikit-learn, offline (`digits_builder`).
- mnist: [28, 28, 1] 8-bit images; train / test; TFDS, prepare once with `tfds build mnist`.
- cifar10: [32, 32, 3] 8-bit images; train / test; TFDS, prepare once with `tfds build cifar10`.

`context_shape` is the shape of the condition c that `make_dataset(name, conditional=True)` pairs with each
x: (10,) for the labelled images (digits, mnist, cifar10: the class), (2,) for two_moons (the moon), (8,) for
eight_gaussians (the component); None for the toys whose points carry no class (checkerboard, rings,
pinwheel, prelu).

Example:
    >>> from tfp_flows.datasets import dataset_info, list_datasets
    >>> dataset_info("digits").num_dims, dataset_info("digits").is_8bit_image, dataset_info("digits").num_levels
    (64, True, 17)
    >>> "two_moons" in list_datasets()
    True
    >>> dataset_info("two_moons").context_shape, dataset_info("rings").context_shape
    ((2,), None)
"""

import dataclasses
import math

from . import conditional, synthetic
from .digits_builder import DIGITS_LEVELS, DIGITS_SPLIT_SIZES
from .toy_builder import TOY_SPLITS

__all__ = ["FlowDatasetInfo", "dataset_info", "list_datasets"]


@dataclasses.dataclass(frozen=True)
class FlowDatasetInfo:
    """What a model or the command line needs to know about a dataset.

    Attributes:
      name: the name `make_dataset` takes.
      event_shape: shape of one example, e.g. (2,) or (28, 28, 1).
      is_8bit_image: True for uint8 images (dequantized to [0, 1) by `make_dataset`; report bits/dim).
      num_dims: number of dimensions D of one example (the product of `event_shape`), for bits/dim.
      splits: the named splits.
      tfds_name: the name to give `tfds.load`.
      needs_download: True when the data must be prepared with `tfds build` before use (network).
      num_levels: how many values a pixel takes: 256 for 8-bit images, 17 for digits (their 17 grey levels,
        stored on the 8-bit scale), None for continuous data. `make_dataset` dequantizes at this quantisation,
        x = (level + u) / num_levels, and `bits_per_dim(..., num_levels=...)` counts bits per pixel of it.
      context_shape: shape of the one-hot condition c that `make_dataset(..., conditional=True)` yields with
        each x, (K,) for K classes; None when the data have no labels (no conditional version).
      class_names: the name of each of the K classes (row titles of conditional sample figures), or None.
    """

    name: str
    event_shape: tuple[int, ...]
    is_8bit_image: bool
    splits: tuple[str, ...]
    tfds_name: str
    needs_download: bool = False
    levels: int = 256
    context_shape: tuple[int, ...] | None = None
    class_names: tuple[str, ...] | None = None

    @property
    def num_dims(self) -> int:
        return math.prod(self.event_shape)

    @property
    def num_levels(self) -> int | None:
        return self.levels if self.is_8bit_image else None


def _toy_info(name: str) -> FlowDatasetInfo:
    labelled = conditional.CONDITIONAL_DENSITIES.get(name)
    return FlowDatasetInfo(
        name,
        (2,),
        False,
        TOY_SPLITS,
        f"tfp_flows_toy/{name}",
        context_shape=labelled.context_shape if labelled else None,
        class_names=labelled.class_names if labelled else None,
    )


def _tfds_images(name: str, event_shape: tuple[int, int, int], class_names: tuple[str, ...]) -> FlowDatasetInfo:
    """A TFDS data set of 8-bit images with one label of len(class_names) classes, split into train and test."""
    return FlowDatasetInfo(
        name,
        event_shape,
        True,
        ("train", "test"),
        name,
        needs_download=True,
        context_shape=(len(class_names),),
        class_names=class_names,
    )


_DIGIT_NAMES = tuple(str(digit) for digit in range(10))
# CIFAR-10's label order (batches.meta.txt of Krizhevsky's release, which TFDS reads for its names).
_CIFAR10_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

_INFOS = {
    **{name: _toy_info(name) for name in synthetic.DENSITIES},
    "digits": FlowDatasetInfo(
        "digits",
        (8, 8, 1),
        True,
        tuple(DIGITS_SPLIT_SIZES),
        "tfp_flows_digits",
        levels=DIGITS_LEVELS,
        context_shape=(10,),
        class_names=_DIGIT_NAMES,
    ),
    **{
        name: _tfds_images(name, event_shape, class_names)
        for name, event_shape, class_names in (
            ("mnist", (28, 28, 1), _DIGIT_NAMES),
            ("cifar10", (32, 32, 3), _CIFAR10_NAMES),
        )
    },
}


def list_datasets() -> list[str]:
    """The names `make_dataset` and `dataset_info` accept, sorted."""
    return sorted(_INFOS)


def dataset_info(name: str) -> FlowDatasetInfo:
    """The `FlowDatasetInfo` of dataset `name`; ValueError listing the valid names otherwise."""
    if name not in _INFOS:
        raise ValueError(f"`name` must be one of {list_datasets()}; received {name!r}")
    return _INFOS[name]
