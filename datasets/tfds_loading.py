"""Loading a TFDS split with a clear error when the data are not prepared.

`tfds.load(..., download=False)` on a dataset that was never built fails with a bare `AssertionError` deep in
TFDS. `load_tfds_split` turns that into `DatasetNotPreparedError`, whose message gives the exact `tfds build`
command and the data directory it looked in. Our own builders (`tfp_flows_toy`, `tfp_flows_digits`) generate
their data locally, so they are always loaded with `download=True` (nothing goes to the network).

Example:
    >>> from tfp_flows.datasets.tfds_loading import load_tfds_split
    >>> ds = load_tfds_split("mnist", "train", data_dir="/tmp/empty")  # doctest: +SKIP
    DatasetNotPreparedError: TFDS dataset 'mnist' is not prepared in the data directory '/tmp/empty'. ...
        tfds build mnist --data_dir /tmp/empty
"""

import inspect
import os
from typing import Any

import tensorflow as tf
import tensorflow_datasets as tfds

__all__ = ["DatasetNotPreparedError", "PackagedBuilder", "default_data_dir", "load_tfds_split"]


class PackagedBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):  # type: ignore[call-arg]
    """Base of our TFDS builders that live inside an installed package (not in a TFDS dataset folder).

    TFDS 4.9 finds a builder's `code_path` with the `importlib_resources` backport, which Python >= 3.9 does not
    install; this gives it the file that defines the builder, which is what that lookup would return.
    """

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> Any:
        return tfds.core.Path(inspect.getfile(cls))


class DatasetNotPreparedError(FileNotFoundError):
    """A TFDS dataset that must be downloaded is missing from the data directory (the message says how to fix it)."""


def default_data_dir() -> str:
    """TFDS's data directory when none is given ($TFDS_DATA_DIR when TFDS was imported, else
    ~/tensorflow_datasets): the directory `tfds.load` searches."""
    return os.path.expanduser(str(tfds.core.constants.DATA_DIR))


def load_tfds_split(tfds_name: str, split: str, data_dir: str | None = None, download: bool = False) -> tf.data.Dataset:
    """`tfds.load(tfds_name, split=split)` as a dict-element `tf.data.Dataset`, files read in a fixed order.

    Args:
      tfds_name: registered TFDS name, for example "mnist", "cifar10" or "tfp_flows_digits".
      split: a TFDS split string ("train", "test", or a slice such as "train[:90%]").
      data_dir: TFDS data directory; None means TFDS's default (`default_data_dir()`).
      download: let TFDS download and prepare missing data (needs network for public datasets).

    Raises:
      DatasetNotPreparedError: the data are not prepared and `download` is False.
    """
    try:
        return tfds.load(tfds_name, split=split, data_dir=data_dir, download=download, shuffle_files=False)
    except AssertionError as err:
        directory = os.path.expanduser(data_dir) if data_dir else default_data_dir()
        raise DatasetNotPreparedError(
            f"TFDS dataset {tfds_name!r} is not prepared in the data directory {directory!r}. Prepare it once "
            f"(this downloads it, so run it where there is network access and copy the directory over if this "
            f"machine is offline):\n\n    tfds build {tfds_name} --data_dir {directory}\n\n"
            f"then pass data_dir={directory!r} (or set TFDS_DATA_DIR), or pass download=True to let TFDS "
            f"download it now. TFDS said: {err}"
        ) from err
