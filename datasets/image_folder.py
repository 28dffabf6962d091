"""`load_image_folder`: a folder of a user's PNG/JPEG images as seeded train/validation/test `tf.data` splits.

Layouts (those of Keras' `image_dataset_from_directory`):

    path/a.png, path/b.jpg, ...              flat: the splits yield uint8 images [H, W, C]; class_names is None
    path/cat/1.png, path/dog/x/2.jpg, ...    one subfolder per class (searched recursively): the splits yield
                                             (image, int32 label), the label the class's index in the sorted
                                             subfolder names

Files ending in .png, .jpg or .jpeg (any case) are images; other files and hidden entries (".name") are skipped.

Reading: every file's header is read once, up front (a PNG's IHDR chunk; `tf.io.extract_jpeg_shape` for a JPEG),
to check sizes and channels before any training starts. The pixels are decoded only when a split is iterated,
by a `tf.data` map over the file paths (`tf.io.decode_image`), so a folder larger than memory works.

Sizes: all images must have one size, unless `image_size=(H, W)` is given; then every image of another size is
resized to it (bilinear with antialiasing, rounded back to uint8) and images of that size are left as they are.

Channels: grayscale stays one channel and colour is three. An alpha channel is dropped (RGBA -> RGB, grey+alpha ->
grey), as in Keras' `image_dataset_from_directory` with its default `color_mode="rgb"`: a flow of 8-bit pixels
models the colours, and the alpha of most photographs and screenshots is constant. Transparent pixels keep the
colour stored under them. Palette PNGs and CMYK JPEGs decode as RGB; 16-bit PNGs are scaled to 8 bits. A folder
that mixes grayscale and colour images is refused: convert it to one or the other.

Split: by file, seeded. Files are ranked by the SHA-256 of (seed, path inside the folder); the first
round(validation_fraction N) (at least one) are the validation split, the next round(test_fraction N) (at least
one when test_fraction > 0) the test split, the rest the training split. The same files and seed give the same
split on every machine, and adding or removing a file moves at most a few others across a split border (the
ranks of the rest shift by at most one), where a permutation of the file list would reshuffle them all. Each
split lists its files in sorted order.

Training: `image_batches(folder, "train", batch_size)` is `make_dataset`'s pipeline on the files: a seeded full
shuffle of the file paths per epoch (before decoding), batches, and the same dequantization x = (pixel + u) / 256,
so x lies in [0, 1) and `bits_per_dim(log_prob, D)` is the usual 8-bit figure; `conditional=True` pairs each
batch with the one-hot class c [batch, K] for a conditional flow p(x | c).

Example:
    >>> import pathlib, tempfile
    >>> import tensorflow as tf
    >>> folder_path = pathlib.Path(tempfile.mkdtemp())
    >>> for name, level in [("dark", 40), ("light", 200)]:          # two classes, 12 grey 8x8 images each
    ...     (folder_path / name).mkdir()
    ...     for i in range(12):
    ...         pixels = tf.fill([8, 8, 1], tf.constant(level + i, tf.uint8))
    ...         tf.io.write_file(str(folder_path / name / f"{i}.png"), tf.io.encode_png(pixels))
    >>> folder = load_image_folder(folder_path, validation_fraction=0.25, test_fraction=0.0)
    >>> folder.image_shape, folder.class_names, folder.num_examples
    ((8, 8, 1), ('dark', 'light'), {'train': 18, 'validation': 6, 'test': 0})
    >>> image, label = next(iter(folder.train))
    >>> image.dtype.name, image.shape, label.dtype.name
    ('uint8', TensorShape([8, 8, 1]), 'int32')
    >>> train = image_batches(folder, "train", batch_size=6, conditional=True)   # for a conditional flow's fit
    >>> [tuple(spec.shape) for spec in train.element_spec]                      # x in [0, 1), one-hot c
    [(6, 8, 8, 1), (6, 2)]
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import os
import struct
from collections.abc import Callable
from typing import Any, TypeVar

import tensorflow as tf

from tfp_flows.validation import check_int, check_one_of, is_int, is_real

from .pipeline import dequantize_levels, seeded_epochs

__all__ = ["ImageFolder", "image_batches", "load_image_folder"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
SPLITS = ("train", "validation", "test")
_DEQUANTIZE_CHOICES = ("uniform", None, "none")
_T = TypeVar("_T")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SIGNATURE = b"\xff\xd8\xff"
# PNG colour type -> the channels kept: grey, RGB, palette (decoded as RGB), grey+alpha, RGBA (alpha dropped).
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 1, 6: 3}
# JPEG components -> channels: grey, YCbCr/RGB, CMYK (which `tf.io.decode_image` converts to RGB).
_JPEG_CHANNELS = {1: 1, 3: 3, 4: 3}


@dataclasses.dataclass(frozen=True)
class ImageFolder:
    """A folder of images split for training (module docstring): what `load_image_folder` returns.

    Attributes:
      train, validation: `tf.data.Dataset`s of uint8 images [H, W, C], or of (image, int32 label) pairs when the
        folder has one subfolder per class; in the split's sorted file order, unbatched.
      test: the same, or None when `test_fraction` was 0.
      image_shape: (H, W, C) of every image the splits yield.
      class_names: the sorted class subfolder names (label i is `class_names[i]`), or None for a flat folder.
      num_examples: the number of images in each of "train", "validation" and "test" (0 when `test` is None).
      files: each split's image paths, in the order its dataset yields them.
      labels: each split's labels in the same order, or None for a flat folder.
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset
    test: tf.data.Dataset | None
    image_shape: tuple[int, int, int]
    class_names: tuple[str, ...] | None
    num_examples: dict[str, int]
    files: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict, repr=False)
    labels: dict[str, tuple[int, ...]] | None = dataclasses.field(default=None, repr=False)


def load_image_folder(
    path: str | os.PathLike,
    *,
    image_size: tuple[int, int] | None = None,
    validation_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
) -> ImageFolder:
    """The PNG/JPEG images under `path` (flat, or one subfolder per class) as seeded train/validation/test splits.

    Args:
      path: the folder.
      image_size: (H, W) to resize every image of another size to; None (default) requires one size throughout.
      validation_fraction: the share of the files in the validation split, in (0, 1).
      test_fraction: the share in the test split, in [0, 1); 0 gives no test split.
      seed: int choosing the split (module docstring: stable for the same files and seed).

    Returns:
      An `ImageFolder` (its datasets decode the files on demand).

    Raises:
      FileNotFoundError: `path` does not exist.
      ValueError: `path` is not a folder or holds no images, a class folder holds none, a file is not a readable
        PNG/JPEG, images differ in size (without `image_size`) or in channels, or the fractions are out of range
        or leave no training images. Each message names the argument or the file.
    """
    root = os.fspath(path)
    image_size = _checked_image_size(image_size)
    validation_fraction = _checked_fraction(validation_fraction, "validation_fraction", allow_zero=False)
    test_fraction = _checked_fraction(test_fraction, "test_fraction", allow_zero=True)
    seed = check_int(seed, "seed", minimum=None)
    files, labels, class_names = _list_images(root)

    shapes = {file: _header_shape(file) for file in files}
    channels = _common(shapes, lambda shape: shape[2], "channel counts", "convert them all to grayscale or to RGB")
    if image_size is None:
        image_size = _common(
            shapes,
            lambda shape: (shape[0], shape[1]),
            "sizes (height, width)",
            "pass `image_size=(H, W)` to resize them",
        )
    image_shape = (*image_size, channels)

    split_of = _split(root, files, validation_fraction, test_fraction, seed)
    split_files = {name: tuple(sorted(f for f in files if split_of[f] == name)) for name in SPLITS}
    label_of = dict(zip(files, labels, strict=True)) if class_names is not None else None
    split_labels = (
        None if label_of is None else {name: tuple(label_of[f] for f in split_files[name]) for name in SPLITS}
    )

    def dataset(name: str) -> tf.data.Dataset:
        paths = tf.data.Dataset.from_tensor_slices(list(split_files[name]))  # never empty (`_split`)
        images = paths.map(lambda file: _decode(file, image_shape), num_parallel_calls=tf.data.AUTOTUNE)
        if split_labels is None:
            return images
        labels = tf.data.Dataset.from_tensor_slices(tf.constant(split_labels[name], tf.int32))
        return tf.data.Dataset.zip((images, labels))

    return ImageFolder(
        train=dataset("train"),
        validation=dataset("validation"),
        test=dataset("test") if test_fraction > 0 else None,
        image_shape=image_shape,
        class_names=class_names,
        num_examples={name: len(split_files[name]) for name in SPLITS},
        files=split_files,
        labels=split_labels,
    )


def image_batches(
    folder: ImageFolder,
    split: str = "train",
    batch_size: int = 128,
    *,
    shuffle: bool = True,
    seed: int = 0,
    dequantize: str | None = "uniform",
    drop_remainder: bool | None = None,
    repeat: bool = False,
    initial_epoch: int = 0,
    input_context: tf.distribute.InputContext | None = None,
    dtype: tf.DType = tf.float32,
    conditional: bool = False,
) -> tf.data.Dataset:
    """Batches of a folder's split ready for `FlowModel.fit`: x in [0, 1), or (x, one-hot c) pairs.

    `make_dataset`'s pipeline on the split's files, with its arguments and its randomness (`seeded_epochs`): the
    file paths are fully shuffled per data epoch (stateless, keyed by seed and epoch) and decoded batch by batch,
    and x = (pixel + u) / 256 with fresh noise u ~ U[0, 1) per batch and epoch (`dequantize_levels`).

    Args:
      folder: what `load_image_folder` returned.
      split: "train", "validation" or "test".
      batch_size: global batch size (divided among replicas when `input_context` is given).
      shuffle: shuffle the files (a full, seeded permutation per epoch).
      seed: int driving shuffling and the dequantization noise.
      dequantize: "uniform" for x = (pixel + u) / 256, None ("none") for the bin centres (pixel + 1/2) / 256.
      drop_remainder: drop the last partial batch; default: `shuffle`.
      repeat: the endless sequence of epochs (with `steps_per_epoch`) instead of one epoch.
      initial_epoch: with `repeat=True`, the data epoch to start from (for resuming).
      input_context: a `tf.distribute.InputContext` (from `distribute_datasets_from_function`).
      dtype: tf.float32 or tf.float64.
      conditional: yield (x, c), c the one-hot class [batch, K] in `dtype`, K = len(folder.class_names); needs a
        folder with class subfolders.

    Returns:
      `tf.data.Dataset` of [batch, H, W, C] floats, or with `conditional=True` of ([batch, H, W, C], [batch, K]).
    """
    if not isinstance(folder, ImageFolder) or not folder.files:
        raise TypeError(f"`folder` must be what load_image_folder returned; received {type(folder).__name__}")
    check_one_of(split, "split", [name for name in SPLITS if folder.num_examples[name]])
    batch_size = check_int(batch_size, "batch_size")
    seed = check_int(seed, "seed", minimum=None)
    check_one_of(dequantize, "dequantize", _DEQUANTIZE_CHOICES)
    initial_epoch = check_int(initial_epoch, "initial_epoch", minimum=0)
    dtype = tf.as_dtype(dtype)
    if dtype not in (tf.float32, tf.float64):
        raise ValueError(f"`dtype` must be tf.float32 or tf.float64; received {dtype.name}")
    if not isinstance(conditional, bool):
        raise TypeError(f"`conditional` must be a bool; received {conditional!r}")
    if conditional and folder.class_names is None:
        raise ValueError(
            "`conditional=True` needs a folder with one subfolder per class (the classes are the context c); "
            "this folder is flat"
        )
    drop_remainder = bool(shuffle) if drop_remainder is None else bool(drop_remainder)

    num_pipelines, pipeline_id, per_replica_batch = 1, 0, batch_size
    if input_context is not None:
        num_pipelines, pipeline_id = input_context.num_input_pipelines, input_context.input_pipeline_id
        per_replica_batch = input_context.get_per_replica_batch_size(batch_size)
    files = folder.files[split][pipeline_id::num_pipelines]
    size = len(files)
    if size == 0 or (drop_remainder and size < per_replica_batch):
        raise ValueError(
            f"split {split!r} of the image folder has {size} images per input pipeline, fewer than one batch of "
            f"{per_replica_batch} (drop_remainder={drop_remainder}); pass a smaller `batch_size` or "
            "drop_remainder=False"
        )
    paths = tf.constant(files)
    num_classes = len(folder.class_names) if conditional and folder.class_names else 0
    labels = None
    if num_classes and folder.labels is not None:
        labels = tf.constant(folder.labels[split][pipeline_id::num_pipelines], tf.int32)
    image_shape = folder.image_shape

    def one_epoch(epoch_key: tf.Tensor) -> tf.data.Dataset:
        key = tf.random.experimental.stateless_fold_in(epoch_key, pipeline_id)
        order = tf.range(size, dtype=tf.int64)
        if shuffle:
            order = tf.random.experimental.stateless_shuffle(order, seed=key)

        def load(row: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            label = tf.gather(labels, row) if labels is not None else tf.zeros([], tf.int32)
            return _decode(tf.gather(paths, row), image_shape), label

        def preprocess(index: tf.Tensor, batch: tuple[tf.Tensor, tf.Tensor]) -> tf.Tensor | tuple[tf.Tensor, tf.Tensor]:
            images, batch_labels = batch
            x = dequantize_levels(images, tf.random.experimental.stateless_fold_in(key, index), 256, dequantize, dtype)
            return (x, tf.one_hot(batch_labels, num_classes, dtype=dtype)) if num_classes else x

        images = tf.data.Dataset.from_tensor_slices(order).map(load, num_parallel_calls=tf.data.AUTOTUNE)
        batches = images.batch(per_replica_batch, drop_remainder=drop_remainder)
        return batches.enumerate().map(preprocess, num_parallel_calls=tf.data.AUTOTUNE)

    batches_per_epoch = size // per_replica_batch if drop_remainder else -(-size // per_replica_batch)
    return seeded_epochs(
        one_epoch, seed=seed, repeat=repeat, initial_epoch=initial_epoch, batches_per_epoch=batches_per_epoch
    )


def _checked_image_size(image_size: object) -> tuple[int, int] | None:
    if image_size is None:
        return None
    values = tuple(image_size) if isinstance(image_size, (tuple, list)) else ()
    if len(values) != 2 or not all(is_int(v) and v > 0 for v in values):
        raise ValueError(f"`image_size` must be None or (height, width), two positive ints; received {image_size!r}")
    return int(values[0]), int(values[1])


def _checked_fraction(value: Any, arg_name: str, allow_zero: bool) -> float:
    expected = "[0, 1)" if allow_zero else "(0, 1)"
    if not (is_real(value) and (0.0 <= value < 1.0 if allow_zero else 0.0 < value < 1.0)):
        raise ValueError(f"`{arg_name}` must be a number in {expected}; received {value!r}")
    return float(value)


def _list_images(root: str) -> tuple[list[str], list[int], tuple[str, ...] | None]:
    """(files, labels, class_names) of the folder: sorted paths, their class indices, the sorted class names (or
    ([paths], [0, ...], None) for a flat folder)."""
    if not os.path.exists(root):
        raise FileNotFoundError(f"`path` {root!r} does not exist; expected a folder of PNG/JPEG images")
    if not os.path.isdir(root):
        raise ValueError(
            f"`path` must be a folder of PNG/JPEG images (or of one subfolder per class); received the file {root!r}"
        )
    entries = sorted(entry for entry in os.listdir(root) if not entry.startswith("."))
    images = [os.path.join(root, entry) for entry in entries if _is_image(os.path.join(root, entry))]
    folders = [entry for entry in entries if os.path.isdir(os.path.join(root, entry))]
    if images:
        nested = next((name for name in folders if _images_under(os.path.join(root, name))), None)
        if nested is not None:
            raise ValueError(
                f"`path` {root!r} holds images both directly and in the subfolder {nested!r}; expected images "
                "alone (a flat folder) or one subfolder per class and no images beside them"
            )
        return images, [0] * len(images), None
    if not folders:
        raise ValueError(
            f"`path` {root!r} holds no PNG/JPEG images (files ending in {', '.join(IMAGE_EXTENSIONS)}), neither "
            f"directly nor in class subfolders; found {len(entries)} other entries"
        )
    files: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(folders):
        found = _images_under(os.path.join(root, name))
        if not found:
            raise ValueError(
                f"class folder {os.path.join(root, name)!r} holds no PNG/JPEG images; add images to it or remove it "
                f"from `path` (each subfolder of `path` is a class)"
            )
        files += found
        labels += [label] * len(found)
    return files, labels, tuple(folders)


def _is_image(file: str) -> bool:
    return file.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(file)


def _images_under(folder: str) -> list[str]:
    """The images anywhere under `folder`, sorted, hidden files and folders skipped."""
    found = []
    for parent, subfolders, names in os.walk(folder):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        found += [
            os.path.join(parent, n)
            for n in sorted(names)
            if not n.startswith(".") and _is_image(os.path.join(parent, n))
        ]
    return sorted(found)


def _header_shape(file: str) -> tuple[int, int, int]:
    """(height, width, channels kept) of a PNG or JPEG from its header, without decoding the pixels."""
    with open(file, "rb") as stream:
        head = stream.read(26)
    if head.startswith(_PNG_SIGNATURE):
        # The IHDR chunk comes first (PNG spec, sec. 5.6): length, "IHDR", width, height, bit depth, colour type.
        if len(head) < 26 or head[12:16] != b"IHDR" or head[25] not in _PNG_CHANNELS:
            raise ValueError(f"image file {file!r} is not a readable PNG (its IHDR header is missing or invalid)")
        width, height = struct.unpack(">II", head[16:24])
        return height, width, _PNG_CHANNELS[head[25]]
    if head.startswith(_JPEG_SIGNATURE):
        try:
            height, width, channels = (int(v) for v in tf.io.extract_jpeg_shape(tf.io.read_file(file)).numpy())
        except tf.errors.InvalidArgumentError as error:
            raise ValueError(f"image file {file!r} is not a readable JPEG ({error.message.splitlines()[0]})") from None
        if channels not in _JPEG_CHANNELS:
            raise ValueError(f"image file {file!r} is a JPEG with {channels} channels; expected 1, 3 or 4 (CMYK)")
        return height, width, _JPEG_CHANNELS[channels]
    raise ValueError(f"image file {file!r} is neither a PNG nor a JPEG (its first bytes are {head[:8]!r})")


def _common(
    shapes: dict[str, tuple[int, int, int]], part: Callable[[tuple[int, int, int]], _T], what: str, remedy: str
) -> _T:
    """The one value of `part(shape)` over all files, or a ValueError naming two files that differ."""
    by_value: dict[_T, list[str]] = collections.defaultdict(list)
    for file, shape in shapes.items():
        by_value[part(shape)].append(file)
    if len(by_value) > 1:
        (first, files_a), (second, files_b) = sorted(by_value.items(), key=lambda item: -len(item[1]))[:2]
        raise ValueError(
            f"images in `path` have different {what}: {files_a[0]!r} is {first} and {files_b[0]!r} is {second} "
            f"({len(by_value)} distinct values over {len(shapes)} images); {remedy}"
        )
    return next(iter(by_value))


def _split(root: str, files: list[str], validation_fraction: float, test_fraction: float, seed: int) -> dict[str, str]:
    """Each file's split: files ranked by SHA-256 of (seed, path inside the folder) (module docstring)."""
    total = len(files)
    num_validation = max(1, round(validation_fraction * total))
    num_test = max(1, round(test_fraction * total)) if test_fraction > 0 else 0
    if total - num_validation - num_test < 1:
        raise ValueError(
            f"`validation_fraction`={validation_fraction} and `test_fraction`={test_fraction} leave no training "
            f"images out of {total} ({num_validation} validation, {num_test} test); lower them or add images"
        )

    def rank(file: str) -> bytes:
        relative = os.path.relpath(file, root).replace(os.sep, "/")
        return hashlib.sha256(f"{seed}/{relative}".encode()).digest()

    ranked = sorted(files, key=rank)
    names = ["validation"] * num_validation + ["test"] * num_test + ["train"] * (total - num_validation - num_test)
    return dict(zip(ranked, names, strict=True))


def _decode(file: tf.Tensor, image_shape: tuple[int, int, int]) -> tf.Tensor:
    """The uint8 image [H, W, C] in `file`, resized to `image_shape` (bilinear, antialiased) if it has another size."""
    image = tf.io.decode_image(tf.io.read_file(file), channels=image_shape[2], dtype=tf.uint8, expand_animations=False)

    def resized() -> tf.Tensor:
        values = tf.image.resize(image, image_shape[:2], method="bilinear", antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(values), 0.0, 255.0), tf.uint8)

    same_size = tf.reduce_all(tf.shape(image)[:2] == tf.constant(image_shape[:2]))
    image = tf.cond(same_size, lambda: image, resized)
    return tf.ensure_shape(image, image_shape)
