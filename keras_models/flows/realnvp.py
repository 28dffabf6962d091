"""`RealNVP`: affine couplings with bounded log-scales (Dinh, Sohl-Dickstein & Bengio 2017, "Density estimation
using Real NVP"), for vectors and for images.

Each coupling, in the density direction (data x -> latent z), with b the 0/1 mask (1 = pass through):

    z = b * x + (1 - b) * (x - t(b * x)) * exp(-s(b * x)),    log|det dz/dx| = -sum_{b = 0} s      (eq. 7-9)

with s bounded to (-1, 1) by s = tanh(r) (`tfp_flows.AffineCoupling(log_scale_bound="tanh")`, c = 1) and the
conditioner's last layer zero-initialised, so every coupling starts as the identity.

Vectors, `event_shape=(D,)`: `num_couplings` couplings on one half mask with MLP conditioners (`hidden_units`,
Dropout `dropout` while training), each preceded by a Glow-style ActNorm (data-initialised per-dimension affine;
`actnorm`); between couplings, the `mixing` decides what each transforms (keras_models/flows/mixing.py): fixed
random permutations by default (as BayesFlow's coupling flows), "reverse" (the paper's alternating half masks) or
"lu", learned (W = P L U, Glow's 1x1 convolution).

Images, `event_shape=(H, W, C)`, data in [0, 1] as (pixel + u) / 256: the data side first maps [0, 1] to R by
logit(alpha + (1 - 2 alpha) x) (sec. 4.1, alpha = `logit_alpha`), then the multi-scale architecture (sec. 3.6):

    scale 1 .. L-1:  3 checkerboard couplings -> squeeze -> 3 channel couplings -> factor out half the channels
                     (the other half goes through the next scale) -> unsqueeze back
    scale L:         4 checkerboard couplings

The factored-out channels go straight to the latent, and every scale unsqueezes at its end, so the latent has
the data's shape [H, W, C]. Conditioners are residual conv nets (`width` feature maps, `num_blocks` residual
blocks; the paper used 8 blocks of 64 features on CIFAR-10, the small defaults here suit CPU-sized runs).
`bits_per_dim` (8-bit data) counts the logit's Jacobian, so a model that is uniform on [0, 1] scores 8.

Example:
    >>> import numpy as np, tensorflow as tf
    >>> from keras_models import RealNVP
    >>> vectors = RealNVP(event_shape=(2,), num_couplings=8, hidden_units=(64, 64))
    >>> rng = np.random.default_rng(0)
    >>> images = ((rng.integers(0, 256, (64, 8, 8, 1)) + rng.uniform(size=(64, 8, 8, 1))) / 256).astype("float32")
    >>> model = RealNVP(event_shape=(8, 8, 1), width=32, num_blocks=1)     # 2 scales for 8 x 8 images
    >>> model.compile(optimizer="adam")
    >>> history = model.fit(tf.data.Dataset.from_tensor_slices(images).batch(32), epochs=1, verbose=0)
    >>> sorted(history.history)
    ['bits_per_dim', 'loss', 'nll']
"""

import keras
import numpy as np

from keras_models.core.flow_model import FlowModel
from keras_models.flows.mixing import MIXINGS, mixing_layer
from keras_models.layers import (
    ActNormLayer,
    AffineCouplingLayer,
    ChannelSliceLayer,
    LogitLayer,
    ResidualConvNet,
    SequentialFlow,
    SqueezeLayer,
    mlp,
)
from keras_models.layers.actnorm import resolve_actnorm
from tfp_flows import masks
from tfp_flows.affine_coupling import checked_log_scale_limit
from tfp_flows.validation import (
    check_int,
    check_number,
    check_one_of,
    check_positive_ints,
    check_vector_event_shape,
    is_real,
)

# Vector defaults (None in the signature): random permutations between couplings and dropout in the MLPs, what won
# or tied every vector row of the fit-quality benchmark against the half masks without dropout (benchmarks/README.md,
# "Random permutations with dropout").
VECTOR_MIXING, VECTOR_DROPOUT = "random", 0.05
MIN_FINAL_SIZE = 4  # default num_scales: squeeze while the next scale's height and width stay >= this


def default_num_scales(height, width):
    """1 + the number of squeezes (by 2) that keep height and width even and the next scale at least 4 x 4."""
    scales = 1
    while height % 2 == 0 and width % 2 == 0 and min(height, width) // 2 >= MIN_FINAL_SIZE:
        height, width, scales = height // 2, width // 2, scales + 1
    return scales


@keras.saving.register_keras_serializable(package="tfp_flows")
class RealNVP(FlowModel):
    """RealNVP for vectors ((D,): MLP conditioners) or images ((H, W, C): multi-scale, conv conditioners).

    Args:
      event_shape: (D,) with D >= 2, or (H, W, C) image data in [0, 1].
      num_couplings: vectors only: number of affine couplings (alternating half masks). Default 8.
      hidden_units: vectors only: MLP conditioner widths. Default (512, 512).
      activation: vectors only: hidden activation of the MLPs. Default "relu".
      actnorm: put a Glow-style ActNorm (data-initialised per-channel affine) before every coupling. "auto"
        (default): on for vectors, off for images. With the couplings' log-scales bounded, data whose dimensions
        differ widely in location and spread (logit-space pixels, correlated tabular data) need the ActNorms to
        fit at all (benchmarks/README.md, "ActNorm before the couplings of vector presets").
      width: images only: feature maps of the residual conv conditioners. Default 64.
      num_blocks: images only: residual blocks per conditioner. Default 2 (the paper: 8 blocks of 64 maps on
        CIFAR-10; smaller here so CPU runs stay practical).
      num_scales: images only: number of scales L (L - 1 squeeze-and-factor-out steps). Default: chosen from
        the image size by `default_num_scales` (squeeze while the next scale stays at least 4 x 4; 8 x 8 -> 2,
        32 x 32 -> 4). Each squeeze needs even height and width.
      logit_alpha: images only: alpha of the logit preprocessing (the paper: 0.05).
      num_bits: images only: bit depth of the data (8), for `bits_per_dim`; None turns the metric off.
        Always None for vectors.
      log_scale_limit: c of each coupling's log-scale bound s = c tanh(r / c) (default 1.0, the bound of Keras'
        RealNVP example). With the ActNorms, c = 2 let each coupling squeeze what it had seen and lost 784-D MNIST
        vectors to a bounded plain TFP build (4.58 against 3.91 bits/dim); c = 1 wins them, 3.32 against 4.15
        (5 seeds, best checkpoint; benchmarks/README.md, "RealNVP's scale bound").
      mixing: vectors only: what goes between couplings: "random" (fixed permutations drawn from
        `permutation_seed`, never the identity; at D = 2 the swap), "reverse" (the paper's alternating half masks)
        or "lu" (a learned invertible linear map initialised at a random rotation). None (default): "random" for
        vectors; images mix through their squeezes and masks.
      dropout: vectors only: rate of a Dropout after every hidden layer of the MLPs, active only while training;
        `log_prob` stays exact and deterministic. None (default): 0.05 for vectors (BayesFlow's rate). With random
        mixing it beat the alternating masks without dropout on every row measured, best checkpoint, 5 seeds:
        breast cancer 1.70 against 17.17 nats, wine 16.37 against 16.82 (11 seeds), ica8 0.626 against 0.657,
        784-D MNIST 3.16 against 3.32 bits/dim (3.29 against 3.49 with noise drawn once), the 2-D spiral 0.637
        against 0.682 (benchmarks/README.md, "Random permutations with dropout"). Pass 0.0 where the data are
        seen a few times only or there are none (variational inference): on two moons at 12 epochs of 50,000
        points it cost 0.05-0.07 nats, and `tfp-flows train` turns it off for its toy densities.
      permutation_seed: vectors only: seed of the "random" permutations and of the "lu" maps' initial rotations.
      base_distribution: "normal" (default, as in the paper), "logistic", or any base `FlowModel` takes ("gmm",
        a `BaseDistribution` layer, a `tfd.Distribution` over the latent).
      context_shape: None (default), or the shape of one context c: a conditional RealNVP p(x | c), every
        conditioner reading c (appended to the MLP's input for vectors, broadcast over H x W as extra channels of
        the conv nets for images; `MaskedConditioner`). `fit` then takes (x, c) pairs (`FlowModel`).
      **kwargs: `keras.Model` arguments, e.g. `name`, `dtype="float64"` (reaches every sub-layer).
    """

    def __init__(
        self,
        event_shape,
        num_couplings=8,
        hidden_units=(512, 512),
        activation="relu",
        actnorm="auto",
        width=64,
        num_blocks=2,
        num_scales=None,
        logit_alpha=0.05,
        num_bits=8,
        base_distribution="normal",
        log_scale_limit=1.0,
        mixing=None,
        permutation_seed=0,
        dropout=None,
        **kwargs,
    ):
        shape = tuple(event_shape) if np.ndim(event_shape) else (event_shape,)
        if len(shape) not in (1, 3):
            raise ValueError(
                f"RealNVP: `event_shape` must be (D,) for vectors or (H, W, C) for images; received {event_shape!r}"
            )
        is_image = len(shape) == 3
        num_couplings = check_int(num_couplings, "num_couplings")
        hidden_units = check_positive_ints(hidden_units, "hidden_units")
        super().__init__(shape, base_distribution=base_distribution, num_bits=num_bits if is_image else None, **kwargs)
        self.num_couplings, self.hidden_units, self.activation = num_couplings, hidden_units, activation
        self.actnorm = resolve_actnorm(actnorm, "RealNVP", data_initialised=not is_image)
        self.log_scale_limit = checked_log_scale_limit(log_scale_limit, "tanh")
        self.width = check_int(width, "width")
        self.num_blocks = check_int(num_blocks, "num_blocks", minimum=0)
        if not is_real(logit_alpha) or not 0 < logit_alpha < 0.5:
            raise ValueError(f"`logit_alpha` must be a number in (0, 0.5); received {logit_alpha!r}")
        self.logit_alpha = float(logit_alpha)
        self.num_scales = num_scales
        check_one_of(mixing, "mixing", MIXINGS, owner="RealNVP")
        if is_image and mixing is not None:
            raise ValueError(
                f"RealNVP: `mixing` is for vectors (event_shape (D,)); images mix through the squeezes and masks; "
                f"received mixing={mixing!r} with event_shape {self.event_shape}"
            )
        self.permutation_seed = int(permutation_seed)
        self.mixing = VECTOR_MIXING if mixing is None and not is_image else mixing
        default_dropout = 0.0 if is_image else VECTOR_DROPOUT
        self.dropout = check_number(
            default_dropout if dropout is None else dropout, "dropout", minimum=0, below=1, owner="RealNVP"
        )
        if is_image and self.dropout:
            raise ValueError(
                f"RealNVP: `dropout` is for the MLP conditioners of vectors (event_shape (D,)); received "
                f"dropout={dropout!r} with event_shape {self.event_shape}"
            )
        if is_image:
            height, width_px, _ = self.event_shape
            self.num_scales = (
                default_num_scales(height, width_px) if num_scales is None else check_int(num_scales, "num_scales")
            )
            self._check_image_scales(self.event_shape, self.num_scales)
            layers = [LogitLayer(alpha=self.logit_alpha, dtype=self.dtype_policy, name="logit")]
            layers += self._image_scale(self.event_shape, 1, self.num_scales)
        else:
            check_vector_event_shape(self.event_shape, "RealNVP", hint="a coupling splits the D values in two")
            layers = self._vector_flow(self.event_shape[0])
        self._set_flow_layers(layers)

    # ----------------------------------------------------------------------------------------------------
    def _affine_couplings(self, mask_fn, network_fn, count, prefix, between=None):
        """`count` affine couplings named `{prefix}_{k}`, coupling k masked by mask_fn(k) and preceded by an
        ActNorm when `actnorm` is on, and by the layer between(k) for k >= 1 when `between` is given."""
        layers = []
        for k in range(count):
            name = f"{prefix}_{k}"
            if k and between is not None:
                layers.append(between(k))
            coupling = AffineCouplingLayer(
                mask_fn(k),
                network_fn,
                dtype=self.dtype_policy,
                name=name,
                log_scale_limit=self.log_scale_limit,
                context_shape=self.step_context_shape,
            )
            if self.actnorm:
                layers.append(ActNormLayer(dtype=self.dtype_policy, name=f"{name}_actnorm"))
            layers.append(coupling)
        return layers

    def _vector_flow(self, size):
        dtype = self.dtype_policy

        def network_fn(output_units):
            return mlp(self.hidden_units, output_units, activation=self.activation, dtype=dtype, dropout=self.dropout)

        # One mask parity: the mixing between couplings decides what each transforms ("reverse" is the paper's
        # alternating half masks, up to the order inside each half, which the MLPs do not see).
        rng = np.random.default_rng(self.permutation_seed)
        return self._affine_couplings(
            lambda k: masks.half(size),
            network_fn,
            self.num_couplings,
            "coupling",
            lambda k: mixing_layer(self.mixing, size, k, rng, dtype),
        )

    @staticmethod
    def _check_image_scales(event_shape, num_scales):
        height, width, channels = event_shape
        for scale in range(1, num_scales):
            if height % 2 or width % 2:
                raise ValueError(
                    f"RealNVP: `num_scales`={num_scales} needs {num_scales - 1} squeezes, but scale "
                    f"{scale} has odd height or width ({height} x {width}) for event_shape "
                    f"{tuple(event_shape)}; use fewer scales"
                )
            height, width, channels = height // 2, width // 2, channels * 2
        if height * width < 2:
            raise ValueError(
                f"RealNVP: the last scale of event_shape {tuple(event_shape)} with num_scales="
                f"{num_scales} is 1 x 1: a checkerboard needs 2 pixels; use fewer scales"
            )

    def _couplings(self, mask_fn, shape, count, prefix):
        """`count` affine couplings on `shape` with masks mask_fn(*shape, parity) of alternating parity."""
        dtype = self.dtype_policy

        def network_fn(output_channels):
            return ResidualConvNet(self.width, self.num_blocks, output_channels, dtype=dtype)

        return self._affine_couplings(lambda k: mask_fn(*shape, parity=k % 2), network_fn, count, prefix)

    def _image_scale(self, shape, scale, num_scales):
        """Steps of scale `scale` (1-based; data side first) and, through ChannelSliceLayer, of every later one."""
        height, width, channels = shape
        name = f"scale_{scale}"
        if scale == num_scales:
            return self._couplings(masks.checkerboard, shape, 4, f"{name}_checkerboard")
        squeezed = (height // 2, width // 2, channels * 4)
        kept = (height // 2, width // 2, channels * 2)  # half the squeezed channels go on; the rest are latent
        dtype = self.dtype_policy
        inner = SequentialFlow(self._image_scale(kept, scale + 1, num_scales), dtype=dtype, name=f"scale_{scale + 1}")
        return (
            self._couplings(masks.checkerboard, shape, 3, f"{name}_checkerboard")
            + [SqueezeLayer(dtype=dtype, name=f"{name}_squeeze")]
            + self._couplings(masks.channel, squeezed, 3, f"{name}_channel")
            + [
                ChannelSliceLayer(inner, kept[-1], dtype=dtype, name=f"{name}_factor_out"),
                SqueezeLayer(unsqueeze=True, dtype=dtype, name=f"{name}_unsqueeze"),
            ]
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            num_couplings=self.num_couplings,
            hidden_units=list(self.hidden_units),
            activation=self.activation,
            actnorm=self.actnorm,
            width=self.width,
            num_blocks=self.num_blocks,
            num_scales=self.num_scales,
            logit_alpha=self.logit_alpha,
            log_scale_limit=self.log_scale_limit,
            mixing=self.mixing,
            permutation_seed=self.permutation_seed,
            dropout=self.dropout,
        )
        return config
