"""Commands about single functions: ``primitives``, ``show`` and ``export``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from afos.cli.boundary import EXPRESSION_COMMAND, cli
from afos.cli.options import choice, parameter_options, parameters
from afos.errors import UserError
from afos.records.settings import ExportFormat


@cli.command()
@click.option("--set", "set_name", default=None, help="Only this primitive set (afos, swish, actbench).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def primitives(set_name: str | None, as_json: bool) -> None:
    """List the primitives candidates are built from, with their formulas."""
    from afos.space.primitives import PRIMITIVE_SETS, primitive_set

    rows: list[dict[str, Any]] = [
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


@cli.command(context_settings=EXPRESSION_COMMAND)
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
        from afos.reporting.plots import function_plot

        function_plot({expression: facts["canonical"]}, plot, order=2)
    if as_json:
        click.echo(json.dumps(facts, indent=2))
        return
    click.echo(_format_facts(facts))
    if plot:
        click.echo(f"plot        {plot}")


@cli.command(context_settings=EXPRESSION_COMMAND)
@click.argument("target")
@click.option("--rank", type=int, default=None,
              help="Export this rank of a run's hall of fame instead of the confirmed winner.")
@click.option("--pick", default=None,
              help="Export a member of a run's front of accuracy against cost: cheapest, best, near-best (the "
                   "cheapest within one seed-spread of the most accurate) or N (the N-th cheapest).")
@click.option("--format", "fmt", type=choice(ExportFormat), default=ExportFormat.TORCH.value,
              show_default=True, help="Standalone torch or numpy code, or the formula as LaTeX or sympy text.")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write to this file (default stdout).")
@parameter_options
def export(target: str, rank: int | None, pick: str | None, fmt: str, out: str | None, **options: Any) -> None:
    """Export a function (TARGET: an expression, a family name, or a search RUN_DIR) as standalone code.

    From a RUN_DIR: the function its confirmation names (the one its verdict sentence is about), or with
    --rank N the N-th of its hall of fame, or with --pick a member of its front of accuracy against cost.

    The torch file defines activation(x) and class Activation(torch.nn.Module); the numpy file
    activation(x). Neither imports afos.
    """
    from afos.reporting.export.form import Form
    from afos.reporting.export.formats import render

    if Path(target).is_dir():
        from afos.reporting.export.form import front_form, hall_of_fame_form, winner_form

        if rank is not None and pick is not None:
            raise click.UsageError("--rank and --pick each choose the function: give one of them")
        form = front_form(target, pick) if pick else winner_form(target) if rank is None else hall_of_fame_form(target, rank)
    else:
        from afos.activation.spec import resolve_activation

        try:
            spec = resolve_activation(target, **parameters(options))
        except UserError as error:
            if "/" not in target:
                raise
            raise UserError(f"{target} is neither a run folder (there is no such folder) nor an expression "
                            f"({error})") from None
        form = Form.from_text(spec.expression, spec.typical_values(), source=f"Exported from {target!r}.")
    text = render(form, fmt)
    if out is None:
        click.echo(text, nl=False)
    else:
        Path(out).write_text(text)
        click.echo(f"wrote {out}", err=True)


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
