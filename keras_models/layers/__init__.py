"""Keras layers that own a flow's weights and build tfp_flows bijectors from them on every call."""
from keras_models.layers.actnorm import ActNormLayer
from keras_models.layers.base import BijectorLayer
from keras_models.layers.conditioners import MaskedConditioner, ResidualConvNet, glow_conv, mlp
from keras_models.layers.conv1x1 import InvertibleConv1x1Layer
from keras_models.layers.couplings import AdditiveCouplingLayer, AffineCouplingLayer
from keras_models.layers.structure import ChannelSliceLayer, LogitLayer, SequentialFlow, SqueezeLayer

__all__ = [
    "ActNormLayer", "AdditiveCouplingLayer", "AffineCouplingLayer", "BijectorLayer", "ChannelSliceLayer",
    "InvertibleConv1x1Layer", "LogitLayer", "MaskedConditioner", "ResidualConvNet", "SequentialFlow",
    "SqueezeLayer", "glow_conv", "mlp",
]
