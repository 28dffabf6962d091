"""`SplitPriorLayer`: Glow's learned prior for the channels factored out at a split, as a bijector.

Glow (Kingma & Dhariwal 2018; `split2d` in the reference code) factors out half of the channels y_out at the
end of every level but the last and scores them under a Gaussian whose parameters come from the kept half h:

    p(y_out | h) = N(y_out; mu(h), diag(exp(log_sigma(h)))^2),   (mu, log_sigma) = zero-initialised 3x3 conv(h).

Written as a bijector, this is an affine coupling whose pass-through block is the kept half and whose
transformed block is the factored-out half (density direction, data -> latent):

    z_out = (y_out - mu(h)) * exp(-log_sigma(h)),     z_kept = h,     log|det dz/dy| = -sum log_sigma(h),

so that z_out ~ N(0, I) exactly when y_out ~ N(mu(h), sigma(h)^2). The model's base then stays N(0, I), and
scaling the base by a temperature T samples y_out = mu(h) + T sigma(h) eps: Glow's temperature, unchanged.
The zero-initialised conv makes the prior start as N(0, I) (Glow's choice). The log-scale is softly bounded,
log_sigma = c tanh(r / c) with c = `log_scale_limit` (default 5, so sigma in (0.0067, 148)): generous enough
never to bind in practice, yet a divergent conditioner cannot produce an infinite density.

Event shape: [H, W, C] with C >= 2; the kept half is the first floor(C / 2) channels (the ones a following
`ChannelSliceLayer(inner, num_channels=C // 2)` hands to the next level).

Example:
    >>> import tensorflow as tf
    >>> from keras_models.layers.split_prior import SplitPriorLayer
    >>> prior = SplitPriorLayer((4, 4, 8))
    >>> prior.build((None, 4, 4, 8))
    >>> prior.bijector().inverse(tf.ones([2, 4, 4, 8])).shape   # identity at initialisation
    TensorShape([2, 4, 4, 8])
"""

import keras

import tfp_flows
from keras_models.layers.affine_coupling import AffineCouplingLayer


def zero_conv(output_channels, kernel_size=3, name=None, dtype=None):
    """Glow's `conv2d_zeros`: one 3x3 conv starting at zero, so the prior starts as N(0, I)."""
    return keras.Sequential(
        [
            keras.layers.Conv2D(
                output_channels,
                kernel_size,
                padding="same",
                kernel_initializer="zeros",
                bias_initializer="zeros",
                dtype=dtype,
            ),
        ],
        name=name,
    )


class SplitPriorLayer(AffineCouplingLayer):
    """Learned conditional prior of the factored-out half (channels C // 2 onward) given the kept half.

    Args:
      event_shape: [H, W, C] at the split (the data side of this layer), C >= 2.
      log_scale_limit: bound c of the prior's log-scale, |log_sigma| < c.
    """

    def __init__(self, event_shape, log_scale_limit=5.0, **kwargs):
        event_shape = tuple(int(d) for d in event_shape)
        if len(event_shape) != 3 or event_shape[-1] < 2:
            raise ValueError(f"SplitPriorLayer: `event_shape` must be [H, W, C] with C >= 2; received {event_shape}")
        self.event_shape = event_shape
        mask = tfp_flows.masks.channel(*event_shape, parity=0)  # 1 = kept (conditions), 0 = factored out
        dtype = kwargs.get("dtype")
        super().__init__(
            mask,
            lambda out: zero_conv(out, dtype=dtype),
            log_scale_bound="tanh",
            log_scale_limit=float(log_scale_limit),
            **kwargs,
        )

    @property
    def num_kept_channels(self):
        return self.event_shape[-1] // 2

    def bijector(self):
        return tfp_flows.AffineCoupling(
            self.mask,
            self._shift_and_log_scale,
            log_scale_bound="tanh",
            log_scale_limit=self.log_scale_limit,
            name="split_prior",
        )
