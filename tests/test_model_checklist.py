"""The model checklist (tests/model_checks.py) over every case of the registry tests/model_cases.py.

One test per behaviour, parametrised over the cases (ids: the case names); a case's `skip` says where a check it
leaves out is covered instead. Read-only checks share one perturbed model per case (no step is the identity).
"""

import functools

import keras
import model_checks
import numpy as np
import pytest
from model_cases import CASES, CHECKS

from keras_models.flows.presets import PRESETS

CASE_BY_ID = {case.id: case for case in CASES}


# The fast subset (`-m "not slow"`) runs the cheap read-only checks on one case; every other check and case is
# marked slow. Checks that cost too much to run on every case run on the first case of every preset (and class:
# IAF).
FAST_CASE = "realnvp-vector"
FAST_CHECKS = ("log_prob", "sample_encode_decode", "keras_round_trip")
PER_PRESET = ("mixed_precision",)


def _first_case_of_each_preset():
    firsts = {}
    for case in CASES:
        firsts.setdefault(case.preset or case.id, case.id)
    return set(firsts.values())


def cases_for(check):
    def marks(case):
        if check in case.skip:
            return [pytest.mark.skip(reason=case.skip[check])]
        return [] if check in FAST_CHECKS and case.id == FAST_CASE else [pytest.mark.slow]

    chosen = _first_case_of_each_preset() | {FAST_CASE} if check in PER_PRESET else None
    return [pytest.param(case, id=case.id, marks=marks(case)) for case in CASES if chosen is None or case.id in chosen]


def sizes(model, vectors, images):
    return images if len(model.event_shape) == 3 else vectors


@functools.cache
def perturbed(case_id):
    """The case's model, ActNorm initialised from a real batch, then every weight moved off its initial value."""
    case = CASE_BY_ID[case_id]
    keras.utils.set_random_seed(0)
    model = case.make()
    if model._layers_needing_init():
        data = case.data(64, seed=1)
        model.initialize_from_data(*data) if isinstance(data, tuple) else model.initialize_from_data(data)
    rng = np.random.default_rng(1)
    for weight in model.trainable_weights:
        noise = rng.normal(scale=case.perturb, size=weight.shape).astype(weight.dtype)
        weight.assign(noise if case.replace else np.asarray(weight) + noise)
    return model


@pytest.mark.slow  # builds every case's model
def test_every_preset_has_a_case():
    covered = {case.preset for case in CASES}
    missing = sorted(set(PRESETS) - covered)
    assert not missing, f"presets without a case in tests/model_cases.py: {missing}"
    exported = {case.preset for case in CASES if case.export is not None}
    assert exported >= set(PRESETS), f"presets no case exports: {sorted(set(PRESETS) - exported)}"
    for case in CASES:
        assert set(case.skip) <= set(CHECKS), (case.id, case.skip)
        if case.preset is not None:
            assert isinstance(perturbed(case.id), PRESETS[case.preset].model), case.id


@pytest.mark.parametrize("case", cases_for("every_weight_trains"))
def test_every_weight_trains_and_none_hides_in_the_bijector(case):
    keras.utils.set_random_seed(1)
    model = case.make()
    model_checks.assert_every_weight_trains(model, case.data(sizes(model, 128, 64)))


@pytest.mark.parametrize("case", cases_for("log_prob"))
def test_log_prob_is_one_finite_value_per_example(case):
    model = perturbed(case.id)
    model_checks.assert_log_prob_per_example(model, case.data(sizes(model, 32, 8), seed=2))


@pytest.mark.parametrize("case", cases_for("sample_encode_decode"))
def test_sample_encode_decode(case):
    model = perturbed(case.id)
    model_checks.assert_sample_encode_decode(model, case.data(sizes(model, 32, 8), seed=3), atol=case.atol)


@pytest.mark.parametrize("case", cases_for("keras_round_trip"))
def test_keras_round_trip(case, tmp_path):
    model = perturbed(case.id)
    reloaded = model_checks.assert_keras_round_trip(model, case.data(sizes(model, 32, 8), seed=4), tmp_path)
    if case.after_reload is not None:
        case.after_reload(model, reloaded)


@pytest.mark.parametrize("case", cases_for("jit_compile_trains"))
def test_jit_compile_trains(case):
    keras.utils.set_random_seed(2)
    model = case.make(**case.jit_overrides)
    model_checks.assert_jit_compile_trains(model, case.data(sizes(model, 128, 64)))


@pytest.fixture(params=["mixed_float16", "mixed_bfloat16"])
def mixed_policy(request):
    """A mixed global dtype policy for one test, and the previous policy back afterwards (other tests build
    their models under it)."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(request.param)
    try:
        yield request.param
    finally:
        keras.mixed_precision.set_global_policy(previous)


@pytest.mark.parametrize("case", cases_for("mixed_precision"))
def test_mixed_precision_fits_evaluates_samples_saves_and_exports(case, mixed_policy, tmp_path):
    keras.utils.set_random_seed(3)
    model_checks.assert_mixed_precision(case.make, case.data(32), mixed_policy, tmp_path)


@pytest.mark.parametrize("case", cases_for("bijector_conforms"))
def test_whole_bijector_conforms(case):
    model = perturbed(case.id)
    model_checks.assert_bijector_conforms(model, case.data(sizes(model, 8, 2), seed=5))
