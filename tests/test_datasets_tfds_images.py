"""MNIST and CIFAR-10 through tfds.load (mocked, offline), and the error that says how to prepare missing data."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from tfp_flows.datasets import DatasetNotPreparedError, dataset_info, load_tfds_split, make_dataset


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
@pytest.mark.slow
def test_mocked_dataset_through_make_dataset(name, tmp_path):
    event_shape = dataset_info(name).event_shape
    with tfds.testing.mock_data(num_examples=10):
        ds = make_dataset(name, batch_size=4, data_dir=str(tmp_path))
        assert ds.element_spec == tf.TensorSpec([4, *event_shape], tf.float32)
        assert int(ds.cardinality()) == 2  # 10 examples, remainder dropped when shuffling
        x = np.concatenate([b.numpy() for b in ds]).astype(np.float64)
        assert x.min() >= 0.0 and x.max() < 1.0
        centres = np.concatenate(
            [
                b.numpy()
                for b in make_dataset(
                    name, "test", batch_size=4, shuffle=False, dequantize=None, data_dir=str(tmp_path), dtype=tf.float64
                )
            ]
        )
        # conditional=True: the same x, each with its TFDS label as a one-hot c of length 10.
        pairs = make_dataset(name, batch_size=4, data_dir=str(tmp_path), conditional=True)
        assert pairs.element_spec[1] == tf.TensorSpec([4, 10], tf.float32)
        np.testing.assert_array_equal(np.concatenate([b.numpy() for b, _ in pairs]).astype(np.float64), x)
        labelled = [
            (b.numpy(), c.numpy())
            for b, c in make_dataset(
                name,
                "test",
                batch_size=4,
                shuffle=False,
                dequantize=None,
                data_dir=str(tmp_path),
                dtype=tf.float64,
                conditional=True,
            )
        ]
        stored = {
            example["image"].tobytes(): int(example["label"])
            for example in load_tfds_split(name, "test", data_dir=str(tmp_path)).as_numpy_iterator()
        }
    images = np.round(np.concatenate([b for b, _ in labelled]) * 256 - 0.5).astype(np.uint8)
    c = np.concatenate([c for _, c in labelled])
    assert set(np.unique(c)) == {0.0, 1.0} and np.all(c.sum(axis=-1) == 1)
    assert [stored[image.tobytes()] for image in images] == c.argmax(axis=-1).tolist()
    assert centres.shape == (10, *event_shape)
    pixels = centres * 256 - 0.5
    np.testing.assert_array_equal(pixels, np.round(pixels))
    assert pixels.min() >= 0 and pixels.max() <= 255


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_missing_data_says_how_to_prepare_it(name, tmp_path):
    empty = str(tmp_path / "nothing_here")
    with pytest.raises(DatasetNotPreparedError) as caught:
        make_dataset(name, data_dir=empty)
    message = str(caught.value)
    assert f"tfds build {name} --data_dir {empty}" in message
    assert "download=True" in message
    assert isinstance(caught.value, FileNotFoundError)
    assert isinstance(caught.value.__cause__, AssertionError)  # TFDS's original error is kept


def test_missing_data_message_names_tfds_default_directory(tmp_path, monkeypatch):
    monkeypatch.setattr(tfds.core.constants, "DATA_DIR", str(tmp_path / "default_dir"))
    with pytest.raises(DatasetNotPreparedError, match=f"tfds build mnist --data_dir {tmp_path / 'default_dir'}"):
        load_tfds_split("mnist", "train")


def test_num_examples_reads_a_slice(tmp_path):
    with tfds.testing.mock_data(num_examples=12):
        ds = make_dataset("mnist", batch_size=2, num_examples=6, shuffle=False, data_dir=str(tmp_path))
        assert int(ds.cardinality()) == 3
