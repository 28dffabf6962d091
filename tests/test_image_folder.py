"""load_image_folder and image_batches: layouts, labels, seeded splits, resizing, channels, each refused folder
with its one-line message, the training batches, and a Glow and a conditional Glow fitted from a folder."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_models import Glow
from tfp_flows.datasets import ImageFolder, image_batches, load_image_folder


def _write(path, pixels, kind="png"):
    """Write uint8 `pixels` [H, W, C] as a PNG or JPEG at `path` (its folders created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = tf.constant(np.asarray(pixels, np.uint8))
    encoded = tf.io.encode_png(pixels) if kind == "png" else tf.io.encode_jpeg(pixels, quality=100)
    tf.io.write_file(str(path), encoded)
    return str(path)


def _random_pixels(rng, shape=(4, 6, 1)):
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


def _flat_folder(root, count=20, shape=(4, 6, 1), seed=0):
    """`count` random PNGs directly in `root`: {path: pixels}."""
    rng = np.random.default_rng(seed)
    written = {}
    for i in range(count):
        pixels = _random_pixels(rng, shape)
        written[_write(root / f"img{i:02d}.png", pixels)] = pixels
    return written


def _class_folder(root, counts=(("cat", 7), ("ant", 5), ("ant-eater", 6)), shape=(4, 6, 3)):
    """One subfolder of random PNGs per class (some one level deeper): {path: class name}."""
    rng = np.random.default_rng(1)
    files = {}
    for name, count in counts:
        for i in range(count):
            where = root / name / ("deeper" if i % 3 == 0 else "") / f"{i}.png"
            files[_write(where, _random_pixels(rng, shape))] = name
    return files


def _examples(dataset):
    return [tf.nest.map_structure(lambda tensor: tensor.numpy(), example) for example in dataset]


# ---------------------------------------------------------------------------------------------------------------
# Layouts, labels, splits.
def test_a_flat_folder_yields_its_images_unchanged_with_exact_split_sizes(tmp_path):
    written = _flat_folder(tmp_path, count=20)
    (tmp_path / "notes.txt").write_text("not an image")  # skipped, as are hidden files
    _write(tmp_path / ".hidden.png", np.zeros((9, 9, 1)))
    folder = load_image_folder(tmp_path, validation_fraction=0.1, test_fraction=0.2)
    assert isinstance(folder, ImageFolder)
    assert folder.image_shape == (4, 6, 1) and folder.class_names is None and folder.labels is None
    assert folder.num_examples == {"train": 14, "validation": 2, "test": 4}
    assert sorted(sum(folder.files.values(), ())) == sorted(written)
    for split in ("train", "validation", "test"):
        images = _examples(getattr(folder, split))
        assert len(images) == folder.num_examples[split] == len(folder.files[split])
        assert list(folder.files[split]) == sorted(folder.files[split])
        for file, image in zip(folder.files[split], images, strict=True):
            assert image.dtype == np.uint8
            np.testing.assert_array_equal(image, written[file])  # PNG is lossless and nothing is resized


def test_class_subfolders_give_labels_in_sorted_class_order(tmp_path):
    written = _class_folder(tmp_path)
    folder = load_image_folder(tmp_path, validation_fraction=0.2, test_fraction=0.2)
    assert folder.class_names == ("ant", "ant-eater", "cat")  # "ant-eater/" sorts before "ant/" as a path
    assert folder.image_shape == (4, 6, 3)
    assert sum(folder.num_examples.values()) == 18 and sum(map(len, folder.files.values())) == 18
    for split in ("train", "validation", "test"):
        pairs = _examples(getattr(folder, split))
        assert [label for _, label in pairs] == list(folder.labels[split])
        assert list(folder.files[split]) == sorted(folder.files[split])
        for file, (image, label) in zip(folder.files[split], pairs, strict=True):
            assert folder.class_names[label] == written[file] and label.dtype == np.int32
            assert image.shape == (4, 6, 3)


def test_the_split_is_fixed_by_the_seed_and_moves_few_files_when_one_is_added(tmp_path):
    _flat_folder(tmp_path, count=40)

    def split_of(seed):
        folder = load_image_folder(tmp_path, validation_fraction=0.2, test_fraction=0.2, seed=seed)
        return {file: split for split, files in folder.files.items() for file in files}

    first = split_of(0)
    assert split_of(0) == first
    assert split_of(1) != first
    _write(tmp_path / "extra.png", np.zeros((4, 6, 1)))
    after = split_of(0)
    moved = [file for file in first if after[file] != first[file]]
    assert len(moved) <= 2, moved  # a permutation of the file list would move about half of them


def test_no_test_split_when_test_fraction_is_zero_and_small_fractions_still_give_one_image(tmp_path):
    _flat_folder(tmp_path, count=5)
    folder = load_image_folder(tmp_path, validation_fraction=0.01, test_fraction=0.0)
    assert folder.test is None
    assert folder.num_examples == {"train": 4, "validation": 1, "test": 0}
    assert load_image_folder(tmp_path, validation_fraction=0.01, test_fraction=0.01).num_examples["test"] == 1


# ---------------------------------------------------------------------------------------------------------------
# Sizes, channels, formats.
def test_image_size_resizes_only_the_images_of_another_size(tmp_path):
    rng = np.random.default_rng(0)
    native = _random_pixels(rng, (4, 6, 1))
    kept = _write(tmp_path / "a_native.png", native)
    for i, shape in enumerate([(8, 12, 1), (5, 7, 1), (4, 6, 1), (16, 9, 1)]):
        _write(tmp_path / f"b{i}.png", _random_pixels(rng, shape))
    _write(tmp_path / "c_flat.png", np.full((8, 8, 1), 77))
    folder = load_image_folder(tmp_path, image_size=(4, 6), validation_fraction=0.2, test_fraction=0.0)
    assert folder.image_shape == (4, 6, 1)
    images = dict(
        zip(folder.files["train"] + folder.files["validation"], _examples(folder.train) + _examples(folder.validation))
    )
    assert all(image.shape == (4, 6, 1) and image.dtype == np.uint8 for image in images.values())
    np.testing.assert_array_equal(images[kept], native)
    np.testing.assert_array_equal(images[str(tmp_path / "c_flat.png")], np.full((4, 6, 1), 77))


def test_grayscale_stays_one_channel_and_alpha_is_dropped(tmp_path):
    gray = np.arange(24, dtype=np.uint8).reshape(4, 6, 1)
    rgba = np.random.default_rng(0).integers(0, 256, size=(4, 6, 4), dtype=np.uint8)
    gray_alpha = np.concatenate([gray, np.full_like(gray, 9)], axis=-1)
    _write(tmp_path / "gray" / "0.png", gray)
    _write(tmp_path / "gray" / "1.png", gray_alpha)
    _write(tmp_path / "colour" / "0.png", rgba)
    _write(tmp_path / "colour" / "1.png", rgba[..., :3])

    gray_folder = load_image_folder(tmp_path / "gray", validation_fraction=0.5, test_fraction=0.0)
    assert gray_folder.image_shape == (4, 6, 1)
    for image in _examples(gray_folder.train) + _examples(gray_folder.validation):
        np.testing.assert_array_equal(image, gray)
    colour_folder = load_image_folder(tmp_path / "colour", validation_fraction=0.5, test_fraction=0.0)
    assert colour_folder.image_shape == (4, 6, 3)
    for image in _examples(colour_folder.train) + _examples(colour_folder.validation):
        np.testing.assert_array_equal(image, rgba[..., :3])


def test_palette_pngs_and_cmyk_jpegs_decode_as_rgb(tmp_path):
    from PIL import Image  # Pillow (a matplotlib dependency) writes the modes TensorFlow cannot encode

    palette = Image.new("P", (6, 4))
    palette.putpalette([10, 20, 30] + [0, 0, 0] * 255)
    palette.save(tmp_path / "palette.png")
    Image.new("CMYK", (6, 4), (0, 0, 0, 0)).save(tmp_path / "cmyk.jpg", quality=100)
    Image.new("RGB", (6, 4), (1, 2, 3)).save(tmp_path / "rgb.png")
    folder = load_image_folder(tmp_path, validation_fraction=0.3, test_fraction=0.0)
    assert folder.image_shape == (4, 6, 3)
    images = dict(
        zip(folder.files["train"] + folder.files["validation"], _examples(folder.train) + _examples(folder.validation))
    )
    np.testing.assert_array_equal(images[str(tmp_path / "palette.png")], np.full((4, 6, 3), [10, 20, 30]))
    assert np.all(images[str(tmp_path / "cmyk.jpg")] >= 250)  # no ink: white


def test_jpeg_files_are_read_by_header_and_decoded(tmp_path):
    smooth = np.broadcast_to(np.linspace(0, 255, 16, dtype=np.uint8)[None, :, None], (8, 16, 3))
    for i, name in enumerate(["a.jpg", "b.JPEG", "c.jpeg"]):
        _write(tmp_path / name, np.roll(smooth, i, axis=1), kind="jpeg")
    folder = load_image_folder(tmp_path, validation_fraction=0.3, test_fraction=0.0)
    assert folder.image_shape == (8, 16, 3) and folder.num_examples == {"train": 2, "validation": 1, "test": 0}
    image = _examples(folder.validation)[0]
    index = ["a.jpg", "b.JPEG", "c.jpeg"].index(os.path.basename(folder.files["validation"][0]))
    # JPEG is lossy (chroma subsampling, DCT rounding): close to what was written, not equal.
    assert np.abs(image.astype(int) - np.roll(smooth, index, axis=1)).mean() < 4


# ---------------------------------------------------------------------------------------------------------------
# Refused folders and arguments: one line each, naming the argument or the files.
def _mixed_sizes(root):
    _write(root / "small.png", np.zeros((4, 4, 1)))
    _write(root / "small2.png", np.zeros((4, 4, 1)))
    _write(root / "wide.png", np.zeros((4, 9, 1)))


def _mixed_channels(root):
    _write(root / "gray.png", np.zeros((4, 4, 1)))
    _write(root / "rgb.jpg", np.zeros((4, 4, 3)), kind="jpeg")


def _empty_class(root):
    _write(root / "full" / "0.png", np.zeros((4, 4, 1)))
    (root / "empty").mkdir()
    (root / "empty" / "readme.txt").write_text("no images here")


def _images_beside_classes(root):
    _write(root / "loose.png", np.zeros((4, 4, 1)))
    _write(root / "cls" / "0.png", np.zeros((4, 4, 1)))


def _not_a_png(root):
    _write(root / "fine.png", np.zeros((4, 4, 1)))
    (root / "broken.png").write_bytes(b"GIF89a not really")


def _truncated_jpeg(root):
    _write(root / "fine.png", np.zeros((4, 4, 1)))
    (root / "cut.jpg").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF")


def _no_images(root):
    (root / "data.csv").write_text("a,b\n1,2\n")


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda root: None, ["`path`", "holds no PNG/JPEG images", "0 other entries"]),
        (_no_images, ["`path`", "holds no PNG/JPEG images", "1 other entries"]),
        (_mixed_sizes, ["different sizes", "small.png", "(4, 4)", "wide.png", "(4, 9)", "image_size=(H, W)"]),
        (_mixed_channels, ["different channel counts", "gray.png", "rgb.jpg", "is 1", "is 3"]),
        (_empty_class, ["class folder", "empty", "holds no PNG/JPEG images"]),
        (_images_beside_classes, ["`path`", "directly and in the subfolder 'cls'"]),
        (_not_a_png, ["broken.png", "neither a PNG nor a JPEG"]),
        (_truncated_jpeg, ["cut.jpg", "not a readable JPEG"]),
    ],
    ids=["empty", "no-images", "mixed-sizes", "mixed-channels", "empty-class", "mixed-layout", "not-png", "bad-jpeg"],
)
def test_a_bad_folder_gets_one_clear_line(tmp_path, make, expected):
    make(tmp_path)
    with pytest.raises(ValueError) as error:
        load_image_folder(tmp_path)
    message = str(error.value)
    assert "\n" not in message
    for part in expected:
        assert part in message, message


def test_a_missing_path_or_a_file_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"`path` '.*nowhere' does not exist"):
        load_image_folder(tmp_path / "nowhere")
    file = _write(tmp_path / "one.png", np.zeros((4, 4, 1)))
    with pytest.raises(ValueError, match="`path` must be a folder .* received the file .*one.png"):
        load_image_folder(file)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"validation_fraction": 0.0}, r"`validation_fraction` must be a number in \(0, 1\); received 0.0"),
        ({"validation_fraction": 1.0}, r"`validation_fraction` must be a number in \(0, 1\); received 1.0"),
        ({"test_fraction": -0.1}, r"`test_fraction` must be a number in \[0, 1\); received -0.1"),
        ({"test_fraction": 1}, r"`test_fraction` must be a number in \[0, 1\); received 1"),
        ({"test_fraction": float("nan")}, r"`test_fraction` must be a number in \[0, 1\); received nan"),
        ({"validation_fraction": "0.1"}, r"`validation_fraction` must be a number in \(0, 1\); received '0.1'"),
        ({"validation_fraction": 0.5, "test_fraction": 0.4}, r"leave no training images out of 3"),
        ({"image_size": (4,)}, r"`image_size` must be None or \(height, width\), two positive ints; received \(4,\)"),
        ({"image_size": (4, 0)}, r"`image_size` must be None"),
        ({"seed": "x"}, r"`seed` must be an int"),
    ],
)
def test_bad_arguments_are_refused_naming_them(tmp_path, kwargs, match):
    _flat_folder(tmp_path, count=3)
    with pytest.raises(ValueError, match=match):
        load_image_folder(tmp_path, **kwargs)


# ---------------------------------------------------------------------------------------------------------------
# Training batches.
@pytest.mark.slow
def test_image_batches_dequantize_the_pixels_and_reshuffle_each_epoch(tmp_path):
    written = _flat_folder(tmp_path, count=20, seed=3)
    folder = load_image_folder(tmp_path, validation_fraction=0.2, test_fraction=0.0)
    train = image_batches(folder, "train", batch_size=4, seed=5)
    assert int(train.cardinality()) == 4 and train.element_spec.shape == (4, 4, 6, 1)
    first, second = np.concatenate(_examples(train)), np.concatenate(_examples(train))
    assert first.dtype == np.float32 and first.min() >= 0.0 and first.max() < 1.0
    pixels = {bytes(image.tobytes()) for image in written.values()}
    train_pixels = {bytes(np.floor(x * 256).astype(np.uint8).tobytes()) for x in first}
    assert len(train_pixels) == 16 and train_pixels <= pixels  # x = (pixel + u) / 256 of the training images
    assert not np.array_equal(first, second)  # a fresh order and fresh noise every epoch
    np.testing.assert_array_equal(
        np.concatenate(_examples(image_batches(folder, "train", batch_size=4, seed=5))), first
    )

    centres = np.concatenate(
        _examples(image_batches(folder, "validation", batch_size=3, dequantize=None, shuffle=False))
    )
    assert centres.shape == (4, 4, 6, 1)  # no shuffle: the last partial batch is kept
    expected = np.stack(_examples(folder.validation))
    np.testing.assert_allclose(centres, (expected + 0.5) / 256)

    resumed = image_batches(folder, "train", batch_size=4, seed=5, repeat=True, initial_epoch=3)
    endless = image_batches(folder, "train", batch_size=4, seed=5, repeat=True)
    np.testing.assert_array_equal(_examples(resumed.take(1))[0], _examples(endless.skip(12).take(1))[0])


def test_conditional_batches_pair_each_image_with_its_one_hot_class(tmp_path):
    _class_folder(tmp_path)
    folder = load_image_folder(tmp_path, validation_fraction=0.2, test_fraction=0.0, seed=2)
    x, c = map(np.concatenate, zip(*_examples(image_batches(folder, "train", batch_size=5, conditional=True))))
    assert c.shape == (len(x), 3) and np.all(c.sum(axis=-1) == 1)
    by_image = {bytes(image.tobytes()): label for image, label in _examples(folder.train)}
    for image, code in zip(np.floor(x * 256).astype(np.uint8), c, strict=True):
        assert by_image[bytes(image.tobytes())] == np.argmax(code)


def test_image_batches_shard_the_files_per_input_pipeline(tmp_path):
    _flat_folder(tmp_path, count=21)
    folder = load_image_folder(tmp_path, validation_fraction=0.05, test_fraction=0.0)  # 20 training images
    shards = []
    for pipeline in (0, 1):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pipeline, num_replicas_in_sync=2)
        batches = image_batches(folder, "train", batch_size=10, dequantize=None, input_context=context)
        assert batches.element_spec.shape == (5, 4, 6, 1) and int(batches.cardinality()) == 2
        shards.append({bytes(x.tobytes()) for x in np.concatenate(_examples(batches))})
    assert len(shards[0]) == len(shards[1]) == 10 and not shards[0] & shards[1]  # each image on one pipeline only


def test_image_batches_refuse_what_they_cannot_serve(tmp_path):
    _flat_folder(tmp_path, count=6)
    folder = load_image_folder(tmp_path, validation_fraction=0.2, test_fraction=0.0)
    with pytest.raises(ValueError, match="`conditional=True` needs a folder with one subfolder per class"):
        image_batches(folder, conditional=True)
    with pytest.raises(ValueError, match=r"`split` must be one of \['train', 'validation'\]; received 'test'"):
        image_batches(folder, "test")
    with pytest.raises(ValueError, match="has 5 images per input pipeline, fewer than one batch of 8"):
        image_batches(folder, batch_size=8)
    with pytest.raises(TypeError, match="`folder` must be what load_image_folder returned"):
        image_batches(tf.data.Dataset.range(3))


# ---------------------------------------------------------------------------------------------------------------
# Flows fitted from a folder.
@pytest.fixture(scope="module")
def two_class_folder(tmp_path_factory):
    """8x8 grey images of two classes: dark (pixels ~ 60 +- 25) with a bright top row, light (~ 190 +- 25) with a
    dark one, 48 of each."""
    root = tmp_path_factory.mktemp("two_classes")
    rng = np.random.default_rng(0)
    for name, level, row in [("dark", 60, 230), ("light", 190, 20)]:
        for i in range(48):
            pixels = np.clip(rng.normal(level, 25, size=(8, 8, 1)), 0, 255)
            pixels[0] = row
            _write(root / name / f"{i}.png", pixels)
    return load_image_folder(root, validation_fraction=0.25, test_fraction=0.0)


@pytest.mark.slow  # ~20 s: traces and fits a Glow
def test_a_glow_trains_on_a_folder_with_fit(two_class_folder):
    folder = two_class_folder
    model = Glow(folder.image_shape, num_levels=2, num_steps=1, hidden_channels=8, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    train = image_batches(folder, "train", batch_size=24)
    validation = image_batches(folder, "validation", batch_size=24, dequantize=None, shuffle=False)
    before = model.evaluate(validation, verbose=0, return_dict=True)["bits_per_dim"]
    history = model.fit(train, validation_data=validation, epochs=15, verbose=0).history
    assert np.isfinite(history["loss"]).all()
    # The untrained flow scores ~9.5 bits/dim and a uniform density 8; pixels ~ N(level, 25^2) with a constant row
    # allow ~6.5, and 15 epochs reach ~6.9.
    assert history["val_bits_per_dim"][-1] < min(before - 2.0, 7.5), (before, history["val_bits_per_dim"])


@pytest.mark.slow  # ~20 s: traces and fits a Glow
def test_a_conditional_glow_learns_the_class_subfolders(two_class_folder):
    folder = two_class_folder
    model = Glow(folder.image_shape, num_levels=2, num_steps=1, hidden_channels=8, seed=0, context_shape=(2,))
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    history = model.fit(image_batches(folder, "train", batch_size=24, conditional=True), epochs=15, verbose=0).history
    assert np.isfinite(history["loss"]).all() and history["loss"][-1] < history["loss"][0]
    x, c = map(
        np.concatenate,
        zip(
            *_examples(
                image_batches(folder, "validation", batch_size=24, dequantize=None, shuffle=False, conditional=True)
            )
        ),
    )
    right, wrong = model.log_prob(x, c).numpy(), model.log_prob(x, c[:, ::-1]).numpy()
    # The context carries the class: every image is likelier under its own class than under the other.
    assert np.all(right > wrong), (right - wrong).min()
