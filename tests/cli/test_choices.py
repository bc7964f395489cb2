"""The command line offers exactly the vocabularies the library knows. The CLI spells its choices out so
that `afos --help` imports neither torch nor sympy; this test keeps the two lists one."""

from __future__ import annotations

import click

from afos.activation.spec import Scope
from afos.cli import cli
from afos.execution.contract import ExecutorKind
from afos.reporting.export.formats import ExportFormat


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
    from afos.search.config import Strategy

    assert _choices("search", "strategy") == [s.value for s in Strategy]


def test_surrogates_are_the_library_surrogates() -> None:
    from afos.search.surrogate import SurrogateKind

    assert _choices("search", "surrogate") == [k.value for k in SurrogateKind]
