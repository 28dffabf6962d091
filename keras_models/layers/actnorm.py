"""`ActNormLayer`: owns ActNorm's per-channel loc and log-scale and their one-time data-dependent init."""

import keras
import tensorflow as tf

import tfp_flows
from keras_models.core.bijector_layer import BijectorLayer
from tfp_flows.validation import check_one_of

# The `actnorm` argument of the presets that place ActNorms (RealNVP, NICE, MAF, NSF).
ACTNORM_CHOICES = ("auto", True, False)


def resolve_actnorm(actnorm: str | bool, owner: str, data_initialised: bool) -> bool:
    """Whether a preset places ActNorms: `actnorm` True / False as given; "auto" means the same for every preset:
    on where a batch of data initialises them (`data_initialised`: density models of vectors), off where none
    does (IAF, whose job is variational inference) or the architecture normalises otherwise (RealNVP's
    multi-scale images). ValueError naming `owner` for anything else."""
    actnorm = check_one_of(actnorm, "actnorm", ACTNORM_CHOICES, owner=owner)
    return data_initialised if actnorm == "auto" else actnorm


class ActNormLayer(BijectorLayer):
    """Per-channel affine step (Glow sec. 3.1) whose first real batch sets zero mean / unit variance.

    Weights: `loc` and `log_scale` of shape [C] (the last axis), and the non-trainable flag `initialized`,
    saved with the model so a reloaded or resumed model never re-initialises.
    """

    def __init__(self, epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.loc = self.add_weight(name="loc", shape=(channels,), initializer="zeros")
        self.log_scale = self.add_weight(name="log_scale", shape=(channels,), initializer="zeros")
        self.initialized = self.add_weight(name="initialized", shape=(), initializer="zeros", trainable=False)
        self.built = True

    def needs_initialization(self):
        return not bool(keras.ops.convert_to_numpy(self.initialized))

    def initialize_from_data(self, x):
        if not self.needs_initialization():
            return
        loc, log_scale = tfp_flows.actnorm_initial_parameters(tf.cast(x, self.compute_dtype), epsilon=self.epsilon)
        self.loc.assign(tf.cast(loc, self.loc.dtype))
        self.log_scale.assign(tf.cast(log_scale, self.log_scale.dtype))
        self.initialized.assign(1.0)

    def bijector(self):
        return tfp_flows.ActNorm(loc=self.loc.value, log_scale=self.log_scale.value)
