"""The registry of model cases (tests/model_cases.py) is complete, and the checklist's groups
(tests/model_checklist.py, one tests/test_model_checklist_<group>.py each) run every case."""

import pathlib

import pytest
from model_cases import CASES, CHECKS
from model_checklist import GROUPS

from keras_models.flows.presets import PRESETS

TESTS = pathlib.Path(__file__).parent


def test_every_preset_has_a_case():
    covered = {case.preset for case in CASES}
    missing = sorted(set(PRESETS) - covered)
    assert not missing, f"presets without a case in tests/model_cases.py: {missing}"
    exported = {case.preset for case in CASES if case.export is not None}
    assert exported >= set(PRESETS), f"presets no case exports: {sorted(set(PRESETS) - exported)}"
    for case in CASES:
        assert set(case.skip) <= set(CHECKS), (case.id, case.skip)


@pytest.mark.slow  # builds every case's model
def test_every_case_builds_its_preset():
    for case in CASES:
        if case.preset is not None:
            assert isinstance(case.make(), PRESETS[case.preset].model), case.id


def test_every_case_is_in_one_checklist_group():
    grouped = [preset for presets in GROUPS.values() for preset in presets]
    assert len(grouped) == len(set(grouped)), f"a preset in two groups: {GROUPS}"
    ungrouped = sorted({case.id for case in CASES if case.preset not in grouped})
    assert not ungrouped, f"cases of presets in no group of tests/model_checklist.py's GROUPS: {ungrouped}"
    for group in GROUPS:
        path = TESTS / f"test_model_checklist_{group}.py"
        assert path.is_file(), f"group {group!r} has no {path.name}"
        assert f'GROUPS["{group}"]' in path.read_text(encoding="utf-8"), f"{path.name} does not run GROUPS[{group!r}]"
