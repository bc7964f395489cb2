"""The options several commands share: executors, training settings, activation parameters, grids."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from enum import Enum
from pathlib import Path
from typing import Any, NoReturn

import click

from afos.errors import ExitCode, UserError
from afos.records.settings import ExecutorKind, Scope


def choice(vocabulary: type[Enum]) -> click.Choice:
    """A click choice of a vocabulary's values: the command line offers exactly what the library knows."""
    return click.Choice([member.value for member in vocabulary])


def executor_options(command: Any) -> Any:
    """Where training runs happen; shared by search, evaluate and compare."""
    options = [
        click.option("--executor", type=choice(ExecutorKind), default=ExecutorKind.SERIAL.value, show_default=True,
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


def make_executor(options: dict[str, Any]) -> Any:
    from afos.execution.factory import make_executor

    return make_executor(options.pop("executor"), workers=options.pop("workers"),
                         workers_per_gpu=options.pop("workers_per_gpu"), address=options.pop("address"),
                         max_retries=options.pop("max_retries"), timeout_s=options.pop("run_timeout"))


def interrupted(interrupt: KeyboardInterrupt, how: str) -> NoReturn:
    """Ctrl-C exits 130, SIGTERM 143 (128 + the signal), each with how to continue."""
    from afos.runs.lifecycle import Terminated

    click.echo(f"afos: {'terminated' if isinstance(interrupt, Terminated) else 'interrupted'}; {how}", err=True)
    sys.exit(ExitCode.TERMINATED if isinstance(interrupt, Terminated) else ExitCode.INTERRUPTED)


#: Training options, declared once: (option, TrainConfig key, click settings). Grids take them all, a search
#: those of :data:`SEARCH_TRAIN_OPTIONS`; the default of each is the config's.
TRAIN_OPTIONS = (
    ("--epochs", "epochs", {"type": float, "help": "Training budget of each training run, in epochs."}),
    ("--batch-size", "batch_size", {"type": int, "help": "Mini-batch size of each training run."}),
    ("--lr", "lr", {"type": float, "help": "Learning rate of each training run."}),
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


SEARCH_TRAIN_OPTIONS = ("epochs", "batch_size", "lr", "device", "data_dir", "image_size", "target")


def train_options(keys: tuple[str, ...]) -> Any:
    """The training options of ``keys`` (TrainConfig keys), as :data:`TRAIN_OPTIONS` declares them."""

    def decorate(command: Any) -> Any:
        for flag, key, settings in reversed(TRAIN_OPTIONS):
            if key in keys:
                command = click.option(flag, key, default=None, **settings)(command)
        return command

    return decorate


def parameter_options(command: Any) -> Any:
    """Learnable and fixed activation parameters (``afos evaluate``/``compare``)."""
    options = [
        click.option("--learnable", multiple=True, help="Train these parameters: beta=-0.25 or beta~N(0,0.1) "
                                                        "(repeatable, or comma-separated)."),
        click.option("--fixed", multiple=True, help="Set parameters without training them: beta=-0.25."),
        click.option("--param-scope", type=choice(Scope), default=None,
                     help="One parameter set for the network, per activation site (default) or per channel."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def parameters(options: dict[str, Any]) -> dict[str, Any]:
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


def grid_options(command: Any) -> Any:
    """The options every grid command takes (training settings, seeds, output), declared once."""
    options = [
        click.option("--seeds", type=int, default=None, help="Seeds per function and task (default 3)."),
        *(click.option(flag, key, default=None, **settings) for flag, key, settings in TRAIN_OPTIONS),
        click.option("--config", "config_path", default=None,
                     help="TOML config whose [train] table sets the training protocol: a file, or a shipped "
                          "config by name (cifar10-fast, ...)."),
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


def from_search_options(*names: str) -> Any:
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


def names(text: str | None) -> list[str] | None:
    return None if text is None else [name.strip() for name in text.split(",") if name.strip()]


def expressions_of(arguments: tuple[str, ...]) -> list[str]:
    """Expressions may start with '-', so unknown options arrive here; '--x' is a mistyped option, not math."""
    for argument in arguments:
        if argument.startswith("--"):
            raise click.UsageError(f"no such option: {argument}")
    return list(arguments)


def run_grid(kind: str, spec: Any, options: dict[str, Any], start: Any) -> tuple[Any, Path]:
    """Run ``start(spec, out, ...)`` with progress on stderr; Ctrl-C says how to resume."""
    from afos.reporting.tensorboard import TensorBoardLog
    from afos.runs.grid import default_out
    from afos.runs.lifecycle import Options, sigterm_interrupts

    out = Path(options["out"]) if options["out"] else default_out(kind)
    on_record = TensorBoardLog(options["tensorboard"]) if options["tensorboard"] else None
    echo = None if options["quiet"] else (lambda message: click.echo(message, err=True))
    run_options = Options(echo, on_record, reuse=not options.pop("no_reuse"))
    try:
        with sigterm_interrupts(), make_executor(options) as executor:
            return start(spec, out, executor=executor, options=run_options), out
    except KeyboardInterrupt as interrupt:
        interrupted(interrupt, f"run the same command with --out {out} to resume")


def overrides(options: dict[str, Any]) -> dict[str, Any]:
    return {key: options[key] for _, key, _ in TRAIN_OPTIONS}
