"""`NSF`: neural spline flows (Durkan, Bekasov, Murray & Papamakarios 2019, "Neural Spline Flows"), for vectors.

Every step applies a monotonic rational-quadratic spline with K bins on [-B, B] to each transformed dimension,
the identity outside (linear tails, sec. 3.1); in bin k, with xi = (x - x_k) / w_k and s_k = h_k / w_k,

    g(x) = y_k + h_k [s_k xi^2 + d_k xi (1 - xi)] / [s_k + (d_{k+1} + d_k - 2 s_k) xi (1 - xi)]   (App. A.1)

whose knots (widths, heights, interior derivatives: 3K - 1 numbers per dimension) a network computes from the
other dimensions. Two variants (sec. 3.2 and 3.3):

    variant="coupling"        RQ-NSF (C): half-mask couplings with MLP conditioners (alternating halves); density
                              and sampling both one network pass per step.
    variant="autoregressive"  RQ-NSF (AR): MADE-conditioned autoregressive splines; density one pass per step,
                              sampling D passes (TFP's MaskedAutoregressiveFlow loop).

Steps are separated by a fixed permutation (`permutation`: "reverse" or "random", seeded) or, with
`mixing="lu"`, by a learned invertible linear map (keras_models/flows/mixing.py), and optionally preceded by an
ActNorm (`actnorm`). Every step starts as the identity (zero last layers, derivatives offset to 1, see
`keras_models.layers.rational_quadratic_coupling`). Data are best standardised: the splines act on [-B, B] and
leave the rest to the tails (B = 3 by default; ActNorm, on by default, standardises from the first batch).
The identity tails also keep the base distribution's tails: on a heavy-tailed (Student-t) banana RealNVP's
affine couplings fit better (held-out KL gap 0.02 against 0.47 at equal steps; benchmarks/README.md).

Example:
    >>> from keras_models import NSF
    >>> from tfp_flows.datasets import make_dataset
    >>> points = make_dataset("two_moons", split="train", batch_size=64).take(2)
    >>> model = NSF(event_shape=(2,), num_layers=4, hidden_units=(32, 32), num_bins=8)
    >>> model.compile(optimizer="adam")
    >>> history = model.fit(points, epochs=1, verbose=0)
    >>> model.sample(3, seed=0).shape
    TensorShape([3, 2])
"""

import keras

from keras_models.core.flow_model import FlowModel
from keras_models.flows.mixing import resolve_mixing, vector_steps
from keras_models.layers import (
    AutoregressiveSplineLayer,
    RationalQuadraticCouplingLayer,
    mlp,
)
from keras_models.layers.actnorm import resolve_actnorm
from tfp_flows import masks
from tfp_flows.rational_quadratic_coupling import SplineSettings
from tfp_flows.validation import check_int, check_number, check_one_of, check_positive_ints, check_vector_event_shape

VARIANTS = ("coupling", "autoregressive")


@keras.saving.register_keras_serializable(package="tfp_flows")
class NSF(FlowModel):
    """Neural spline flow on vectors: `num_layers` rational-quadratic spline steps (coupling or autoregressive).

    Args:
      event_shape: (D,) with D >= 2.
      variant: "coupling" (default, RQ-NSF (C)) or "autoregressive" (RQ-NSF (AR)); see the module docstring.
      num_layers: number of spline steps (default 5).
      hidden_units: widths of the MLP conditioners (coupling) or of the MADE (autoregressive); default (128, 128).
      activation: hidden activation (default "relu").
      dropout: variant "coupling" only: rate of a Dropout after every hidden layer of the MLPs, active only while
        training (default 0.0: none; `keras_models.layers.mlp`).
      num_bins: K >= 2 bins per spline (default 8, as in the paper's tabular experiments).
      bound: B > 0, the splines act on [-B, B] (default 3.0, the paper's tail bound).
      min_bin_width, min_bin_height, min_derivative: the spline's floors (default 1e-3, the paper's code).
      permutation: "reverse" (default) or "random" (fixed, from `permutation_seed`) between steps.
      permutation_seed: seed of the "random" permutations and of the "lu" maps' initial rotations (stored in the
        config, so reloads agree).
      mixing: what goes between steps: None (default: `permutation`), "reverse", "random", or "lu", a learned
        invertible linear map W = P L U initialised at a random rotation (keras_models/flows/mixing.py).
      actnorm: an ActNorm (data-initialised per-dimension affine) before every step: True, False, or "auto"
        (default; on, as for every vector density preset: `keras_models.layers.actnorm.resolve_actnorm`). The splines
        leave everything outside [-B, B] to their identity tails; the ActNorms scale the data in. Full budget,
        median of 3 seeds, held-out KL gap with / without: 16-Gaussian spiral 0.26 / 2.08, heavy-tailed banana
        0.47 / 140 (benchmarks/README.md, "Neural spline flows").
      **kwargs: `FlowModel` arguments (base_distribution, num_bits, name, dtype="float64"; `context_shape=` for
        a conditional NSF p(x | c): every conditioner network, MLP or MADE, also reads the context c).
    """

    def __init__(
        self,
        event_shape,
        variant="coupling",
        num_layers=5,
        hidden_units=(128, 128),
        activation="relu",
        num_bins=8,
        bound=3.0,
        min_bin_width=1e-3,
        min_bin_height=1e-3,
        min_derivative=1e-3,
        permutation="reverse",
        permutation_seed=0,
        actnorm="auto",
        mixing=None,
        dropout=0.0,
        **kwargs,
    ):
        super().__init__(event_shape, **kwargs)
        size = check_vector_event_shape(self.event_shape, "NSF", hint="a step conditions each dimension on others")[0]
        self.variant = check_one_of(variant, "variant", VARIANTS, owner="NSF")
        self.num_layers = check_int(num_layers, "num_layers", owner="NSF")
        self.hidden_units = check_positive_ints(hidden_units, "hidden_units", owner="NSF")
        self.activation = activation
        self.dropout = check_number(dropout, "dropout", minimum=0, below=1, owner="NSF")
        if self.variant == "autoregressive" and self.dropout:
            raise ValueError(
                f"NSF: `dropout` is for the MLP conditioners of variant='coupling'; received dropout={dropout!r} "
                "with variant='autoregressive'"
            )
        settings = SplineSettings(num_bins, bound, min_bin_width, min_bin_height, min_derivative, owner="NSF")
        self.num_bins, self.bound = settings.num_bins, settings.bound
        self.min_bin_width, self.min_bin_height = settings.min_bin_width, settings.min_bin_height
        self.min_derivative = settings.min_derivative
        self.mixing = mixing
        between_steps = resolve_mixing(mixing, permutation, owner="NSF")
        self.permutation = permutation
        self.permutation_seed = int(permutation_seed)
        self.actnorm = resolve_actnorm(actnorm, "NSF", data_initialised=True)
        self._set_flow_layers(
            vector_steps(
                lambda i: self._step(size, i),
                self.num_layers,
                size=size,
                mixing=between_steps,
                seed=self.permutation_seed,
                dtype=self.dtype_policy,
                actnorm=self.actnorm,
            )
        )

    def _spline_kwargs(self):
        return dict(
            num_bins=self.num_bins,
            bound=self.bound,
            min_bin_width=self.min_bin_width,
            min_bin_height=self.min_bin_height,
            min_derivative=self.min_derivative,
        )

    def _step(self, size, i):
        dtype = self.dtype_policy
        if self.variant == "autoregressive":
            return AutoregressiveSplineLayer(
                self.hidden_units,
                activation=self.activation,
                dtype=dtype,
                context_shape=self.step_context_shape,
                name=f"autoregressive_{i}",
                **self._spline_kwargs(),
            )

        def network_fn(output_units):
            return mlp(self.hidden_units, output_units, activation=self.activation, dtype=dtype, dropout=self.dropout)

        # One mask parity: the permutation between steps alternates the halves (with "reverse", alternating the
        # parity as well would transform the same dimensions in every step).
        return RationalQuadraticCouplingLayer(
            masks.half(size),
            network_fn,
            dtype=dtype,
            context_shape=self.step_context_shape,
            name=f"coupling_{i}",
            **self._spline_kwargs(),
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            variant=self.variant,
            num_layers=self.num_layers,
            hidden_units=list(self.hidden_units),
            activation=self.activation,
            permutation=self.permutation,
            permutation_seed=self.permutation_seed,
            mixing=self.mixing,
            actnorm=self.actnorm,
            dropout=self.dropout,
            **self._spline_kwargs(),
        )
        return config
