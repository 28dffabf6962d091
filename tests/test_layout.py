"""keras_models' imports run one way: core <- layers <- flows <- train -> serving -> core, with cli.py on top.

Read from the source (every import statement, also those inside functions), so a cycle papered over with a
function-level import fails here as much as a module-level one:
- each folder imports only the folders below it (`ALLOWED`): serving never imports train, layers never import
  flows, core imports nothing of keras_models;
- no module imports a private (`_name`) helper of another module;
- the module-level imports inside keras_models form no cycle;
- tfp_flows imports neither keras nor keras_models.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent

# folder -> the folders its modules may import ("_backend" selects Keras' TensorFlow backend: anyone may).
ALLOWED = {
    "core": {"core"},
    "layers.networks": {"core", "layers.networks"},
    "layers": {"core", "layers", "layers.networks"},
    "flows": {"core", "layers", "layers.networks", "flows"},
    "serving": {"core", "serving"},
    "train": {"core", "flows", "serving", "train"},
    "cli": {"core", "flows", "serving", "train"},
    "api": {"core", "layers", "flows"},  # keras_models/__init__.py: the public names
}


def _modules(package):
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules("keras_models")


def _folder(module):
    """The layer a keras_models module belongs to (see ALLOWED)."""
    parts = module.split(".")[1:]
    if not parts:
        return "api"
    if parts[0] in ("cli", "_backend"):
        return parts[0]
    if parts[:2] == ["layers", "networks"]:
        return "layers.networks"
    return parts[0]


def _imports(path, top_level_only=False):
    """(imported module, imported name or None, line) for every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                if submodule in MODULES:
                    yield submodule, None, node.lineno
                else:
                    yield node.module, alias.name, node.lineno


def test_every_folder_imports_only_the_folders_below_it():
    upward = []
    for module, path in MODULES.items():
        folder = _folder(module)
        for target, _, line in _imports(path):
            if target.startswith("keras_models") and target in MODULES:
                target_folder = _folder(target)
                if target_folder != "_backend" and target_folder not in ALLOWED.get(folder, set()):
                    upward.append(f"{path.relative_to(ROOT)}:{line} ({folder}) imports {target} ({target_folder})")
    assert not upward, "imports against the layering:\n" + "\n".join(upward)


def _is_module_file(module, name):
    """Whether `module.name` is a file of this repository (a package's private module, fine to import)."""
    parts = module.split(".")
    folder = ROOT.joinpath("datasets", *parts[2:]) if parts[:2] == ["tfp_flows", "datasets"] else ROOT.joinpath(*parts)
    return (folder / f"{name}.py").is_file()


@pytest.mark.parametrize("package", ["keras_models", "tfp_flows", "datasets"])
def test_no_module_imports_a_private_helper_of_another(package):
    private = [
        f"{path.relative_to(ROOT)}:{line} imports {target}.{name}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for target, name, line in _imports(path)
        if name
        and name.startswith("_")
        and not name.startswith("__")
        and target.split(".")[0] in ("keras_models", "tfp_flows")
        and not _is_module_file(target, name)
    ]
    assert not private, "private helpers used across modules:\n" + "\n".join(private)


def test_module_level_imports_form_no_cycle():
    graph = {
        module: {
            target
            for target, _, _ in _imports(path, top_level_only=True)
            if target in MODULES
            and target != module
            and not module.startswith(target + ".")
            and target != "keras_models"
        }
        for module, path in MODULES.items()
    }
    state, cycles = {}, []

    def visit(module, stack):
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                cycles.append(" -> ".join(stack[stack.index(target) :] + [target]))
            elif target not in state:
                visit(target, stack + [target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_tfp_flows_imports_neither_keras_nor_keras_models():
    bad = [
        f"{path.relative_to(ROOT)}:{line} imports {target}"
        for path in sorted((ROOT / "tfp_flows").rglob("*.py"))
        for target, _, line in _imports(path)
        if target.split(".")[0] in ("keras", "tf_keras", "keras_models")
    ]
    assert not bad, "\n".join(bad)


def test_keras_models_exports_every_preset_by_name():
    """`keras_models.__all__` is written out (IDEs and type checkers read it); it must name every preset."""
    import keras_models
    from keras_models.flows.presets import PRESETS

    missing = {entry.model.__name__ for entry in PRESETS.values()} - set(keras_models.__all__)
    assert not missing, f"keras_models.__all__ lacks the presets {sorted(missing)}"
    assert all(getattr(keras_models, name) is not None for name in keras_models.__all__)
