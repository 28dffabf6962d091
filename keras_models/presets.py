"""Names of the presets for the command line and configs: `build_model("realnvp", event_shape, **kwargs)`."""
from keras_models.flow_plus_plus import FlowPlusPlus
from keras_models.glow import Glow
from keras_models.maf import MAF
from keras_models.nice import NICE
from keras_models.planar_radial import PlanarFlow, RadialFlow
from keras_models.prelu_flow import PReLUFlow
from keras_models.realnvp import RealNVP

PRESETS = {
    "prelu": PReLUFlow,
    "nice": NICE,
    "realnvp": RealNVP,
    "maf": MAF,
    "glow": Glow,
    "flowpp": FlowPlusPlus,
    "planar": PlanarFlow,
    "radial": RadialFlow,
}

# Presets that also fit an unnormalised target by reverse KL (VariationalFlow) when the "dataset" is an energy.
VARIATIONAL_PRESETS = ("planar", "radial", "realnvp", "maf", "nice")


def preset_class(name):
    """The FlowModel subclass for a preset name; ValueError listing the valid names otherwise."""
    key = str(name).lower().replace("-", "").replace("_", "").replace("+", "p")
    key = {"flowplusplus": "flowpp", "preluflow": "prelu"}.get(key, key)
    if key not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; expected one of {sorted(PRESETS)}")
    return PRESETS[key]


def build_model(name, event_shape, **kwargs):
    """Construct the preset `name` for events of `event_shape`, passing `kwargs` to its constructor."""
    return preset_class(name)(tuple(event_shape), **kwargs)
