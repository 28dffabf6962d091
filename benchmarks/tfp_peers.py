"""The contenders from TensorFlow Probability itself: what a user would write with TFP's built-in flows.

- `TFPRealNVPModel`: `tfb.RealNVP` couplings whose conditioners are the SAME Keras 3 MLPs as ours
  (`keras_models.layers.mlp`), inside a Keras 3 model. The MLPs are attributes of the model, so Keras tracks
  and trains them (a TFP object holding them would hide them from Keras); the bijector is rebuilt from them on
  every call, as our models do. Alternating halves use `num_masked=-k` (TFP passes the LAST k entries through),
  so no permutation runs between couplings, exactly like our alternating half masks. The raw log-scale is
  bounded the way our default is, s = c tanh(r / c) with c = 2, so both sides compute the same function.
- `tfp_maf`: `tfb.MaskedAutoregressiveFlow` steps around `tfb.AutoregressiveNetwork` (a tf_keras layer),
  separated by `tfb.Permute` reversals, trained in a `tf.function` step with a Keras 3 Adam over the
  networks' tf.Variables (Keras 3 would not track them inside a model). The log-scale gets the same
  c tanh(r / c) bound as our MADE.
- `tfp_glow`: `tfb.Glow` with `tfb.GlowDefaultNetwork` conditioners (3x3 conv, 1x1 conv, zero-init 3x3 conv,
  like ours) and `tfb.GlowDefaultExitNetwork` learned priors at the splits, trained in a `tf.function` step.
  Its ActNorm initialises itself from the first batch it sees; we show it a real batch first (zeros would
  give an infinite log-scale, see docs/design.md#actnorm-needs-a-real-batch-and-a-floored-scale).
"""

import keras
import tensorflow as tf
import tensorflow_probability as tfp
from plain_tfp import KerasFlow  # the Keras 3 model around a TFP flow, shared with the fit-quality builds

from keras_models.layers import mlp

tfb = tfp.bijectors
tfd = tfp.distributions

# Our defaults, so both sides compute the same function: RealNVP's couplings s = tanh(r) (log_scale_limit=1.0),
# the MADE's s = 2 tanh(r / 2) (log_scale_limit=2).
REALNVP_LOG_SCALE_LIMIT = 1.0
LOG_SCALE_LIMIT = 2.0


def bounded(raw, limit=LOG_SCALE_LIMIT):
    return limit * tf.math.tanh(raw / limit)


class _FreshRealNVP(tfb.RealNVP):
    # Couplings rebuilt on every call around the same callable would share TFP's cache across traced graphs
    # (docs/design.md#tfp-shares-its-cache-between-equal-bijectors); our own couplings avoid it the same way.
    def _get_parameterization(self):
        return id(self)


class _FreshMAF(tfb.MaskedAutoregressiveFlow):
    def _get_parameterization(self):
        return id(self)


class TFPRealNVPModel(KerasFlow):
    """`num_couplings` x `tfb.RealNVP` over [D] vectors with Keras 3 MLP conditioners; trains with `fit`.

    `call(x)` returns log p(x); the loss is the mean negative log-likelihood, like `FlowModel` (`KerasFlow`).
    """

    def __init__(self, event_size, num_couplings=8, hidden_units=(512, 512), **kwargs):
        super().__init__(event_size, **kwargs)
        self.num_couplings, self.hidden_units = num_couplings, tuple(hidden_units)
        self.num_pass = [event_size // 2 if k % 2 == 0 else event_size - event_size // 2 for k in range(num_couplings)]
        self.networks = []
        for k in range(num_couplings):
            network = mlp(self.hidden_units, 2 * (event_size - self.num_pass[k]))
            network.build((None, self.num_pass[k]))
            self.networks.append(network)
        self.built = True

    def _conditioner(self, network):
        def shift_and_log_scale_fn(x0, output_units):
            out = network(x0)
            return out[..., :output_units], bounded(out[..., output_units:], REALNVP_LOG_SCALE_LIMIT)

        return shift_and_log_scale_fn

    @property
    def bijector(self):
        couplings = [
            _FreshRealNVP(
                num_masked=self.num_pass[k] if k % 2 == 0 else -self.num_pass[k],
                shift_and_log_scale_fn=self._conditioner(network),
            )
            for k, network in enumerate(self.networks)
        ]
        return tfb.Chain(couplings)

    def flow(self):
        return self.bijector


class TFPFlow:
    """A TFP distribution and its trainable variables, with a `tf.function` train step (Keras 3 Adam)."""

    def __init__(self, distribution, variables_owner, learning_rate=1e-3):
        self.distribution = distribution
        self.trainable_variables = list(variables_owner.trainable_variables)
        self.optimizer = keras.optimizers.Adam(learning_rate)
        self.optimizer.build(self.trainable_variables)

    def loss(self, x):
        return -tf.reduce_mean(self.distribution.log_prob(x))

    def train_step(self, x):
        with tf.GradientTape() as tape:
            loss = self.loss(x)
        gradients = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(gradients, self.trainable_variables))
        return loss

    def log_prob(self, x):
        return self.distribution.log_prob(x)

    def sample(self, num_samples, seed=None):
        return self.distribution.sample(num_samples, seed=seed)


class _Variables(tf.Module):
    """Collects the tf.Variables of several tf_keras networks for the optimizer."""

    def __init__(self, networks):
        super().__init__()
        self.networks = list(networks)


def tfp_maf(event_size, num_layers=5, hidden_units=(256, 256)):
    """`num_layers` MAF steps (MADE with `hidden_units`), reversals in between, as `keras_models.MAF` builds."""
    networks, bijectors = [], []
    for i in range(num_layers):
        network = tfb.AutoregressiveNetwork(
            params=2,
            event_shape=[event_size],
            hidden_units=list(hidden_units),
            activation="relu",
            kernel_initializer="glorot_uniform",
        )
        network.build((None, event_size))
        # Zero output layer, as ours: every step starts as the identity. (`trainable_variables` is not in layer
        # order, so reach the last Dense layer itself.)
        output_layer = network._network.layers[-1]
        output_layer.kernel.assign(tf.zeros_like(output_layer.kernel))
        networks.append(network)

        def shift_and_log_scale_fn(x, network=network):
            shift, raw_log_scale = tf.unstack(network(x), num=2, axis=-1)
            return shift, bounded(raw_log_scale)

        if i:
            bijectors.append(tfb.Permute(tf.range(event_size - 1, -1, -1)))
        bijectors.append(_FreshMAF(shift_and_log_scale_fn=shift_and_log_scale_fn))
    base = tfd.Sample(tfd.Normal(0.0, 1.0), [event_size])
    return TFPFlow(tfd.TransformedDistribution(base, tfb.Chain(bijectors)), _Variables(networks))


def tfp_glow(image_shape, num_levels=3, num_steps=8, width=128, init_batch=None, seed=0):
    """`tfb.Glow` over [H, W, C] images in [0, 1], centred by x - 0.5 like ours; ActNorm initialised on `init_batch`.

    TFP's Glow maps a flat latent [H * W * C] to the image (its forward is the sampling direction).
    """
    glow = tfb.Glow(
        output_shape=list(image_shape),
        num_glow_blocks=num_levels,
        num_steps_per_block=num_steps,
        coupling_bijector_fn=lambda shape: tfb.GlowDefaultNetwork(shape, num_hidden=width),
        exit_bijector_fn=tfb.GlowDefaultExitNetwork,
        use_actnorm=True,
        seed=seed,
    )
    flow = tfb.Chain([tfb.Shift(0.5), glow])  # data = 0.5 + glow(z), i.e. glow sees x - 0.5 (as ours)
    base = tfd.Sample(tfd.Normal(0.0, 1.0), glow.inverse_event_shape(list(image_shape)))
    distribution = tfd.TransformedDistribution(base, flow)
    if init_batch is None:
        raise ValueError(
            "tfp_glow needs `init_batch`, a real batch of images: its ActNorm initialises itself "
            "from the first batch (zeros would give an infinite log-scale)"
        )
    distribution.log_prob(tf.convert_to_tensor(init_batch, tf.float32))  # runs ActNorm's data-dependent init
    return TFPFlow(distribution, glow)
