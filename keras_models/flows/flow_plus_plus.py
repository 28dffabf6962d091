"""`FlowPlusPlus`: Flow++ (Ho, Chen, Srinivas, Duan & Abbeel 2019) as a Keras 3 model trained with `fit`.

Flow++'s three ideas, each switchable for ablations:
1. Logistic-mixture couplings (sec. 3.2): on the transformed entries, in the density direction,
       z = exp(a) * logit(MixLogCDF(x; pi, mu, s)) + b,     (a, b, pi, mu, s) = conditioner(x * mask),
   with K components per entry (`num_components`; Flow++ used 32, the default here is 4 to keep the sampling
   root solve cheap). `a` is bounded inside `tfp_flows.LogisticMixtureCoupling`; the conditioner's last layer
   starts at zero.
2. A conditioner of gated residual convolutions with optional gated multi-head self-attention (sec. 3.3,
   `use_attention`; `layers.attention.GatedConvAttentionNet`). Vector events use an MLP instead.
3. Variational dequantization (sec. 3.1, `dequantization="variational"`): noise u ~ q(u | x) from a conditional
   flow (`keras_models.dequantization.VariationalDequantizer`) replaces uniform noise, and training maximises
       ELBO(x) = E_q[ log p(x + u / 2^b) - log q(u | x) ]  <=  log P(x) + D b log 2
   (p: this model's continuous density on the [0, 1] scale; P: the probability of the discrete data).

Architecture for images [H, W, C] (data side first, as Flow++'s CIFAR-10 model without dropout):
    logit(alpha + (1 - 2 alpha) x)                                       (alpha = `logit_alpha`, Flow++: 0.05)
    n1 x [ActNorm, 1x1 conv (C >= 2), mixture coupling, checkerboard mask of alternating parity]
    squeeze (2x2 space-to-depth)                                         (only if n2 + n3 > 0)
    n2 x [ActNorm, 1x1 conv, mixture coupling, channel mask]
    n3 x [ActNorm, 1x1 conv, mixture coupling, checkerboard mask]
    unsqueeze                                                            (latents keep the event shape)
with `num_couplings=(n1, n2, n3)`, default (4, 2, 3) as in Flow++ (an int n means (n, 0, 0): one resolution).
For vector events [D]: n x [ActNorm, 1x1 conv (a learned LU linear map), mixture coupling, half mask].
Flow++'s ActNorm ("Norm") is per element; ActNorm here is per channel, as in Glow.

Data contract (`dequantization`):
  "variational" (default for images): x is the DISCRETE data pixel / 2^b, without noise
      (`tfp_flows.datasets.make_dataset(..., dequantize=None)`); the model draws u itself. Inputs are quantized
      first, x_disc = min(floor(x 2^b), 2^b - 1) / 2^b, so pixel / (2^b - 1) and already-noisy (pixel + u) / 2^b
      inputs land on the same discrete values (data outside [0, 1] is checked, never clipped in: see
      `FlowModel.support`). `call` (so `fit`/`evaluate`) returns a one-sample ELBO estimate
      per example; `nll` and `bits_per_dim` are then upper bounds for the discrete data.
  "uniform": x already carries uniform noise, (pixel + u) / 2^b, u ~ U[0, 1) (`make_dataset(...,
      dequantize="uniform")`); `call` is `log_prob`. The ablation of Flow++'s Table 2.
  None (default for vectors): continuous data. Dequantization only means something for b-bit data, so vector
      events accept only None (ValueError otherwise); for images None means continuous data in [0, 1].
`log_prob(x)` is always the flow's continuous density (nats, [0, 1] scale for images); `encode`/`decode`/`sample`
act on the continuous data. Decoding and sampling invert the mixture CDFs by a root solve (slower than encoding).

Example:
    >>> import numpy as np
    >>> from keras_models import FlowPlusPlus
    >>> pixels = np.random.default_rng(0).integers(0, 256, size=(32, 8, 8, 1))
    >>> discrete_images = (pixels / 256).astype("float32")                # pixel / 256, no noise
    >>> model = FlowPlusPlus((8, 8, 1), num_components=2, num_couplings=(1, 1, 0), hidden_channels=8,
    ...                      use_attention=True, num_heads=2)            # variational dequantization
    >>> model.compile(optimizer="adam")
    >>> history = model.fit(discrete_images, batch_size=16, epochs=1, verbose=0)
    >>> model.sample(4, temperature=0.8, seed=0).shape
    TensorShape([4, 8, 8, 1])
    >>> moons = FlowPlusPlus((2,), num_components=4, num_couplings=4, hidden_channels=32)   # 2-D data
"""

import keras
import numpy as np
import tensorflow as tf

from keras_models.core.flow_model import FlowModel
from keras_models.flows.dequantization import VariationalDequantizer, quantize, stateless_seed
from keras_models.layers import ActNormLayer, InvertibleConv1x1Layer, LogitLayer, SqueezeLayer, mlp
from keras_models.layers.logistic_mixture_coupling import MixtureCouplingLayer
from keras_models.layers.networks.attention import GatedConvAttentionNet
from tfp_flows import masks
from tfp_flows.validation import check_int, check_vector_event_shape, is_int

DEQUANTIZATIONS = ("variational", "uniform", None)
IMAGE_COUPLINGS = (4, 2, 3)  # Flow++ CIFAR-10: checkerboard x4, squeeze, channel x2, checkerboard x3
VECTOR_COUPLINGS = 6


@keras.saving.register_keras_serializable(package="tfp_flows")
class FlowPlusPlus(FlowModel):
    """Flow++: logistic-mixture couplings, a gated conv / attention conditioner, variational dequantization.

    Args:
      event_shape: (H, W, C) for b-bit images scaled to [0, 1], or (D,) for continuous vectors (D >= 2).
      num_components: K logistic components per transformed entry (Flow++: 32; default 4).
      num_couplings: images: (n1, n2, n3) couplings per stage (see the module docstring; default (4, 2, 3)) or
        an int n for n couplings at full resolution; vectors: an int (default 6).
      hidden_channels: width of the conditioners (conv channels for images, MLP units for vectors).
      num_blocks: gated conv blocks per image conditioner, hidden layers per vector conditioner.
      use_attention: gated multi-head self-attention after every conv block (images only).
      num_heads: attention heads; must divide `hidden_channels`.
      dequantization: "variational", "uniform" or None (also "none"); "auto" picks "variational" for images,
        None for vectors.
      num_bits: bit depth b of image data (default 8 when dequantizing); None for continuous data.
      logit_alpha: the logit preprocessing's alpha in (0, 1/2) (images only).
      dequantizer_couplings, dequantizer_channels: size of q(u | x) (Flow++: 4 mixture couplings, 96 channels).
      base_distribution: "normal" (default) or "logistic", or any base `FlowModel` takes ("gmm", a
        `BaseDistribution` layer, a `tfd.Distribution` over the latent).
      seed: seeds the 1x1 convolutions' initial rotations and the dequantization noise generator.
      **kwargs: `keras.Model` arguments, e.g. `name`, `dtype="float64"` (reaches every sub-layer).
    """

    def __init__(
        self,
        event_shape,
        num_components=4,
        num_couplings=None,
        hidden_channels=32,
        num_blocks=2,
        use_attention=False,
        num_heads=4,
        dequantization="auto",
        num_bits=None,
        logit_alpha=0.05,
        dequantizer_couplings=2,
        dequantizer_channels=16,
        base_distribution="normal",
        seed=None,
        **kwargs,
    ):
        event_shape = tuple(event_shape) if np.ndim(event_shape) else (event_shape,)
        if len(event_shape) not in (1, 3):
            raise ValueError(
                f"`event_shape` must be (D,) for vectors or (H, W, C) for images; received {event_shape!r}"
            )
        is_image = len(event_shape) == 3
        if dequantization == "auto":
            dequantization = "variational" if is_image else None
        if dequantization == "none":  # the spelling of tfp_flows.datasets.make_dataset and the command line
            dequantization = None
        if dequantization not in DEQUANTIZATIONS:
            raise ValueError(
                f"`dequantization` must be one of {DEQUANTIZATIONS}, 'none' or 'auto'; received {dequantization!r}"
            )
        if not is_image and dequantization is not None:
            raise ValueError(
                "`dequantization` applies to b-bit image data only; vector events (D,) are continuous, "
                f"so use dequantization=None; received {dequantization!r} for event shape {event_shape}"
            )
        if dequantization is None and num_bits is not None:
            raise ValueError(
                "`num_bits` describes quantized data and needs dequantization='variational' or "
                f"'uniform'; received num_bits={num_bits!r} with dequantization=None"
            )
        if dequantization is not None and num_bits is None:
            num_bits = 8
        super().__init__(event_shape, base_distribution=base_distribution, num_bits=num_bits, **kwargs)
        self.num_components = check_int(num_components, "num_components")
        self.hidden_channels = check_int(hidden_channels, "hidden_channels")
        self.num_blocks = check_int(num_blocks, "num_blocks", minimum=0)
        self.use_attention, self.num_heads = bool(use_attention), check_int(num_heads, "num_heads")
        if self.use_attention and (not is_image or self.hidden_channels % self.num_heads):
            raise ValueError(
                "`use_attention` needs image events and `num_heads` dividing `hidden_channels`; received "
                f"event shape {self.event_shape}, hidden_channels={hidden_channels}, num_heads={num_heads}"
            )
        if not 0.0 < logit_alpha < 0.5:
            raise ValueError(f"`logit_alpha` must lie in (0, 0.5); received {logit_alpha!r}")
        self.logit_alpha = float(logit_alpha)
        self.dequantization = dequantization
        self.dequantizer_couplings = check_int(dequantizer_couplings, "dequantizer_couplings")
        self.dequantizer_channels = check_int(dequantizer_channels, "dequantizer_channels")
        self.seed = seed
        if is_image:
            self.num_couplings = self._image_couplings(num_couplings)
            flow_layers = self._image_layers()
        else:
            self.num_couplings = check_int(
                VECTOR_COUPLINGS if num_couplings is None else num_couplings, "num_couplings"
            )
            flow_layers = self._vector_layers()
        self.dequantizer = None
        if dequantization == "variational":
            self.dequantizer = VariationalDequantizer(
                self.dequantizer_couplings,
                self.dequantizer_channels,
                num_blocks=1,
                seed=seed,
                dtype=self.dtype_policy,
                name="dequantizer",
            )
            self.dequantizer.build((None,) + self.event_shape)
        self._set_flow_layers(flow_layers)

    # ----------------------------------------------------------------------------------------------------
    # Architecture.
    def _image_couplings(self, num_couplings):
        if num_couplings is None:
            num_couplings = IMAGE_COUPLINGS
        if is_int(num_couplings):
            num_couplings = (num_couplings, 0, 0)
        if not isinstance(num_couplings, (tuple, list)) or len(num_couplings) != 3:
            raise ValueError(
                "`num_couplings` must be an int or a triple (full-resolution checkerboard, squeezed "
                f"channel, squeezed checkerboard) for images; received {num_couplings!r}"
            )
        counts = tuple(check_int(n, "num_couplings", minimum=0) for n in num_couplings)
        height, width, channels = self.event_shape
        if sum(counts) < 1:
            raise ValueError(f"`num_couplings` must contain at least one coupling; received {num_couplings!r}")
        if height * width < 2:
            raise ValueError(
                f"`event_shape` needs at least 2 pixels for checkerboard masks; received {self.event_shape}"
            )
        if (counts[1] or counts[2]) and (height % 2 or width % 2 or (counts[2] and height * width < 8)):
            raise ValueError(
                "the squeezed stages of `num_couplings` need an even height and width (and at least "
                f"2 squeezed pixels for a checkerboard); received event shape {self.event_shape} with "
                f"num_couplings={counts}: use an int for one full-resolution stage"
            )
        return counts

    def _step(self, shape, mask, network_fn, index):
        """ActNorm, a 1x1 convolution when there are >= 2 channels, then the mixture coupling (data side first)."""
        dtype = self.dtype_policy
        steps = [ActNormLayer(dtype=dtype, name=f"actnorm_{index}")]
        if shape[-1] >= 2:
            seed = None if self.seed is None else self.seed + index
            steps.append(InvertibleConv1x1Layer(seed=seed, dtype=dtype, name=f"conv1x1_{index}"))
        steps.append(MixtureCouplingLayer(mask, network_fn, self.num_components, dtype=dtype, name=f"coupling_{index}"))
        return steps

    def _conv_net_fn(self, mask=None):
        extra = None if mask is None else mask[..., :1]

        def network_fn(output_channels):
            return GatedConvAttentionNet(
                self.hidden_channels,
                self.num_blocks,
                output_channels,
                use_attention=self.use_attention,
                num_heads=self.num_heads,
                extra_input=extra,
                dtype=self.dtype_policy,
            )

        return network_fn

    def _image_layers(self):
        n_full, n_channel, n_squeezed = self.num_couplings
        height, width, channels = self.event_shape
        layers, index = [LogitLayer(alpha=self.logit_alpha, dtype=self.dtype_policy, name="logit")], 0
        for i in range(n_full):
            mask = masks.checkerboard(height, width, channels, parity=i % 2)
            layers += self._step(self.event_shape, mask, self._conv_net_fn(mask), index)
            index += 1
        if n_channel or n_squeezed:
            layers.append(SqueezeLayer(dtype=self.dtype_policy, name="squeeze"))
            shape = (height // 2, width // 2, 4 * channels)
            for i in range(n_channel):
                mask = masks.channel(*shape, parity=i % 2)
                layers += self._step(shape, mask, self._conv_net_fn(), index)
                index += 1
            for i in range(n_squeezed):
                mask = masks.checkerboard(*shape, parity=i % 2)
                layers += self._step(shape, mask, self._conv_net_fn(mask), index)
                index += 1
            # Back to the data's layout (a fixed permutation), so latents have the event shape, as in RealNVP.
            layers.append(SqueezeLayer(unsqueeze=True, dtype=self.dtype_policy, name="unsqueeze"))
        return layers

    def _vector_layers(self):
        (size,) = check_vector_event_shape(
            self.event_shape, "FlowPlusPlus", hint="a coupling splits the D values in two"
        )
        hidden = (self.hidden_channels,) * self.num_blocks
        layers = []
        for i in range(self.num_couplings):
            layers += self._step(
                self.event_shape,
                masks.half(size, parity=i % 2),
                lambda output_units: mlp(hidden, output_units, dtype=self.dtype_policy),
                i,
            )
        return layers

    # ----------------------------------------------------------------------------------------------------
    # Dequantization.
    def dequantization_elbo(self, x, seed=None):
        """One-sample estimate of ELBO(x) = E_q[log p(x + u / 2^b) - log q(u | x)] per example (nats).

        x: discrete images, pixel / 2^b (other [0, 1] encodings are quantized first, see the module docstring).
        The bound is on the [0, 1] scale: log P(x) >= ELBO(x) - D b log 2, and `bits_per_dim(elbo)` gives the
        matching upper bound on the discrete data's bits/dim. With dequantization="uniform", q is U(0, 1)^D
        (log q = 0), which is the uniform-dequantization bound of the same data. `seed` (int or pair) makes the
        draw reproducible.
        """
        if self.dequantization is None:
            raise ValueError(
                "dequantization_elbo needs a model built with dequantization='variational' or "
                "'uniform'; this model models continuous data (dequantization=None)"
            )
        # Checked before quantizing: quantize clips, which would hide data outside [0, 1] (`support`).
        x = self._checked(x, support=self.support)
        keep = self._valid_rows(x) if self.nan_policy == "omit" else None
        if keep is not None:
            x = self._fill_invalid(x, keep)  # left out below; a NaN here would poison q's gradients
        batch_shape = tf.shape(x)[: tf.rank(x) - 3]
        x_disc = quantize(tf.reshape(x, (-1,) + self.event_shape), self.pixel_levels)  # conv nets need rank 4
        if self.dequantization == "variational":
            u, log_q = self.dequantizer.sample_and_log_prob(x_disc, seed=seed)
        else:
            shape = tf.shape(x_disc)
            u = (
                tf.random.uniform(shape, dtype=x_disc.dtype)
                if seed is None
                else tf.random.stateless_uniform(shape, seed=stateless_seed(seed), dtype=x_disc.dtype)
            )
            log_q = tf.zeros(shape[:1], x_disc.dtype)
        x_continuous = x_disc + u / tf.constant(float(self.pixel_levels), x_disc.dtype)
        elbo = tf.reshape(self.log_prob(x_continuous) - log_q, batch_shape)
        return elbo if keep is None else tf.where(keep, elbo, tf.constant(np.nan, elbo.dtype))

    def call(self, x, training=False):
        """Variational: the per-example ELBO estimate (so `fit` maximises the dequantization bound); else log p."""
        del training
        if self.dequantization == "variational":
            return self.dequantization_elbo(x)
        return self.log_prob(x)

    def initialize_from_data(self, x):
        """ActNorm's data-dependent init on dequantized data (variational: x_disc + u / 2^b with u ~ q)."""
        if self.dequantization == "variational":
            x = self._checked(x, support=self.support)
            if self.nan_policy == "omit":
                x = tf.boolean_mask(x, self._valid_rows(x))
            x_disc = quantize(x, self.pixel_levels)
            u, _ = self.dequantizer.sample_and_log_prob(x_disc, seed=0)
            x = x_disc + u / tf.constant(float(self.pixel_levels), x_disc.dtype)
        return super().initialize_from_data(x)

    # ----------------------------------------------------------------------------------------------------
    def get_config(self):
        config = super().get_config()
        couplings = list(self.num_couplings) if isinstance(self.num_couplings, tuple) else self.num_couplings
        config.update(
            num_components=self.num_components,
            num_couplings=couplings,
            hidden_channels=self.hidden_channels,
            num_blocks=self.num_blocks,
            use_attention=self.use_attention,
            num_heads=self.num_heads,
            dequantization=self.dequantization,
            logit_alpha=self.logit_alpha,
            dequantizer_couplings=self.dequantizer_couplings,
            dequantizer_channels=self.dequantizer_channels,
            seed=self.seed,
        )
        return config
