"""tfp_flows: normalizing-flow bijectors for TensorFlow Probability.

Every class here is a `tfp.bijectors.Bijector`; forward maps the base (latent) space to data (sampling), inverse
maps data to the latent space (density evaluation). Parameters are tensors, `tf.Variable`s or `DeferredTensor`s
handed in; no bijector creates variables itself. This package imports TensorFlow, TFP and NumPy only.
"""

from tfp_flows import masks
from tfp_flows.actnorm import ActNorm, actnorm_initial_parameters
from tfp_flows.additive_coupling import AdditiveCoupling
from tfp_flows.affine_coupling import AffineCoupling
from tfp_flows.autoregressive_spline import MaskedAutoregressiveSpline
from tfp_flows.channel_slice import ChannelSlice
from tfp_flows.conditioning import conditional_kwargs
from tfp_flows.continuous_flow import ContinuousFlow
from tfp_flows.invertible_conv1x1 import InvertibleConv1x1
from tfp_flows.logistic_mixture_cdf import LogisticMixtureCDF
from tfp_flows.logistic_mixture_coupling import LogisticMixtureCoupling
from tfp_flows.logit_transform import LogitTransform
from tfp_flows.masked_autoregressive import OnePassMaskedAutoregressiveFlow
from tfp_flows.masked_exp import MaskedExp
from tfp_flows.planar import Planar
from tfp_flows.prelu import PReLU
from tfp_flows.radial import Radial
from tfp_flows.rational_quadratic_coupling import RationalQuadraticCoupling
from tfp_flows.squeeze import Squeeze

__version__ = "0.1.0"

__all__ = [
    "ActNorm",
    "AdditiveCoupling",
    "AffineCoupling",
    "ChannelSlice",
    "ContinuousFlow",
    "InvertibleConv1x1",
    "LogisticMixtureCDF",
    "LogisticMixtureCoupling",
    "LogitTransform",
    "MaskedAutoregressiveSpline",
    "MaskedExp",
    "OnePassMaskedAutoregressiveFlow",
    "PReLU",
    "Planar",
    "Radial",
    "RationalQuadraticCoupling",
    "Squeeze",
    "actnorm_initial_parameters",
    "conditional_kwargs",
    "masks",
]
