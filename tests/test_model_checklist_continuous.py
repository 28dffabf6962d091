"""The model checklist (tests/model_checklist.py) over the cases of
CNF (flow matching, conditional, Hutchinson maximum likelihood), planar, radial and PReLU flows."""

from model_checklist import GROUPS, ModelChecklist


class TestContinuousChecklist(ModelChecklist):
    presets = GROUPS["continuous"]
