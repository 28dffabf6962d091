"""Variational dequantization (Ho et al. 2019, "Flow++", sec. 3.1): a conditional flow q(u | x) for 8-bit data.

Discrete data x (pixel / 2^b, b = num_bits) is turned into continuous data y = x + u / 2^b with noise
u in (0, 1)^D drawn from a learned conditional density q(u | x) instead of the uniform one. Jensen's inequality
gives the dequantization lower bound on the probability of the discrete data (Flow++ eq. (11)):

    log P(x) >= E_{u ~ q(.|x)} [ log p(x + u / 2^b) - log q(u | x) ] - D b log 2,

where p is the model's continuous density on the [0, 1] scale (so p(y) 2^{-bD} is the density on the pixel
scale: the D b log 2 term is the Jacobian of dividing pixels by 2^b). A uniform q (log q = 0) gives back the usual
uniform-dequantization bound. `FlowPlusPlus` trains the bracket (the "[0, 1]-scale ELBO") and reports
bits/dim = -(ELBO - D b log 2) / (D log 2), an upper bound on the discrete data's bits/dim.

q is a flow conditioned on x, sampled by its forward direction (as in Flow++'s `Dequant`):

    eps ~ N(0, I)  ->  per-channel affine  ->  conditional affine couplings (checkerboard, alternating)  ->  sigmoid
    log q(u | x) = log N(eps) - log|det d u / d eps|

The couplings' conditioner sees the masked noise, the mask and features h(x) of a small context network (a
3x3 convolution and gated residual blocks on x - 1/2). Flow++ uses mixture couplings here; affine couplings keep
both directions closed-form (sampling q runs at every training step). Event shape: [H, W, C] images.

Example:
    >>> import tensorflow as tf
    >>> dequantizer = VariationalDequantizer(num_couplings=2, hidden_channels=8)
    >>> dequantizer.build((None, 4, 4, 1))
    >>> x = tf.random.uniform([3, 4, 4, 1], maxval=256, dtype=tf.int32)
    >>> u, log_q = dequantizer.sample_and_log_prob(tf.cast(x, tf.float32) / 256.0, seed=1)
    >>> u.shape, log_q.shape                      # u in (0, 1), one log q(u | x) per image
    (TensorShape([3, 4, 4, 1]), TensorShape([3]))
"""

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

import tfp_flows
from keras_models.core.nan_policy import OutOfSupportError
from keras_models.core.precision import ComputesInVariableDtype, in_flow_dtype
from keras_models.layers.networks.attention import GatedConvAttentionNet
from tfp_flows.validation import check_int

tfb = tfp.bijectors
tfd = tfp.distributions


def quantize(x, num_levels):
    """Discrete data x_disc = min(floor(x L), L - 1) / L from any of the usual [0, 1] encodings (L levels).

    pixel / L is returned unchanged; (pixel + u) / L (u in [0, 1), already dequantized) and pixel / (L - 1)
    both map back to pixel / L, so the dequantizer always sees the discrete data it conditions on. For b-bit
    data L = 2^b.
    """
    levels = tf.constant(float(num_levels), x.dtype)
    pixels = tf.clip_by_value(tf.floor(x * levels), tf.zeros([], x.dtype), levels - 1.0)
    return pixels / levels


def _check_unit_interval(value, arg_name, expected):
    """Eager calls only: the finite values of `value` lie in [0, 1] (NaN, and traced code, are the model's
    business: `FlowModel.nan_policy` and `FlowModel.support`)."""
    if not tf.executing_eagerly():
        return
    values = value.numpy()
    finite = values[np.isfinite(values)]
    if finite.size and (finite.min() < 0 or finite.max() > 1):
        raise OutOfSupportError(
            f"VariationalDequantizer: `{arg_name}` must lie in [0, 1] ({expected}); received "
            f"values in [{finite.min():.6g}, {finite.max():.6g}]"
        )


def stateless_seed(seed):
    """An int32 [2] seed for stateless random ops from an int or a pair (tensor or Python)."""
    seed = tf.reshape(tf.cast(tf.convert_to_tensor(seed), tf.int32), [-1])
    return tf.concat([seed, tf.zeros([2], tf.int32)], axis=0)[:2]


class _ConditionalAffineShiftAndLogScale:
    """The coupling's `shift_and_log_scale_fn`: a network of [masked noise, context] -> (shift, log-scale)."""

    def __init__(self, network, context):
        self.network, self.context = network, context

    def __call__(self, eps_masked):
        out = self.network(tf.concat([eps_masked, tf.cast(self.context, eps_masked.dtype)], axis=-1))
        out = in_flow_dtype(out, eps_masked.dtype)  # a float16 network's output parametrises a float32 coupling
        shift, log_scale = tf.split(out, 2, axis=-1)
        return shift, log_scale


@keras.saving.register_keras_serializable(package="tfp_flows")
class VariationalDequantizer(ComputesInVariableDtype, keras.layers.Layer):
    """q(u | x) for image data x of shape [H, W, C] on the [0, 1] scale; all weights are Keras weights.

    x (and u in `log_prob`) must lie in [0, 1]: eager calls raise `OutOfSupportError` otherwise (inside
    `FlowPlusPlus`, the model checks its data against `FlowModel.support` before it gets here).

    Args:
      num_couplings: conditional affine couplings (checkerboard masks of alternating parity; Flow++ used 4).
      hidden_channels: width of the context network and of the couplings' conditioners.
      num_blocks: gated residual blocks in the context network.
      seed: seed of the noise generator used when no explicit `seed` is given (None: random).
    """

    def __init__(self, num_couplings=2, hidden_channels=16, num_blocks=1, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.num_couplings = check_int(num_couplings, "num_couplings")
        self.hidden_channels, self.num_blocks = check_int(hidden_channels, "hidden_channels"), num_blocks
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        height, width, channels = (int(d) for d in input_shape[1:])
        if height * width < 2:
            raise ValueError(
                f"VariationalDequantizer needs images with at least 2 pixels; received event shape "
                f"{tuple(input_shape[1:])}"
            )
        self.event_shape = (height, width, channels)
        self.context_net = GatedConvAttentionNet(
            self.hidden_channels,
            self.num_blocks,
            self.hidden_channels,
            zero_init_output=False,
            dtype=self.dtype_policy,
            name="context",
        )
        self.context_net.build((None, height, width, channels))
        self.masks = [
            tfp_flows.masks.checkerboard(height, width, channels, parity=i % 2) for i in range(self.num_couplings)
        ]
        self.coupling_nets = []
        for i, mask in enumerate(self.masks):
            # Input: masked noise, the mask itself (which positions pass through), the context features.
            net = GatedConvAttentionNet(
                self.hidden_channels,
                0,
                2 * channels,
                extra_input=mask[..., :1],
                dtype=self.dtype_policy,
                name=f"coupling_{i}",
            )
            net.build((None, height, width, channels + self.hidden_channels))
            self.coupling_nets.append(net)
        self.loc = self.add_weight(name="loc", shape=(channels,), initializer="zeros")
        self.log_scale = self.add_weight(name="log_scale", shape=(channels,), initializer="zeros")
        self.built = True

    def context(self, x):
        """Features h(x) of the discrete data (x on the [0, 1] scale, centred as in Flow++)."""
        return self.context_net(x - 0.5)

    def bijector(self, x):
        """The flow eps -> u of q(. | x) (forward = sampling), built from the current weights and the context."""
        context = self.context(x)
        steps = [tfb.Sigmoid()]
        for mask, net in reversed(list(zip(self.masks, self.coupling_nets))):
            steps.append(tfp_flows.AffineCoupling(mask, _ConditionalAffineShiftAndLogScale(net, context)))
        steps.append(tfp_flows.ActNorm(loc=self.loc.value, log_scale=self.log_scale.value))
        return tfb.Chain(steps)

    def _base(self, dtype):
        return tfd.Normal(tf.zeros([], dtype), tf.ones([], dtype))

    def sample_and_log_prob(self, x, seed=None):
        """u ~ q(. | x) in (0, 1)^D and log q(u | x) per example (nats), for discrete x of shape [N, H, W, C].

        `seed`: an int or pair for a reproducible draw; None uses the layer's seed generator (fresh every call).
        """
        x = tf.convert_to_tensor(x, self.compute_dtype)
        _check_unit_interval(x, "x", "discrete data pixel / 2^b")
        shape = tf.shape(x)
        if seed is None:
            eps = keras.random.normal(shape, dtype=x.dtype, seed=self.seed_generator)
        else:
            eps = tf.random.stateless_normal(shape, seed=stateless_seed(seed), dtype=x.dtype)
        bijector = self.bijector(x)
        u = bijector.forward(eps)
        # The log-det is taken at eps (the sigmoid's input), finite even where u rounds to 0 or 1.
        log_det = bijector.forward_log_det_jacobian(eps, event_ndims=3)
        log_q = tf.reduce_sum(self._base(x.dtype).log_prob(eps), axis=[-3, -2, -1]) - log_det
        # Keep u strictly inside (0, 1) in floating point (sigmoid saturates for |logit| beyond ~17 in float32).
        tiny = tf.constant(np.finfo(x.dtype.as_numpy_dtype).tiny, x.dtype)
        below_one = tf.constant(1.0 - np.finfo(x.dtype.as_numpy_dtype).epsneg, x.dtype)
        return tf.clip_by_value(u, tiny, below_one), log_q

    def log_prob(self, u, x):
        """log q(u | x) per example, for u in (0, 1)^D (the density direction of the same flow)."""
        x = tf.convert_to_tensor(x, self.compute_dtype)
        u = tf.convert_to_tensor(u, self.compute_dtype)
        _check_unit_interval(x, "x", "discrete data pixel / 2^b")
        _check_unit_interval(u, "u", "dequantization noise")
        bijector = self.bijector(x)
        eps = bijector.inverse(u)
        log_base = tf.reduce_sum(self._base(x.dtype).log_prob(eps), axis=[-3, -2, -1])
        return log_base + bijector.inverse_log_det_jacobian(u, event_ndims=3)

    def call(self, x):
        return self.sample_and_log_prob(x)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_couplings=self.num_couplings,
            hidden_channels=self.hidden_channels,
            num_blocks=self.num_blocks,
            seed=self.seed,
        )
        return config
