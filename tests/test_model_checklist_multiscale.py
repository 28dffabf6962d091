"""The model checklist (tests/model_checklist.py) over the cases of
Glow and Flow++ (vector and image, conditional Glow)."""

from model_checklist import GROUPS, ModelChecklist


class TestMultiscaleChecklist(ModelChecklist):
    presets = GROUPS["multiscale"]
