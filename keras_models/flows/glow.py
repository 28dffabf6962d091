"""`Glow`: generative flow with invertible 1x1 convolutions (Kingma & Dhariwal 2018), as a Keras 3 model.

Images [H, W, C] in [0, 1] (8-bit pixels dequantised as (pixel + u) / 256), density direction (data -> latent):

    x - 0.5                                   centring, as in Glow's preprocessing (log|det| = 0)
    for each of the L levels:
        squeeze                               [h, w, c] -> [h/2, w/2, 4c]
        K steps of flow:                      ActNorm -> invertible 1x1 conv -> affine coupling
        split (all levels but the last):      learned prior of the factored-out half given the kept half,
                                              then the next level works on the kept half only
        unsqueeze                             so the latent has the data's shape

One step of flow (Glow sec. 3, table 1): ActNorm y = (x - b) / s with data-dependent init (zero mean, unit
variance per channel on the first batch); a 1x1 conv W (LU-parametrised); an affine coupling with a channel
mask (first half conditions, second half transformed) and Glow's sigmoid scale with a floor: in the density
direction z2 = (y2 - t(y1)) * g, g = exp(-c) + (1 - exp(-c)) sigmoid(r(y1) + 2), conditioner 3x3 conv -> ReLU ->
1x1 conv -> ReLU -> zero-init 3x3 conv, so each coupling starts close to the identity. The floor exp(-c)
(`log_scale_limit` c = 2 by default) is ours: sampling divides by g, and with Glow's bare sigmoid (c = math.inf)
latents off the data manifold drive g towards 0 and samples to inf/NaN (measured in benchmarks/README.md,
"Glow's coupling scale floor").
The learned prior at a split (Glow's `split2d`) is an affine coupling z_out = (y_out - mu(h)) * exp(-log_sigma(h))
from a zero-initialised conv of the kept half h (`SplitPriorLayer`), so the base stays N(0, I) and
`sample(temperature=T)` is Glow's temperature.

Preprocessing: Glow centres the data (x - 0.5) instead of RealNVP's logit; a shift has unit Jacobian, so the
reported `bits_per_dim` is the usual 8-bit figure: -log p(x) / (D ln 2) + 8, a uniform model scoring 8.

Vectors [D] ("Glow-2D"): K steps of ActNorm -> 1x1 conv (a learned D x D matrix) -> affine coupling with half
masks and an MLP conditioner (two hidden layers of `hidden_channels`); no preprocessing, squeeze or split.

Defaults: L = 3 levels for images (1 for vectors: levels need images), K = 8 steps per level, 128 hidden
channels (the benchmark's CIFAR-10 configuration; Glow's paper used 512), `num_bits` 8 for images and None
for vectors, Glow's sigmoid scale floored at exp(-2). H and W must be divisible by 2^L.

Example:
    >>> from keras_models import Glow
    >>> from tfp_flows.datasets import make_dataset
    >>> images = make_dataset("digits", split="train", batch_size=32).take(2)   # [32, 8, 8, 1] in [0, 1]
    >>> model = Glow(event_shape=(8, 8, 1), num_levels=2, num_steps=2, hidden_channels=16)
    >>> model.compile(optimizer="adam")
    >>> sorted(model.fit(images, epochs=1, verbose=0).history)
    ['bits_per_dim', 'loss', 'nll']
    >>> model.sample(4, temperature=0.7, seed=1).shape
    TensorShape([4, 8, 8, 1])
    >>> x1, x2 = next(iter(images))[:2]                                        # two images [8, 8, 1]
    >>> model.interpolate(x1, x2, num_steps=5).shape
    TensorShape([5, 8, 8, 1])
"""

import keras
import numpy as np
import tensorflow as tf

import tfp_flows
from keras_models.core.flow_model import FlowModel
from keras_models.layers import (
    ActNormLayer,
    AffineCouplingLayer,
    ChannelSliceLayer,
    InvertibleConv1x1Layer,
    SequentialFlow,
    SqueezeLayer,
    glow_conv,
    mlp,
)
from keras_models.layers.shift import ShiftLayer
from keras_models.layers.split_prior import SplitPriorLayer
from tfp_flows.affine_coupling import checked_log_scale_limit
from tfp_flows.validation import check_int, check_vector_event_shape

IMAGE_CENTRE_SHIFT = -0.5  # Glow: x in [0, 1] -> x - 0.5
LOG_SCALE_LIMIT = 2.0  # coupling scale floor exp(-2) ~ 0.135: see the module docstring


@keras.saving.register_keras_serializable(package="tfp_flows")
class Glow(FlowModel):
    """Glow for images [H, W, C] in [0, 1] or vectors [D] (see the module docstring for the architecture).

    Args:
      event_shape: (H, W, C) for images (H, W divisible by 2**num_levels) or (D,) for vectors, D >= 2.
      num_levels: L, the number of squeeze/steps/split levels (images; default 3). Vectors have one level:
        None or 1.
      num_steps: K, steps of flow per level (default 8).
      hidden_channels: width of each coupling's conditioner (conv channels, or MLP units for vectors).
      num_bits: bit depth for `bits_per_dim`; "auto" = 8 for images, None for vectors.
      seed: seed of the 1x1 convolutions' random rotation initialisation (None: drawn from Python's `random`,
        which `keras.utils.set_random_seed` seeds).
      log_scale_limit: c of the couplings' sigmoid scale floor exp(-c) (see `tfp_flows.AffineCoupling`); bounds
        how much sampling can expand per coupling. math.inf: no floor, exactly Glow's sigmoid(r + 2).
      **kwargs: `FlowModel` / `keras.Model` arguments (`base_distribution`, `name`, ...). `context_shape=`
        makes Glow conditional, p(x | c): every coupling's conditioner and every split prior reads the context
        (for images broadcast over H x W and appended as channels; `MaskedConditioner`).
    """

    def __init__(
        self,
        event_shape,
        num_levels=None,
        num_steps=8,
        hidden_channels=128,
        num_bits="auto",
        seed=None,
        log_scale_limit=LOG_SCALE_LIMIT,
        **kwargs,
    ):
        event_shape = tuple(event_shape) if np.ndim(event_shape) else (event_shape,)
        is_image = len(event_shape) == 3
        if len(event_shape) not in (1, 3):
            raise ValueError(
                f"Glow: `event_shape` must be (H, W, C) for images or (D,) for vectors; received {event_shape!r}"
            )
        if num_bits == "auto":
            num_bits = 8 if is_image else None
        super().__init__(event_shape, num_bits=num_bits, **kwargs)
        self.num_steps = check_int(num_steps, "num_steps", owner="Glow")
        self.hidden_channels = check_int(hidden_channels, "hidden_channels", owner="Glow")
        self.seed = None if seed is None else int(seed)
        # Checked here, not when the first call builds the couplings, so a bad value fails at construction.
        self.log_scale_limit = checked_log_scale_limit(log_scale_limit, "sigmoid")
        self._num_conv = 0
        if is_image:
            levels = 3 if num_levels is None else check_int(num_levels, "num_levels", owner="Glow")
            height, width, _ = self.event_shape
            if height % 2**levels or width % 2**levels:
                raise ValueError(
                    f"Glow: height and width of `event_shape` must be divisible by 2**num_levels = "
                    f"{2**levels}; received event_shape={self.event_shape}, num_levels={levels}"
                )
            flow_layers = [
                ShiftLayer(IMAGE_CENTRE_SHIFT, dtype=self.dtype_policy),
                self._image_level(self.event_shape, levels),
            ]
            self.num_levels = levels
        else:
            if num_levels not in (None, 1):
                raise ValueError(
                    f"Glow: vector events have a single level (no squeeze or split): `num_levels` "
                    f"must be None or 1 for event_shape={self.event_shape}; received {num_levels!r}"
                )
            check_vector_event_shape(self.event_shape, "Glow", hint="a coupling splits the D values in two")
            flow_layers = self._steps(self.event_shape)
            self.num_levels = 1
        self._set_flow_layers(flow_layers)

    # ----------------------------------------------------------------------------------------------------
    # Architecture (every list is ordered from the data side, as `_set_flow_layers` expects).
    def _next_seed(self):
        self._num_conv += 1
        return None if self.seed is None else self.seed + self._num_conv

    def _steps(self, shape):
        """K steps of flow on events of `shape`: ActNorm, 1x1 conv, affine coupling with Glow's sigmoid scale."""
        dtype = self.dtype_policy  # Keras 3 does not hand a model's policy to its layers by itself
        if len(shape) == 3:
            mask = tfp_flows.masks.channel(*shape, parity=0)
            network_fn = lambda out: glow_conv(self.hidden_channels, out, dtype=dtype)  # noqa: E731
        else:
            mask = tfp_flows.masks.half(shape[0], parity=0)
            hidden = (self.hidden_channels, self.hidden_channels)
            network_fn = lambda out: mlp(hidden, out, dtype=dtype)  # noqa: E731
        steps = []
        for _ in range(self.num_steps):
            steps += [
                ActNormLayer(dtype=dtype),
                InvertibleConv1x1Layer(seed=self._next_seed(), dtype=dtype),
                AffineCouplingLayer(
                    mask,
                    network_fn,
                    log_scale_bound="sigmoid",
                    log_scale_limit=self.log_scale_limit,
                    context_shape=self.step_context_shape,
                    dtype=dtype,
                ),
            ]
        return steps

    def _image_level(self, shape, levels_left):
        """squeeze, K steps, [learned prior + the remaining levels on the kept half], unsqueeze."""
        height, width, channels = shape
        squeezed = (height // 2, width // 2, 4 * channels)
        dtype = self.dtype_policy
        layers = [SqueezeLayer(dtype=dtype)] + self._steps(squeezed)
        if levels_left > 1:
            prior = SplitPriorLayer(squeezed, context_shape=self.step_context_shape, dtype=dtype)
            kept = (squeezed[0], squeezed[1], prior.num_kept_channels)
            layers += [
                prior,
                ChannelSliceLayer(self._image_level(kept, levels_left - 1), prior.num_kept_channels, dtype=dtype),
            ]
        layers.append(SqueezeLayer(unsqueeze=True, dtype=dtype))
        return SequentialFlow(layers, dtype=dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_levels=self.num_levels,
            num_steps=self.num_steps,
            hidden_channels=self.hidden_channels,
            seed=self.seed,
            log_scale_limit=self.log_scale_limit,
        )
        return config

    # ----------------------------------------------------------------------------------------------------
    def interpolate(self, x1, x2, num_steps=8):
        """Decode `num_steps` evenly spaced points on the segment between the latents of `x1` and `x2`.

            z_t = (1 - t) f^{-1}(x1) + t f^{-1}(x2),  t = 0, 1/(num_steps - 1), ..., 1;   returns f(z_t)

        `x1` and `x2` have the same shape: one example (the event shape) or a batch [N, *event_shape].
        Returns [num_steps, *x1.shape]; the first entry reproduces x1 and the last x2 (up to round-off).
        """
        check_int(num_steps, "num_steps", minimum=2, hint="both end points included")
        x1, x2 = tf.convert_to_tensor(x1), tf.convert_to_tensor(x2)
        if x1.shape != x2.shape:
            raise ValueError(
                f"`x1` and `x2` must have the same shape; received {x1.shape.as_list()} and {x2.shape.as_list()}"
            )
        single = x1.shape.rank == len(self.event_shape)
        x1 = x1[tf.newaxis] if single else x1
        x2 = x2[tf.newaxis] if single else x2
        batch = tf.shape(x1)[0]
        z = self.encode(tf.concat([x1, x2], axis=0))
        z1, z2 = z[:batch], z[batch:]
        t = tf.reshape(
            tf.linspace(tf.constant(0.0, z.dtype), tf.constant(1.0, z.dtype), num_steps),
            [num_steps] + [1] * z.shape.rank,
        )
        path = (1.0 - t) * z1 + t * z2  # exactly z1 at t = 0 and z2 at t = 1
        decoded = self.decode(tf.reshape(path, tf.concat([[-1], self.latent_shape], axis=0)))
        out_shape = tf.concat([[num_steps], tf.shape(x1)], axis=0)
        decoded = tf.reshape(decoded, out_shape)
        return decoded[:, 0] if single else decoded
