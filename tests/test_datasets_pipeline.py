"""make_dataset: shapes, dtypes, ranges, dequantization, seeded shuffling, epochs, remainders, sharding, errors,
and conditional (x, c) pairs."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from tfp_flows.datasets import dataset_info, digits_split, list_datasets, make_dataset, toy_labelled_split, toy_split
from tfp_flows.datasets.digits_builder import digits_levels_to_uint8


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


def _batches(ds, count=None):
    ds = ds if count is None else ds.take(count)
    return [tf.nest.map_structure(lambda tensor: tensor.numpy(), batch) for batch in ds]


def _sorted_rows(points):
    flat = np.asarray(points).reshape(len(points), -1)
    return flat[np.lexsort(flat.T[::-1])]


def test_list_and_info():
    names = list_datasets()
    assert names == sorted(names)
    assert {
        "two_moons",
        "eight_gaussians",
        "checkerboard",
        "rings",
        "pinwheel",
        "prelu",
        "digits",
        "mnist",
        "cifar10",
    } == set(names)
    moons, mnist, cifar = dataset_info("two_moons"), dataset_info("mnist"), dataset_info("cifar10")
    assert (moons.event_shape, moons.is_8bit_image, moons.num_dims, moons.num_levels) == ((2,), False, 2, None)
    assert (mnist.event_shape, mnist.is_8bit_image, mnist.num_dims, mnist.num_levels) == ((28, 28, 1), True, 784, 256)
    assert cifar.num_dims == 32 * 32 * 3 and cifar.needs_download
    assert dataset_info("digits").num_dims == 64 and not dataset_info("digits").needs_download
    assert dataset_info("digits").num_levels == 17
    contexts = {name: dataset_info(name).context_shape for name in names}
    assert contexts == {
        "two_moons": (2,),
        "eight_gaussians": (8,),
        "checkerboard": None,
        "rings": None,
        "pinwheel": None,
        "prelu": None,
        "digits": (10,),
        "mnist": (10,),
        "cifar10": (10,),
    }
    for name in names:
        info = dataset_info(name)
        assert (info.class_names is None) == (info.context_shape is None)
        assert info.class_names is None or len(info.class_names) == info.context_shape[0]


def test_toy_shapes_dtypes_and_cardinality():
    ds = make_dataset("rings", batch_size=1000)
    assert ds.element_spec == tf.TensorSpec([1000, 2], tf.float32)
    assert int(ds.cardinality()) == 50  # 50_000 // 1000
    ds64 = make_dataset("rings", split="test", batch_size=3000, dtype=tf.float64, shuffle=False)
    batches = _batches(ds64)
    assert [len(b) for b in batches] == [3000, 3000, 3000, 1000]  # no shuffle -> keep the remainder by default
    assert batches[0].dtype == np.float64
    assert int(ds64.cardinality()) == 4
    dropped = make_dataset("rings", split="test", batch_size=3000, shuffle=False, drop_remainder=True)
    assert int(dropped.cardinality()) == 3 and dropped.element_spec.shape == (3000, 2)


def test_unshuffled_order_is_the_split_and_an_epoch_is_a_permutation():
    plain = np.concatenate(_batches(make_dataset("pinwheel", "validation", batch_size=4096, shuffle=False)))
    np.testing.assert_array_equal(plain, toy_split("pinwheel", "validation"))
    shuffled = np.concatenate(
        _batches(make_dataset("pinwheel", "validation", batch_size=4096, drop_remainder=False, seed=3))
    )
    assert not np.array_equal(shuffled, plain)
    np.testing.assert_array_equal(_sorted_rows(shuffled), _sorted_rows(plain))


def test_shuffling_is_seeded_and_differs_between_epochs():
    first = _batches(make_dataset("two_moons", batch_size=256, seed=1), 3)
    again = _batches(make_dataset("two_moons", batch_size=256, seed=1), 3)
    other = _batches(make_dataset("two_moons", batch_size=256, seed=2), 3)
    np.testing.assert_array_equal(np.stack(first), np.stack(again))
    assert not np.array_equal(first[0], other[0])
    ds = make_dataset("two_moons", batch_size=256, seed=1, num_examples=1024)
    epoch_one, epoch_two = _batches(ds), _batches(ds)  # Keras iterates the dataset anew for each epoch
    assert not np.array_equal(np.concatenate(epoch_one), np.concatenate(epoch_two))
    np.testing.assert_array_equal(_sorted_rows(np.concatenate(epoch_one)), _sorted_rows(np.concatenate(epoch_two)))


def test_repeat_is_an_endless_sequence_of_epochs_and_resumes_exactly():
    ds = make_dataset("checkerboard", batch_size=100, num_examples=500, seed=4, repeat=True)
    assert int(ds.cardinality()) == tf.data.INFINITE_CARDINALITY
    stream = _batches(ds, 15)  # three data epochs of five batches
    for epoch in range(3):
        one = np.concatenate(stream[5 * epoch : 5 * epoch + 5])
        np.testing.assert_array_equal(_sorted_rows(one), _sorted_rows(toy_split("checkerboard", "train")[:500]))
    assert not np.array_equal(stream[0], stream[5])  # a new order each epoch
    resumed = _batches(
        make_dataset("checkerboard", batch_size=100, num_examples=500, seed=4, repeat=True, initial_epoch=2), 5
    )
    np.testing.assert_array_equal(np.stack(resumed), np.stack(stream[10:15]))


@pytest.mark.slow
def test_digits_uniform_dequantization(data_dir):
    ds = make_dataset("digits", batch_size=64, seed=0, data_dir=data_dir)
    assert ds.element_spec == tf.TensorSpec([64, 8, 8, 1], tf.float32)
    assert int(ds.cardinality()) == 1297 // 64
    x = np.concatenate(_batches(ds)).astype(np.float64)
    assert x.min() >= 0.0 and x.max() < 1.0
    # Digits are dequantized at their own 17 levels: x = (level + u) / 17, level = the scikit-learn count 0..16.
    levels = np.floor(x * 17.0)
    assert set(np.unique(levels)) == set(range(17))
    noise = x * 17.0 - levels
    assert abs(noise.mean() - 0.5) < 0.01 and abs(noise.std() - np.sqrt(1 / 12)) < 0.01  # U[0, 1)
    # Same pixels, fresh noise, in the next epoch; same noise for the same seed.
    again = np.concatenate(_batches(make_dataset("digits", batch_size=64, seed=0, data_dir=data_dir)))
    np.testing.assert_array_equal(x, again.astype(np.float64))
    next_epoch = np.concatenate(_batches(ds)).astype(np.float64)
    assert not np.array_equal(_sorted_rows(next_epoch), _sorted_rows(x))


def test_digits_without_dequantization_gives_bin_centres(data_dir):
    ds = make_dataset(
        "digits", "test", batch_size=50, shuffle=False, dequantize=None, data_dir=data_dir, dtype=tf.float64
    )
    x = np.concatenate(_batches(ds))
    assert x.dtype == np.float64 and x.shape == (250, 8, 8, 1)
    levels = x * 17.0 - 0.5
    np.testing.assert_array_equal(levels, np.round(levels))
    # The level of every pixel, mapped back to the 8-bit scale, is the stored pixel (the map is one to one).
    np.testing.assert_array_equal(_sorted_rows(digits_levels_to_uint8(levels)), _sorted_rows(digits_split("test")[0]))


def test_conditional_toy_pairs_each_point_with_its_generating_class():
    points, labels = toy_labelled_split("two_moons", "validation")
    np.testing.assert_array_equal(points, toy_split("two_moons", "validation"))
    ordered = make_dataset(
        "two_moons", "validation", batch_size=4096, shuffle=False, conditional=True, dtype=tf.float64
    )
    assert ordered.element_spec == (tf.TensorSpec([None, 2], tf.float64), tf.TensorSpec([None, 2], tf.float64))
    x, c = (np.concatenate(parts) for parts in zip(*_batches(ordered)))
    np.testing.assert_array_equal(x, points)
    np.testing.assert_array_equal(c, np.eye(2)[labels])
    # Shuffled, batched and sharded: the x are exactly the unconditional dataset's, the c still follow them.
    context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1, num_replicas_in_sync=2)
    common = dict(batch_size=64, num_examples=1000, seed=3, input_context=context)
    pairs = _batches(make_dataset("two_moons", conditional=True, **common))
    plain = _batches(make_dataset("two_moons", **common))
    np.testing.assert_array_equal(np.stack([x for x, _ in pairs]), np.stack(plain))
    train_points, train_labels = toy_labelled_split("two_moons", "train")
    lookup = {point.tobytes(): label for point, label in zip(train_points[:1000], train_labels[:1000])}
    for x, c in pairs:
        assert c.shape == (32, 2) and c.dtype == np.float32
        np.testing.assert_array_equal(c.argmax(axis=-1), [lookup[point.tobytes()] for point in x])


def test_conditional_digits_carry_the_label_of_each_image(data_dir):
    ds = make_dataset(
        "digits", "test", batch_size=50, shuffle=False, dequantize=None, data_dir=data_dir, conditional=True
    )
    assert ds.element_spec[1] == tf.TensorSpec([None, 10], tf.float32)
    pairs = _batches(ds)
    plain = _batches(make_dataset("digits", "test", batch_size=50, shuffle=False, dequantize=None, data_dir=data_dir))
    np.testing.assert_array_equal(np.concatenate([x for x, _ in pairs]), np.concatenate(plain))
    images, labels = digits_split("test")
    lookup = {}
    for image, label in zip(images, labels):
        lookup.setdefault(image.tobytes(), set()).add(int(label))
    for x, c in pairs:
        pixels = digits_levels_to_uint8(x.astype(np.float64) * 17.0 - 0.5)
        assert np.all(c.sum(axis=-1) == 1)
        for image, label in zip(pixels, c.argmax(axis=-1)):
            assert int(label) in lookup[image.tobytes()]


def test_per_replica_batching_and_sharding_with_input_context():
    shards = []
    for pipeline in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pipeline, num_replicas_in_sync=2)
        ds = make_dataset(
            "eight_gaussians",
            batch_size=64,
            num_examples=256,
            shuffle=False,
            drop_remainder=True,
            input_context=context,
        )
        assert ds.element_spec.shape == (32, 2)  # global batch 64 over 2 replicas
        shards.append(np.concatenate(_batches(ds)))
    assert len(shards[0]) == len(shards[1]) == 128
    np.testing.assert_array_equal(
        _sorted_rows(np.concatenate(shards)), _sorted_rows(toy_split("eight_gaussians", "train")[:256])
    )


def test_image_pipelines_draw_different_noise(data_dir):
    batches = []
    for pipeline in range(2):
        context = tf.distribute.InputContext(2, pipeline, 2)
        ds = make_dataset(
            "digits", batch_size=8, num_examples=8, shuffle=False, data_dir=data_dir, input_context=context
        )
        batches.append(next(iter(ds)).numpy() * 17.0 % 1.0)
    assert not np.allclose(batches[0], batches[1])


@pytest.mark.slow
def test_distribute_datasets_from_function_under_mirrored_strategy(tmp_path):
    code = textwrap.dedent("""
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from tfp_flows.datasets import make_dataset
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        dist = strategy.distribute_datasets_from_function(
            lambda ctx: make_dataset("two_moons", batch_size=16, num_examples=64, input_context=ctx))
        batch = next(iter(dist))
        shapes = [tuple(t.shape) for t in strategy.experimental_local_results(batch)]
        print("SHAPES", shapes)
    """)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "SHAPES [(8, 2), (8, 2)]" in out.stdout


@pytest.mark.parametrize(
    "kwargs, error, pattern",
    [
        (dict(name="moons"), ValueError, "two_moons"),
        (dict(name="two_moons", split="valid"), ValueError, "validation"),
        (dict(name="digits", split="valid"), ValueError, "validation"),
        (dict(name="two_moons", batch_size=0), ValueError, "batch_size"),
        (dict(name="two_moons", batch_size=8.0), ValueError, "`batch_size` must be an int >= 1; received 8.0 of type"),
        (dict(name="two_moons", dequantize="gaussian"), ValueError, "dequantize"),
        (dict(name="two_moons", dtype=tf.int32), ValueError, "dtype"),
        (dict(name="two_moons", seed="a"), ValueError, "`seed` must be an int; received 'a' of type str"),
        (dict(name="two_moons", input_context="ctx"), TypeError, "input_context"),
        (dict(name="two_moons", num_examples=10, batch_size=64), ValueError, "fewer than one batch"),
        (
            dict(
                name="two_moons",
                num_examples=10,
                batch_size=64,
                drop_remainder=False,
                input_context=tf.distribute.InputContext(16, 15, 1),
            ),
            ValueError,
            "0 examples",
        ),
        (dict(name="two_moons", initial_epoch=-1), ValueError, "`initial_epoch` must be an int >= 0; received -1"),
        (dict(name="rings", conditional=True), ValueError, r"`conditional=True` needs .*'rings' has none.*two_moons"),
        (dict(name="two_moons", conditional="yes"), TypeError, "`conditional` must be a bool"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, error, pattern):
    kwargs = {"batch_size": 8, **kwargs}
    with pytest.raises(error, match=pattern):
        make_dataset(**kwargs)
