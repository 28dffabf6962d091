"""Packaging rules: tfp_flows (and the datasets folder it installs) never import keras, and installing the
project does not create a top-level `datasets` module."""

import ast
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
FORBIDDEN = ("keras", "tf_keras", "keras_models")


def _imported_modules(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def _uses_tf_keras_attribute(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return any(isinstance(n, ast.Attribute) and n.attr == "keras" for n in ast.walk(tree))


def test_tfp_flows_and_datasets_never_import_keras():
    offenders = []
    for folder in ("tfp_flows", "datasets"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for module in _imported_modules(path):
                if module.split(".")[0] in FORBIDDEN:
                    offenders.append(f"{path.relative_to(ROOT)} imports {module}")
            if _uses_tf_keras_attribute(path):
                offenders.append(f"{path.relative_to(ROOT)} uses an attribute named keras (tf.keras?)")
    assert not offenders, "\n".join(offenders)


def test_tfp_flows_imports_only_tf_tfp_numpy_at_top_level():
    allowed = {"tensorflow", "tensorflow_probability", "numpy", "tfp_flows", "tensorflow_datasets", "sklearn"}
    stdlib = set(sys.stdlib_module_names)
    offenders = []
    for path in sorted((ROOT / "tfp_flows").rglob("*.py")):
        for module in _imported_modules(path):
            top = module.split(".")[0]
            if top not in allowed | stdlib - {"tensorflow_datasets", "sklearn"} and top not in stdlib:
                offenders.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not offenders, "\n".join(offenders)


@pytest.mark.slow
def test_import_datasets_outside_the_repo_is_not_ours(tmp_path):
    code = (
        "import importlib.util, sys\n"
        "spec = importlib.util.find_spec('datasets')\n"
        "print(spec.origin if spec else 'NONE')\n"
        "import tfp_flows.datasets as d\n"
        "print(d.__file__)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    ).stdout.split("\n")
    datasets_origin, ours = out[0], out[1]
    assert datasets_origin == "NONE" or not datasets_origin.startswith(str(ROOT / "datasets")), datasets_origin
    # Our folder is reachable under its installed name, and only there.
    assert pathlib.Path(ours).name == "__init__.py"
    assert "tfp_flows" in pathlib.Path(ours).parts[-3:] or pathlib.Path(ours).parent.name == "datasets"
