"""Whether the process working on a run is alive: a heartbeat, host and pid that readers can check."""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from afos.storage.store import RunStore

#: Seconds between heartbeats of a working run; a run whose last one is older than STALE_S is not alive.
HEARTBEAT_S = 10.0
STALE_S = 120.0


class Heartbeat:
    """Writes ``host``, ``pid`` and, every :data:`HEARTBEAT_S`, ``heartbeat`` (unix seconds) into a run's
    meta from a thread of its own (with its own connection), so that readers can tell a working run from
    one whose process is gone, also while a single training run takes hours."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="afos-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        with RunStore(self.path) as store, store.transaction():
            store.set_meta("host", socket.gethostname())
            store.set_meta("pid", os.getpid())
            store.set_meta("heartbeat", time.time())
        self._thread.start()
        return self

    def _beat(self) -> None:
        with RunStore(self.path) as store:
            while not self._stop.wait(HEARTBEAT_S):
                try:
                    store.set_meta("heartbeat", time.time())
                except sqlite3.Error:  # a full disk or a lock: the next beat tries again
                    continue

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=HEARTBEAT_S + 5)


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
