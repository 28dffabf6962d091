"""tfp_flows.datasets: toy densities, U1-U4 energies, TFDS builders and tf.data pipelines for flows.

Installed from the repository's `datasets/` folder as the subpackage `tfp_flows.datasets` (never as a
top-level `datasets`, which belongs to Hugging Face). Importing it registers two TFDS builders:
`tfp_flows_toy/<density>` (one config per 2-D density) and `tfp_flows_digits` (scikit-learn's 8x8 digits).

Main entry points:
- `make_dataset(name, split, batch_size, ...)`: a `tf.data.Dataset` of x alone for `FlowModel.fit`, or of
  (x, c) pairs with `conditional=True` (c one-hot: the image's label, the toy point's class).
- `from_source(source, ...)`: a user's own data (CSV, NumPy, DataFrame, tf.data, image folder), checked and split,
  with the training split's standardisation statistics (`sources`).
- `load_image_folder(path, ...)`: a folder of the user's PNG/JPEG images (flat, or one subfolder per class) as
  seeded train/validation/test splits; `image_batches(folder, split, batch_size, ...)` makes them `fit`-ready.
- `dataset_info(name)`, `list_datasets()`: event shape, 8-bit flag, D and context shape of each dataset.
- `bits_per_dim(log_prob, num_dims, ...)`: bits/dim on the 8-bit scale with every Jacobian counted.
- `get_density(name)` / `DENSITIES`: 2-D samplers with their true `log_prob`.
- `get_conditional_density(name)` / `CONDITIONAL_DENSITIES`: two_moons and eight_gaussians as p(x | c), c the
  one-hot class that made each point, with the true `log_prob(x, c)` (what `make_dataset(..., conditional=True)`
  yields for them).
- `energies.ENERGIES`: Rezende & Mohamed's U1-U4 for variational inference.

Example:
    >>> import tfp_flows.datasets as data
    >>> ds = data.make_dataset("two_moons", batch_size=256)
    >>> next(iter(ds)).shape
    TensorShape([256, 2])
"""

from . import energies
from .bits import bits_per_dim
from .conditional import CONDITIONAL_DENSITIES, ConditionalToyDensity, get_conditional_density
from .digits_builder import DIGITS_SPLIT_SIZES, TfpFlowsDigits, digits_split
from .energies import ENERGIES, get_energy
from .image_folder import ImageFolder, image_batches, load_image_folder
from .pipeline import make_dataset
from .registry import FlowDatasetInfo, dataset_info, list_datasets
from .sources import ImageData, RegisteredData, TabularData, from_source, read_table_chunks
from .synthetic import DENSITIES, ToyDensity, get_density
from .tfds_loading import DatasetNotPreparedError, load_tfds_split
from .toy_builder import TOY_SPLIT_SIZES, TfpFlowsToy, ToyConfig, toy_labelled_split, toy_split

__all__ = [
    "CONDITIONAL_DENSITIES",
    "ConditionalToyDensity",
    "DENSITIES",
    "DIGITS_SPLIT_SIZES",
    "DatasetNotPreparedError",
    "ENERGIES",
    "FlowDatasetInfo",
    "ImageData",
    "ImageFolder",
    "RegisteredData",
    "TOY_SPLIT_SIZES",
    "TfpFlowsDigits",
    "TabularData",
    "TfpFlowsToy",
    "ToyConfig",
    "ToyDensity",
    "bits_per_dim",
    "dataset_info",
    "digits_split",
    "energies",
    "from_source",
    "get_conditional_density",
    "get_density",
    "get_energy",
    "image_batches",
    "list_datasets",
    "load_image_folder",
    "load_tfds_split",
    "make_dataset",
    "read_table_chunks",
    "toy_labelled_split",
    "toy_split",
]
