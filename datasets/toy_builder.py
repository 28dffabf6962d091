"""TFDS builder for the 2-D toy densities: `tfds.load("tfp_flows_toy/<density>")` once this package is imported.

One builder, `tfp_flows_toy`, with one config per density in `synthetic.DENSITIES` (two_moons,
eight_gaussians, checkerboard, rings, pinwheel, prelu). Each config has fixed-size `train` / `validation` /
`test` splits (`TOY_SPLIT_SIZES`) drawn from the density's sampler with the seed `[config.seed, split_index]`,
so the data are the same on every machine; nothing is downloaded, the data are generated locally the first
time (about a second per config). Examples are `{"x": float32[2]}`, plus `"label"` (the class that made the
point: the moon, the Gaussian component; `conditional.CONDITIONAL_DENSITIES`) for two_moons and
eight_gaussians since version 1.1.0 (same points as 1.0.0). TFDS stores examples in an order of its own (a
hash of the key), so compare splits as sets of points, not by position.

`toy_split(name, split)` returns the same points as a NumPy array in generation order, and
`toy_labelled_split(name, split)` the same points with their classes; `make_dataset` uses them directly (no
files written), and the tests check that both routes hold identical data.

Example:
    >>> import tensorflow_datasets as tfds
    >>> import tfp_flows.datasets  # registers the builders
    >>> ds = tfds.load("tfp_flows_toy/two_moons", split="train", data_dir="/tmp/tfds")  # doctest: +SKIP
    >>> custom = ToyConfig(name="moons_small", density="two_moons", seed=1, train_size=500)
    >>> builder = tfds.builder("tfp_flows_toy", config=custom, data_dir="/tmp/tfds")  # doctest: +SKIP
"""

import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from . import conditional, synthetic
from .tfds_loading import PackagedBuilder

__all__ = ["TfpFlowsToy", "ToyConfig", "TOY_SPLIT_SIZES", "TOY_SPLITS", "toy_split", "toy_labelled_split"]

TOY_SPLITS = ("train", "validation", "test")
TOY_SPLIT_SIZES = {"train": 50_000, "validation": 10_000, "test": 10_000}


def toy_split(name: str, split: str, seed: int = 0, num_examples: int | None = None) -> np.ndarray:
    """The points of split `split` of toy density `name`, float32 [n, 2], in generation order.

    Drawn with `synthetic.get_density(name).sample(n, seed=[seed, index of split in TOY_SPLITS])`;
    `num_examples` defaults to `TOY_SPLIT_SIZES[split]`.
    """
    density = synthetic.get_density(name)
    return density.sample(_size(split, num_examples), seed=_split_seed(seed, split), dtype=np.float32)


def toy_labelled_split(
    name: str, split: str, seed: int = 0, num_examples: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(points float32 [n, 2], classes int64 [n]) of split `split` of conditional toy density `name`.

    The points are exactly `toy_split(name, split, seed, num_examples)`; the classes are those that made them
    (`conditional.get_conditional_density(name).sample_labels` with the same seed).
    """
    density = conditional.get_conditional_density(name)
    return density.sample_labels(_size(split, num_examples), seed=_split_seed(seed, split), dtype=np.float32)


def _size(split: str, num_examples: int | None) -> int:
    if split not in TOY_SPLITS:
        raise ValueError(f"`split` must be one of {list(TOY_SPLITS)} for toy data; received {split!r}")
    return TOY_SPLIT_SIZES[split] if num_examples is None else num_examples


def _split_seed(seed: int, split: str) -> list[int]:
    return [int(seed), TOY_SPLITS.index(split)]


@dataclasses.dataclass
class ToyConfig(tfds.core.BuilderConfig):
    """Which density, which seed, and how many points per split."""

    density: str = "two_moons"
    seed: int = 0
    train_size: int = TOY_SPLIT_SIZES["train"]
    validation_size: int = TOY_SPLIT_SIZES["validation"]
    test_size: int = TOY_SPLIT_SIZES["test"]


class TfpFlowsToy(PackagedBuilder):
    """2-D toy densities for normalizing flows (see `tfp_flows.datasets.synthetic`)."""

    name = "tfp_flows_toy"
    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {
        "1.0.0": "Initial release.",
        "1.1.0": "Adds the feature 'label' (the generating class) to two_moons and eight_gaussians; same points.",
    }
    BUILDER_CONFIGS = [
        ToyConfig(
            name=density_name, density=density_name, description=(type(density).__doc__ or "").strip().split("\n")[0]
        )
        for density_name, density in synthetic.DENSITIES.items()
    ]

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description="2-D toy densities with exact samplers and log-densities (tfp_flows.datasets.synthetic).",
            features=tfds.features.FeaturesDict(self._features()),
            supervised_keys=("x", "label") if self._is_labelled() else None,
            citation="Grathwohl et al. (2019), FFJORD, ICLR; Rezende & Mohamed (2015), ICML.",
        )

    def _is_labelled(self) -> bool:
        return self.builder_config.density in conditional.CONDITIONAL_DENSITIES

    def _features(self) -> tfds.features.FeaturesDict:
        features = {"x": tfds.features.Tensor(shape=(2,), dtype=np.float32)}
        if self._is_labelled():
            names = conditional.get_conditional_density(self.builder_config.density).class_names
            features["label"] = tfds.features.ClassLabel(names=list(names))
        return features

    def _split_generators(self, dl_manager: Any) -> dict[str, Iterator[tuple[int, dict[str, Any]]]]:
        del dl_manager  # generated locally, nothing to download
        return {split: self._generate_examples(split) for split in TOY_SPLITS}

    def _generate_examples(self, split: str) -> Iterator[tuple[int, dict[str, Any]]]:
        config = self.builder_config
        size = getattr(config, f"{split}_size")
        if not self._is_labelled():
            for index, point in enumerate(toy_split(config.density, split, seed=config.seed, num_examples=size)):
                yield index, {"x": point}
            return
        points, labels = toy_labelled_split(config.density, split, seed=config.seed, num_examples=size)
        for index, (point, label) in enumerate(zip(points, labels)):
            yield index, {"x": point, "label": int(label)}
