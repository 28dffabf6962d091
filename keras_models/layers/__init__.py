"""Keras layers that own a flow's weights and build tfp_flows bijectors from them on every call.

One layer a module, named as the bijector it builds (`layers/planar.py` builds `tfp_flows/planar.py`'s `Planar`;
`scale.py`, `permute.py`, `shift.py` and `scale_matvec_tril.py` build TFP's own); `networks/` holds the
conditioners (MLPs, residual convnets, MADE, gated attention), which are Keras networks, not steps. Layers never
import `keras_models.flows` (the presets) nor `keras_models.train`.
"""

from keras_models.core.bijector_layer import BijectorLayer
from keras_models.layers.actnorm import ActNormLayer
from keras_models.layers.additive_coupling import AdditiveCouplingLayer
from keras_models.layers.affine_coupling import AffineCouplingLayer
from keras_models.layers.autoregressive_spline import AutoregressiveSplineLayer, SplineMADE
from keras_models.layers.chain import SequentialFlow
from keras_models.layers.channel_slice import ChannelSliceLayer
from keras_models.layers.coupling import CouplingLayer
from keras_models.layers.invertible_conv1x1 import InvertibleConv1x1Layer
from keras_models.layers.logistic_mixture_coupling import MixtureCouplingLayer
from keras_models.layers.logit_transform import LogitLayer
from keras_models.layers.masked_autoregressive import MaskedAutoregressiveLayer
from keras_models.layers.networks import MADE, GatedConvAttentionNet, MaskedConditioner, ResidualConvNet, glow_conv, mlp
from keras_models.layers.permute import PermuteLayer
from keras_models.layers.planar import PlanarLayer
from keras_models.layers.prelu import PReLULayer
from keras_models.layers.radial import RadialLayer
from keras_models.layers.rational_quadratic_coupling import RationalQuadraticCouplingLayer
from keras_models.layers.scale import DiagonalScaleLayer
from keras_models.layers.scale_matvec_tril import LowerTriangularAffineLayer
from keras_models.layers.shift import ShiftLayer
from keras_models.layers.split_prior import SplitPriorLayer
from keras_models.layers.squeeze import SqueezeLayer

__all__ = [
    "ActNormLayer",
    "AdditiveCouplingLayer",
    "AffineCouplingLayer",
    "AutoregressiveSplineLayer",
    "BijectorLayer",
    "ChannelSliceLayer",
    "CouplingLayer",
    "DiagonalScaleLayer",
    "GatedConvAttentionNet",
    "InvertibleConv1x1Layer",
    "LogitLayer",
    "LowerTriangularAffineLayer",
    "MADE",
    "MaskedAutoregressiveLayer",
    "MaskedConditioner",
    "MixtureCouplingLayer",
    "PReLULayer",
    "PermuteLayer",
    "PlanarLayer",
    "RadialLayer",
    "RationalQuadraticCouplingLayer",
    "ResidualConvNet",
    "SequentialFlow",
    "ShiftLayer",
    "SplineMADE",
    "SplitPriorLayer",
    "SqueezeLayer",
    "glow_conv",
    "mlp",
]
