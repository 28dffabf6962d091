"""What `tfp-flows list` and `--help` name, without importing TensorFlow: presets, data sets, energies, objectives.

The real registries (`keras_models.flows.presets.PRESETS`, `tfp_flows.datasets.dataset_info`,
`tfp_flows.datasets.energies.ENERGIES`, `keras_models.flows.variational.OBJECTIVES`) import TensorFlow, which
takes seconds; this table holds the few facts the command line prints, and tests/test_cli.py checks it against
those registries (names, conditional support, variational inference, shapes), so that the two cannot drift.

>>> PRESETS["realnvp"].conditional, PRESETS["planar"].variational
(True, True)
>>> DATASETS["digits"].context_shape
(10,)
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class PresetSummary:
    """A preset as `tfp-flows list` shows it: what it is, whether it takes `--conditional` and energies (VI)."""

    description: str
    conditional: bool
    variational: bool


@dataclasses.dataclass(frozen=True)
class DatasetSummary:
    """A data set as `tfp-flows list` shows it: what it is, the shape of one example and of its label c."""

    description: str
    event_shape: tuple[int, ...]
    context_shape: tuple[int, ...] | None = None


PRESETS: dict[str, PresetSummary] = {
    "prelu": PresetSummary("lower-triangular affine maps with learned PReLUs between them", False, False),
    "nice": PresetSummary("NICE: additive couplings and a diagonal scaling (Dinh et al. 2014)", False, True),
    "realnvp": PresetSummary("RealNVP: affine couplings, multi-scale for images (Dinh et al. 2017)", True, True),
    "maf": PresetSummary("masked autoregressive flow: MADE affine steps (Papamakarios et al. 2017)", True, True),
    "nsf": PresetSummary("neural spline flow: rational-quadratic splines (Durkan et al. 2019)", True, False),
    "glow": PresetSummary("Glow: ActNorm, 1x1 convolutions, affine couplings (Kingma & Dhariwal 2018)", True, False),
    "flowpp": PresetSummary(
        "Flow++: logistic-mixture couplings, variational dequantization (Ho et al. 2019)", False, False
    ),
    "cnf": PresetSummary(
        "continuous flow dx/dt = v(x, t), flow matching or maximum likelihood (FFJORD's log-density)", True, False
    ),
    "planar": PresetSummary("planar flow (Rezende & Mohamed 2015), for variational inference", False, True),
    "radial": PresetSummary("radial flow (Rezende & Mohamed 2015), for variational inference", False, True),
}

DATASETS: dict[str, DatasetSummary] = {
    "two_moons": DatasetSummary("two noisy half circles", (2,), (2,)),
    "eight_gaussians": DatasetSummary("eight Gaussians on a circle", (2,), (8,)),
    "checkerboard": DatasetSummary("uniform on the black squares of a 4x4 board", (2,)),
    "rings": DatasetSummary("four noisy concentric circles", (2,)),
    "pinwheel": DatasetSummary("five spiral arms", (2,)),
    "prelu": DatasetSummary("x2 ~ N(0, 16), x1 ~ N(x2^2 / 4, 1): the PReLU tutorial's density", (2,)),
    "digits": DatasetSummary("scikit-learn's 8x8 digits, 17 grey levels (offline)", (8, 8, 1), (10,)),
    "mnist": DatasetSummary("28x28 MNIST digits (prepare once: tfds build mnist)", (28, 28, 1), (10,)),
    "cifar10": DatasetSummary("32x32 colour images (prepare once: tfds build cifar10)", (32, 32, 3), (10,)),
}

ENERGIES: dict[str, str] = {
    "U1": "a ring with two lobes (the only one with a finite normalizer)",
    "U2": "a sine wave",
    "U3": "two sine waves, parted by a Gaussian bump",
    "U4": "two sine waves, parted by a sigmoid step",
}

OBJECTIVES: tuple[str, ...] = ("elbo", "iw-elbo")
GRADIENT_ESTIMATORS: tuple[str, ...] = ("reparameterized", "stl", "dreg")


def is_energy(name: object) -> bool:
    """Whether `name` ("U1".."U4", any case) is an energy: a variational-inference target, not a data set."""
    return str(name).upper() in ENERGIES
