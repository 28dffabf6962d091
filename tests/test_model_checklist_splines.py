"""The model checklist (tests/model_checklist.py) over the cases of
NSF (coupling, LU mixing, autoregressive, conditional)."""

from model_checklist import GROUPS, ModelChecklist


class TestSplinesChecklist(ModelChecklist):
    presets = GROUPS["splines"]
