"""The registry of presets: one `Preset` entry per model family, read by the command line and the runs.

An entry names the preset, its `FlowModel` class, whether it has a conditional form p(x | c) (`conditional`: its
constructor's `context_shape=` gives every coupling a context; tests/test_cli.py builds each preset to check the
flag) and the constructor arguments a run adds for 2-D toy densities (`toy_args`: the classes' own defaults target
real data) and for variational inference on the energies U1-U4 (`vi_args`; None: the preset does not do VI).
Adding a preset is one module in `keras_models/flows/` and one entry here, plus its line in the TensorFlow-free
`keras_models/train/catalog.py` (a test compares the two); `tfp-flows train --preset`, the toy and VI defaults
and the suite's every-preset checks all read this table.

>>> preset("RealNVP").toy_args
{'num_couplings': 6, 'hidden_units': [64, 64], 'dropout': 0.0}
>>> "planar" in VARIATIONAL_PRESETS, "glow" in VARIATIONAL_PRESETS
(True, False)
>>> preset("glow").conditional, preset("planar").conditional
(True, False)
"""

import dataclasses
from collections.abc import Sequence

from keras_models.core.flow_model import FlowModel
from keras_models.flows.cnf import CNF
from keras_models.flows.flow_plus_plus import FlowPlusPlus
from keras_models.flows.glow import Glow
from keras_models.flows.maf import MAF
from keras_models.flows.nice import NICE
from keras_models.flows.nsf import NSF
from keras_models.flows.planar_radial import PlanarFlow, RadialFlow
from keras_models.flows.prelu_flow import PReLUFlow
from keras_models.flows.realnvp import RealNVP


@dataclasses.dataclass(frozen=True)
class Preset:
    """One preset: `name` (as typed after --preset), `model` (its FlowModel class), whether it takes a context
    (`conditional`), run defaults and other names."""

    name: str
    model: type[FlowModel]
    conditional: bool = False
    toy_args: dict = dataclasses.field(default_factory=dict)
    vi_args: dict | None = None
    aliases: tuple[str, ...] = ()


def _toy_and_vi(toy_args: dict, **vi_changes: object) -> dict[str, dict]:
    """`toy_args` and `vi_args` of a preset whose VI architecture is its toy one with `vi_changes`."""
    return {"toy_args": toy_args, "vi_args": {**toy_args, **vi_changes}}


PRESETS: dict[str, Preset] = {
    entry.name: entry
    for entry in (
        Preset("prelu", PReLUFlow, aliases=("preluflow",)),
        Preset("nice", NICE, **_toy_and_vi({"num_couplings": 4, "hidden_units": [64, 64]})),
        # No ActNorm in VI: there is no data to initialise it from (it would stay a learned affine).
        Preset(
            "realnvp",
            RealNVP,
            conditional=True,
            # No dropout on the toys: 12 epochs of 50,000 points leave nothing to regularise, and it cost two moons'
            # KL gap 0.034 -> 0.08-0.10 nats (seeds 0, 1); VI has no data at all.
            **_toy_and_vi({"num_couplings": 6, "hidden_units": [64, 64], "dropout": 0.0}, actnorm=False),
        ),
        Preset("maf", MAF, conditional=True, **_toy_and_vi({"num_layers": 4, "hidden_units": [64, 64]}, actnorm=False)),
        Preset("nsf", NSF, conditional=True, toy_args={"num_layers": 4, "hidden_units": [64, 64], "num_bins": 8}),
        Preset("glow", Glow, conditional=True, toy_args={"num_steps": 6, "hidden_channels": 64}),
        Preset(
            "flowpp",
            FlowPlusPlus,
            toy_args={"num_couplings": 4, "num_components": 4, "hidden_channels": 64},
            aliases=("flowplusplus",),
        ),
        Preset("cnf", CNF, conditional=True, toy_args={"hidden_units": [64, 64], "rtol": 1e-4, "atol": 1e-4}),
        Preset("planar", PlanarFlow, vi_args={"num_layers": 16}),
        Preset("radial", RadialFlow, vi_args={"num_layers": 16}),
    )
}

# Presets that also fit an unnormalised target by reverse KL (VariationalFlow) when the "dataset" is an energy.
VARIATIONAL_PRESETS = tuple(name for name, entry in PRESETS.items() if entry.vi_args is not None)


def preset(name: str) -> Preset:
    """The `Preset` entry for a name (case, "-", "_" and "+" ignored: "Flow++", "flow_plus_plus"); ValueError
    listing the valid names otherwise."""
    key = str(name).lower().replace("-", "").replace("_", "").replace("+", "p")
    for entry in PRESETS.values():
        if key == entry.name or key in entry.aliases:
            return entry
    raise ValueError(f"unknown preset {name!r}; expected one of {sorted(PRESETS)}")


def preset_class(name: str) -> type[FlowModel]:
    """The FlowModel subclass for a preset name; ValueError listing the valid names otherwise."""
    return preset(name).model


def build_model(name: str, event_shape: Sequence[int], **kwargs) -> FlowModel:
    """Construct the preset `name` for events of `event_shape`, passing `kwargs` to its constructor."""
    return preset_class(name)(tuple(event_shape), **kwargs)
