"""The ``afos`` command line: a thin click layer over the library.

Commands parse options, call one library function and print its result. Heavy modules (torch) are
imported inside commands so that ``afos --help`` and input errors answer fast. Any
:class:`afos.errors.UserError` (and click's own usage errors) becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
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


@cli.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="TOML config (default: configs/quick.toml settings).")
@click.option("--dataset", default=None, help="Dataset (digits, wine, mnist, fashion-mnist, cifar10, cifar100).")
@click.option("--model", default=None, help="Model (mlp, small_cnn, lenet5, afos_cnn, resnet20, ...).")
@click.option("--primitives", default=None, help="Primitive set (afos, swish, actbench) or a comma list.")
@click.option("--population", type=int, default=None, help="Candidates per generation.")
@click.option("--generations", type=int, default=None, help="Number of generations.")
@click.option("--epochs", type=float, default=None, help="Training budget per candidate, in epochs.")
@click.option("--seed", type=int, default=None, help="Random seed of the search and of training.")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Run folder (default results/<run-id>).")
@click.option("--resume", type=click.Path(file_okay=False, exists=True), default=None, help="Continue this run folder.")
@click.option("--device", default=None, help="auto, cpu, cuda or cuda:N.")
@click.option("--data-dir", default=None, help="Folder holding the datasets (else $AFOS_DATA_DIR).")
@click.option("--max-evals", type=int, default=None, help="Stop after this many training runs.")
@click.option("--time-limit", type=float, default=None, help="Stop after this many seconds.")
@click.option("--quiet", is_flag=True, help="No progress output.")
def search(config_path: str | None, out: str | None, resume: str | None, quiet: bool, **options: Any) -> None:
    """Evolve activation functions with a genetic search; results go to a run folder."""
    from afos import search as engine
    from afos.report import write_report

    overrides = {
        "primitives": options["primitives"], "population": options["population"],
        "generations": options["generations"], "seed": options["seed"], "max_evals": options["max_evals"],
        "time_limit": options["time_limit"], "train.dataset": options["dataset"], "train.model": options["model"],
        "train.epochs": options["epochs"], "train.seed": options["seed"], "train.device": options["device"],
        "train.data_dir": options["data_dir"],
    }
    if resume:
        run_dir, config = Path(resume), engine.resume_config(Path(resume), overrides)
    else:
        values = engine.load_config(config_path or _default_config())
        config = engine.SearchConfig.from_dict(engine.with_overrides(values, overrides))
        run_dir = Path(out) if out else engine.new_run_dir("results", config)
    echo = None if quiet else (lambda message: click.echo(message, err=True))
    run_dir.mkdir(parents=True, exist_ok=True)
    log = engine.run_log(run_dir, echo)
    log(f"run folder {run_dir}")
    try:
        status = engine.Search(config, run_dir, progress=log).run()
    except KeyboardInterrupt:
        write_report(run_dir)
        click.echo(f"afos: interrupted; resume with: afos search --resume {run_dir}", err=True)
        sys.exit(130)
    report = write_report(run_dir)
    click.echo(_top_functions(run_dir, status, report))


def _default_config() -> str | None:
    """configs/quick.toml of a source checkout; an installed package falls back to the same defaults."""
    path = Path(__file__).resolve().parent.parent / "configs" / "quick.toml"
    return str(path) if path.exists() else None


def _top_functions(run_dir: Path, status: str, report: Path) -> str:
    from afos.report import summary_lines

    return "\n".join([f"search {status}: {run_dir}", *summary_lines(run_dir), f"report: {report}"])


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
def report(run_dir: str) -> None:
    """Rebuild a run's report, tables and plots from its database."""
    from afos.report import write_report

    click.echo(str(write_report(run_dir)))


@cli.command()
@click.argument("root", type=click.Path(file_okay=False), default="results")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def runs(root: str, as_json: bool) -> None:
    """List the runs under ROOT (default results/) with status, progress and best function."""
    from afos.report import list_runs

    rows = list_runs(root)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"no runs under {root}")
    for row in rows:
        fitness = "-" if row["fitness"] is None else f"{row['fitness']:.4f}"
        click.echo(f"{row['run']:<44} {row['status']:<12} gen {row['generations']:<7} "
                   f"evals {row['evaluations']:<5} best {fitness} {row['best'] or ''}")


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
