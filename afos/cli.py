"""The ``afos`` command line: a thin click layer over the library.

Commands parse options, call one library function and print its result. Heavy modules (torch) are
imported inside commands so that ``afos --help`` and input errors answer fast. Every expected failure
(see :class:`_Group`) becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import errno
import json
import os
import re
import sqlite3
import sys
import time
import traceback
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NoReturn

import click

from afos.errors import UserError


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    """``warnings.showwarning`` for the CLI: one ``afos: warning: ...`` line, without Python's source line."""
    text = " ".join(str(message).split())
    click.echo(f"afos: warning: {text}", err=True)


class _Group(click.Group):
    """The one error boundary: an expected failure is one line on stderr and exit code 2, never a traceback.

    Expected failures are the user's input (:class:`UserError`, click's usage errors), files and folders
    (``OSError``: missing, unwritable, read-only, disk full) and broken run databases (``sqlite3`` errors of
    the file or the disk, see :func:`_is_expected`). Anything else is a bug: its traceback is printed, then a line asking for a
    report, exit code 1. Exit code 130 is kept for a real Ctrl-C. Python warnings become one
    ``afos: warning:`` line each.
    """

    def main(self, *args: Any, **kwargs: Any) -> Any:  # noqa: D102 - click hook
        try:
            with warnings.catch_warnings():  # restores Python's own hook when the command returns
                warnings.showwarning = _show_warning
                return super().main(*args, standalone_mode=False, **kwargs)  # type: ignore[call-overload]
        except click.exceptions.Abort as error:
            # click turns both Ctrl-C and an EOFError into Abort; only the first is an interrupt.
            if not isinstance(error.__context__, EOFError):
                click.echo("afos: aborted", err=True)
                sys.exit(130)
            _report_bug(error.__context__)
        except KeyboardInterrupt:
            click.echo("afos: aborted", err=True)
            sys.exit(130)
        except Exception as error:  # noqa: BLE001 - the boundary: sorted into expected failures and bugs
            if not _is_expected(error):
                _report_bug(error)
            click.echo(f"afos: error: {_expected_failure(error)}", err=True)
            sys.exit(2)


def _is_expected(error: Exception) -> bool:
    """Failures of the input or the environment, not of afos. Of sqlite3's errors only those of the file and
    the disk (a plain DatabaseError: not a database, malformed; OperationalError: cannot open, read-only,
    full, I/O); a misused connection (ProgrammingError, IntegrityError, ...) is a bug."""
    if isinstance(error, (UserError, click.ClickException, OSError, sqlite3.OperationalError)):
        return True
    return type(error) is sqlite3.DatabaseError


def _report_bug(error: BaseException) -> NoReturn:
    traceback.print_exception(error)
    click.echo("afos: internal error (a bug in afos): please report it with the traceback above", err=True)
    sys.exit(1)


#: What to do about an OSError, by errno; the default is to check the path.
_OS_ADVICE = {
    errno.ENOSPC: "free disk space, then run the same command again (a search: --resume its folder)",
    errno.EDQUOT: "free space within your disk quota, then run the same command again",
    errno.EACCES: "check the permissions, or choose another folder (--out)",
    errno.EPERM: "check the permissions, or choose another folder (--out)",
    errno.EROFS: "choose a folder on a writable filesystem (--out)",
    errno.ENOENT: "check the path",
    errno.EISDIR: "a folder is in the way of a file; give a file path or remove the folder",
    errno.ENOTDIR: "a file is in the way of a folder; give a folder path or remove the file",
}

#: What to do about a broken or unusable run database, by SQLite's primary error name (Python >= 3.11 gives
#: it; older ones get the neutral advice).
_SQLITE_ADVICE = {
    "SQLITE_NOTADB": "it is not an intact afos run database: restore it from a copy, or start the run in a new "
                     "folder",
    "SQLITE_CORRUPT": "the run database is damaged: restore it from a copy, or start the run in a new folder",
    "SQLITE_FULL": "free disk space, then run the same command again (a search: --resume its folder)",
    "SQLITE_READONLY": "the database or its folder cannot be written; check the permissions or copy the folder "
                       "somewhere writable",
    "SQLITE_CANTOPEN": "it must be a file you can read and write, in a folder you can write",
    "SQLITE_IOERR": "the disk could not be read or written; check the filesystem and free space",
    "SQLITE_BUSY": "another afos process holds it; wait until that one ends",
    "SQLITE_LOCKED": "another afos process holds it; wait until that one ends",
}


def _expected_failure(error: Exception) -> str:
    """The one-line message of an expected failure: what went wrong, on which file, and what to do."""
    if isinstance(error, click.ClickException):
        return error.format_message()
    if isinstance(error, sqlite3.DatabaseError):
        primary = "_".join(getattr(error, "sqlite_errorname", "").split("_")[:2])  # SQLITE_IOERR_WRITE: IOERR
        advice = _SQLITE_ADVICE.get(primary, "check the file and the disk it is on")
        return f"{_database_of(error) or 'run database'}: {error}; {advice}"
    if isinstance(error, OSError) and error.errno is not None:
        where = f"{error.filename}: " if error.filename is not None else ""
        advice = _OS_ADVICE.get(error.errno, "check the path" if error.filename is not None else "")
        return f"{where}{error.strerror or error}" + (f"; {advice}" if advice else "")
    return str(error)


def _database_of(error: BaseException) -> str | None:
    """The file of the run store whose call raised ``error``: sqlite3's errors do not name their file.

    Found as the innermost ``RunStore`` bound to ``self`` in the traceback's frames.
    """
    from afos.storage.store import RunStore

    stores = [frame.f_locals.get("self") for frame, _ in traceback.walk_tb(error.__traceback__)]
    paths = [str(store.path) for store in stores if isinstance(store, RunStore)]
    return paths[-1] if paths else None


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
        from afos.reporting.plots import function_plot

        function_plot({expression: facts["canonical"]}, plot, derivatives=True)
    if as_json:
        click.echo(json.dumps(facts, indent=2))
        return
    click.echo(_format_facts(facts))
    if plot:
        click.echo(f"plot        {plot}")


def _executor_options(command: Any) -> Any:
    """Where training runs happen; shared by search, evaluate and compare."""
    options = [
        click.option("--executor", default="serial", show_default=True,
                     help="serial, process (local worker processes) or ray (a Ray cluster; pip install afos[ray])."),
        click.option("--workers", type=int, default=None, help="Worker processes on a CPU-only machine."),
        click.option("--workers-per-gpu", type=int, default=1, show_default=True, help="Workers on each visible GPU."),
        click.option("--address", default=None, help="Ray cluster to join: auto or HOST:PORT (else $RAY_ADDRESS, "
                                                     "else a local one)."),
        click.option("--max-retries", type=int, default=2, show_default=True,
                     help="Retries of a run whose worker died."),
        click.option("--run-timeout", type=float, default=None,
                     help="Hard wall-clock limit of one run in seconds (process and ray executors)."),
        click.option("--no-reuse", is_flag=True, default=False,
                     help="Train every run here instead of copying identical runs from sibling run folders."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _make_executor(options: dict[str, Any]) -> Any:
    from afos.execution.factory import make_executor

    return make_executor(options.pop("executor"), workers=options.pop("workers"),
                         workers_per_gpu=options.pop("workers_per_gpu"), address=options.pop("address"),
                         max_retries=options.pop("max_retries"), timeout_s=options.pop("run_timeout"))


@cli.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="TOML config (default: configs/quick.toml settings).")
@click.option("--dataset", default=None, help="Dataset (digits, wine, mnist, fashion-mnist, cifar10, cifar100, "
                                             "folder, csv).")
@click.option("--model", default=None, help="Model (mlp, small_cnn, lenet5, afos_cnn, resnet20, ...).")
@click.option("--primitives", default=None, help="Primitive set (afos, swish, actbench) or a comma list.")
@click.option("--population", type=int, default=None, help="Candidates per generation.")
@click.option("--generations", type=int, default=None, help="Number of generations.")
@click.option("--epochs", type=float, default=None, help="Training budget per candidate, in epochs.")
@click.option("--seed", type=int, default=None, help="Random seed of the search and of training.")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Run folder (default results/<run-id>).")
@click.option("--resume", type=click.Path(file_okay=False, exists=True), default=None, help="Continue this run folder.")
@click.option("--device", default=None, help="auto, cpu, cuda or cuda:N.")
@click.option("--data-dir", default=None, help="Folder holding the datasets (else $AFOS_DATA_DIR); for "
                                                "--dataset folder/csv the image folder or CSV file itself.")
@click.option("--image-size", type=int, default=None, help="Side in pixels images of --dataset folder are fitted to "
                                                           "(default 32).")
@click.option("--target", default=None, help="Class column of --dataset csv.")
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
@click.option("--quiet", is_flag=True, help="No progress output.")
@_executor_options
def search(config_path: str | None, out: str | None, resume: str | None, quiet: bool, **options: Any) -> None:
    """Evolve activation functions with a genetic search; results go to a run folder."""
    from afos.config import load_config, with_overrides
    from afos.reporting.tensorboard import TensorBoardLog
    from afos.runs import search as folders
    from afos.runs.lifecycle import Options, sigterm_interrupts
    from afos.search.config import SearchConfig

    overrides = {
        "primitives": options["primitives"], "population": options["population"],
        "generations": options["generations"], "seed": options["seed"], "max_evals": options["max_evals"],
        "time_limit": options["time_limit"], "learnable_constants": options["learnable_constants"],
        "train.dataset": options["dataset"], "train.model": options["model"],
        "train.epochs": options["epochs"], "train.seed": options["seed"], "train.device": options["device"],
        "train.data_dir": options["data_dir"], "train.image_size": options["image_size"],
        "train.target": options["target"], "reuse_runs": False if options.pop("no_reuse") else None,
        "confirm_top": options.pop("confirm_top"), "confirm_seeds": options.pop("confirm_seeds"),
        "confirm": False if options.pop("no_confirm") else None, "baseline": _names(options.pop("baseline")),
    }
    if resume:
        run_dir, config = Path(resume), folders.resume_config(Path(resume), overrides)
    else:
        values = load_config(config_path or _default_config())
        config = SearchConfig.from_dict(with_overrides(values, overrides))
        run_dir = Path(out) if out else folders.new_run_dir("results", config)
    echo = None if quiet else (lambda message: click.echo(message, err=True))
    tensorboard = options.pop("tensorboard")
    run_options = Options(echo, TensorBoardLog(tensorboard) if tensorboard else None)
    try:
        with sigterm_interrupts(), _make_executor(options) as executor:
            status = folders.search(config, run_dir, executor=executor, options=run_options)
    except KeyboardInterrupt as interrupt:
        _interrupted(interrupt, f"resume with: afos search --resume {run_dir}")
    click.echo(_top_functions(run_dir, status, run_dir / "report.md"))


def _default_config() -> str | None:
    """configs/quick.toml of a source checkout; an installed package falls back to the same defaults."""
    path = Path(__file__).resolve().parent.parent / "configs" / "quick.toml"
    return str(path) if path.exists() else None


def _interrupted(interrupt: KeyboardInterrupt, how: str) -> NoReturn:
    """Ctrl-C exits 130, SIGTERM 143 (128 + the signal), each with how to continue."""
    from afos.runs.lifecycle import Terminated

    click.echo(f"afos: {'terminated' if isinstance(interrupt, Terminated) else 'interrupted'}; {how}", err=True)
    sys.exit(143 if isinstance(interrupt, Terminated) else 130)


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
    """List the runs under ROOT (default results/) with status, progress and best function."""
    from afos.records.json import plain
    from afos.runs.listing import list_runs

    rows = list_runs(root)
    if as_json:
        click.echo(json.dumps(plain(rows), indent=2))
        return
    if not rows:
        click.echo(f"no runs under {root}")
    for row in rows:
        fitness = "-" if row.fitness is None else f"{row.fitness:.4f}"
        evaluations = "-" if row.evaluations is None else row.evaluations
        kind = row.kind.value if row.kind else "-"
        status = row.status.value if row.status else row.reason
        click.echo(f"{row.run:<44} {kind:<9} {status:<12} gen {row.generations:<7} "
                   f"evals {evaluations:<5} best {fitness} {row.best or ''}")
        if row.resume:
            last = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row.heartbeat)) if row.heartbeat else "unknown"
            click.echo(f"    last heartbeat {last}; to continue: {row.resume}")


#: Training options shared by evaluate and compare: (option, TrainConfig key, click settings).
_TRAIN_OPTIONS = (
    ("--epochs", "epochs", {"type": float, "help": "Training budget per run, in epochs (default 30)."}),
    ("--batch-size", "batch_size", {"type": int, "help": "Mini-batch size."}),
    ("--lr", "lr", {"type": float, "help": "Learning rate."}),
    ("--optimizer", "optimizer", {"help": "sgd, adam, adamw, adagrad or adadelta."}),
    ("--momentum", "momentum", {"type": float, "help": "SGD momentum (0 for plain SGD)."}),
    ("--device", "device", {"help": "auto, cpu, cuda or cuda:N."}),
    ("--data-dir", "data_dir", {"help": "Folder holding the datasets (else $AFOS_DATA_DIR); for --dataset "
                                        "folder/csv the image folder or CSV file itself."}),
    ("--image-size", "image_size", {"type": int, "help": "Side in pixels images of --dataset folder are fitted "
                                                         "to (default 32)."}),
    ("--target", "target", {"help": "Class column of --dataset csv."}),
    ("--param-lr", "param_lr", {"type": float, "help": "Learning rate of activation parameters (default: --lr)."}),
    ("--param-wd", "param_wd", {"type": float, "help": "Weight decay of activation parameters (default 0)."}),
)


def _parameter_options(command: Any) -> Any:
    """Learnable and fixed activation parameters (``afos evaluate``/``compare``)."""
    options = [
        click.option("--learnable", multiple=True, help="Train these parameters: beta=-0.25 or beta~N(0,0.1) "
                                                        "(repeatable, or comma-separated)."),
        click.option("--fixed", multiple=True, help="Set parameters without training them: beta=-0.25."),
        click.option("--param-scope", type=click.Choice(["shared", "layer", "channel"]), default=None,
                     help="One parameter set for the network, per activation site (default) or per channel."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _parameters(options: dict[str, Any]) -> dict[str, Any]:
    return {"learnable": parse_assignments(options.pop("learnable"), allow_random=True),
            "fixed": parse_assignments(options.pop("fixed"), allow_random=False),
            "scope": options.pop("param_scope")}


def parse_assignments(items: Iterable[str], *, allow_random: bool) -> dict[str, float | str]:
    """Read ``name=value`` (and, if allowed, ``name~N(mu,sigma)``) items of ``--learnable``/``--fixed``."""
    from afos.activation.spec import typical_value

    result: dict[str, float | str] = {}
    for item in items:
        for part in filter(None, (p.strip() for p in re.split(r",(?![^()]*\))", item))):
            match = re.fullmatch(r"([A-Za-z_][A-Za-z_0-9]*)\s*(=|~)\s*(.+)", part)
            if match is None:
                raise UserError(f"{part!r} must look like name=value" + (" or name~N(mu,sigma)" if allow_random else ""))
            name, sep, value = match.groups()
            if sep == "~":
                if not allow_random:
                    raise UserError(f"{part!r}: a random start is only for learnable parameters")
                typical_value(value)
                result[name] = value.strip()
            else:
                try:
                    result[name] = float(value)
                except ValueError:
                    raise UserError(f"{part!r}: {value!r} is not a number") from None
    return result


def _grid_options(command: Any) -> Any:
    """The options every grid command takes (training settings, seeds, output), declared once."""
    options = [
        click.option("--seeds", type=int, default=None, help="Seeds per function and task (default 3)."),
        *(click.option(flag, key, default=None, **settings) for flag, key, settings in _TRAIN_OPTIONS),
        click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
                     help="TOML file whose [train] table sets the training protocol (a search config works)."),
        click.option("--out", type=click.Path(file_okay=False), default=None,
                     help="Output folder (default results/<command>-<time>); the same --out resumes a stopped grid."),
        click.option("--tensorboard", type=click.Path(file_okay=False), default=None,
                     help="Also write each run's curves here for TensorBoard."),
        click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout."),
        click.option("--quiet", is_flag=True, help="No progress output."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _from_search_options(*names: str) -> Any:
    """A search's finalists as the functions of evaluate/compare (no retyping); ``names`` are the flags
    (``compare --from`` already reads stored grids, so there it is ``--from-search`` alone)."""

    def decorate(command: Any) -> Any:
        options = [
            click.option(*names, "from_search", type=click.Path(file_okay=False, exists=True), default=None,
                         help="Take the functions from this search run: its confirmed finalists (else its top ones)."),
            click.option("--top", type=int, default=5, show_default=True, help="How many of them (with a search run)."),
        ]
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def _names(text: str | None) -> list[str] | None:
    return None if text is None else [name.strip() for name in text.split(",") if name.strip()]


def _expressions(arguments: tuple[str, ...]) -> list[str]:
    """Expressions may start with '-', so unknown options arrive here; '--x' is a mistyped option, not math."""
    for argument in arguments:
        if argument.startswith("--"):
            raise click.UsageError(f"no such option: {argument}")
    return list(arguments)


def _run_grid(kind: str, spec: Any, options: dict[str, Any], start: Any) -> tuple[Any, Path]:
    """Run ``start(spec, out, ...)`` with progress on stderr; Ctrl-C says how to resume."""
    from afos.reporting.tensorboard import TensorBoardLog
    from afos.runs.grid import default_out
    from afos.runs.lifecycle import Options, sigterm_interrupts

    out = Path(options["out"]) if options["out"] else default_out(kind)
    on_record = TensorBoardLog(options["tensorboard"]) if options["tensorboard"] else None
    echo = None if options["quiet"] else (lambda message: click.echo(message, err=True))
    if echo:
        echo(f"{kind}: {len(spec.runs())} runs into {out}")
    run_options = Options(echo, on_record, reuse=not options.pop("no_reuse"))
    try:
        with sigterm_interrupts(), _make_executor(options) as executor:
            return start(spec, out, executor=executor, options=run_options), out
    except KeyboardInterrupt as interrupt:
        _interrupted(interrupt, f"run the same command with --out {out} to resume")


def _overrides(options: dict[str, Any]) -> dict[str, Any]:
    return {key: options[key] for _, key, _ in _TRAIN_OPTIONS}


@cli.command(context_settings=_EXPRESSION_COMMAND)
@click.argument("expressions", nargs=-1)
@click.option("--baseline", default=None, help="Comma list of reference functions, e.g. relu,silu.")
@click.option("--dataset", default=None, help="Dataset (default digits, or the --config [train] dataset).")
@click.option("--model", default=None, help="Model (default: the dataset's default model).")
@_from_search_options("--from", "--from-search")
@_grid_options
@_parameter_options
@_executor_options
def evaluate(expressions: tuple[str, ...], baseline: str | None, dataset: str | None, model: str | None,
             **options: Any) -> None:
    """Train each function on one dataset over several seeds and tabulate validation and test accuracy.

    EXPRESSIONS are math in x ('-x*erf(exp(-x))') or names: relu, leaky_relu, elu, selu, gelu, silu/swish,
    mish, mila, softplus, tanh, sigmoid, eelu. Runs already in --out are not repeated.
    """
    from afos.grid.spec import spec_from_options
    from afos.reporting.grid_report import evaluation_table, run_row
    from afos.runs.grid import evaluate as run_evaluation

    candidates, baselines, parameters, selection = _selected(expressions, _names(baseline), options)
    if not candidates:
        raise click.UsageError("name at least one function to evaluate (or use --from-search RUN)")
    spec = spec_from_options("evaluate", candidates, baselines or [],
                             datasets=[dataset] if dataset else [], model_names=[model] if model else [],
                             seeds=options["seeds"], config_path=options["config_path"], overrides=_overrides(options),
                             parameters=parameters)
    if selection is not None:
        spec = spec.with_notes(selection.note(spec.tasks))
    results, out = _run_grid("evaluate", spec, options, run_evaluation)
    if options["as_json"]:
        click.echo(json.dumps([run_row(run) for run in results.all_runs()], indent=2))
        return
    click.echo(evaluation_table(results))
    click.echo(f"results: {out}")


@cli.command(context_settings=_EXPRESSION_COMMAND)
@click.argument("expressions", nargs=-1)
@click.option("--baseline", default=None, help="Comma list of baselines (default relu,silu,gelu,mish).")
@click.option("--datasets", default=None, help="Comma list of datasets (default digits).")
@click.option("--models", default=None, help="Comma list of models, each trained on every dataset "
                                               "(default: each dataset's default model).")
@click.option("--tasks", default=None, help="Comma list of extra dataset/model cases, e.g. wine/mlp.")
@click.option("--from", "sources", multiple=True, type=click.Path(exists=True),
              help="Recompute the statistics from this run folder or afos.db (repeatable); trains nothing.")
@_from_search_options("--from-search")
@_grid_options
@_parameter_options
@_executor_options
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
                    **{flag: options[key] for flag, key, _ in _TRAIN_OPTIONS}}
        given = [flag for flag, value in training.items() if value is not None]
        if given:
            raise click.UsageError(f"--from recomputes statistics from stored runs; {', '.join(given)} cannot apply")
        out = Path(options["out"]) if options["out"] else default_out("compare")
        analysis = compare_stored(sources, out, _expressions(expressions), _names(baseline))
    else:
        candidates, baselines, parameters, selection = _selected(expressions, _names(baseline), options)
        if not candidates:
            raise click.UsageError("name at least one function to compare (or use --from RUN or --from-search RUN)")
        spec = spec_from_options(
            "compare", candidates, DEFAULT_BASELINES if baselines is None else baselines,
            datasets=_names(datasets) or [], model_names=_names(models) or [], tasks=_names(tasks) or [],
            seeds=options["seeds"], config_path=options["config_path"], overrides=_overrides(options),
            parameters=parameters)
        if selection is not None:
            spec = spec.with_notes(selection.note(spec.tasks))
        analysis, out = _run_grid("compare", spec, options, run_comparison)
    if options["as_json"]:
        click.echo(json.dumps(analysis.to_dict(), indent=2))
        return
    click.echo(comparison_text(analysis, out))


def _selected(expressions: tuple[str, ...], baselines: list[str] | None,
              options: dict[str, Any]) -> tuple[list[str], list[str] | None, dict[str, Any], Any]:
    """Candidates, baselines and parameter settings from the command line plus, with --from-search, the
    search's finalists and baselines (the search's baselines unless --baseline names others)."""
    from afos.grid.sources import from_search

    parameters = _parameters(options)
    run_dir, top = options.pop("from_search"), options.pop("top")
    if run_dir is None:
        return _expressions(expressions), baselines, parameters, None
    selection = from_search(run_dir, top)
    parameters["learnable"] = {**selection.learnable, **parameters["learnable"]}
    return ([*selection.candidates, *_expressions(expressions)],
            selection.baselines if baselines is None else baselines, parameters, selection)


@cli.command(context_settings=_EXPRESSION_COMMAND)
@click.argument("target")
@click.option("--rank", type=int, default=1, show_default=True, help="Which function of a run's hall of fame.")
@click.option("--format", "fmt", type=click.Choice(["torch", "numpy", "latex", "sympy"]), default="torch",
              show_default=True, help="Standalone torch or numpy code, or the formula as LaTeX or sympy text.")
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Write to this file (default stdout).")
@_parameter_options
def export(target: str, rank: int, fmt: str, out: str | None, **options: Any) -> None:
    """Export a function (TARGET: an expression, a family name, or a search RUN_DIR) as standalone code.

    The torch file defines activation(x) and class Activation(torch.nn.Module); the numpy file
    activation(x). Neither imports afos.
    """
    from afos.reporting.export.form import Form
    from afos.reporting.export.formats import render

    if Path(target).is_dir():
        from afos.reporting.export.form import hall_of_fame_form

        form = hall_of_fame_form(target, rank)
    else:
        from afos.activation.spec import resolve_activation

        spec = resolve_activation(target, **_parameters(options))
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


def main() -> None:
    """Console-script entry point."""
    cli()
