"""Write the parts of docs/ that restate the code: config keys, file columns, the database schema, the
vocabularies, the exit codes and the public API. Hand-written prose surrounds each generated block, which
sits between two markers::

    <!-- BEGIN GENERATED: name -->
    ...
    <!-- END GENERATED: name -->

Usage: ``python scripts/gen_docs.py`` rewrites the blocks in place; ``--check`` only compares and exits 1
naming every stale block (the test suite runs the check, so the docs cannot drift from the code).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import MISSING, fields
from enum import Enum
from pathlib import Path
from typing import Any

from afos.records.settings import ExecutorKind, ExportFormat, FitnessMeasure, Scope, Strategy, SurrogateKind

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
sys.path.insert(0, str(ROOT))  # the layer rule lives in tests/test_layers.py
_BLOCK = re.compile(r"(<!-- BEGIN GENERATED: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- END GENERATED: (?P=name) -->)",
                    re.S)


def _default(field: Any) -> str:
    if field.default is not MISSING:
        value = field.default
    elif field.default_factory is not MISSING:
        value = field.default_factory()
    else:
        return "(required)"
    if hasattr(value, "to_dict"):
        return "(table)"
    return "unset" if value is None else f"`{_toml(value)}`"


def _toml(value: Any) -> str:
    """A default as it would be written in a TOML config."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _keys_table(config: type, rules: dict[str, Any]) -> str:
    rows = ["| key | default | allowed values |", "|---|---|---|"]
    for field in fields(config):
        if field.name in rules:
            rows.append(f"| `{field.name}` | {_default(field)} | {rules[field.name][1]} |")
    return "\n".join(rows)


def search_keys() -> str:
    from afos.search.config import RULES, SearchConfig

    return _keys_table(SearchConfig, RULES)


def train_keys() -> str:
    from afos.training.config import RULES, TrainConfig

    return _keys_table(TrainConfig, RULES)


def _columns(columns: Iterable[str]) -> str:
    return ", ".join(f"`{c}`" for c in columns)


def hall_of_fame_columns() -> str:
    from afos.reporting.tables import HOF_COLUMNS

    return _columns(HOF_COLUMNS)


def generations_columns() -> str:
    from afos.reporting.tables import GENERATION_COLUMNS

    return _columns(GENERATION_COLUMNS)


def finalists_columns() -> str:
    from afos.search.confirmation import FINALIST_COLUMNS

    return _columns(FINALIST_COLUMNS)


def grid_run_columns() -> str:
    from afos.reporting.tables import RUN_COLUMNS

    return _columns(RUN_COLUMNS)


def grid_cell_columns() -> str:
    from afos.reporting.tables import CELL_COLUMNS

    return _columns(CELL_COLUMNS)


def schema() -> str:
    from afos.storage.schema import SCHEMA, SCHEMA_VERSION

    statements = ";\n".join(s.strip() for s in SCHEMA)
    return f"Schema version {SCHEMA_VERSION} (`PRAGMA user_version`):\n\n```sql\n{statements};\n```"


def vocabularies() -> str:
    from afos.records.evaluation import Origin, Phase, Status
    from afos.records.runs import MetaKey, Role, RunKind, RunStatus, Verdict
    from afos.records.search import CandidateStatus, MadeBy

    enums: list[type[Enum]] = [Status, Phase, Origin, CandidateStatus, MadeBy, RunKind, RunStatus, MetaKey, Role, Verdict,
                               FitnessMeasure, Strategy, SurrogateKind, Scope, ExecutorKind, ExportFormat]
    rows = ["| vocabulary | values | meaning |", "|---|---|---|"]
    for enum in enums:
        doc = " ".join((enum.__doc__ or "").split())
        rows.append(f"| `{enum.__name__}` | {', '.join(f'`{m.value}`' for m in enum)} | {doc} |")
    return "\n".join(rows)


def exit_codes() -> str:
    from afos.errors import ExitCode

    rows = ["| exit code | meaning |", "|---:|---|"]
    rows += [f"| {int(code)} | {code.description} |" for code in ExitCode]
    return "\n".join(rows)


def commands() -> str:
    import click

    from afos.cli import cli

    rows = ["| command | what it does |", "|---|---|"]
    for name, command in sorted(cli.commands.items()):
        context = click.Context(command, info_name=name)
        usage = " ".join(command.collect_usage_pieces(context))
        rows.append(f"| `afos {name} {usage}` | {command.get_short_help_str(limit=300)} |")
    return "\n".join(rows)


def packages() -> str:
    """The layers of tests/test_layers.py (the rule the test enforces), each package's docstring headline."""
    import ast

    from tests.test_layers import LAYERS

    afos_dir = DOCS.parent / "afos"
    rows = ["| layer | package | what it owns |", "|---:|---|---|"]
    for level, names in enumerate(LAYERS):
        for name in sorted(names - {"__main__"}):
            path = afos_dir / name / "__init__.py"
            path = path if path.exists() else afos_dir / f"{name}.py"
            doc = ast.get_docstring(ast.parse(path.read_text())) or ""
            headline = " ".join(doc.split("\n\n")[0].split()).replace("``", "`")
            kind = "/" if path.name == "__init__.py" else ".py"
            rows.append(f"| {level} | `afos/{name}{kind}` | {headline} |")
    return "\n".join(rows)


def public_api() -> str:
    import afos

    return _columns(name for name in afos.__all__)


def api_routes() -> str:
    from afos.app.api import ROUTES

    rows = ["| route | what it answers |", "|---|---|"]
    rows += [f"| `GET {path}` | {' '.join((route.__doc__ or '').split()).replace('``', '`')} |" for path, route in ROUTES]
    return "\n".join(rows)


def datasets() -> str:
    from afos.training.data.registry import DATASET_SPECS, Loader

    where = {Loader.GENERATED: "generated here", Loader.BUNDLED: "bundled with scikit-learn",
             Loader.FILES: "files (torchvision layout), downloaded if absent", Loader.OWN: "your own data"}
    rows = ["| dataset | comes from | default model | augmentation (`augment = true`) | test split | also spelled |",
            "|---|---|---|---|---|---|"]
    for spec in DATASET_SPECS.values():
        augment = " and ".join(name for name, on in (("crop", spec.crop), ("flip", spec.flip)) if on) or "none"
        test = ("official" if spec.source else "`DIR/test/` if present, else a fixed 20 %" if spec.name == "folder"
                else "a fixed 20 % (the same for every seed)")
        rows.append(f"| `{spec.name}` | {where[spec.loader]} | `{spec.default_model}` | {augment} | {test} | "
                    f"{', '.join(f'`{a}`' for a in spec.aliases) or '-'} |")
    return "\n".join(rows)


GENERATORS: dict[str, Callable[[], str]] = {
    "search-keys": search_keys,
    "train-keys": train_keys,
    "hall-of-fame-columns": hall_of_fame_columns,
    "generations-columns": generations_columns,
    "finalists-columns": finalists_columns,
    "grid-run-columns": grid_run_columns,
    "grid-cell-columns": grid_cell_columns,
    "schema": schema,
    "vocabularies": vocabularies,
    "exit-codes": exit_codes,
    "commands": commands,
    "packages": packages,
    "public-api": public_api,
    "api-routes": api_routes,
    "datasets": datasets,
}


def generated(text: str) -> tuple[str, list[str]]:
    """``text`` with every generated block rewritten, and the names of the blocks that changed."""
    changed: list[str] = []

    def rewrite(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in GENERATORS:
            raise SystemExit(f"unknown generated block {name!r}; known: {', '.join(sorted(GENERATORS))}")
        body = GENERATORS[name]().rstrip("\n") + "\n"
        if body != match["body"]:
            changed.append(name)
        return match.group(1) + body + match.group(4)

    return _BLOCK.sub(rewrite, text), changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale blocks (exit 1 if any)")
    args = parser.parse_args(argv)
    stale = []
    for path in sorted(DOCS.glob("*.md")):
        text, changed = generated(path.read_text())
        if changed and not args.check:
            path.write_text(text)
        stale += [f"{path.name}: {name}" for name in changed]
    verb = "stale" if args.check else "rewritten"
    for line in stale:
        print(f"{verb}: {line}")
    if args.check and stale:
        print("run `python scripts/gen_docs.py` to update them", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
