"""The registry of model cases: per preset of `keras_models.flows.presets.PRESETS`, a small model and data for it.

`tests/model_checklist.py` runs every check of `tests/model_checks.py` over every case (as
`tests/bijector_cases` does for bijectors, and zuko's tests/test_flows.py over its flows); what is unique to one
preset stays in its own `tests/test_model_<preset>.py`. A preset without a case fails
`test_every_preset_has_a_case`. A case:

  - `make(**overrides)`: a small model (cheap to trace and compile with XLA; both mask parities), a
    `functools.partial` of the class, so any argument can be overridden;
  - `data(n, seed)`: n examples inside the model's support, as a float32 array;
  - `perturb`: the scale of the noise added to every weight for the read-only checks, so that no step is the
    identity (a fresh model's last conditioner layers are zero); `replace=True` draws the weights instead;
  - `skip`: checks this case leaves out, each with the reason (where it is covered instead);
  - `jit_overrides`: constructor arguments for the XLA check only (a shorter compile);
  - `mixed_exports`: the mixed policies under which the mixed-precision check also exports a SavedModel (the
    `.keras` reload runs under both). One per case: the signatures trace the same float32 flow around networks
    cast to either half type, so the presets' first cases take turns (bfloat16 by default, float16 where named),
    and both policies export across the registry at half the cost;
  - `after_reload(model, reloaded)`: preset-specific comparisons after the `.keras` round trip;
  - `support`: the `support` of `make()` (None: the real line); `unit_interval`: constructor arguments that bound
    an unbounded case to [0, 1] (b-bit data: num_bits=8), or None where its data cannot be b-bit
    (tests/test_bad_input.py checks both, and that every preset has a bounded case);
  - `export`: the overrides of the instance tests/test_export_presets.py exports (None: this case is not
    exported; every preset has one exported case).

A conditional case (`context_shape=...`, `conditional=True`) has `data(n, seed)` return the pair (x, c) with c
[n, *context_shape]: tests/model_checks.py hands c to every call.
"""

import dataclasses
from functools import partial

import numpy as np
from sklearn.datasets import load_digits, make_moons

from keras_models import (
    CNF,
    IAF,
    MAF,
    NICE,
    NSF,
    ConditionalGaussianBase,
    FlowPlusPlus,
    Glow,
    PlanarFlow,
    PReLUFlow,
    RadialFlow,
    RealNVP,
)

CHECKS = (
    "every_weight_trains",
    "log_prob",
    "sample_encode_decode",
    "keras_round_trip",
    "jit_compile_trains",
    "bijector_conforms",
    "mixed_precision",
)


@dataclasses.dataclass(frozen=True)
class ModelCase:
    id: str
    preset: str  # its name in PRESETS, or None for a class no preset names (IAF)
    make: callable
    data: callable
    perturb: float = 0.3
    replace: bool = False
    atol: float = 1e-4  # encode/decode round trip
    skip: dict = dataclasses.field(default_factory=dict)
    jit_overrides: dict = dataclasses.field(default_factory=dict)
    mixed_exports: tuple = ("mixed_bfloat16",)
    after_reload: callable = None
    support: tuple = None
    unit_interval: dict = None
    export: dict = None
    conditional: bool = False  # data(n, seed) returns (x, c)

    def __str__(self):
        return self.id


# ------------------------------------------------------------------------------------------------------------
# Data (each in the support of the models that take it).
def moons(n, seed=0):
    return make_moons(n, noise=0.05, random_state=seed)[0].astype(np.float32)


def normal_3d(n, seed=0):
    return np.random.default_rng(seed).normal(size=[n, 3]).astype(np.float32)


def banana(n, seed=0):
    """The TFP tutorial's density: x2 ~ N(0, 4^2), x1 ~ N(x2^2 / 4, 1)."""
    rng = np.random.default_rng(seed)
    x2 = 4.0 * rng.normal(size=n)
    x1 = x2**2 / 4.0 + rng.normal(size=n)
    return np.stack([x1, x2], axis=1).astype(np.float32)


def two_channel_images(n, seed=0):
    """[n, 4, 4, 2] values in [0, 1] whose two channels have different means and spreads."""
    u = np.random.default_rng(seed).uniform(size=(n, 4, 4, 2))
    return (u * [1.0, 0.3] + [0.0, 0.6]).astype(np.float32)


def digits_4x4(n, seed=0):
    """scikit-learn's digits (levels 0..16) on the 8-bit scale, their centre 4x4 crop, dequantised to [0, 1]."""
    pixels = np.round(load_digits().images[:n, 2:6, 2:6, np.newaxis] * (255.0 / 16.0))
    return ((pixels + np.random.default_rng(seed).uniform(size=pixels.shape)) / 256.0).astype(np.float32)


def with_context(data, context_size):
    """Data paired with contexts: c [n, context_size] ~ N(0, 1), and x shifted by the first context value (so x
    depends on c), kept in [0, 1] for images (mixed towards 0.5)."""

    def make(n, seed=0):
        x = data(n, seed)
        c = np.random.default_rng(seed + 100).normal(size=(n, context_size)).astype(np.float32)
        shift = c[:, :1].reshape((n,) + (1,) * (x.ndim - 1))
        x = x * 0.8 + 0.1 + 0.05 * np.tanh(shift) if x.ndim == 4 else x + shift
        return x.astype(np.float32), c

    return make


def with_set_context(data, set_size, set_dim):
    """Data paired with set-valued contexts c [n, set_size, set_dim] ~ N(0, 1), x shifted by the mean of the set's
    first coordinate (what a `DeepSetsEmbedding` context network reads)."""

    def make(n, seed=0):
        x = data(n, seed)
        c = np.random.default_rng(seed + 100).normal(size=(n, set_size, set_dim)).astype(np.float32)
        return (x + c[:, :, :1].mean(axis=1)).astype(np.float32), c

    return make


def with_conditional_gaussian_base(model_class, *args, base_hidden_units=(4,), **kwargs):
    """`model_class(*args, **kwargs)` on a fresh `ConditionalGaussianBase` (a base layer built per model: a
    `partial` holding one instance would share its weights between every model the case makes)."""
    return model_class(*args, base_distribution=ConditionalGaussianBase(hidden_units=base_hidden_units), **kwargs)


# ------------------------------------------------------------------------------------------------------------
# Preset-specific comparisons after a `.keras` round trip.
def same_permutations(model, reloaded):
    def permutations(m):
        return [p.permutation.tolist() for p in m.flow_layers if hasattr(p, "permutation")]

    assert permutations(reloaded) == permutations(model)


def same_dequantization_elbo(model, reloaded):
    """q(u | x)'s weights travel with the file too."""
    x = digits_4x4(8, seed=5)
    np.testing.assert_allclose(
        reloaded.dequantization_elbo(x, seed=2).numpy(),
        model.dequantization_elbo(x, seed=2).numpy(),
        rtol=1e-6,
        atol=1e-5,
    )


B_BIT = {"num_bits": 8}
CNF_CONFORMS = (
    "the kit runs the ODE solver eagerly, through autodiff Jacobians and under XLA (minutes); tests/test_cnf.py "
    "checks the flow and log-det against closed-form fields, sample_encode_decode the round trip"
)

CASES = [
    ModelCase(
        "nice",
        "nice",
        partial(NICE, (2,), num_couplings=2, hidden_units=(16,), base_distribution="normal", activation="tanh"),
        moons,
        unit_interval=B_BIT,
        export=dict(hidden_units=(8,), base_distribution="logistic", activation="relu"),
    ),
    # With ActNorm, so its data-initialised loc and log-scale are among the weights that must train.
    ModelCase(
        "realnvp-vector",
        "realnvp",
        partial(
            RealNVP,
            (2,),
            num_couplings=2,
            hidden_units=(16,),
            actnorm=True,
            base_distribution="logistic",
            activation="tanh",
        ),
        moons,
        mixed_exports=("mixed_float16",),
    ),
    ModelCase(
        "realnvp-image",
        "realnvp",
        partial(RealNVP, (4, 4, 1), width=8, num_blocks=1, num_scales=2),
        digits_4x4,
        perturb=0.05,
        support=(0.0, 1.0),
        export=dict(width=4, num_scales=1),
        skip={
            "every_weight_trains": "test_model_realnvp.py's image fit trains every weight (bits/dim)",
            "jit_compile_trains": "the vector case compiles the same couplings",
        },
    ),
    ModelCase(
        "maf",
        "maf",
        partial(MAF, (3,), num_layers=3, hidden_units=(16, 16), permutation="random"),
        normal_3d,
        replace=True,
        after_reload=same_permutations,
        unit_interval=B_BIT,
        export=dict(num_layers=2, hidden_units=(8,), permutation="reverse"),
        mixed_exports=("mixed_float16",),
    ),
    ModelCase(
        "iaf",
        None,
        partial(IAF, (3,), num_layers=2, hidden_units=(8,)),
        normal_3d,
        replace=True,
        after_reload=same_permutations,
        unit_interval=B_BIT,
        export={},
    ),
    ModelCase(
        "nsf-coupling",
        "nsf",
        partial(NSF, (2,), num_layers=2, hidden_units=(16,), num_bins=4, bound=2.0),
        moons,
        unit_interval=B_BIT,
        export=dict(hidden_units=(8,), num_bins=3),
    ),
    # Learned LU mixing between steps (keras_models/flows/mixing.py): its L, U and log|diag U| must train too.
    ModelCase(
        "nsf-coupling-lu",
        "nsf",
        partial(NSF, (3,), num_layers=2, hidden_units=(16,), num_bins=4, bound=2.0, mixing="lu"),
        normal_3d,
        export=dict(hidden_units=(8,), num_bins=3),
        skip={"jit_compile_trains": "glow-vector compiles the same LU map; nsf-coupling the same couplings"},
    ),
    ModelCase(
        "nsf-autoregressive",
        "nsf",
        partial(
            NSF, (3,), variant="autoregressive", num_layers=2, hidden_units=(16,), num_bins=4, permutation="random"
        ),
        normal_3d,
        after_reload=same_permutations,
    ),
    ModelCase(
        "glow-image",
        "glow",
        partial(Glow, (4, 4, 2), num_levels=2, num_steps=1, hidden_channels=4, seed=0),
        two_channel_images,
        perturb=0.05,
        support=(0.0, 1.0),
        mixed_exports=("mixed_float16",),
    ),
    ModelCase(
        "glow-vector",
        "glow",
        partial(Glow, (2,), num_steps=2, hidden_channels=16, seed=0),
        banana,
        perturb=0.05,
        unit_interval=B_BIT,
        export=dict(hidden_channels=8),
    ),
    ModelCase(
        "flowpp-vector",
        "flowpp",
        partial(FlowPlusPlus, (2,), num_components=4, num_couplings=2, hidden_channels=32, num_blocks=1),
        moons,
        perturb=0.2,
        replace=True,
        skip={"jit_compile_trains": "the image case compiles the same mixture couplings"},
    ),
    # One coupling per kind: checkerboard at full resolution, squeeze, channel mask on [2, 2, 4], unsqueeze.
    ModelCase(
        "flowpp-image",
        "flowpp",
        partial(
            FlowPlusPlus,
            (4, 4, 1),
            num_components=2,
            num_couplings=(1, 1, 0),
            hidden_channels=8,
            num_blocks=1,
            use_attention=True,
            num_heads=2,
            dequantizer_couplings=2,
            dequantizer_channels=8,
            seed=0,
        ),
        digits_4x4,
        perturb=0.2,
        replace=True,
        support=(0.0, 1.0),
        after_reload=same_dequantization_elbo,
        skip={"every_weight_trains": "test_model_flowpp.py's trained_image_model fixture checks it"},
        jit_overrides=dict(num_couplings=1, dequantizer_couplings=1),
        export=dict(num_couplings=1, hidden_channels=4, dequantizer_couplings=1, dequantizer_channels=4),
    ),
    # Conditional models p(x | c): couplings (vector and image), MADEs, Glow's couplings and split priors.
    ModelCase(
        "realnvp-vector-conditional",
        "realnvp",
        partial(RealNVP, (2,), num_couplings=2, hidden_units=(16,), actnorm=True, context_shape=(2,)),
        with_context(moons, 2),
        conditional=True,
    ),
    ModelCase(
        "realnvp-image-conditional",
        "realnvp",
        partial(RealNVP, (4, 4, 1), width=4, num_blocks=1, num_scales=2, context_shape=(2,)),
        with_context(digits_4x4, 2),
        perturb=0.05,
        support=(0.0, 1.0),
        conditional=True,
        skip={
            "every_weight_trains": "the vector case trains the same conditional couplings",
            "jit_compile_trains": "the vector case compiles the same conditional couplings",
        },
    ),
    # p(z | c) = N(mu(c), diag sigma(c)^2): the base's network must train, reload and see the context too.
    ModelCase(
        "realnvp-vector-conditional-base",
        "realnvp",
        partial(with_conditional_gaussian_base, RealNVP, (2,), num_couplings=2, hidden_units=(8,), context_shape=(2,)),
        with_context(moons, 2),
        conditional=True,
    ),
    # A learned embedding of a set-valued context (DeepSets), shared by the couplings and the conditional base.
    ModelCase(
        "realnvp-vector-context-network",
        "realnvp",
        partial(
            with_conditional_gaussian_base,
            RealNVP,
            (2,),
            num_couplings=2,
            hidden_units=(8,),
            context_shape=(4, 2),
            context_network={"class_name": "deepsets", "config": {"embedding_dim": 3, "phi_units": [8]}},
        ),
        with_set_context(moons, 4, 2),
        conditional=True,
    ),
    ModelCase(
        "maf-conditional",
        "maf",
        partial(MAF, (3,), num_layers=2, hidden_units=(16,), context_shape=(2,)),
        with_context(normal_3d, 2),
        replace=True,
        conditional=True,
    ),
    ModelCase(
        "glow-image-conditional",
        "glow",
        partial(Glow, (4, 4, 2), num_levels=2, num_steps=1, hidden_channels=4, seed=0, context_shape=(3,)),
        with_context(two_channel_images, 3),
        perturb=0.05,
        support=(0.0, 1.0),
        conditional=True,
    ),
    ModelCase(
        "nsf-coupling-conditional",
        "nsf",
        partial(NSF, (2,), num_layers=2, hidden_units=(16,), num_bins=4, bound=2.0, context_shape=(2,)),
        with_context(moons, 2),
        conditional=True,
        skip={"jit_compile_trains": "the conditional RealNVP case compiles the same conditional coupling path"},
    ),
    ModelCase(
        "nsf-autoregressive-conditional",
        "nsf",
        partial(NSF, (3,), variant="autoregressive", num_layers=2, hidden_units=(16,), num_bins=4, context_shape=(2,)),
        with_context(normal_3d, 2),
        conditional=True,
    ),
    ModelCase(
        "planar",
        "planar",
        partial(PlanarFlow, (2,), num_layers=3),
        moons,
        perturb=0.5,
        replace=True,
        atol=1e-5,
        unit_interval=B_BIT,
        export={},
        mixed_exports=("mixed_float16",),
    ),
    ModelCase(
        "radial",
        "radial",
        partial(RadialFlow, (2,), num_layers=3),
        moons,
        perturb=0.5,
        replace=True,
        atol=1e-5,
        unit_interval=B_BIT,
        export={},
    ),
    # Continuous flows (FFJORD underneath): flow matching, exact trace; the export's tight tolerances keep a row's
    # value independent of its batch (the adaptive solver steps the whole batch together).
    ModelCase(
        "cnf",
        "cnf",
        partial(CNF, (2,), hidden_units=(16,), seed=0),
        moons,
        atol=1e-3,  # the solver's tolerances (1e-5) bound how well decode undoes encode
        skip={"bijector_conforms": CNF_CONFORMS},
        # No mixed-precision export: it traces the solver in six signatures (three quarters of the check's time),
        # the same export code other presets run under both policies, around a velocity network whose mixed
        # log_prob, sample and round trip this check compares eagerly; tests/test_export_presets.py exports a CNF.
        mixed_exports=(),
        unit_interval=B_BIT,
        export=dict(hidden_units=(8,), rtol=1e-7, atol=1e-7),
    ),
    ModelCase(
        "cnf-conditional",
        "cnf",
        partial(CNF, (2,), hidden_units=(16,), context_shape=(2,), seed=0),
        with_context(moons, 2),
        atol=1e-3,
        conditional=True,
        skip={"bijector_conforms": CNF_CONFORMS, "jit_compile_trains": "cnf compiles the same flow-matching step"},
    ),
    # Maximum likelihood through the solver (adjoint gradients) with Hutchinson's trace.
    ModelCase(
        "cnf-hutchinson-maximum-likelihood",
        "cnf",
        partial(CNF, (3,), hidden_units=(16,), objective="maximum_likelihood", trace="hutchinson", seed=0),
        normal_3d,
        atol=1e-3,
        skip={
            "bijector_conforms": CNF_CONFORMS,
            "jit_compile_trains": "passes, but XLA compiles the adaptive solver and its adjoint for 80 s here",
        },
    ),
    ModelCase("prelu", "prelu", partial(PReLUFlow, (2,), num_layers=3), banana, unit_interval=B_BIT, export={}),
]
