"""`make_dataset`: a `tf.data.Dataset` of x alone (float, no labels), or of (x, c) pairs, ready for `FlowModel.fit`.

The pipeline, per input pipeline (one unless a `tf.distribute.InputContext` is given):

    split as an in-memory array -> first num_examples -> this pipeline's shard -> [one pass per epoch:
        permutation of the indices (stateless, keyed by seed and epoch) -> batch of indices (drop_remainder)
        -> gather -> preprocess] -> prefetch

All our datasets fit in memory (the largest, CIFAR-10's train split, is 150 MB of uint8), which buys exact
reproducibility: shuffling is a stateless permutation, a pure function of the key, independent of TF's global
seed, and a full shuffle rather than a buffer.

Preprocessing:
- toy 2-D data: cast to `dtype`; nothing else (they are continuous).
- images (mnist, cifar10: 8-bit; digits: 17 levels, `dataset_info(name).num_levels` = L): `dequantize="uniform"`
  gives x = (pixel + u) / L (digits: (level + u) / 17, see `digits_builder`), u ~ U[0, 1)
  drawn afresh for every example and epoch, so x lies in [0, 1) and the model's density on x is a density on
  the continuous [0, L) pixel scale divided by L^D. Its log-likelihood lower-bounds the discrete one in
  expectation (Theis et al. 2016), and `bits_per_dim(..., num_levels=L)` turns it into bits/dim with every
  Jacobian counted. `dequantize=None` gives the bin centres x = (pixel + 1/2) / L: no noise, for evaluating
  discrete data; log p(x) - D log L is then the midpoint-rule estimate of log P(pixels) (an approximation, not a bound).
  Variational dequantization is learned, so it belongs to the model, not here. Any logit transform belongs to
  the model's bijector chain as well, so that its Jacobian is in the model's log_prob. Uniform dequantization
  can give x = 0 exactly (pixel 0 and u = 0), so a logit transform needs its alpha squeeze
  (logit(alpha + (1 - 2 alpha) x), RealNVP section 4.1).

Randomness: data epoch e uses the stateless key [seed, e], folded with the input pipeline's id: it fixes the
order and the dequantization noise (folded again with the batch index). With `repeat=True` the dataset is the
endless sequence of epochs initial_epoch, initial_epoch + 1, ..., so a run resumed at epoch e with
`initial_epoch=e` sees exactly the data an uninterrupted run would have seen (when a Keras epoch is one data
epoch). With `repeat=False` the dataset is one epoch, and each new iteration over it (each Keras epoch) takes a
fresh epoch number from `tf.data.Dataset.random(seed, rerandomize_each_iteration=True)`: a new order and new
noise every epoch, the same sequence for the same `seed` (and TF global seed, which that op also reads).

Batching: `drop_remainder` defaults to `shuffle` (training pipelines shuffle and want one static batch shape
for XLA; evaluation pipelines do not shuffle and must see every example). The cardinality of the result is set
(number of batches, or infinite with `repeat=True`), so Keras knows the epoch length.

Distribution: with `input_context` the examples are sharded by input pipeline (example i goes to pipeline
i mod num_input_pipelines) and batched per replica (`input_context.get_per_replica_batch_size(batch_size)`,
`batch_size` being the global batch), so it plugs into `strategy.distribute_datasets_from_function`:

    >>> import tensorflow as tf
    >>> from tfp_flows.datasets import make_dataset
    >>> strategy = tf.distribute.get_strategy()
    >>> ds = strategy.distribute_datasets_from_function(
    ...     lambda ctx: make_dataset("two_moons", batch_size=256, input_context=ctx))

Conditional data (`conditional=True`, for flows p(x | c)): each batch is (x, c) with c the float one-hot
[batch, K] code of each example's class (`dataset_info(name).context_shape` = (K,)): the image's label for
digits, mnist and cifar10, the generating class for the conditional toys (two_moons: the moon; eight_gaussians:
the component; see `conditional`). One-hot, because a flow's conditioner network takes a vector context and
an integer label would impose an order and a distance between classes that they do not have. The x are the
very x of the unconditional dataset with the same arguments (same examples, order and noise): the labels are
gathered with the same indices.

Sources: toy densities are generated in memory (`toy_builder.toy_split`, the same points as the TFDS builder,
data seed 0: `seed` here only drives shuffling); digits go through the local TFDS builder (prepared in
`data_dir` on first use); mnist and cifar10 through `tfds.load`, raising `DatasetNotPreparedError` with the
`tfds build` command when they are missing and `download` is False.

Example:
    >>> ds = make_dataset("two_moons", batch_size=128, seed=1)
    >>> ds.element_spec
    TensorSpec(shape=(128, 2), dtype=tf.float32, name=None)
    >>> make_dataset("two_moons", batch_size=128, conditional=True).element_spec[1]
    TensorSpec(shape=(128, 2), dtype=tf.float32, name=None)
"""

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from tfp_flows.validation import check_int, check_one_of

from .digits_builder import uint8_to_levels
from .registry import FlowDatasetInfo, dataset_info
from .registry import list_datasets as _list_datasets
from .tfds_loading import load_tfds_split
from .toy_builder import toy_labelled_split, toy_split

__all__ = ["dequantize_levels", "make_dataset", "seeded_epochs"]

_DEQUANTIZE_CHOICES = ("uniform", None, "none")
_INT64_MAX = 2**63 - 1


def make_dataset(
    name: str,
    split: str = "train",
    batch_size: int = 128,
    *,
    shuffle: bool = True,
    seed: int = 0,
    dequantize: str = "uniform",
    drop_remainder: bool | None = None,
    repeat: bool = False,
    initial_epoch: int = 0,
    num_examples: int | None = None,
    data_dir: str | None = None,
    input_context: tf.distribute.InputContext | None = None,
    dtype: tf.DType = tf.float32,
    download: bool = False,
    conditional: bool = False,
) -> tf.data.Dataset:
    """A batched, shuffled, dequantized `tf.data.Dataset` of x alone, or (x, c), for dataset `name`.

    Args:
      name: one of `list_datasets()`.
      split: "train", "validation" or "test" (see `dataset_info(name).splits`); TFDS slices such as
        "train[:90%]" work for the image datasets.
      batch_size: global batch size (divided among replicas when `input_context` is given).
      shuffle: shuffle the examples (a full, seeded permutation per epoch).
      seed: int driving shuffling and dequantization noise.
      dequantize: "uniform" for x = (pixel + u) / 256, or None ("none") for x = (pixel + 1/2) / 256.
        Only affects 8-bit image data.
      drop_remainder: drop the last partial batch; default: `shuffle`.
      repeat: endless sequence of epochs (use with `steps_per_epoch`) instead of one epoch.
      initial_epoch: with `repeat=True`, the data epoch to start from (for resuming).
      num_examples: use only the first `num_examples` examples of the split (before sharding).
      data_dir: TFDS data directory for image datasets (None: TFDS's default).
      input_context: a `tf.distribute.InputContext` (from `distribute_datasets_from_function`).
      dtype: tf.float32 or tf.float64.
      download: allow TFDS to download mnist / cifar10 (network).
      conditional: yield (x, c) pairs, c the one-hot class [batch, K] in `dtype` (the module docstring says
        why one-hot), for the datasets whose `dataset_info(name).context_shape` is (K,); the x are those of
        `conditional=False`.

    Returns:
      `tf.data.Dataset` of float tensors [batch, *event_shape], or with `conditional=True` of pairs
      ([batch, *event_shape], [batch, K]).
    """
    info = dataset_info(name)
    batch_size = check_int(batch_size, "batch_size")
    check_one_of(dequantize, "dequantize", _DEQUANTIZE_CHOICES)
    seed = check_int(seed, "seed", minimum=None)
    initial_epoch = check_int(initial_epoch, "initial_epoch", minimum=0)
    num_examples = check_int(num_examples, "num_examples", allow_none=True)
    dtype = tf.as_dtype(dtype)
    if dtype not in (tf.float32, tf.float64):
        raise ValueError(f"`dtype` must be tf.float32 or tf.float64; received {dtype.name}")
    if input_context is not None and not isinstance(input_context, tf.distribute.InputContext):
        raise TypeError(
            f"`input_context` must be a tf.distribute.InputContext or None; received {type(input_context).__name__}"
        )
    drop_remainder = bool(shuffle) if drop_remainder is None else bool(drop_remainder)
    if not isinstance(conditional, bool):
        raise TypeError(f"`conditional` must be a bool; received {conditional!r}")
    if conditional and info.context_shape is None:
        conditional_names = [n for n in _list_datasets() if dataset_info(n).context_shape is not None]
        raise ValueError(
            f"`conditional=True` needs a dataset with labels (a context_shape); {name!r} has none. "
            f"Expected one of {conditional_names}"
        )

    num_pipelines, pipeline_id = 1, 0
    per_replica_batch = batch_size
    if input_context is not None:
        num_pipelines, pipeline_id = input_context.num_input_pipelines, input_context.input_pipeline_id
        per_replica_batch = input_context.get_per_replica_batch_size(batch_size)

    examples, labels = _load_split(info, split, data_dir, download, num_examples, with_labels=conditional)
    examples = examples[:num_examples][pipeline_id::num_pipelines]
    size = len(examples)
    if size == 0 or (drop_remainder and size < per_replica_batch):
        raise ValueError(
            f"split {split!r} of {name!r} has {size} examples per input pipeline, fewer than one batch of "
            f"{per_replica_batch} (drop_remainder={drop_remainder}); pass a smaller `batch_size`, more "
            f"`num_examples` or drop_remainder=False"
        )
    examples = tf.constant(examples)
    num_classes = 0
    if conditional:
        assert labels is not None and info.context_shape is not None  # _load_split(with_labels=True) gives them
        labels = tf.constant(labels[:num_examples][pipeline_id::num_pipelines])
        num_classes = info.context_shape[0]
    preprocess = _preprocessor(info, dequantize, dtype)

    def one_epoch(epoch_key: tf.Tensor) -> tf.data.Dataset:
        key = tf.random.experimental.stateless_fold_in(epoch_key, pipeline_id)
        order = tf.range(size, dtype=tf.int64)
        if shuffle:
            order = tf.random.experimental.stateless_shuffle(order, seed=key)

        def load_batch(index: tf.Tensor, rows: tf.Tensor) -> tf.Tensor | tuple[tf.Tensor, tf.Tensor]:
            noise_key = tf.random.experimental.stateless_fold_in(key, index)
            x = preprocess(tf.gather(examples, rows), noise_key)
            if not conditional:
                return x
            # c gathered with the same rows, so x is exactly the unconditional dataset's batch.
            return x, tf.one_hot(tf.gather(labels, rows), num_classes, dtype=dtype)

        batches = tf.data.Dataset.from_tensor_slices(order).batch(per_replica_batch, drop_remainder=drop_remainder)
        return batches.enumerate().map(load_batch, num_parallel_calls=tf.data.AUTOTUNE)

    batches_per_epoch = size // per_replica_batch if drop_remainder else -(-size // per_replica_batch)
    return seeded_epochs(
        one_epoch, seed=seed, repeat=repeat, initial_epoch=initial_epoch, batches_per_epoch=batches_per_epoch
    )


def seeded_epochs(
    one_epoch: Callable[[tf.Tensor], tf.data.Dataset],
    *,
    seed: int,
    repeat: bool,
    initial_epoch: int,
    batches_per_epoch: int,
) -> tf.data.Dataset:
    """The batches of `one_epoch(key)` for data epochs keyed [seed, epoch], with `make_dataset`'s randomness.

    `repeat=True`: the endless epochs initial_epoch, initial_epoch + 1, ... (a resumed run sees the data an
    uninterrupted one would have seen). `repeat=False`: one epoch, whose number is drawn afresh on every
    iteration (every Keras epoch) from `tf.data.Dataset.random(seed, rerandomize_each_iteration=True)`, so each
    epoch has a new order and noise and the sequence is the same for the same seed. The cardinality is set
    (`batches_per_epoch`, or infinite), so Keras knows the epoch length, and the result is prefetched.

    Args:
      one_epoch: int64 key [2] -> a `tf.data.Dataset` of the epoch's `batches_per_epoch` batches.
      seed: the first half of every epoch's key.
      repeat: endless epochs rather than one.
      initial_epoch: with `repeat=True`, the first data epoch.
      batches_per_epoch: the number of batches `one_epoch` yields.
    """
    if repeat:
        epochs = tf.data.Dataset.range(initial_epoch, _INT64_MAX)
        cardinality = tf.data.INFINITE_CARDINALITY
    else:
        # A fresh epoch number on every iteration (every Keras epoch), reproducible for the seed.
        epochs = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)
        cardinality = batches_per_epoch
    seed_tensor = tf.constant(seed, tf.int64)
    ds = epochs.map(lambda epoch: tf.stack([seed_tensor, epoch])).flat_map(one_epoch)
    ds = ds.apply(tf.data.experimental.assert_cardinality(cardinality))
    return ds.prefetch(tf.data.AUTOTUNE)


def dequantize_levels(
    levels: tf.Tensor, key: tf.Tensor, num_levels: int, dequantize: str | None = "uniform", dtype: tf.DType = tf.float32
) -> tf.Tensor:
    """Pixels' levels 0..L-1 (L = `num_levels`) as model inputs in [0, 1): `make_dataset`'s dequantization.

    `dequantize="uniform"`: x = (level + u) / L with u ~ U[0, 1) drawn from the stateless `key` (a fresh key per
    batch gives fresh noise); the model's log-likelihood on x lower-bounds the discrete one in expectation
    (Theis et al. 2016, "A note on the evaluation of generative models"). None or "none": the bin centres
    x = (level + 1/2) / L, for evaluating discrete data. 8-bit pixels are their own levels (L = 256).

    Example:
        >>> import tensorflow as tf
        >>> x = dequantize_levels(tf.constant([0, 255], tf.uint8), tf.constant([0, 0]), 256, dequantize=None)
        >>> (x * 512).numpy().tolist()   # the bin centres (level + 1/2) / 256
        [1.0, 511.0]
    """
    check_one_of(dequantize, "dequantize", _DEQUANTIZE_CHOICES)
    values = tf.cast(levels, dtype)
    if dequantize == "uniform":
        return (values + tf.random.stateless_uniform(tf.shape(values), seed=key, dtype=dtype)) / num_levels
    return (values + 0.5) / num_levels


def _load_split(
    info: FlowDatasetInfo,
    split: str,
    data_dir: str | None,
    download: bool,
    num_examples: int | None = None,
    with_labels: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """(examples, labels) of the split (at least its first `num_examples`) as NumPy arrays: float32 [N, 2] or
    uint8 [N, H, W, C], and int64 [N] class indices when `with_labels` (else None)."""
    if not info.is_8bit_image:
        return toy_labelled_split(info.name, split) if with_labels else (toy_split(info.name, split), None)
    if split not in info.splits and "[" not in str(split):
        raise ValueError(
            f"`split` must be one of {list(info.splits)} (or a TFDS slice of them) for "
            f"{info.name!r}; received {split!r}"
        )
    # Our digits builder generates locally, so it may always "download" (prepare) itself.
    allow_download = download or not info.needs_download
    # Read only what is used: "train" with num_examples=100 becomes the TFDS slice "train[:100]".
    tfds_split = split if num_examples is None or "[" in str(split) else f"{split}[:{num_examples}]"
    examples = load_tfds_split(info.tfds_name, tfds_split, data_dir=data_dir, download=allow_download)
    if not with_labels:
        images = examples.map(lambda example: example["image"], num_parallel_calls=tf.data.AUTOTUNE)
        chunks = list(images.batch(8192).as_numpy_iterator())
        return (np.concatenate(chunks) if chunks else np.zeros((0, *info.event_shape), np.uint8)), None
    pairs = examples.map(
        lambda example: (example["image"], tf.cast(example["label"], tf.int64)), num_parallel_calls=tf.data.AUTOTUNE
    )
    chunks = list(pairs.batch(8192).as_numpy_iterator())
    if not chunks:
        return np.zeros((0, *info.event_shape), np.uint8), np.zeros((0,), np.int64)
    return np.concatenate([images for images, _ in chunks]), np.concatenate([labels for _, labels in chunks])


def _preprocessor(
    info: FlowDatasetInfo, dequantize: str, dtype: tf.DType
) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    """(raw_batch, noise_key) -> float batch."""
    if not info.is_8bit_image:
        return lambda batch, key: tf.cast(batch, dtype)

    def preprocess(batch: tf.Tensor, key: tf.Tensor) -> tf.Tensor:
        # 8-bit pixels are their own levels; fewer levels are mapped back from the 8-bit scale.
        pixels = tf.cast(batch, dtype)
        levels = pixels if info.levels == 256 else uint8_to_levels(pixels, info.levels)
        return dequantize_levels(levels, key, info.levels, dequantize, dtype)

    return preprocess
