"""The floor plan holds: every module of afos imports only its own layer and the layers below it (lazy
imports inside functions included), no module grows past ~400 lines, every package says in its docstring
what it owns and what it may import, and only the storage spells the names of a run folder's files."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

AFOS = Path(__file__).resolve().parents[1] / "afos"

#: The layers, bottom first; a module may import its own layer and those before it.
LAYERS = [
    {"errors", "config", "records", "stats", "text"},
    {"space"},
    {"activation"},
    {"training"},
    {"execution"},
    {"storage", "evaluation"},
    {"search"},
    {"grid"},
    {"reporting"},
    {"runs"},
    {"app"},
    {"cli", "__main__"},
]
LEVEL = {name: level for level, names in enumerate(LAYERS) for name in names}
MAX_MODULE_LINES = 420


def _modules() -> list[Path]:
    return sorted(p for p in AFOS.rglob("*.py") if p.relative_to(AFOS).parts[0] != "__init__.py")


def _top(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "afos" and len(parts) > 1 else None


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(AFOS)))
def test_a_module_imports_no_layer_above_its_own(path: Path) -> None:
    own = path.relative_to(AFOS).parts[0].removesuffix(".py")
    assert own in LEVEL, f"{own} has no layer: add it to LAYERS"
    above = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            targets = [_top(node.module)] if _top(node.module) else \
                [alias.name for alias in node.names] if node.module == "afos" else []
        elif isinstance(node, ast.Import):
            targets = [_top(alias.name) for alias in node.names]
        else:
            continue
        above |= {t for t in targets if t in LEVEL and LEVEL[t] > LEVEL[own]}
    assert not above, f"{path.relative_to(AFOS)} imports from a layer above its own: {sorted(above)}"


def test_modules_stay_small() -> None:
    """Modules stay under the limit; a class's size is guidance (docs/architecture.md), not a number that
    would make code denser to pass."""
    large = [f"{path.relative_to(AFOS)}: {path.read_text().count(chr(10))} lines" for path in _modules()
             if path.read_text().count("\n") > MAX_MODULE_LINES]
    assert not large, large


def test_every_package_says_what_it_owns_and_may_import() -> None:
    silent = []
    for init in sorted(AFOS.glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        if len(doc) < 150 or "import" not in doc.lower():
            silent.append(init.parent.name)
    assert not silent, f"packages without a docstring saying what they own and import: {silent}"


def _run_file_names() -> set[str]:
    from afos.storage.layout import DATABASE, RunFiles

    files = RunFiles(Path("run"))
    named = {getattr(files, name) for name in dir(RunFiles) if isinstance(getattr(RunFiles, name), property)}
    return {DATABASE, "run.json", "afos.lock", files.log("search").name} | {path.name for path in named}


def test_only_the_storage_spells_a_run_folders_file_names() -> None:
    """A file of a run folder is named once (afos.storage.layout.RunFiles); docstrings may mention it."""
    names = _run_file_names()
    spelled = []
    for path in _modules():
        if path.relative_to(AFOS).parts[0] == "storage":
            continue
        tree = ast.parse(path.read_text())
        docstrings = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
        spelled += [f"{path.relative_to(AFOS)}:{node.lineno}: {node.value}" for node in ast.walk(tree)
                    if isinstance(node, ast.Constant) and node.value in names and id(node) not in docstrings]
    assert not spelled, spelled
