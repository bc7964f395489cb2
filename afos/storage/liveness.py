"""Whether the process working on a run is alive: ``run.json`` beside the run's database.

The file holds a :class:`~afos.records.runs.RunState`: the run's kind and status, the host and pid of the
process working on it and a heartbeat rewritten every :data:`HEARTBEAT_S` seconds from a thread of its own,
also while one training run takes hours. It is replaced atomically (written beside it, then renamed, which is
atomic on network filesystems too), so a reader sees the old or the new state, never half of one. It lives
outside the database so that writing it never needs a second connection to a database its run may hold
exclusively (on a network filesystem), and so that readers can learn a run's status without opening its
database. Runs of an older afos have no such file; their database's meta holds the same fields.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from afos.errors import RunInUse
from afos.records.runs import RunKind, RunState, RunStatus
from afos.storage.atomic import write_text_atomically

#: The liveness file's name in a run folder.
STATE_FILE = "run.json"
#: The file a writing process holds locked (``flock``) while it works on the run.
LOCK_FILE = "afos.lock"
#: Seconds between heartbeats of a working run; a run whose last one is older than STALE_S is not alive.
HEARTBEAT_S = 10.0
STALE_S = 120.0


#: Bytes a ``run.json`` may hold; afos writes about 150.
STATE_LIMIT = 64 * 1024


def read_state(run_dir: str | Path) -> RunState | None:
    """The run's state from its ``run.json``; None when there is none or it does not read as one."""
    text = _small_regular_file(Path(run_dir) / STATE_FILE, STATE_LIMIT)
    if text is None:
        return None
    try:
        return RunState.from_dict(json.loads(text))
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return None


def _small_regular_file(path: Path, limit: int) -> str | None:
    """The text of ``path`` if it is a regular file (not a link) of at most ``limit`` bytes, else None.

    Why so careful: a run folder is untrusted input, and readers such as ``afos serve`` read many. A FIFO
    would block the reader forever (opened without blocking, then refused by its type), a link to
    ``/dev/zero`` would never end, a huge file would fill the memory."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
            return None
        return handle.read(limit + 1).decode("utf-8", errors="replace")


def write_state(run_dir: str | Path, state: RunState) -> None:
    """Replace the run's ``run.json`` atomically."""
    write_text_atomically(Path(run_dir) / STATE_FILE, json.dumps(state.to_dict()))


def is_alive(host: Any, pid: Any, heartbeat: Any, now: float | None = None) -> bool:
    """Whether the process that last worked on a run still does: its heartbeat is fresh and, on this host,
    its pid exists. Every run kind beats while it works, so a run without a heartbeat has no live process
    (it was killed before its first beat, or written by an afos whose grids did not beat)."""
    if not isinstance(heartbeat, (int, float)):
        return False
    if (now or time.time()) - heartbeat > STALE_S:
        return False
    if host == socket.gethostname() and isinstance(pid, int):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
    return True


def running_elsewhere(run_dir: str | Path) -> bool:
    """Whether a live process (of this or another host) works on the run now, by its ``run.json``."""
    state = read_state(run_dir)
    return state is not None and state.status is RunStatus.RUNNING and is_alive(state.host, state.pid,
                                                                                  state.heartbeat)


@contextlib.contextmanager
def writer_lock(run_dir: str | Path) -> Iterator[None]:
    """Be the only process that writes ``run_dir`` while the block runs, else raise :class:`RunInUse`.

    Why both checks: the ``flock`` on :data:`LOCK_FILE` is released by the kernel whatever ends the holder
    (kill -9 included), so a dead writer never blocks its resume; a live writer on another host, whose lock
    a network filesystem may not show here, is seen by its fresh heartbeat in ``run.json``.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / LOCK_FILE, "a") as handle:
        locked = True
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunInUse(_in_use(run_dir)) from None
        except OSError:  # a filesystem without locks (some network mounts): the heartbeat alone guards
            locked = False
        state = read_state(run_dir)
        if state is not None and (not locked or state.host != socket.gethostname()) and running_elsewhere(run_dir):
            raise RunInUse(_in_use(run_dir))
        try:
            yield
        finally:
            if locked:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _in_use(run_dir: Path) -> str:
    state = read_state(run_dir)
    who = f" (pid {state.pid} on {state.host})" if state is not None else ""
    return f"{run_dir} is being written by another afos process{who}; wait for it to end, or use another folder"


class Heartbeat:
    """Keeps a run's ``run.json`` true while a process works on it: ``running`` with this host, pid and a
    fresh heartbeat, then the status the work ends with (:meth:`finish`), written when the thread stops."""

    def __init__(self, run_dir: Path, kind: RunKind) -> None:
        self.run_dir = Path(run_dir)
        self.state = RunState(kind, RunStatus.RUNNING, socket.gethostname(), os.getpid(), time.time())
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="afos-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        write_state(self.run_dir, self.state)
        self._thread.start()
        return self

    def count(self, evaluations: int) -> None:
        """The number of training runs the database holds now, written at once (``afos runs`` shows it)."""
        with self._lock, contextlib.suppress(OSError):  # a full disk: the next beat tries again
            self.state = replace(self.state, evaluations=evaluations, heartbeat=time.time())
            write_state(self.run_dir, self.state)

    def finish(self, status: RunStatus) -> None:
        """The status to leave in ``run.json`` when the work ends."""
        with self._lock:
            self.state = replace(self.state, status=status)

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            with self._lock, contextlib.suppress(OSError):  # a full disk: the next beat tries again
                self.state = replace(self.state, heartbeat=time.time())
                write_state(self.run_dir, self.state)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=HEARTBEAT_S + 5)
        with self._lock, contextlib.suppress(OSError):
            write_state(self.run_dir, replace(self.state, heartbeat=time.time()))
