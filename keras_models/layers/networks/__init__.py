"""Conditioner networks: plain Keras networks that map the pass-through block (or x_{<d}) to a step's parameters.

`mlp` and `ResidualConvNet`/`glow_conv` (conditioners.py) for couplings, `MaskedConditioner` (the mask/block
contract with `tfp_flows.coupling`), `MADE` (made.py) for autoregressive steps, `GatedConvAttentionNet`
(attention.py) for Flow++.
"""

from keras_models.layers.networks.attention import GatedConvAttentionNet
from keras_models.layers.networks.conditioners import MaskedConditioner, ResidualConvNet, glow_conv, mlp
from keras_models.layers.networks.made import MADE

__all__ = ["GatedConvAttentionNet", "MADE", "MaskedConditioner", "ResidualConvNet", "glow_conv", "mlp"]
