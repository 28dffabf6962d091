"""Every bijector in the registry passes the shared conformance kit (tfp_flows.testing); the ODE bijectors
(`BijectorCase.ode`) its ODE mode, in tests/bijectors/test_conformance_ode.py."""

import inspect

import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from bijector_cases import CASES

import tfp_flows
from tfp_flows.testing import assert_bijector_invariants, assert_dtype_agreement

CASE_IDS = sorted(CASES)
KIT_CASE_IDS = [case_id for case_id in CASE_IDS if not CASES[case_id].ode]
# The fast subset (`-m "not slow"`) checks each bijector at one setting: its first in CASE_IDS' order that is not
# listed here (settings that take more than about a second); every other setting is marked slow.
SLOW_SETTINGS = {
    "test_bijector_invariants": {
        "AdditiveCoupling-channel",
        "AffineCoupling-channel-tanh-limit1",
        "ChannelSlice-image-affine",
        "InvertibleConv1x1-C2-image-rotation",
        "LogisticMixtureCDF-K1-wide",
        "LogisticMixtureCoupling-channel-K2",
        "LogisticMixtureCoupling-checkerboard-K3",  # 14 s; half-K4, 9 s, is the fast one
        "MaskedAutoregressiveSpline-K3-B3-batch-3d",
        "MaskedAutoregressiveSpline-K5-B2",  # tests/bijectors/test_autoregressive_spline.py is in the fast subset
        "OnePassMaskedAutoregressiveFlow-shift-log-scale",
        "Planar-D2-contracting",
        "Radial-D1",
        "RationalQuadraticCoupling-checkerboard-K2-B2",
        "RationalQuadraticCoupling-half-K8-B3",  # 19 s; half-odd-parity1-block-K4-B2, 13 s, is the fast one
    },
    "test_float64_agrees_with_float32": {
        "LogisticMixtureCDF-K1-wide",
        "LogisticMixtureCoupling-channel-K2",
        "MaskedAutoregressiveSpline-K3-B3-batch-3d",
        "MaskedAutoregressiveSpline-K5-B2",
        "OnePassMaskedAutoregressiveFlow-shift-log-scale",
        "Planar-D2-contracting",
        "Radial-D1",
        "RationalQuadraticCoupling-checkerboard-K2-B2",
    },
}


def case_params(test):
    """Every case id but the ODE cases, marked slow unless it is its bijector's first setting not in
    SLOW_SETTINGS[test]."""
    covered, params = set(), []
    for case_id in KIT_CASE_IDS:
        bijector = case_id.split("-")[0]
        fast = bijector not in covered and case_id not in SLOW_SETTINGS[test]
        if fast:
            covered.add(bijector)
        params.append(pytest.param(case_id, id=case_id, marks=[] if fast else [pytest.mark.slow]))
    return params


@pytest.mark.parametrize("case_id", case_params("test_bijector_invariants"))
def test_bijector_invariants(case_id):
    case = CASES[case_id]
    bijector = case.make(tf.float32)
    assert_bijector_invariants(
        bijector,
        tf.constant(case.x, tf.float32),
        case.event_ndims,
        rtol=case.rtol,
        atol=case.atol,
        edge_inputs=[tf.constant(e, tf.float32) for e in case.edge_inputs],
        check_xla=case.check_xla,
        name=case_id,
    )


@pytest.mark.parametrize("case_id", case_params("test_float64_agrees_with_float32"))
def test_float64_agrees_with_float32(case_id):
    case = CASES[case_id]
    bijector64 = case.make(tf.float64)
    # float64 is the reference: its own invariants hold to tight tolerances.
    assert_bijector_invariants(
        bijector64,
        tf.constant(case.x, tf.float64),
        case.event_ndims,
        rtol=1e-8,
        atol=1e-8,
        check_xla=False,
        name=f"{case_id} (float64)",
    )
    assert_dtype_agreement(case.make, case.x, case.event_ndims, rtol=case.rtol, atol=case.atol, name=case_id)


def _exported_bijector_classes():
    return [obj for obj in vars(tfp_flows).values() if inspect.isclass(obj) and issubclass(obj, tfp.bijectors.Bijector)]


# Checked elsewhere, with the reason (none today: ODE bijectors run the kit's ODE mode).
KIT_EXEMPT: dict[str, str] = {}


def test_every_exported_bijector_is_in_the_registry():
    covered = {type(CASES[i].make(tf.float32)) for i in CASE_IDS}
    missing = sorted(
        cls.__name__ for cls in _exported_bijector_classes() if cls not in covered and cls.__name__ not in KIT_EXEMPT
    )
    assert not missing, f"bijectors without a conformance case: {missing}"


def test_every_exported_bijector_has_several_parameter_settings():
    counts = {}
    for i in CASE_IDS:
        cls = type(CASES[i].make(tf.float32))
        counts[cls.__name__] = counts.get(cls.__name__, 0) + 1
    thin = sorted(name for name, n in counts.items() if n < 2)
    assert not thin, f"bijectors with a single conformance case (want >= 2 parameter settings): {thin}"
