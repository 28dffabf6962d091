"""BayesFlow 2's `CouplingFlow` as a contender: the other Keras 3 flow library, what a Keras user might pick instead.

`BayesFlowCoupling(D, depth, hidden, transform)` wraps `bayesflow.networks.CouplingFlow(depth=..., transform=
"affine" | "spline", subnet="mlp", subnet_kwargs={"widths": hidden})` in a Keras model with the same interface as
`plain_tfp.KerasFlow` (`log_prob`, `compute_loss` = mean NLL), so the benchmark trains it with `fit` on the same
batches, steps, optimiser and learning rate as ours, and scores it by its exact log-density
(`CouplingFlow.log_prob`: the change of variables through its invertible layers).

What is equalised: depth, the MLP widths, batch, steps, Adam and its learning rate, the data. Depth counts
couplings: each of BayesFlow's `depth` layers is a `DualCoupling`, two couplings that transform one half each, so a
flow of K of our couplings meets `CouplingFlow(depth=K / 2)` (`depth_for`).
What is not, because it is BayesFlow's own design and a user gets it by default: its coupling MLP
(`bayesflow.networks.defaults.COUPLING_MLP_DEFAULTS` in 2.0.12: hard-SiLU activations, orthogonal init, no residual
blocks, dropout 0.05 while training), its ActNorm and random permutations between couplings, its affine coupling's
soft scale clamp (scale = softplus(arcsinh(s)), shifted to 1 at s = 0), and its spline transform (learned interval
edges, affine tails outside the interval; ours are the identity outside [-B, B]).

Needs `pip install bayesflow` (the `bench` extra) and Keras on its TensorFlow backend (`KERAS_BACKEND=tensorflow`,
which the benchmark sets before importing Keras).
"""

import keras
import tensorflow as tf


def available() -> bool:
    """Whether BayesFlow imports here (the `bench` extra installs it)."""
    try:
        import bayesflow  # noqa: F401
    except ImportError:
        return False
    return True


def depth_for(num_couplings: int) -> int:
    """BayesFlow's `depth` for a flow of `num_couplings` single couplings: one `DualCoupling` is two of them."""
    if num_couplings % 2:
        raise ValueError(f"depth_for: `num_couplings` must be even (one DualCoupling is two); received {num_couplings}")
    return num_couplings // 2


class BayesFlowCoupling(keras.Model):
    """BayesFlow's `CouplingFlow` on vectors of `event_size`, trained by maximum likelihood with `fit`."""

    def __init__(
        self,
        event_size,
        depth=6,
        hidden_units=(128, 128),
        transform="affine",
        dropout=None,
        network_kwargs=None,
        **kwargs,
    ):
        import bayesflow as bf

        super().__init__(**kwargs)
        self.event_size = event_size
        subnet_kwargs = {"widths": tuple(hidden_units)}
        if dropout is not None:  # None: BayesFlow's own default (0.05), what a user gets
            subnet_kwargs["dropout"] = dropout
        network_kwargs = dict(network_kwargs or {})  # CouplingFlow's own options (ablations), e.g. use_actnorm
        subnet_kwargs.update(network_kwargs.pop("subnet_kwargs", {}))
        transform = network_kwargs.pop("transform", transform)  # a Transform instance: its options (ablations)
        self.network = bf.networks.CouplingFlow(
            depth=depth, transform=transform, subnet="mlp", subnet_kwargs=subnet_kwargs, **network_kwargs
        )
        self.network.build((None, event_size))

    def log_prob(self, x, training=False):
        return self.network.log_prob(tf.convert_to_tensor(x), training=training)

    def call(self, x, training=False):
        return self.log_prob(x, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if y_pred is None:
            y_pred = self(x, training=training)
        return -tf.reduce_mean(y_pred)
