"""The model checklist (tests/model_checklist.py) over the cases of
MAF, IAF and NSF (coupling, LU mixing, autoregressive, conditional)."""

from model_checklist import GROUPS, ModelChecklist


class TestAutoregressiveChecklist(ModelChecklist):
    presets = GROUPS["autoregressive"]
