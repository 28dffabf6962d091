"""The model checklist (tests/model_checks.py) as a test class, run over a group of the cases of tests/model_cases.py.

Each tests/test_model_checklist_<group>.py subclasses `ModelChecklist` and names the presets it covers: xdist
(`--dist loadfile`) gives whole files to its workers, so groups of similar cost keep them busy alike, and a group's
models are freed before the next group runs. One test per behaviour, parametrised over the group's cases (ids: the
case names); a case's `skip` says where a check it leaves out is covered instead. Read-only checks share one
perturbed model per case (no step is the identity).
"""

import functools

import keras
import model_checks
import numpy as np
import pytest
from model_cases import CASES

CASE_BY_ID = {case.id: case for case in CASES}

# The fast subset (`-m "not slow"`) runs the cheap read-only checks on one case; every other check and case is
# marked slow. Checks that cost too much to run on every case run on the first case of every preset (and class:
# IAF).
FAST_CASE = "realnvp-vector"
FAST_CHECKS = ("log_prob", "sample_encode_decode", "keras_round_trip")
PER_PRESET = ("mixed_precision",)

# The groups, each run by tests/test_model_checklist_<group>.py (None: IAF, which no preset names). Every preset
# belongs to one (tests/test_model_checklist.py checks it).
GROUPS = {
    "couplings": ("nice", "realnvp"),
    "autoregressive": ("maf", None),
    "splines": ("nsf",),
    "multiscale": ("glow", "flowpp"),
    "continuous": ("cnf", "planar", "radial", "prelu"),
}


def first_case_of_each_preset() -> set[str]:
    firsts: dict[str, str] = {}
    for case in CASES:
        firsts.setdefault(case.preset or case.id, case.id)
    return set(firsts.values())


def cases_for(check: str, presets: tuple, skip_keys: tuple = ()) -> list:
    """pytest params of the cases of `presets` (None: IAF, which no preset names) that run `check`: skipped where
    the case leaves out every one of `skip_keys` (default: the check's own name), slow unless the check is in the
    fast subset."""
    skip_keys = skip_keys or (check,)

    def marks(case):
        if all(key in case.skip for key in skip_keys):
            return [pytest.mark.skip(reason="; ".join(case.skip[key] for key in skip_keys))]
        return [] if check in FAST_CHECKS and case.id == FAST_CASE else [pytest.mark.slow]

    chosen = first_case_of_each_preset() | {FAST_CASE} if check in PER_PRESET else None
    return [
        pytest.param(case, id=case.id, marks=marks(case))
        for case in CASES
        if case.preset in presets and (chosen is None or case.id in chosen)
    ]


def checks(name: str, *skip_keys: str):
    """Marks a `ModelChecklist` test as the check `name` (which cases it runs on); a case skips it where its `skip`
    names every one of `skip_keys`, names of tests/model_cases.py's CHECKS (default: `name` itself)."""

    def mark(test):
        test.check, test.skip_keys = name, skip_keys
        return test

    return mark


def sizes(model, vectors, images):
    return images if len(model.event_shape) == 3 else vectors


@functools.cache
def perturbed(case_id: str):
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


class ModelChecklist:
    """Every check of tests/model_checks.py over the cases of `presets` (a subclass names them)."""

    presets: tuple = ()

    def pytest_generate_tests(self, metafunc):
        check = getattr(metafunc.function, "check", None)
        if check is not None:
            metafunc.parametrize("case", cases_for(check, self.presets, metafunc.function.skip_keys))

    @pytest.fixture(autouse=True, scope="class")
    @classmethod
    def _free_the_group_models(cls):
        """The shared perturbed models and Keras' state go when the group is done (the next group's file may run in
        the same worker)."""
        yield
        perturbed.cache_clear()
        keras.backend.clear_session()

    @checks("trains", "every_weight_trains", "jit_compile_trains")
    def test_trains_under_xla_and_every_weight_moves(self, case):
        """One fit serves two checks, each of which a case may leave out (`skip`): it compiles with XLA
        ("jit_compile_trains"; the case's `jit_overrides` apply) and every weight trains ("every_weight_trains")."""
        xla = "jit_compile_trains" not in case.skip
        keras.utils.set_random_seed(1)
        model = case.make(**case.jit_overrides) if xla else case.make()
        data = case.data(sizes(model, 128, 64))
        model_checks.assert_every_weight_trains(
            model, data, jit_compile=xla, every_weight="every_weight_trains" not in case.skip
        )

    @checks("log_prob")
    def test_log_prob_is_one_finite_value_per_example(self, case):
        model = perturbed(case.id)
        model_checks.assert_log_prob_per_example(model, case.data(sizes(model, 32, 8), seed=2))

    @checks("sample_encode_decode")
    def test_sample_encode_decode(self, case):
        model = perturbed(case.id)
        model_checks.assert_sample_encode_decode(model, case.data(sizes(model, 32, 8), seed=3), atol=case.atol)

    @checks("keras_round_trip")
    def test_keras_round_trip(self, case, tmp_path):
        model = perturbed(case.id)
        reloaded = model_checks.assert_keras_round_trip(model, case.data(sizes(model, 32, 8), seed=4), tmp_path)
        if case.after_reload is not None:
            case.after_reload(model, reloaded)

    @pytest.fixture(params=["mixed_float16", "mixed_bfloat16"])
    def mixed_policy(self, request):
        """A mixed global dtype policy for one test (`model_checks.global_policy`)."""
        with model_checks.global_policy(request.param) as name:
            yield name

    @checks("mixed_precision")
    def test_mixed_precision_fits_evaluates_samples_saves_and_exports(self, case, mixed_policy, tmp_path):
        keras.utils.set_random_seed(3)
        export = mixed_policy in case.mixed_exports
        model_checks.assert_mixed_precision(case.make, case.data(32), mixed_policy, tmp_path, export=export)

    @checks("bijector_conforms")
    def test_whole_bijector_conforms(self, case):
        """The kit on the model's whole bijector: eager against tf.function on every case, and against XLA on one.
        XLA's part costs half the check and little coverage: the kit compares every bijector class eager against
        XLA (tests/bijectors/test_conformance.py), and the trains check compiles every case's training step."""
        model = perturbed(case.id)
        data = case.data(sizes(model, 8, 2), seed=5)
        model_checks.assert_bijector_conforms(model, data, check_xla=case.id == FAST_CASE)
