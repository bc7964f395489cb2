"""The command line offers exactly the vocabularies the library knows: its choices are built from the
torch-free vocabularies of :mod:`afos.records.settings`, which the library's modules use too, and
importing the command line loads neither torch nor sympy."""

from __future__ import annotations

import click

from afos.cli import cli
from afos.records.settings import ExecutorKind, ExportFormat, Scope, Strategy, SurrogateKind


def _choices(command: str, option: str) -> list[str]:
    params = {p.name: p for p in cli.commands[command].params}
    kind = params[option].type
    assert isinstance(kind, click.Choice), f"{command} --{option} is not a choice"
    return list(kind.choices)


def test_export_formats_are_the_exporters() -> None:
    assert _choices("export", "fmt") == [f.value for f in ExportFormat]


def test_parameter_scopes_are_the_library_scopes() -> None:
    for command in ("evaluate", "compare", "export"):
        assert _choices(command, "param_scope") == [s.value for s in Scope]


def test_executors_are_the_library_executors() -> None:
    for command in ("search", "evaluate", "compare"):
        assert _choices(command, "executor") == [k.value for k in ExecutorKind]


def test_search_strategies_are_the_library_strategies() -> None:
    assert _choices("search", "strategy") == [s.value for s in Strategy]


def test_surrogates_are_the_library_surrogates() -> None:
    assert _choices("search", "surrogate") == [k.value for k in SurrogateKind]


def test_the_vocabularies_and_the_command_line_import_no_torch() -> None:
    import subprocess
    import sys

    code = "import sys, afos.cli, afos.records.settings; print(sorted({'torch', 'sympy'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"
