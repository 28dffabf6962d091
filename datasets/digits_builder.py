"""TFDS builder for scikit-learn's bundled 8x8 handwritten digits: a small real image dataset that works offline.

`tfds.load("tfp_flows_digits")` once this package is imported. The 1797 images ship inside scikit-learn
(`sklearn.datasets.load_digits`, the UCI "optical recognition of handwritten digits" test set, Alpaydin &
Kaynak 1998), so nothing is downloaded.

Pixels: the originals are counts 0..16 (how many of a 4x4 block of the 32x32 bitmap were set). They are put on
the 8-bit scale by v -> floor(255 v / 16 + 1/2), an order-preserving map with 0 -> 0 and 16 -> 255, and stored as
uint8 images of shape [8, 8, 1] (feature "image") with their class (feature "label", 0..9). Only these 17 of
the 256 levels occur, so `make_dataset` dequantizes digits at their own quantisation, x = (v + u) / 17 with v
the level (`DIGITS_LEVELS`): a density on [0, 1) whose bits/dim (`bits_per_dim(..., num_levels=17)`) is
-log2 P(image) / 64 for the discrete model it defines, which puts all its mass on the 17 levels that occur.
That is also its bits/dim on the 8-bit scale (the map v -> pixel is one to one), so a model that knows only
which 17 levels occur scores log2 17 = 4.09, and anything lower has learned the digits themselves.
(Dequantizing at 256 levels instead would ask a continuous flow for 17 spikes of width 1/256 per pixel.)

Splits (fixed, from the permutation `np.random.default_rng(0).permutation(1797)`): train 1297, validation 250,
test 250 (`DIGITS_SPLIT_SIZES`).

Example:
    >>> import tensorflow_datasets as tfds
    >>> import tfp_flows.datasets  # registers the builder
    >>> ds = tfds.load("tfp_flows_digits", split="train", data_dir="/tmp/tfds")  # doctest: +SKIP
"""

from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import tensorflow as tf
import tensorflow_datasets as tfds

from .tfds_loading import PackagedBuilder

__all__ = [
    "TfpFlowsDigits",
    "DIGITS_LEVELS",
    "DIGITS_SPLIT_SIZES",
    "digits_split",
    "digits_levels_to_uint8",
    "uint8_to_levels",
]

DIGITS_SPLIT_SIZES = {"train": 1297, "validation": 250, "test": 250}
DIGITS_LEVELS = 17  # the originals count 0..16 set bits of a 4x4 block


def digits_levels_to_uint8(levels: npt.ArrayLike) -> np.ndarray:
    """Map digit levels 0..16 to the 8-bit scale: floor(255 v / 16 + 1/2) as uint8."""
    levels = np.asarray(levels, np.float64)
    return np.floor(levels * (255.0 / 16.0) + 0.5).astype(np.uint8)


def uint8_to_levels(pixels: tf.Tensor, num_levels: int) -> tf.Tensor:
    """The inverse of the map to the 8-bit scale for `num_levels`-level data: round(pixel (L - 1) / 255).

    Exact for `digits_levels_to_uint8` (the rounding error there, at most 1/2 pixel, is 1/32 of a level here).
    Works on NumPy arrays and on tensors (float in, float out).
    """
    return (pixels * ((num_levels - 1) / 255.0) + 0.5) // 1.0


def digits_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images uint8 [n, 8, 8, 1], labels int64 [n]) of `split`, in the builder's generation order."""
    from sklearn.datasets import load_digits  # imported here: only needed when the data are generated

    if split not in DIGITS_SPLIT_SIZES:
        raise ValueError(f"`split` must be one of {list(DIGITS_SPLIT_SIZES)}; received {split!r}")
    digits = load_digits()
    order = np.random.default_rng(0).permutation(len(digits.target))
    start = 0
    for name, size in DIGITS_SPLIT_SIZES.items():
        if name == split:
            index = order[start : start + size]
            break
        start += size
    images = digits_levels_to_uint8(digits.images[index])[..., np.newaxis]
    return images, digits.target[index].astype(np.int64)


class TfpFlowsDigits(PackagedBuilder):
    """scikit-learn's 8x8 digits as uint8 [8, 8, 1] images on the 8-bit scale, with labels."""

    name = "tfp_flows_digits"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=(
                "scikit-learn's bundled 8x8 handwritten digits, levels 0..16 mapped to 0..255 by "
                "floor(255 v / 16 + 1/2)."
            ),
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(8, 8, 1)),
                    "label": tfds.features.ClassLabel(num_classes=10),
                }
            ),
            supervised_keys=("image", "label"),
            homepage="https://archive.ics.uci.edu/dataset/80/optical+recognition+of+handwritten+digits",
            citation="Alpaydin, E. & Kaynak, C. (1998). Optical Recognition of Handwritten Digits. UCI.",
        )

    def _split_generators(self, dl_manager: Any) -> dict[str, Iterator[tuple[int, dict[str, Any]]]]:
        del dl_manager  # bundled with scikit-learn, nothing to download
        return {split: self._generate_examples(split) for split in DIGITS_SPLIT_SIZES}

    def _generate_examples(self, split: str) -> Iterator[tuple[int, dict[str, Any]]]:
        images, labels = digits_split(split)
        for index, (image, label) in enumerate(zip(images, labels)):
            yield index, {"image": image, "label": int(label)}
