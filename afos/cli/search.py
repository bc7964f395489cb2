"""The search commands: ``search``, and ``report`` and ``runs`` for every run folder."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from afos.cli.boundary import cli
from afos.cli.options import SEARCH_TRAIN_OPTIONS, choice, executor_options, interrupted, make_executor, names, train_options
from afos.records.settings import Strategy, SurrogateKind
from afos.storage.layout import RunFiles, run_database


@cli.command()
@click.option("--config", "config_path", default=None,
              help="TOML config: a file, or a shipped config by name (cifar10-fast, quick, ...; default spirals).")
@click.option("--dataset", default=None, help="Dataset, e.g. spirals, digits, cifar10 (default: the config's); an unknown "
                                             "name lists them all, and docs/models-datasets.md describes each.")
@click.option("--model", default=None, help="Model, e.g. mlp, resnet20 (default: the dataset's default model); an unknown "
                                           "name lists them all.")
@click.option("--primitives", default=None, help="Primitive set (afos, swish, actbench) or a comma list.")
@click.option("--population", type=int, default=None, help="Candidates per generation.")
@click.option("--generations", type=int, default=None, help="Number of generations.")
@click.option("--elites", type=int, default=None, help="Best functions carried into the next generation unchanged "
                                                       "(below --population).")
@click.option("--strategy", type=choice(Strategy), default=None,
              help="ga (the genetic algorithm), random (every candidate drawn at random: the baseline) or nsga2 "
                   "(the front of accuracy against cost; needs --objectives accuracy,cost).")
@click.option("--objectives", default=None,
              help="accuracy, or accuracy,cost: also minimise the function's cost in ReLUs and keep the Pareto front.")
@click.option("--surrogate", type=choice(SurrogateKind), default=None,
              help="Rank pools of proposals by predicted fitness before training (default knn; none: the plain GA).")
@click.option("--timeout", type=float, default=None,
              help="Seconds one training run may take before it is recorded as timed out (train.timeout_s).")
@click.option("--seed", type=int, default=None, help="Random seed of the search and of training.")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Run folder (default results/<run-id>).")
@click.option("--resume", type=click.Path(file_okay=False, exists=True), default=None, help="Continue this run folder.")
@click.option("--max-evals", type=int, default=None, help="Stop after this many training runs.")
@click.option("--time-limit", type=float, default=None, help="Stop after this many seconds.")
@click.option("--learnable-constants", is_flag=True, default=None,
              help="Let mutations insert and remove constants that each fitness run trains (PANGAEA-style).")
@click.option("--baseline", default=None, help="Comma list of baselines beside ReLU (default: the config's).")
@click.option("--tensorboard", type=click.Path(file_okay=False), default=None,
              help="Also write each run's curves here for TensorBoard.")
@click.option("--confirm-top", type=int, default=None, help="Finalists confirmed on fresh seeds (default 5).")
@click.option("--confirm-seeds", type=int, default=None, help="Fresh seeds per finalist and baseline (default 5).")
@click.option("--no-confirm", is_flag=True, default=False, help="Skip the confirmation of the finalists.")
@click.option("--replay", type=click.Path(dir_okay=False, exists=True), default=None,
              help="Answer every training from this table (benchmarks/tables) instead of training: the search "
                   "runs at table speed; it must stay within the table's space and protocol.")
@click.option("--quiet", is_flag=True, help="No progress output.")
@train_options(SEARCH_TRAIN_OPTIONS)
@executor_options
def search(config_path: str | None, out: str | None, resume: str | None, replay: str | None, quiet: bool,
           **options: Any) -> None:
    """Evolve activation functions with a genetic search; results go to a run folder."""
    from afos.config import DEFAULT_SEARCH_CONFIG, load_config, with_overrides
    from afos.errors import ConfigError
    from afos.runs import search as folders
    from afos.runs.api import run_search
    from afos.runs.lifecycle import sigterm_interrupts
    from afos.search.config import SearchConfig

    overrides = {
        "primitives": options["primitives"], "population": options["population"],
        "generations": options["generations"], "elites": options["elites"], "strategy": options["strategy"],
        "seed": options["seed"],
        "surrogate": options["surrogate"], "objectives": names(options.pop("objectives")),
        "max_evals": options["max_evals"],
        "time_limit": options["time_limit"], "learnable_constants": options["learnable_constants"],
        "train.dataset": options["dataset"], "train.model": options["model"],
        "train.epochs": options["epochs"], "train.seed": options["seed"], "train.device": options["device"],
        "train.batch_size": options["batch_size"], "train.lr": options["lr"], "train.timeout_s": options["timeout"],
        "train.data_dir": options["data_dir"], "train.image_size": options["image_size"],
        "train.target": options["target"], "reuse_runs": False if options.pop("no_reuse") else None,
        "confirm_top": options.pop("confirm_top"), "confirm_seeds": options.pop("confirm_seeds"),
        "confirm": False if options.pop("no_confirm") else None, "baseline": names(options.pop("baseline")),
    }
    if resume:
        run_dir, config = Path(resume), folders.resume_config(Path(resume), overrides)
    else:
        values = load_config(config_path or DEFAULT_SEARCH_CONFIG)
        config = SearchConfig.from_dict(with_overrides(values, overrides))
        run_dir = Path(out) if out else folders.new_run_dir("results", config)
        if run_database(run_dir).is_file():  # a finished run is changed only by an explicit --resume
            raise ConfigError(f"--out {run_dir} already holds a run; `afos search --resume {run_dir}` continues "
                              "it, or choose another --out")
    tensorboard = options.pop("tensorboard")
    try:
        with sigterm_interrupts(), _executor(replay, config, options) as executor:
            result = run_search(config, out=run_dir, executor=executor, progress=not quiet, tensorboard=tensorboard)
    except KeyboardInterrupt as interrupt:
        interrupted(interrupt, f"resume with: afos search --resume {run_dir}")
    click.echo(_top_functions(run_dir, result.status, RunFiles(run_dir).report))


def _executor(replay: str | None, config: Any, options: dict[str, Any]) -> Any:
    """The executor the options name, or with --replay one that answers from the table (checked first)."""
    if replay is None:
        return make_executor(options)
    from afos.execution.replay import ReplayExecutor, read_table
    from afos.grid.table import check_within

    table = read_table(replay)
    check_within(table, config)
    replicates = min(len(task.seeds) for task in table.tasks)
    if config.confirm and config.confirm_seeds > replicates:
        click.echo(f"afos: the table holds {replicates} replicates, so the confirmation's {config.confirm_seeds} "
                   f"fresh seeds reuse them (seed mod {replicates}): its statistics are not independent", err=True)
    return ReplayExecutor(table)


def _top_functions(run_dir: Path, status: Any, report: Path) -> str:
    from afos.reporting.search_report import summary_lines

    return "\n".join([f"search {status.value}: {run_dir}", *summary_lines(run_dir), f"report: {report}"])


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Write the report's files into this folder instead of RUN_DIR.")
def report(run_dir: str, out: str | None) -> None:
    """Rebuild a run's report, tables and plots from its database.

    A run folder that cannot be written (an archive, a read-only mount) gets its report printed instead;
    --out writes the files elsewhere.
    """
    from afos.reporting.run_report import rebuild_report, report_markdown

    if out is None and not os.access(run_dir, os.W_OK):
        click.echo(report_markdown(run_dir), nl=False)
        click.echo(f"afos: {run_dir} cannot be written, so the report is printed; --out DIR writes its files",
                   err=True)
        return
    click.echo(str(rebuild_report(run_dir, out)))


@cli.command()
@click.argument("root", type=click.Path(file_okay=False), default="results")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def runs(root: str, as_json: bool) -> None:
    """List the runs under ROOT (default results/), oldest first: status, progress and the function each
    stands for (a search's confirmed winner, or its best so far, marked unconfirmed)."""
    from afos.records.json import plain
    from afos.runs.listing import list_runs, runs_table

    rows = list_runs(root)
    if as_json:
        click.echo(json.dumps(plain(rows), indent=2))
    elif not rows:
        click.echo(f"no runs under {root}")
    else:
        click.echo(runs_table(rows))
