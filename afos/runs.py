"""Run folders: starting, resuming and listing searches, and keeping their status true.

This is the layer between the store and the CLI: it opens a run's database, the cache of the other runs
under the same results root and the evaluator, hands them to :class:`afos.search.Search`, and records what
happened to the run (running with a heartbeat, finished, stopped by a limit, interrupted, failed) so that
``afos runs`` can tell a working run from one whose process died.
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Callable

from tqdm import tqdm

from afos.config import with_overrides
from afos.errors import ConfigError, UserError
from afos.evaluation import Evaluator, check_tasks, describe
from afos.executors import Executor
from afos.finalists import confirm
from afos.records import Evaluation
from afos.report import hall_of_fame_rows, write_report
from afos.search import Search, SearchConfig, baseline_names, task_configs, task_protocols
from afos.stats import format_duration
from afos.store import Heartbeat, RunStore, SiblingRuns, StoreError, is_alive

Progress = Callable[[str], None]

#: Options that may change when a run is resumed; everything else is part of the run's identity.
RESUMABLE = ("generations", "max_evals", "time_limit", "train.device", "train.data_dir", "reuse_runs",
             "confirm", "confirm_top", "confirm_seeds")


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's cancel or pre-emption): handled like Ctrl-C, so the run is marked interrupted."""


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` while a command runs."""

    def handler(signum: int, frame: object) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def new_run_dir(root: str | Path, config: SearchConfig) -> Path:
    """``results/<time>-<dataset>-<model>-s<seed>``: sortable, readable, unique per second."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    task = config.task_list()[0].replace("/", "-")
    return Path(root) / f"{stamp}-{task}-s{config.seed}"


def resume_config(run_dir: Path, overrides: Mapping[str, Any]) -> SearchConfig:
    """The stored config of a search run, with only the :data:`RESUMABLE` options changed.

    Refused with one line: a folder that is not a search run, and a run whose protocol this afos would
    compute differently (another afos or torch version, or a device of other precision), since resuming it
    would silently retrain under another protocol.
    """
    db = Path(run_dir) / "afos.db"
    if not db.is_file():
        raise ConfigError(f"--resume {run_dir}: no afos.db there, so it is not a run folder")
    with RunStore(db, readonly=True) as store:
        kind, stored, protocols = store.get_meta("kind", "search"), store.get_meta("config"), store.get_meta("protocols")
    if kind != "search":
        raise ConfigError(f"--resume {run_dir}: it holds an `afos {kind}` grid, not a search; rerun that "
                          f"command with --out {run_dir} to resume it")
    if not isinstance(stored, dict):
        raise ConfigError(f"--resume {run_dir}: its database holds no valid search config")
    fixed = sorted(k for k, v in overrides.items() if v is not None and k not in RESUMABLE)
    if fixed:
        raise ConfigError(f"--resume keeps the run's settings; cannot change {', '.join(fixed)}")
    config = SearchConfig.from_dict(with_overrides(stored, overrides))
    if protocols != task_protocols(config):
        raise ConfigError(f"--resume {run_dir}: this afos would train it under another protocol (afos or torch "
                          "version, or device precision, changed); start a new search (`afos report` still "
                          "reads this one)")
    return config


class SearchLog:
    """Where a search reports: timestamped lines in ``search.log`` always; on a terminal a tqdm progress bar
    over the expected training runs with the lines above it; elsewhere (a log file, CI) plain lines, each
    record line with ``run i/n`` and an ETA.

    The expected total (every generation's new candidates on every task and fitness seed, the halving
    rungs, the baseline and the confirmation) is an estimate: duplicates accepted from the refill, a budget
    or a time limit change it.
    """

    def __init__(self, run_dir: Path, config: SearchConfig, echo: Progress | None, *, done: int = 0,
                 on_record: Callable[[Evaluation], None] | None = None) -> None:
        self.path = Path(run_dir) / "search.log"
        self.echo, self.on_record = echo, on_record
        self.total = max(done, expected_runs(config))
        self.done = done
        self.started, self.at_start = time.monotonic(), done
        self.bar = None
        if echo is not None and sys.stderr.isatty():
            self.bar = tqdm(total=self.total, initial=done, unit="run", file=sys.stderr, dynamic_ncols=True,
                            desc="afos search")

    def __call__(self, message: str) -> None:
        with self.path.open("a") as handle:
            handle.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")
        if self.bar is not None:
            self.bar.write(message, file=sys.stderr)
        elif self.echo is not None:
            self.echo(message)

    def record(self, record: Evaluation) -> None:
        """One line per record the evaluator adds, one step of the bar, then ``on_record`` (e.g. TensorBoard)."""
        self.done += 1
        self.total = max(self.total, self.done)
        if self.bar is not None:
            self.bar.total = self.total
            self.bar.update(1)
        self(f"  run {self.done}/{self.total} {self._eta()} " + describe(record))
        if self.on_record is not None:
            self.on_record(record)

    def _eta(self) -> str:
        rate = (time.monotonic() - self.started) / max(1, self.done - self.at_start)
        return f"ETA {format_duration(rate * (self.total - self.done))}"

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def expected_runs(config: SearchConfig) -> int:
    """The training runs a search is expected to need (see :class:`SearchLog`)."""
    per_candidate = len(config.task_list()) * config.fitness_seeds
    rungs = sum(1 / config.halving_eta ** r for r in range(config.halving_rungs))
    candidates = config.population + (config.generations - 1) * (config.population - config.elites)
    runs = math.ceil(candidates * per_candidate * rungs) + per_candidate  # + the baseline
    if config.confirm:
        runs += (config.confirm_top + len(baseline_names(config.baseline))) * len(config.task_list()) * config.confirm_seeds
    return runs if config.max_evals is None else min(runs, config.max_evals)


def search(config: SearchConfig, run_dir: Path, *, executor: Executor, echo: Progress | None = None,
           on_record: Callable[[Evaluation], None] | None = None) -> str:
    """Start or resume the search of ``run_dir`` and write its report; returns its final status.

    Datasets and models are checked before the folder is created, so a bad task leaves nothing behind.
    A failure later marks the run ``failed`` with its reason; Ctrl-C or SIGTERM marks it ``interrupted``;
    a SIGKILL leaves ``running`` with a heartbeat that stops, which :func:`list_runs` reports as
    ``interrupted``.
    """
    check_tasks(task_configs(config))
    run_dir = Path(run_dir)
    meta = {"kind": "search", "config": config.to_dict(), "protocols": task_protocols(config), "created": time.time()}
    with RunStore(run_dir / "afos.db", meta=meta) as store:
        store.set_meta("config", config.to_dict())  # a resume may have raised the generations or limits
        log = SearchLog(run_dir, config, echo, done=store.count_evaluations(), on_record=on_record)
        log(f"run folder {run_dir}")
        cache = SiblingRuns(run_dir.parent, run_dir) if config.reuse_runs else None
        evaluator = Evaluator(store, executor, cache=cache, on_record=log.record)
        try:
            with Heartbeat(store.path), cache or contextlib.nullcontext():
                status = _tracked(store, lambda: _search_and_confirm(config, store, evaluator, log))
        finally:
            log.close()
    write_report(run_dir)
    return status


def _search_and_confirm(config: SearchConfig, store: RunStore, evaluator: Evaluator, log: Progress) -> str:
    status = Search(config, store, evaluator, progress=log).run()
    if config.confirm:
        confirm(config, store, evaluator, log)
    return status


def _tracked(store: RunStore, work: Callable[[], str]) -> str:
    """Run ``work`` with the run's status kept true in its meta."""
    store.set_meta("status", "running")
    try:
        status = work()
    except KeyboardInterrupt:
        store.set_meta("status", "interrupted")  # every finished evaluation is already committed
        raise
    except BaseException as error:
        with contextlib.suppress(Exception):  # a full disk may refuse this too; the heartbeat then tells
            store.set_meta("status", "failed")
            store.set_meta("reason", f"{type(error).__name__}: {error}"[:1000])
        raise
    store.set_meta("status", status)
    return status


def list_runs(root: str | Path) -> list[dict[str, Any]]:
    """One summary per run folder under ``root``: status (with ``interrupted`` for a run whose process is
    gone), progress and best function; an unreadable database is listed with a one-word reason."""
    runs = []
    for db in sorted(Path(root).glob("*/afos.db")):
        try:
            runs.append(_summary(db))
        except (StoreError, UserError, OSError) as error:
            runs.append({"run": db.parent.name, "kind": "-", "status": _unreadable(error), "generations": "-",
                         "evaluations": None, "best": None, "fitness": None, "heartbeat": None, "resume": None})
    return runs


def _summary(db: Path) -> dict[str, Any]:
    with RunStore(db, readonly=True) as store:
        kind = store.get_meta("kind", "search")
        config = store.get_meta("config", {}) or {}
        hof = hall_of_fame_rows(store)
        status = store.get_meta("status", "unknown")
        beat = store.get_meta("heartbeat")
        generations = f"{len(store.generations())}/{config.get('generations', '?')}" if kind == "search" else "-"
        alive = is_alive(store.get_meta("host"), store.get_meta("pid"), beat)
        evaluations = store.count_evaluations()
    interrupted = status == "running" and not alive
    resume = None
    if interrupted or status == "interrupted":
        status = "interrupted"
        resume = (f"afos search --resume {db.parent}" if kind == "search"
                  else f"rerun the `afos {kind}` command with --out {db.parent}")
    return {"run": db.parent.name, "kind": kind, "status": status, "generations": generations,
            "evaluations": evaluations, "best": hof[0]["canonical"] if hof else None,
            "fitness": hof[0]["fitness"] if hof else None, "heartbeat": beat, "resume": resume}


def _unreadable(error: BaseException) -> str:
    text = str(error)
    for word in ("schema", "malformed", "folder", "empty"):
        if word in text:
            return f"unreadable ({word})"
    return "unreadable"
