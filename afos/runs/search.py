"""Starting and resuming searches in run folders."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from afos.config import with_overrides
from afos.errors import ConfigError
from afos.execution.contract import Executor
from afos.records.runs import MetaKey, RunKind, RunStatus
from afos.records.search import Generation
from afos.reporting.search_report import write_report
from afos.runs.lifecycle import DEFAULT_OPTIONS, Options, Session, run_session
from afos.search.config import SearchConfig, expected_runs, task_configs, task_protocols
from afos.search.confirmation import confirm
from afos.search.loop import Search
from afos.search.results import finalist_rows
from afos.search.verdict import winner
from afos.storage.layout import run_database
from afos.storage.store import RunStore
from afos.training.protocol import check_tasks

#: Options that may change when a run is resumed; everything else is part of the run's identity.
RESUMABLE = ("generations", "max_evals", "time_limit", "train.device", "train.data_dir", "train.timeout_s",
             "reuse_runs", "confirm", "confirm_top", "confirm_seeds")


def new_run_dir(root: str | Path, config: SearchConfig) -> Path:
    """``results/<time>-<dataset>-<model>-s<seed>``: sortable, readable, unique per second."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    task = config.task_list()[0].replace("/", "-")
    return Path(root) / f"{stamp}-{task}-s{config.seed}"


def resume_config(run_dir: Path, overrides: Mapping[str, Any]) -> SearchConfig:
    """The stored config of a search run, with only the :data:`RESUMABLE` options changed.

    Refused with one line: a folder that is not a search run, and a change to any other option. Whether this
    afos would train the run under the same protocol is checked when the run opens (:func:`check_same_search`).
    """
    db = run_database(run_dir)
    if not db.is_file():
        raise ConfigError(f"--resume {run_dir}: no afos.db there, so it is not a run folder")
    with RunStore(db, readonly=True) as store:
        kind, stored = store.get_meta(MetaKey.KIND, "search"), store.get_meta(MetaKey.CONFIG)
    if kind != RunKind.SEARCH.value:
        raise ConfigError(f"--resume {run_dir}: it holds an `afos {kind}` grid, not a search; rerun that "
                          f"command with --out {run_dir} to resume it")
    if not isinstance(stored, dict):
        raise ConfigError(f"--resume {run_dir}: its database holds no valid search config")
    fixed = sorted(k for k, v in overrides.items() if v is not None and k not in RESUMABLE)
    if fixed:
        raise ConfigError(f"--resume keeps the run's settings; cannot change {', '.join(fixed)}")
    return SearchConfig.from_dict(with_overrides(stored, overrides))


def check_same_search(store: RunStore, run_dir: Path, config: SearchConfig) -> None:
    """Refuse, with one line, to continue the run of ``store`` as any other search than its own.

    Why: a search's records mean something only under the settings that made them. A folder reused with
    another population or task (a typo in ``--out``, a notebook cell run twice with a change) would otherwise
    be rewritten with a mixed history and a new verdict. Only the :data:`RESUMABLE` options may differ, and
    the protocol must be the one this afos computes (another afos or torch version, or a device of other
    precision, would retrain under another protocol).
    """
    kind, stored = store.get_meta(MetaKey.KIND), store.get_meta(MetaKey.CONFIG)
    if kind != RunKind.SEARCH.value:
        raise ConfigError(f"{run_dir} holds an `afos {kind}` run, not a search; choose another folder")
    if not isinstance(stored, dict):
        raise ConfigError(f"{run_dir}: its database holds no valid search config")
    changed = [key for key in _changed_keys(SearchConfig.from_dict(stored).to_dict(), config.to_dict())
               if key not in RESUMABLE]
    if changed:
        raise ConfigError(f"{run_dir} holds a search with other settings ({', '.join(changed)}); continue it "
                          "unchanged (`afos search --resume`), or choose another folder")
    if store.get_meta(MetaKey.PROTOCOLS) != task_protocols(config):
        raise ConfigError(f"{run_dir}: this afos would train it under another protocol (afos or torch "
                          "version, or device precision, changed); start a new search (`afos report` still "
                          "reads this one)")


def _changed_keys(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    """The dotted keys (``population``, ``train.epochs``) whose values differ between two config dicts."""
    changed = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key), new.get(key)
        if isinstance(before, Mapping) and isinstance(after, Mapping):
            changed += _changed_keys(before, after, f"{prefix}{key}.")
        elif before != after:
            changed.append(f"{prefix}{key}")
    return changed


def record_winner(store: RunStore) -> None:
    """Keep the function the finished confirmation names in the run's meta (``winner``), so that readers
    such as ``afos runs`` show it without recomputing the statistics."""
    best = winner(finalist_rows(store) or [])
    if best is not None:
        store.set_meta(MetaKey.WINNER, best.to_dict())


def search(config: SearchConfig, run_dir: Path, *, executor: Executor, options: Options = DEFAULT_OPTIONS) -> RunStatus:
    """Start or resume the search of ``run_dir``, confirm its finalists and write its report; returns its
    final status (see :mod:`afos.runs.lifecycle` for what happens on Ctrl-C, SIGTERM or a kill).

    The report files (tables, report.md, plots) are rewritten after every generation and when the run
    stops for any reason, so a folder read during a search, or after a kill, tells what the database holds.

    Datasets and models are checked before the folder is created, so a bad task leaves nothing behind.
    """
    check_tasks(task_configs(config))
    run_dir = Path(run_dir)
    meta = {MetaKey.CONFIG: config.to_dict(), MetaKey.PROTOCOLS: task_protocols(config)}

    if run_database(run_dir).is_file():  # before anything is written
        with RunStore(run_database(run_dir), readonly=True) as store:
            check_same_search(store, run_dir, config)

    def work(session: Session) -> RunStatus:
        session.store.set_meta(MetaKey.CONFIG, config.to_dict())  # a resume may have raised the generations or limits
        session.log(f"run folder {run_dir}")
        def on_generation(generation: Generation) -> None:
            write_report(run_dir, store=session.store)
            if options.on_generation is not None:
                options.on_generation(generation)

        search = Search(config, session.store, session.evaluator, progress=session.log, on_generation=on_generation)
        status = search.run()
        if config.confirm:
            if not confirm(config, session.store, session.evaluator, session.log, search.deadline):
                return RunStatus.TIME_LIMIT
            record_winner(session.store)
        return status

    reuse = replace(options, reuse=options.reuse and config.reuse_runs)
    try:
        status = run_session(run_dir, RunKind.SEARCH, meta, executor, reuse, work,
                             expected=lambda store: expected_runs(config))
    except BaseException:
        if run_database(run_dir).is_file():  # stopped or failed: the files say what the database holds
            with contextlib.suppress(Exception):  # the error that stopped the run is the one to report
                write_report(run_dir)
        raise
    write_report(run_dir)
    return status
