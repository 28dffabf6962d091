"""Every ODE bijector of the registry (`BijectorCase.ode`: tfp_flows.ContinuousFlow) passes the kit's ODE mode
(`assert_ode_bijector_invariants`, at tolerances that follow the solver's).

A file of its own: a case spends one to two minutes of CPU building and optimising the solver's graphs (values,
autodiff Jacobian, adjoint gradients, XLA), and xdist (`--dist loadfile`) runs it beside the rest of the
conformance run. All slow: tests/test_cnf.py covers CNF in the fast subset.
"""

import pytest
import tensorflow as tf
from bijector_cases import CASES

from tfp_flows.testing import assert_dtype_agreement, assert_ode_bijector_invariants, ode_tolerances

ODE_CASE_IDS = sorted(case_id for case_id, case in CASES.items() if case.ode)

# float64 against float32 is a property of the solver and its dtype handling, shared by every trace: the exact
# trace's case checks it; the Hutchinson case's float32 invariants run in test_ode_bijector_invariants (its float64
# build would spend two more minutes on the same solver graphs).
FLOAT64_COVERED_BY = {"ContinuousFlow-hutchinson-elementwise": "ContinuousFlow-exact-mixing"}


def test_every_ode_case_is_here_and_one_checks_float64():
    assert ODE_CASE_IDS, "no ODE case in the registry (tests/bijector_cases/continuous.py)"
    for case_id, reference in FLOAT64_COVERED_BY.items():
        assert case_id in ODE_CASE_IDS and reference in ODE_CASE_IDS and reference not in FLOAT64_COVERED_BY


@pytest.mark.slow
@pytest.mark.parametrize("case_id", ODE_CASE_IDS)
def test_ode_bijector_invariants(case_id):
    case = CASES[case_id]
    assert_ode_bijector_invariants(
        case.make(tf.float32),
        tf.constant(case.x, tf.float32),
        case.event_ndims,
        edge_inputs=[tf.constant(e, tf.float32) for e in case.edge_inputs],
        check_xla=case.check_xla,
        name=case_id,
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "case_id",
    [
        pytest.param(
            case_id,
            marks=[pytest.mark.skip(reason=f"{FLOAT64_COVERED_BY[case_id]} checks float64 through the same solver")]
            if case_id in FLOAT64_COVERED_BY
            else [],
        )
        for case_id in ODE_CASE_IDS
    ],
)
def test_ode_float64_agrees_with_float32(case_id):
    """The float64 build solves at tighter tolerances and passes the ODE mode; float32 agrees with it to float32's
    solver tolerances."""
    case = CASES[case_id]
    assert_ode_bijector_invariants(
        case.make(tf.float64),
        tf.constant(case.x, tf.float64),
        case.event_ndims,
        check_xla=False,
        name=f"{case_id} (float64)",
    )
    rtol, atol = ode_tolerances(case.make(tf.float32))
    assert_dtype_agreement(case.make, case.x, case.event_ndims, rtol=rtol, atol=atol, name=case_id)
