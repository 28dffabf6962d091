"""Conditioner networks: plain Keras networks that map the pass-through block (or x_{<d}) to a step's parameters.

`mlp` and `ResidualConvNet`/`glow_conv` (conditioners.py) for couplings, `MaskedConditioner` (the mask/block
contract with `tfp_flows.coupling`), `MADE` (made.py) for autoregressive steps, `GatedConvAttentionNet`
(attention.py) for Flow++; context embeddings (`MLPEmbedding`, `DeepSetsEmbedding`, embeddings.py) a conditional
model's `context_network=` applies to c once before every conditioner reads it.
"""

from keras_models.layers.networks.attention import GatedConvAttentionNet
from keras_models.layers.networks.conditioners import MaskedConditioner, ResidualConvNet, glow_conv, mlp
from keras_models.layers.networks.embeddings import DeepSetsEmbedding, MLPEmbedding
from keras_models.layers.networks.made import MADE

__all__ = [
    "DeepSetsEmbedding",
    "GatedConvAttentionNet",
    "MADE",
    "MLPEmbedding",
    "MaskedConditioner",
    "ResidualConvNet",
    "glow_conv",
    "mlp",
]
