"""The one run lifecycle: every run kind (search, evaluate, compare) is opened, tracked and closed here.

A run's status lives in its database's meta and, with the host, pid and a heartbeat every few seconds, in
its ``run.json`` (:mod:`afos.storage.liveness`): ``running`` while a process works on it, then ``finished``
(or a search's ``budget`` / ``time-limit``), ``interrupted`` after Ctrl-C or SIGTERM (every finished training
run is already committed), ``failed`` with its reason after any other error. A process killed with SIGKILL
leaves ``running`` with a heartbeat that stops, which ``afos runs`` shows as ``interrupted``, with the command
that resumes it, as soon as the pid is gone (same host) or the heartbeat is stale (another host).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from afos.evaluation import Evaluator
from afos.execution.contract import Executor
from afos.records.evaluation import Evaluation
from afos.records.runs import MetaKey, RunKind, RunStatus
from afos.records.search import Generation
from afos.runs.progress import OnRecord, ProgressLog, Say
from afos.storage.layout import RunFiles, run_database
from afos.storage.liveness import Heartbeat, writer_lock
from afos.storage.siblings import SiblingRuns
from afos.storage.store import RunStore

_REASON_LIMIT = 1000  # characters of a failure's message kept in the run's meta


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's cancel or pre-emption): handled like Ctrl-C, so the run is marked interrupted."""


#: Set when SIGTERM arrives. Python runs a signal handler between bytecodes, and an exception it raises while
#: a finaliser or a weakref callback runs (garbage collection, at any moment) is printed and swallowed; so the
#: run also asks :func:`raise_if_terminated` after every record, and stops at the next one at the latest.
_TERMINATED = threading.Event()


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` while a command runs."""

    def handler(signum: int, frame: object) -> None:
        _TERMINATED.set()
        raise Terminated

    _TERMINATED.clear()
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        _TERMINATED.clear()


def raise_if_terminated() -> None:
    """Raise :class:`Terminated` if SIGTERM arrived and its exception was swallowed (see :data:`_TERMINATED`)."""
    if _TERMINATED.is_set():
        raise Terminated


@dataclass(frozen=True)
class Session:
    """What the work of one invocation on a run folder gets: the run's database, its evaluator (this run's
    records, the sibling runs' cache, the executor) and its progress log."""

    run_dir: Path
    store: RunStore
    evaluator: Evaluator
    log: ProgressLog


@dataclass(frozen=True)
class Options:
    """How a session reports and reuses: ``echo`` prints progress (None: quiet), ``on_record`` also gets
    each record, ``reuse`` copies identical runs from sibling run folders, and a search also calls
    ``on_generation`` with each generation it saves."""

    echo: Say | None = None
    on_record: OnRecord | None = None
    reuse: bool = True
    on_generation: Callable[[Generation], None] | None = None


DEFAULT_OPTIONS = Options()


def run_session(run_dir: Path, kind: RunKind, meta: Mapping[MetaKey, Any], executor: Executor, options: Options,
                work: Callable[[Session], RunStatus], *, expected: Callable[[RunStore], int],
                label: Callable[[Evaluation], str] | None = None) -> RunStatus:
    """Open (or create) the run in ``run_dir`` and do ``work`` in it with its status kept true.

    ``meta`` is written with the database's schema when the run is created (with its kind and the time it
    was created); ``expected`` estimates the training runs the work needs, for the progress bar. Returns the
    work's status. A second process that opens the run while this one works is refused (:func:`writer_lock`).
    """
    created = {MetaKey.KIND: kind.value, MetaKey.CREATED: time.time(), **meta}
    with writer_lock(run_dir), RunStore(run_database(run_dir), meta=created) as store:
        log = ProgressLog(RunFiles(run_dir).log(kind.value), options.echo, total=expected(store),
                          done=store.count_evaluations(), desc=f"afos {kind.value}", label=label,
                          on_record=options.on_record)
        cache = SiblingRuns(run_dir.parent, run_dir) if options.reuse else None
        try:
            with Heartbeat(run_dir, kind) as heartbeat, cache or contextlib.nullcontext():
                heartbeat.count(store.count_evaluations())

                def on_record(record: Evaluation) -> None:
                    log.record(record)
                    heartbeat.count(store.count_evaluations())  # a retried run replaces its record: rows, not events
                    raise_if_terminated()  # the record is committed: stopping here loses nothing

                session = Session(run_dir, store, Evaluator(store, executor, cache=cache, on_record=on_record), log)
                return tracked(store, heartbeat, lambda: work(session))
        finally:
            log.close()


def tracked(store: RunStore, heartbeat: Heartbeat, work: Callable[[], RunStatus]) -> RunStatus:
    """Run ``work`` with the run's status kept true in its meta and its ``run.json`` (see the module
    docstring)."""
    store.set_meta(MetaKey.STATUS, RunStatus.RUNNING.value)
    try:
        status = work()
    except KeyboardInterrupt:
        heartbeat.finish(RunStatus.INTERRUPTED)
        store.set_meta(MetaKey.STATUS, RunStatus.INTERRUPTED.value)
        raise
    except BaseException as error:
        heartbeat.finish(RunStatus.FAILED)
        with contextlib.suppress(Exception):  # a full disk may refuse this too; run.json then tells
            store.set_meta(MetaKey.STATUS, RunStatus.FAILED.value)
            store.set_meta(MetaKey.REASON, f"{type(error).__name__}: {error}"[:_REASON_LIMIT])
        raise
    heartbeat.finish(status)
    store.set_meta(MetaKey.STATUS, status.value)
    return status
