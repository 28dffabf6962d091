"""The docs site's sources hold together, checked without building it (no MkDocs needed, no network).

`mkdocs build --strict` is the full check (it renders every page and the API reference and fails on a broken
link or anchor); these tests catch in a second what breaks most often:
- every page `mkdocs.yml` names exists, and every page in docs/ is named (MkDocs would publish it unlisted);
- every file a page includes (`--8<-- "path"`) or links to relatively, images included, exists;
- every `DESIGN.md` or `docs/...` reference in the code, tests, benchmarks and top-level Markdown resolves to a
  file in the repository, and an `#anchor` after it to a heading of that page;
- every public name of tfp_flows, tfp_flows.testing, tfp_flows.datasets and keras_models (their `__all__`) has
  an entry in the API reference (a `::: name` directive, or its module's directive with members).
"""

import ast
import os
import pathlib
import re
import unicodedata

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SKIPPED_FOLDERS = {".venv", ".git", ".worktrees", "build", "site", "runs", "saved_models", "__pycache__"}

# `docs/<path>` or `DESIGN.md`, optionally followed by `#anchor`, not inside a URL or a longer path.
CODE_REFERENCE = re.compile(r"(?<![\w/.-])(DESIGN\.md|docs/[\w/-]+(?:\.[a-z]+)?)(#[\w-]+)?")
SNIPPET = re.compile(r'^--8<-- "([^"]+)"\s*$', flags=re.M)
MARKDOWN_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
DIRECTIVE = re.compile(r"^::: ([\w.]+)\n((?:[ \t]+.*\n?)*)", flags=re.M)


def _nav_pages(entry):
    if isinstance(entry, str):
        yield entry
    elif isinstance(entry, list):
        for item in entry:
            yield from _nav_pages(item)
    elif isinstance(entry, dict):
        for value in entry.values():
            yield from _nav_pages(value)


def _config():
    return yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))


def _slug(heading):
    """Python-Markdown's toc slug (MkDocs' default): ASCII, word characters and hyphens, lower case."""
    text = unicodedata.normalize("NFKD", heading).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def _without_code_blocks(text):
    return re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)


def _expanded(markdown_path):
    """The page's text with its `--8<--` includes in place (whole files: the line ranges add no headings)."""
    text = markdown_path.read_text(encoding="utf-8")
    return SNIPPET.sub(lambda m: (ROOT / re.sub(r"(:\d*)+$", "", m.group(1))).read_text(encoding="utf-8"), text)


def _anchors(markdown_path):
    text = _without_code_blocks(_expanded(markdown_path))
    return {_slug(line.lstrip("#").strip()) for line in text.splitlines() if re.match(r"#{1,6} ", line)}


def _source_files(suffixes):
    """Files outside docs/ with one of `suffixes`, never descending into virtual environments or build output."""
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = sorted(name for name in subfolders if name not in SKIPPED_FOLDERS and name != "docs")
        for name in sorted(files):
            if pathlib.Path(name).suffix in suffixes:
                yield pathlib.Path(folder) / name


def test_every_page_in_the_nav_exists_and_every_page_is_in_the_nav():
    pages = list(_nav_pages(_config()["nav"]))
    assert pages, "mkdocs.yml has no nav"
    missing = [page for page in pages if not (DOCS / page).is_file()]
    assert not missing, f"mkdocs.yml names pages that docs/ lacks: {missing}"
    unlisted = sorted(
        str(path.relative_to(DOCS)) for path in DOCS.rglob("*.md") if str(path.relative_to(DOCS)) not in pages
    )
    assert not unlisted, f"pages in docs/ that mkdocs.yml's nav leaves out: {unlisted}"


def test_the_griffe_extensions_mkdocs_loads_exist():
    handler = _config()["plugins"][1]["mkdocstrings"]["handlers"]["python"]
    for extension in handler["options"].get("extensions", []):
        assert (ROOT / extension.split(":")[0]).is_file(), f"mkdocs.yml loads a missing Griffe extension {extension}"


def test_every_included_file_and_relative_link_in_the_docs_exists():
    broken = []
    for page in sorted(DOCS.rglob("*.md")):
        text = page.read_text(encoding="utf-8")
        for included in SNIPPET.findall(text):
            path = re.sub(r"(:\d*)+$", "", included)  # "file.md:3:1000": lines 3 to 1000 of file.md
            if not (ROOT / path).is_file():
                broken.append(f"{page.relative_to(ROOT)} includes {included}")
        for target in MARKDOWN_LINK.findall(_without_code_blocks(text)):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue  # a URL, or an anchor on the same page (mkdocs build --strict checks those)
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve()
            if not resolved.exists():
                broken.append(f"{page.relative_to(ROOT)} links to {target}")
            elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
                broken.append(f"{page.relative_to(ROOT)} links to {target}: no such heading")
    assert not broken, "\n".join(broken)


def test_every_design_and_docs_reference_in_the_code_resolves():
    broken, found = [], 0
    for path in _source_files({".py", ".md"}):
        if path == pathlib.Path(__file__).resolve():
            continue  # this file names the patterns it looks for
        for line_number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            for reference, anchor in CODE_REFERENCE.findall(line):
                found += 1
                where = f"{path.relative_to(ROOT)}:{line_number}: {reference}{anchor}"
                target = ROOT / reference
                if not target.exists():
                    broken.append(f"{where}: no such file in the repository")
                elif anchor and anchor[1:] not in _anchors(target):
                    broken.append(f"{where}: {reference} has no heading with that anchor")
    assert found, "no docs/ reference found: the pattern no longer matches how the code cites the docs"
    assert not broken, "\n".join(broken)


def _all_names(module_path):
    tree = ast.parse(module_path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return set(ast.literal_eval(node.value))
    return None


def _module_file(identifier):
    """The source file of a documented module (`datasets.*` is the datasets/ folder: tfp_flows.datasets)."""
    base = ROOT.joinpath(*identifier.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _documented_names():
    names = set()
    for page in sorted((DOCS / "api").glob("*.md")):
        for identifier, options in DIRECTIVE.findall(page.read_text(encoding="utf-8")):
            names.add(identifier.rsplit(".", 1)[-1])
            module = _module_file(identifier)
            if module is not None and "members: false" not in options:
                names |= _all_names(module) or set()
    return names


@pytest.mark.parametrize(
    "package", ["tfp_flows/__init__.py", "tfp_flows/testing.py", "datasets/__init__.py", "keras_models/__init__.py"]
)
def test_every_public_name_is_in_the_api_reference(package):
    public = _all_names(ROOT / package)
    assert public, f"{package} has no __all__"
    missing = sorted(public - _documented_names())
    assert not missing, f"public names of {package} without an entry in docs/api/: {missing}"
