"""The grid commands: ``evaluate`` and ``compare``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from afos.cli.boundary import EXPRESSION_COMMAND, cli
from afos.cli.options import (
    TRAIN_OPTIONS,
    executor_options,
    expressions_of,
    from_search_options,
    grid_options,
    names,
    overrides,
    parameter_options,
    parameters,
    run_grid,
)


@cli.command(context_settings=EXPRESSION_COMMAND)
@click.argument("expressions", nargs=-1)
@click.option("--baseline", default=None, help="Comma list of reference functions, e.g. relu,silu.")
@click.option("--dataset", default=None, help="Dataset (default digits, or the --config [train] dataset).")
@click.option("--model", default=None, help="Model (default: the dataset's default model).")
@from_search_options("--from", "--from-search")
@grid_options
@parameter_options
@executor_options
def evaluate(expressions: tuple[str, ...], baseline: str | None, dataset: str | None, model: str | None,
             **options: Any) -> None:
    """Train each function on one dataset over several seeds and tabulate validation and test accuracy.

    EXPRESSIONS are math in x ('-x*erf(exp(-x))') or names: relu, leaky_relu, elu, selu, gelu, silu/swish,
    mish, mila, softplus, tanh, sigmoid, eelu. Runs already in --out are not repeated.
    """
    from afos.grid.spec import spec_from_options
    from afos.reporting.grid_report import evaluation_table, run_row
    from afos.runs.grid import evaluate as run_evaluation

    candidates, baselines, parameters, selection = _selected(expressions, names(baseline), options)
    if not candidates:
        raise click.UsageError("name at least one function to evaluate (or use --from-search RUN)")
    spec = spec_from_options("evaluate", candidates, baselines or [],
                             datasets=[dataset] if dataset else [], model_names=[model] if model else [],
                             seeds=options["seeds"], config_path=options["config_path"], overrides=overrides(options),
                             parameters=parameters)
    if selection is not None:
        spec = spec.with_notes(selection.note(spec.tasks))
    results, out = run_grid("evaluate", spec, options, run_evaluation)
    if options["as_json"]:
        click.echo(json.dumps([run_row(run) for run in results.all_runs()], indent=2))
        return
    click.echo(evaluation_table(results))
    click.echo(f"results: {out}")


@cli.command(context_settings=EXPRESSION_COMMAND)
@click.argument("expressions", nargs=-1)
@click.option("--baseline", default=None, help="Comma list of baselines (default relu,silu,gelu,mish).")
@click.option("--datasets", default=None, help="Comma list of datasets (default digits).")
@click.option("--models", default=None, help="Comma list of models, each trained on every dataset "
                                               "(default: each dataset's default model).")
@click.option("--tasks", default=None, help="Comma list of extra dataset/model cases, e.g. wine/mlp.")
@click.option("--from", "sources", multiple=True, type=click.Path(exists=True),
              help="Recompute the statistics from this run folder or afos.db (repeatable); trains nothing.")
@from_search_options("--from-search")
@grid_options
@parameter_options
@executor_options
def compare(expressions: tuple[str, ...], baseline: str | None, datasets: str | None, models: str | None,
            tasks: str | None, sources: tuple[str, ...], **options: Any) -> None:
    """Compare functions over datasets x models x seeds: ranks, Friedman, Nemenyi, Wilcoxon-Holm, wins.

    EXPRESSIONS are the candidates (as for `afos evaluate`); cells are mean test accuracy over seeds.
    With --from, EXPRESSIONS and --baseline choose among the stored functions.
    """
    from afos.grid.spec import DEFAULT_BASELINES, spec_from_options
    from afos.reporting.grid_report import comparison_text
    from afos.runs.grid import compare as run_comparison
    from afos.runs.grid import compare_stored, default_out

    if sources:
        training = {"--datasets": datasets, "--models": models, "--tasks": tasks, "--seeds": options["seeds"],
                    "--tensorboard": options["tensorboard"], "--config": options["config_path"],
                    **{flag: options[key] for flag, key, _ in TRAIN_OPTIONS}}
        given = [flag for flag, value in training.items() if value is not None]
        if given:
            raise click.UsageError(f"--from recomputes statistics from stored runs; {', '.join(given)} cannot apply")
        out = Path(options["out"]) if options["out"] else default_out("compare")
        analysis = compare_stored(sources, out, expressions_of(expressions), names(baseline))
    else:
        candidates, baselines, parameters, selection = _selected(expressions, names(baseline), options)
        if not candidates:
            raise click.UsageError("name at least one function to compare (or use --from RUN or --from-search RUN)")
        spec = spec_from_options(
            "compare", candidates, DEFAULT_BASELINES if baselines is None else baselines,
            datasets=names(datasets) or [], model_names=names(models) or [], tasks=names(tasks) or [],
            seeds=options["seeds"], config_path=options["config_path"], overrides=overrides(options),
            parameters=parameters)
        if selection is not None:
            spec = spec.with_notes(selection.note(spec.tasks))
        if baselines is None:
            spec = spec.with_notes([f"baselines: {', '.join(DEFAULT_BASELINES)} (the default; --baseline names others)"])
        analysis, out = run_grid("compare", spec, options, run_comparison)
    if options["as_json"]:
        click.echo(json.dumps(analysis.to_dict(), indent=2))
        return
    click.echo(comparison_text(analysis, out))


def _selected(expressions: tuple[str, ...], baselines: list[str] | None,
              options: dict[str, Any]) -> tuple[list[str], list[str] | None, dict[str, Any], Any]:
    """Candidates, baselines and parameter settings from the command line plus, with --from-search, the
    search's finalists and baselines (the search's baselines unless --baseline names others)."""
    from afos.grid.sources import from_search

    chosen = parameters(options)
    run_dir, top = options.pop("from_search"), options.pop("top")
    if run_dir is None:
        return expressions_of(expressions), baselines, chosen, None
    selection = from_search(run_dir, top)
    chosen["learnable"] = {**selection.learnable, **chosen["learnable"]}
    return ([*selection.candidates, *expressions_of(expressions)],
            selection.baselines if baselines is None else baselines, chosen, selection)
