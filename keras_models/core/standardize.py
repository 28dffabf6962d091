"""`StandardizeLayer`: the fixed standardisation of tabular data, the first step of a model fitted to a user's rows.

Density direction (data -> latent), per column j, with the training split's statistics m_j, s_j:

    y_j = log x_j (the log columns) or x_j,      z_j = (y_j - m_j) / s_j
    log|det dz/dx| = -sum_j log s_j - sum_{j in log columns} log x_j

so a model's `log_prob` answers for raw rows in the user's units and `sample` returns raw rows (its forward is
x_j = exp(s_j z_j + m_j) or s_j z_j + m_j). The constants live in the layer's config (saved in `.keras`
files) and, as tensors made on every call, in the traced graphs of a SavedModel; nothing is trained.

Example:
    >>> import tensorflow as tf
    >>> from keras_models.core.standardize import StandardizeLayer
    >>> layer = StandardizeLayer(shift=[10.0, 0.0], scale=[2.0, 1.0], columns=["a", "b"], log_columns=["b"])
    >>> layer.build((None, 2))
    >>> layer(tf.constant([[12.0, 1.0]])).numpy()     # data -> latent: ((12 - 10) / 2, log 1)
    array([[1., 0.]], dtype=float32)
"""

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

import tfp_flows
from keras_models.core.bijector_layer import BijectorLayer

tfb = tfp.bijectors


class StandardizeLayer(BijectorLayer):
    """z = (y - shift) / scale with y = log x on `log_columns`, x elsewhere (module docstring); no weights.

    A flow step without weights, in core because `FlowModel` itself puts it first
    (`FlowModel(..., standardization=...)`).

    Args:
      shift: the D means m_j (of log x_j for a log column).
      scale: the D standard deviations s_j > 0.
      columns: the D column names (kept for CSV output and scoring); default "x0".."x{D-1}".
      log_columns: the names of the columns taken on a log scale (values must be > 0).
    """

    def __init__(
        self,
        shift: Sequence[float],
        scale: Sequence[float],
        columns: Sequence[str] | None = None,
        log_columns: Sequence[str] = (),
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.shift = [float(v) for v in shift]
        self.scale = [float(v) for v in scale]
        size = len(self.shift)
        self.columns = [str(c) for c in columns] if columns is not None else [f"x{i}" for i in range(size)]
        self.log_columns = [str(c) for c in log_columns]
        if len(self.scale) != size or len(self.columns) != size or size == 0:
            raise ValueError(
                f"StandardizeLayer: `shift`, `scale` and `columns` must have the same length D >= 1; received "
                f"{len(self.shift)}, {len(self.scale)} and {len(self.columns)}"
            )
        if not all(math.isfinite(v) for v in self.shift) or not all(math.isfinite(v) and v > 0 for v in self.scale):
            raise ValueError(
                f"StandardizeLayer: `shift` must be finite and `scale` finite and > 0 (a constant column has scale "
                f"0); received shift={self.shift}, scale={self.scale}"
            )
        unknown = sorted(set(self.log_columns) - set(self.columns))
        if unknown:
            raise ValueError(f"StandardizeLayer: `log_columns` {unknown} are not among `columns` {self.columns}")

    data_support = None  # the log columns need x > 0: `sources.from_source` checks the training data

    def build(self, input_shape):
        if input_shape[-1] != len(self.shift):
            raise ValueError(
                f"StandardizeLayer: the data have {input_shape[-1]} columns; expected {len(self.shift)} (`shift`)"
            )
        self.built = True

    @property
    def log_mask(self) -> np.ndarray:
        """[D] booleans: True for the log columns."""
        return np.array([c in self.log_columns for c in self.columns])

    def bijector(self):
        # Forward (latent -> data): x = exp_on_log_columns(scale * z + shift). Tensors made here, per call (the
        # design note's cache rule).
        dtype = self.compute_dtype
        affine = [tfb.Shift(tf.constant(self.shift, dtype)), tfb.Scale(tf.constant(self.scale, dtype))]
        if not self.log_columns:
            return tfb.Chain(affine, name="standardize")
        return tfb.Chain([tfp_flows.MaskedExp(self.log_mask, dtype=dtype), *affine], name="standardize")

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(shift=self.shift, scale=self.scale, columns=self.columns, log_columns=self.log_columns)
        return config
