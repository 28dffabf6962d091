"""The registry of bijector cases that drives the conformance tests (one entry per parameter setting).

Each group module (`elementwise`, `couplings`, `mixtures`, ...) defines `CASES`, a dict from a readable id
(`"PReLU-alpha_0.2"`) to a `BijectorCase`; this package merges them. Adding a bijector to the conformance run
costs one entry.
"""

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class BijectorCase:
    """One bijector with one parameter setting, and where to test it.

    make: `make(dtype) -> Bijector`, parameters built as `tf.Variable`s of that dtype so gradients reach them.
      It must be deterministic (draw random parameter values once, at import), since the float32 and float64
      builds are compared.
    x: points in the forward domain, as a NumPy array (cast to the dtype under test).
    event_ndims: the event rank the invariants are taken over.
    edge_inputs: zeros, large magnitudes, tails: must stay finite and round-trip.
    rtol, atol: float32 tolerances.
    check_xla: also compile with XLA.
    ode: the bijector solves an ODE: the kit's ODE mode checks it (`assert_ode_bijector_invariants`, tolerances
      from the solver's; `rtol` and `atol` unused).
    """

    make: Callable[[tf.DType], object]
    x: np.ndarray
    event_ndims: int
    edge_inputs: Sequence[np.ndarray] = ()
    rtol: float = 1e-4
    atol: float = 1e-4
    check_xla: bool = True
    ode: bool = False


def _merge():
    from bijector_cases import autoregressive, continuous, couplings, elementwise, mixtures, splines, structural

    merged = {}
    for module in (elementwise, couplings, mixtures, structural, autoregressive, splines, continuous):
        for case_id, case in module.CASES.items():
            if case_id in merged:
                raise ValueError(f"duplicate bijector case id {case_id!r}")
            merged[case_id] = case
    return merged


CASES = _merge()
