"""Keras layers that own a flow's weights and build tfp_flows bijectors from them on every call."""
from keras_models.layers.actnorm import ActNormLayer
from keras_models.layers.base import BijectorLayer
from keras_models.layers.conditioners import MaskedConditioner, ResidualConvNet, glow_conv, mlp
from keras_models.layers.conv1x1 import InvertibleConv1x1Layer
from keras_models.layers.couplings import AdditiveCouplingLayer, AffineCouplingLayer
from keras_models.layers.made import MADE
from keras_models.layers.mixture_coupling import MixtureCouplingLayer
from keras_models.layers.permute import PermuteLayer
from keras_models.layers.shift import ShiftLayer
from keras_models.layers.split_prior import SplitPriorLayer
from keras_models.layers.structure import ChannelSliceLayer, LogitLayer, SequentialFlow, SqueezeLayer

__all__ = [
    "ActNormLayer", "AdditiveCouplingLayer", "AffineCouplingLayer", "BijectorLayer", "ChannelSliceLayer",
    "InvertibleConv1x1Layer", "LogitLayer", "MADE", "MaskedConditioner", "MixtureCouplingLayer", "PermuteLayer",
    "ResidualConvNet", "SequentialFlow", "ShiftLayer", "SplitPriorLayer", "SqueezeLayer", "glow_conv", "mlp",
]
