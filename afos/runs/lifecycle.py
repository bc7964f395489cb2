"""The one run lifecycle: running with a heartbeat, then finished, stopped, interrupted or failed."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import Callable

from afos.storage.store import RunStore


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

def tracked(store: RunStore, work: Callable[[], str]) -> str:
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
