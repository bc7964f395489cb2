"""The ``afos`` command line: a thin click layer over the library.

Commands parse options, call one library function and print its result. Heavy modules (torch) are
imported inside commands so that ``afos --help`` and input errors answer fast. Any
:class:`afos.errors.UserError` (and click's own usage errors) becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from afos.errors import UserError


class _Group(click.Group):
    """Routes every user error to one line on stderr and exit code 2, never a traceback."""

    def main(self, *args: Any, **kwargs: Any) -> Any:  # noqa: D102 - click hook
        try:
            return super().main(*args, standalone_mode=False, **kwargs)
        except (UserError, click.UsageError, click.BadParameter) as error:
            message = error.format_message() if isinstance(error, click.ClickException) else str(error)
            click.echo(f"afos: error: {message}", err=True)
            sys.exit(2)
        except click.exceptions.Abort:
            click.echo("afos: aborted", err=True)
            sys.exit(130)


#: Expressions often start with '-' ("-x*erf(exp(-x))"); let them through as arguments, not options.
_EXPRESSION_COMMAND = {"ignore_unknown_options": True}


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="afos")
def cli() -> None:
    """Discover activation functions by genetic search, and evaluate them rigorously."""


@cli.command()
@click.option("--set", "set_name", default=None, help="Only this primitive set (afos, swish, actbench).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def primitives(set_name: str | None, as_json: bool) -> None:
    """List the primitives candidates are built from, with their formulas."""
    from afos.space.primitives import PRIMITIVE_SETS, primitive_set

    rows = [
        {"name": p.name, "arity": p.arity, "formula": p.formula,
         "sets": [s for s, names in PRIMITIVE_SETS.items() if p.name in names]}
        for p in primitive_set(set_name or sorted({n for names in PRIMITIVE_SETS.values() for n in names}))
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    width = max(len(r["name"]) for r in rows)
    for arity, title in ((1, "unary"), (2, "binary")):
        click.echo(f"{title}:")
        for row in (r for r in rows if r["arity"] == arity):
            click.echo(f"  {row['name']:<{width}}  {row['formula']:<48}  [{', '.join(row['sets'])}]")


@cli.command(context_settings=_EXPRESSION_COMMAND)
@click.argument("expression")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Draw f, f' and f'' to this PNG.")
def show(expression: str, as_json: bool, plot: str | None) -> None:
    """Show an expression's canonical form, LaTeX, fingerprint, screening verdict and shape."""
    from afos.space.parse import parse

    parse(expression)  # fail fast, before torch is imported
    from afos.space.probe import describe

    facts = describe(expression)
    if plot:
        from afos.plots import function_plot

        function_plot({expression: facts["canonical"]}, plot, derivatives=True)
    if as_json:
        click.echo(json.dumps(facts, indent=2))
        return
    click.echo(_format_facts(facts))
    if plot:
        click.echo(f"plot        {plot}")


def _format_facts(facts: dict[str, Any]) -> str:
    props = facts["properties"]
    verdict = "valid" if facts["valid"] else f"rejected: {facts['reason']}"
    lines = [
        ("expression", facts["expression"]),
        ("canonical", facts["canonical"]),
        ("latex", facts["latex"]),
        ("fingerprint", facts["fingerprint"]),
        ("screening", verdict),
        ("f(0)", f"{props['value_at_0']:.6g}"),
        ("f'(0)", f"{props['slope_at_0']:.6g}"),
        ("minimum", f"{props['minimum']:.6g} at x = {props['argmin']:.4g}  (on [-10, 10])"),
        ("maximum", f"{props['maximum']:.6g} at x = {props['argmax']:.4g}  (on [-10, 10])"),
        ("monotonic", props["monotonic"]),
        ("bounded", f"below: {_yes(props['bounded_below'])}, above: {_yes(props['bounded_above'])}"),
    ]
    return "\n".join(f"{key:<11} {value}" for key, value in lines)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def main() -> None:
    """Console-script entry point."""
    cli()
