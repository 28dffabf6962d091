"""The model checklist (tests/model_checklist.py) over the cases of
NICE and RealNVP (vector, image, conditional, conditional base, context network)."""

from model_checklist import GROUPS, ModelChecklist


class TestCouplingsChecklist(ModelChecklist):
    presets = GROUPS["couplings"]
