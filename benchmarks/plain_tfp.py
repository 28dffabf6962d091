"""The same flows written plainly with TFP's built-ins, as a competent user who never heard of this project would.

Every affine build comes in the three forms such a user ends up with, and the benchmark takes the best of them
per row (`vs_plain_tfp.best_variant`), so ours is measured against the strongest plain build, never a broken one:
- `keras-default-init`: Keras' default initialisers (Glorot-uniform kernels, zero biases, also in the last layer),
  unbounded log-scales handed straight to TFP, as TFP's own examples write it;
- `zero-init` (`zero_init=True`): the last layer's kernel zeroed, the fix a user reaches for when the default
  overflows at the first step (several unbounded affine couplings compound);
- `bounded` (`bounded=True`): zero-initialised last layer AND the log-scale passed through `tanh` (|s| < 1): the two
  stabilisers of Keras' own RealNVP example and of most RealNVP tutorials; on 784-D digits it is the only plain
  affine build that is not NaN.
Spline couplings (`PlainNSF`) have no log-scale to bound: Keras-default and zero-init forms, parametrised as TFP's
`RationalQuadraticSpline` docstring does. NICE is additive and cannot overflow: one form. Weights live in Keras 3
layers (or tf_keras ones for `tfb.AutoregressiveNetwork`), bijectors are rebuilt from them on every call
(docs/design.md#keras-3-does-not-track-variables-inside-tfp-objects).

- `PlainRealNVP(D, K, hidden)`: K x [`tfb.RealNVP(num_masked=D // 2)` with an MLP returning (shift, log_scale),
  then `tfb.Permute`]: reversal (TFP's examples), or a fixed random permutation per coupling (`permutation`).
- `PlainNICE(D, K, hidden)`: the same with `shift_and_log_scale_fn` returning (shift, None) (TFP's NICE form),
  then a learned diagonal `tfb.Scale`; standard logistic base as in the paper (and our NICE).
- `PlainGlow2D(D, K, hidden)`: K x [ActNorm as `tfb.Shift` + `tfb.Scale` initialised from the first batch,
  `tfb.ScaleMatvecLU` (Glow's 1x1 convolution on vectors, LU from a random rotation), `tfb.RealNVP`].
- `PlainMAF(D, K, hidden)`: K x `tfb.MaskedAutoregressiveFlow(tfb.AutoregressiveNetwork(params=2))` with
  reversals between; a tf_keras network, so it trains in a GradientTape loop with the same Keras 3 Adam.
- `PlainNSF(D, K, hidden)`: K x [`tfb.RealNVP(bijector_fn=...)` returning a `tfb.RationalQuadraticSpline` on
  [-B, B] (identity outside), then `tfb.Permute`].
"""

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

tfb = tfp.bijectors
tfd = tfp.distributions

SPLINE_MIN_SIZE = 1e-3  # floor of every bin width, height and knot slope (TFP's docstring recipe)


class _Fresh:
    # Bijectors rebuilt per call around the same callable would share TFP's cache across traced graphs.
    def _get_parameterization(self):
        return id(self)


class _RealNVP(_Fresh, tfb.RealNVP):
    pass


class _MAF(_Fresh, tfb.MaskedAutoregressiveFlow):
    pass


def _log_scale(raw, bounded):
    """The log-scale handed to TFP: raw, or `tanh(raw)` for the bounded form (|s| < 1, Keras' RealNVP example)."""
    return tf.math.tanh(raw) if bounded else raw


def _mlp(hidden_units, output_units, zero_init=False):
    """Keras' defaults throughout; `zero_init` zeroes the last kernel (the usual fix when the default blows up)."""
    last = (
        keras.layers.Dense(output_units, kernel_initializer="zeros") if zero_init else keras.layers.Dense(output_units)
    )
    return keras.Sequential([keras.layers.Dense(u, activation="relu") for u in hidden_units] + [last])


class KerasFlow(keras.Model):
    """A Keras 3 model whose `distribution` is rebuilt per call; loss = mean NLL (like `FlowModel`)."""

    base = "normal"

    def __init__(self, event_size, **kwargs):
        super().__init__(**kwargs)
        self.event_size = event_size

    def flow(self):
        raise NotImplementedError

    @property
    def distribution(self):
        loc, scale = tf.zeros([]), tf.ones([])
        base = tfd.Normal(loc, scale) if self.base == "normal" else tfd.Logistic(loc, scale)
        return tfd.TransformedDistribution(tfd.Sample(base, [self.event_size]), self.flow())

    def log_prob(self, x):
        return self.distribution.log_prob(x)

    def sample(self, num_samples, seed=None):
        return self.distribution.sample(num_samples, seed=seed)

    def call(self, x, training=False):
        del training
        return self.log_prob(x)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if y_pred is None:
            y_pred = self(x, training=training)
        return -tf.reduce_mean(y_pred)

    def initialize(self, batch):
        """Data-dependent initialisation from a real batch (only PlainGlow2D has any)."""
        del batch


def _permutations(event_size, num_couplings, kind, seed):
    if kind == "reverse":
        return [np.arange(event_size)[::-1].copy() for _ in range(num_couplings)]
    rng = np.random.default_rng(seed)
    return [rng.permutation(event_size) for _ in range(num_couplings)]


class PlainRealNVP(KerasFlow):
    """K x [tfb.RealNVP, tfb.Permute] with Keras-default MLPs; unbounded log-scales unless `bounded`."""

    params_per_entry = 2  # (shift, log_scale) for each transformed entry

    def __init__(
        self,
        event_size,
        num_couplings=8,
        hidden_units=(512, 512),
        permutation="reverse",
        seed=0,
        zero_init=False,
        bounded=False,
        **kwargs,
    ):
        super().__init__(event_size, **kwargs)
        self.bounded = bounded
        zero_init = zero_init or bounded
        self.num_masked = event_size // 2
        self.networks = [
            _mlp(hidden_units, self.params_per_entry * (event_size - self.num_masked), zero_init)
            for _ in range(num_couplings)
        ]
        for network in self.networks:
            network.build((None, self.num_masked))
        self.permutations = _permutations(event_size, num_couplings, permutation, seed)

    def _coupling(self, network):
        def shift_and_log_scale_fn(x0, output_units):
            shift, log_scale = tf.split(network(x0), 2, axis=-1)
            return shift, _log_scale(log_scale, self.bounded)

        return _RealNVP(num_masked=self.num_masked, shift_and_log_scale_fn=shift_and_log_scale_fn)

    def flow(self):
        steps = []
        for network, permutation in zip(self.networks, self.permutations):
            steps += [self._coupling(network), tfb.Permute(tf.constant(permutation))]
        # Chain's inverse (the density direction) applies its FIRST bijector first: the data side is the last
        # Permute, then the last coupling, so the first coupling acts on the reversed data (ours: on the data
        # itself, masks alternating from the data side). The same flow family, the other orientation
        # (benchmarks/README.md, "Method").
        return tfb.Chain(steps[::-1])


class PlainNICE(PlainRealNVP):
    """K x [additive tfb.RealNVP (log_scale None), tfb.Permute], a learned tfb.Scale, logistic base."""

    base = "logistic"
    params_per_entry = 1  # the shift alone

    def __init__(self, event_size, num_couplings=4, hidden_units=(512, 512), **kwargs):
        super().__init__(event_size, num_couplings, hidden_units, **kwargs)
        self.log_scale = self.add_weight(name="log_scale", shape=(event_size,), initializer="zeros")

    def _coupling(self, network):
        return _RealNVP(num_masked=self.num_masked, shift_and_log_scale_fn=lambda x0, units: (network(x0), None))

    def flow(self):
        # data -> latent: couplings, then h = exp(S) x'; the bijector maps latent -> data, so Scale(exp(-S)) last.
        return tfb.Chain([super().flow(), tfb.Scale(log_scale=-self.log_scale)])


class PlainNSF(PlainRealNVP):
    """K x [tfb.RealNVP(bijector_fn -> tfb.RationalQuadraticSpline), tfb.Permute], Keras-default MLPs.

    The spline parameters follow TFP's docstring recipe: softmax bins scaled to the interval [-B, B] with a floor,
    softplus + floor slopes at the K - 1 interior knots.
    """

    def __init__(self, event_size, num_couplings, hidden_units, num_bins=8, bound=3.0, **kwargs):
        self.params_per_entry = 3 * num_bins - 1
        self.num_bins, self.bound = num_bins, bound
        super().__init__(event_size, num_couplings, hidden_units, **kwargs)

    def _coupling(self, network):
        k, bound = self.num_bins, self.bound

        def bins(raw):
            return tf.math.softmax(raw, axis=-1) * (2 * bound - k * SPLINE_MIN_SIZE) + SPLINE_MIN_SIZE

        def bijector_fn(x0, output_units):
            out = network(x0)
            out = tf.reshape(out, tf.concat([tf.shape(out)[:-1], [output_units, 3 * k - 1]], axis=0))
            return tfb.RationalQuadraticSpline(
                bins(out[..., :k]),
                bins(out[..., k : 2 * k]),
                tf.math.softplus(out[..., 2 * k :]) + SPLINE_MIN_SIZE,
                range_min=-bound,
            )

        return _RealNVP(num_masked=self.num_masked, bijector_fn=bijector_fn)


class PlainGlow2D(KerasFlow):
    """K x [ActNorm (Shift, Scale), ScaleMatvecLU, tfb.RealNVP] on vectors, data-initialised ActNorm."""

    def __init__(
        self, event_size, num_steps=8, hidden_units=(64, 64), seed=0, zero_init=False, bounded=False, **kwargs
    ):
        super().__init__(event_size, **kwargs)
        self.bounded = bounded
        zero_init = zero_init or bounded
        self.num_masked = event_size // 2
        rng = np.random.default_rng(seed)
        self.networks, self.locs, self.log_scales, self.lower_uppers, self.perms = [], [], [], [], []
        for k in range(num_steps):
            network = _mlp(hidden_units, 2 * (event_size - self.num_masked), zero_init)
            network.build((None, self.num_masked))
            self.networks.append(network)
            self.locs.append(self.add_weight(name=f"loc_{k}", shape=(event_size,), initializer="zeros"))
            self.log_scales.append(self.add_weight(name=f"log_scale_{k}", shape=(event_size,), initializer="zeros"))
            rotation = np.linalg.qr(rng.normal(size=(event_size, event_size)))[0]
            lower_upper, perm = tf.linalg.lu(tf.constant(rotation, tf.float32))
            self.lower_uppers.append(
                self.add_weight(
                    name=f"lower_upper_{k}",
                    shape=(event_size, event_size),
                    initializer=keras.initializers.Constant(lower_upper.numpy()),
                )
            )
            self.perms.append(perm.numpy())

    def _steps(self):
        """[(actnorm, lu, coupling)] from the data side."""
        steps = []
        for network, loc, log_scale, lower_upper, perm in zip(
            self.networks, self.locs, self.log_scales, self.lower_uppers, self.perms
        ):

            def fn(x0, output_units, network=network):
                shift, s = tf.split(network(x0), 2, axis=-1)
                return shift, _log_scale(s, self.bounded)

            actnorm = tfb.Chain([tfb.Shift(loc), tfb.Scale(log_scale=log_scale)])  # x = z exp(s) + loc
            steps.append(
                (
                    actnorm,
                    tfb.ScaleMatvecLU(lower_upper, tf.constant(perm)),
                    _RealNVP(num_masked=self.num_masked, shift_and_log_scale_fn=fn),
                )
            )
        return steps

    def flow(self):
        ordered = []
        for actnorm, lu, coupling in self._steps():
            ordered += [actnorm, lu, coupling]
        return tfb.Chain(ordered[::-1])

    def initialize(self, batch):
        """Each ActNorm: zero mean, unit variance per dimension on `batch` as it reaches it (Glow sec. 3.1)."""
        h = tf.convert_to_tensor(batch)
        for (actnorm, lu, coupling), loc, log_scale in zip(self._steps(), self.locs, self.log_scales):
            mean, var = tf.nn.moments(h, axes=[0])
            loc.assign(mean)
            log_scale.assign(0.5 * tf.math.log(var + 1e-6))
            h = coupling.inverse(lu.inverse(actnorm.inverse(h)))


class PlainMAF:
    """K x tfb.MaskedAutoregressiveFlow(tfb.AutoregressiveNetwork), reversals between; GradientTape steps."""

    def __init__(self, event_size, num_layers=5, hidden_units=(256, 256), zero_init=False, bounded=False):
        zero_init = zero_init or bounded
        self.networks = [
            tfb.AutoregressiveNetwork(
                params=2, event_shape=[event_size], hidden_units=list(hidden_units), activation="relu"
            )
            for _ in range(num_layers)
        ]
        steps = []
        for i, network in enumerate(self.networks):
            network.build((None, event_size))
            if zero_init:  # the last Dense layer of TFP's (private) Sequential
                last = network._network.layers[-1]
                last.kernel.assign(tf.zeros_like(last.kernel))
            if i:
                steps.append(tfb.Permute(tf.range(event_size - 1, -1, -1)))

            def shift_and_log_scale_fn(x, network=network):
                shift, log_scale = tf.unstack(network(x), axis=-1)
                return shift, _log_scale(log_scale, bounded)

            steps.append(_MAF(shift_and_log_scale_fn=shift_and_log_scale_fn))
        base = tfd.Sample(tfd.Normal(0.0, 1.0), [event_size])
        self.distribution = tfd.TransformedDistribution(base, tfb.Chain(steps[::-1]))
        self.variables = [v for network in self.networks for v in network.trainable_variables]

    def log_prob(self, x):
        return self.distribution.log_prob(x)

    def fit(self, dataset, steps, optimizer, jit_compile=True, every=None, on_chunk=None):
        """`steps` Adam steps; `on_chunk()` after every `every` of them (the benchmark's validation checkpoints)."""
        self.optimizer = optimizer
        optimizer.build(self.variables)

        @tf.function(jit_compile=jit_compile)
        def step(x):
            with tf.GradientTape() as tape:
                loss = -tf.reduce_mean(self.distribution.log_prob(x))
            optimizer.apply_gradients(zip(tape.gradient(loss, self.variables), self.variables))
            return loss

        for i, x in enumerate(dataset.take(steps), start=1):
            step(x)
            if on_chunk is not None and i % every == 0:
                on_chunk()

    def get_weights(self):
        return [v.numpy() for v in self.variables]

    def set_weights(self, weights):
        for variable, value in zip(self.variables, weights):
            variable.assign(value)
