"""TFDS builders: the toy densities and scikit-learn's digits load through `tfds.load`, offline, deterministically.

Every test writes into a temporary data directory.
"""

import numpy as np
import pytest
import tensorflow_datasets as tfds

import tfp_flows.datasets  # noqa: F401  (registers the builders)
from tfp_flows.datasets import synthetic
from tfp_flows.datasets.digits_builder import DIGITS_SPLIT_SIZES, digits_levels_to_uint8, digits_split
from tfp_flows.datasets.toy_builder import TOY_SPLIT_SIZES, ToyConfig, toy_labelled_split, toy_split


def _sorted_rows(points):
    points = np.asarray(points)
    flat = points.reshape(len(points), -1)
    return flat[np.lexsort(flat.T[::-1])]


def _load_all(builder_name, split, data_dir, key, **kwargs):
    ds = tfds.load(builder_name, split=split, data_dir=data_dir, batch_size=-1, **kwargs)
    return tfds.as_numpy(ds)[key] if key else tfds.as_numpy(ds)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


def test_builders_are_registered_under_documented_names():
    assert {"tfp_flows_toy", "tfp_flows_digits"} <= set(tfds.list_builders())
    configs = {config.name for config in tfds.builder_cls("tfp_flows_toy").BUILDER_CONFIGS}
    assert configs == set(synthetic.DENSITIES)
    assert str(tfds.builder_cls("tfp_flows_toy").VERSION) == "1.1.0"
    labelled = {name for name in configs if "label" in tfds.builder("tfp_flows_toy", config=name).info.features}
    assert labelled == {"two_moons", "eight_gaussians"}


@pytest.mark.slow
def test_toy_config_loads_with_documented_split_sizes_and_same_points_as_toy_split(data_dir):
    for split, size in TOY_SPLIT_SIZES.items():
        data = _load_all("tfp_flows_toy/two_moons", split, data_dir, None)
        x = data["x"]
        assert x.shape == (size, 2) and x.dtype == np.float32
        np.testing.assert_array_equal(_sorted_rows(x), _sorted_rows(toy_split("two_moons", split)))
        # Since 1.1.0 each point carries the moon that made it (the same pairs as toy_labelled_split).
        points, labels = toy_labelled_split("two_moons", split)
        np.testing.assert_array_equal(
            _sorted_rows(np.column_stack([x, data["label"]])), _sorted_rows(np.column_stack([points, labels]))
        )
    # Splits are different draws.
    assert not np.array_equal(toy_split("two_moons", "validation"), toy_split("two_moons", "test"))


@pytest.mark.parametrize("name", sorted(synthetic.DENSITIES))
def test_small_custom_config_of_every_density_is_deterministic(name, tmp_path):
    def load(config, directory):
        return _load_all("tfp_flows_toy", "train", str(directory), "x", builder_kwargs={"config": config})

    config = ToyConfig(name=f"{name}_small", density=name, seed=5, train_size=64, validation_size=8, test_size=8)
    first, again = load(config, tmp_path / "a"), load(config, tmp_path / "b")
    np.testing.assert_array_equal(_sorted_rows(first), _sorted_rows(again))
    np.testing.assert_array_equal(_sorted_rows(first), _sorted_rows(synthetic.DENSITIES[name].sample(64, [5, 0])))
    other_seed = ToyConfig(name=f"{name}_seed6", density=name, seed=6, train_size=64, validation_size=8, test_size=8)
    assert not np.array_equal(_sorted_rows(first), _sorted_rows(load(other_seed, tmp_path / "a")))


def test_digits_level_mapping_by_hand():
    # floor(255 v / 16 + 1/2): 0 -> 0, 1 -> 16 (15.94), 8 -> 128 (127.5 rounds up), 15 -> 239 (239.06), 16 -> 255.
    np.testing.assert_array_equal(digits_levels_to_uint8([0, 1, 8, 15, 16]), [0, 16, 128, 239, 255])
    assert digits_levels_to_uint8([3]).dtype == np.uint8


@pytest.mark.slow
def test_digits_builder_offline_shapes_range_and_splits(data_dir):
    from sklearn.datasets import load_digits

    originals = load_digits()
    expected_levels = set(np.floor(np.arange(17) * 255 / 16 + 0.5).astype(int))
    seen_images = []
    for split, size in DIGITS_SPLIT_SIZES.items():
        data = _load_all("tfp_flows_digits", split, data_dir, None)
        images, labels = data["image"], data["label"]
        assert images.shape == (size, 8, 8, 1) and images.dtype == np.uint8
        assert labels.shape == (size,) and set(np.unique(labels)) <= set(range(10))
        assert set(np.unique(images)) <= expected_levels
        np.testing.assert_array_equal(_sorted_rows(images), _sorted_rows(digits_split(split)[0]))
        seen_images.append(images)
    everything = np.concatenate(seen_images)
    assert everything.min() == 0 and everything.max() == 255
    # The three splits partition sklearn's 1797 images (as a multiset).
    want = np.floor(originals.images * 255 / 16 + 0.5).astype(np.uint8)[..., None]
    np.testing.assert_array_equal(_sorted_rows(everything), _sorted_rows(want))


def test_digits_labels_stay_with_their_images(data_dir):
    from sklearn.datasets import load_digits

    originals = load_digits()
    lookup = {}
    for image, label in zip(np.floor(originals.images * 255 / 16 + 0.5).astype(np.uint8), originals.target):
        lookup.setdefault(image.tobytes(), set()).add(int(label))
    data = _load_all("tfp_flows_digits", "test", data_dir, None)
    for image, label in zip(data["image"][..., 0], data["label"]):
        assert int(label) in lookup[image.tobytes()]
