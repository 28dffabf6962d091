"""Write one tiny .keras file per preset with the code as it was before the keras_models layout change."""

import os
import sys

import numpy as np

from keras_models import MAF, NICE, FlowPlusPlus, Glow, PlanarFlow, PReLUFlow, RadialFlow, RealNVP
from keras_models.maf import IAF

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
BUILD = {
    "prelu": lambda: PReLUFlow((2,), num_layers=2),
    "nice": lambda: NICE((2,), num_couplings=2, hidden_units=(4,)),
    "realnvp": lambda: RealNVP((2,), num_couplings=2, hidden_units=(4,)),
    "realnvp-image": lambda: RealNVP((4, 4, 1), width=2, num_blocks=1, num_scales=1),
    "maf": lambda: MAF((3,), num_layers=2, hidden_units=(4,)),
    "iaf": lambda: IAF((3,), num_layers=1, hidden_units=(4,)),
    "glow": lambda: Glow((2,), num_steps=1, hidden_channels=4, seed=0),
    "flowpp-image": lambda: FlowPlusPlus(
        (4, 4, 1),
        num_components=2,
        num_couplings=1,
        hidden_channels=2,
        num_blocks=1,
        use_attention=True,
        num_heads=1,
        dequantizer_couplings=1,
        dequantizer_channels=2,
        seed=0,
    ),
    "planar": lambda: PlanarFlow((2,), num_layers=2),
    "radial": lambda: RadialFlow((2,), num_layers=2),
}
rng = np.random.default_rng(0)
for key, build in BUILD.items():
    model = build()
    if len(model.event_shape) == 3:
        data = rng.uniform(0.05, 0.95, size=(8,) + model.event_shape).astype("float32")
    else:
        data = rng.normal(size=(8,) + model.event_shape).astype("float32")
    model.initialize_from_data(data)
    for weight in model.trainable_weights:
        weight.assign(weight.numpy() + rng.normal(scale=0.05, size=weight.shape).astype(weight.dtype))
    model.save(os.path.join(OUT, f"{key}.keras"))
    np.savez(os.path.join(OUT, f"{key}.npz"), x=data[:4], log_prob=model.log_prob(data[:4]).numpy())
    print(key, os.path.getsize(os.path.join(OUT, f"{key}.keras")))
