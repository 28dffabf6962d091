"""The model checklist (tests/model_checklist.py) over the cases of
MAF (unconditional and conditional) and IAF."""

from model_checklist import GROUPS, ModelChecklist


class TestAutoregressiveChecklist(ModelChecklist):
    presets = GROUPS["autoregressive"]
