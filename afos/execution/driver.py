"""Dispatch over worker slots: jobs to idle slots, results back, retries after deaths, hard timeouts.

One :class:`Driver` serves the process and the Ray executors alike, so a job lost with its worker, a job
past its wall-clock limit and a slot that can no longer be placed are handled, counted and recorded the
same way whichever executor runs them."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Protocol

from afos.execution.contract import Job, OnResult, failure_result
from afos.records.evaluation import FitnessResult, Status

_POLL_S = 1.0  # longest uninterrupted wait of the driver: bounds how late a timeout is noticed

log = logging.getLogger("afos.execution")

class WorkerDied(Exception):
    """The worker running a job disappeared; the job itself may be fine."""


class SlotLost(Exception):
    """The slot's worker cannot be started any more (its share of the cluster is gone, e.g. with a lost Ray
    node): the slot is retired and its job, which never started, goes back to the queue uncharged."""


class Slots(Protocol):
    """A fixed number of single-job worker slots: what :class:`Driver` needs from processes or actors."""

    width: int

    def submit(self, slot: int, job: Job) -> Hashable:
        """Start ``job`` on ``slot`` (starting its worker if there is none); return a handle to wait on."""

    def wait(self, handles: list[Hashable], timeout: float) -> list[Hashable]:
        """The handles finished within ``timeout`` seconds (maybe none)."""

    def collect(self, handle: Hashable, slot: int) -> FitnessResult:
        """The record of a finished handle; raises WorkerDied, SlotLost, or the job's own exception."""

    def kill(self, slot: int) -> None:
        """Stop the slot's worker now, whatever it is doing; the next submit starts a fresh one."""

    def usable(self) -> list[int]:
        """The slots that can still run jobs (all but those retired after a SlotLost)."""


@dataclass
class _Task:
    job: Job
    deaths: int = 0
    last_slot: int | None = None  # where it last died: a retry prefers another slot (e.g. another GPU)


@dataclass
class _Running:
    task: _Task
    slot: int
    started: float


class Driver:
    """One ``run`` of the process or Ray executor: dispatch to idle slots, collect, retry, time out.

    Whatever ends it early (Ctrl-C, a caller error, an exception in ``on_result``) kills the workers still
    running, so no orphan keeps training; idle workers are kept for the next call.
    """

    def __init__(self, slots: Slots, on_result: OnResult, max_retries: int, timeout_s: float | None) -> None:
        self.slots, self.on_result = slots, on_result
        self.max_retries, self.timeout_s = max_retries, timeout_s
        self.queue: deque[_Task] = deque()
        self.running: dict[Hashable, _Running] = {}
        self.idle = slots.usable()

    def run(self, jobs: Sequence[Job]) -> None:
        self.queue.extend(_Task(job) for job in jobs)
        try:
            while self.queue or self.running:
                if not self.idle and not self.running:
                    self._no_slots_left()
                    break
                self._dispatch()
                self._finish(self.slots.wait(list(self.running), self._next_wait()))
                self._expire()
        finally:
            for entry in self.running.values():
                self.slots.kill(entry.slot)

    def _dispatch(self) -> None:
        while self.queue and self.idle:
            task = self.queue.popleft()
            slot = next((s for s in self.idle if s != task.last_slot), self.idle[0])
            self.idle.remove(slot)
            self.running[self.slots.submit(slot, task.job)] = _Running(task, slot, time.monotonic())

    def _next_wait(self) -> float:
        if self.timeout_s is None:
            return _POLL_S
        first_deadline = min(r.started for r in self.running.values()) + self.timeout_s
        return max(0.0, min(_POLL_S, first_deadline - time.monotonic()))

    def _finish(self, done: list[Hashable]) -> None:
        """Deliver finished jobs; requeue or fail jobs whose worker died. A job's own exception is raised
        only after the other results finished in this round were delivered, so none is lost."""
        error: Exception | None = None
        for handle in done:
            entry = self.running.pop(handle)
            self.idle.append(entry.slot)
            try:
                record = self.slots.collect(handle, entry.slot)
            except SlotLost as lost:
                self._retire(entry, str(lost))
                continue
            except WorkerDied as death:
                self._died(entry, str(death))
                continue
            except Exception as exc:  # the caller's mistake (or a bug): re-raised below
                error = error or exc
                continue
            self.on_result(entry.task.job, record)
        if error is not None:
            raise error

    def _died(self, entry: _Running, reason: str) -> None:
        self.slots.kill(entry.slot)  # reap it and release its pool or actor; a fresh one starts on demand
        task = entry.task
        task.deaths, task.last_slot = task.deaths + 1, entry.slot
        if task.deaths <= self.max_retries:
            log.warning("worker %d lost while running %s (%s); retrying it", entry.slot, task.job.key, reason)
            self.queue.appendleft(task)
            return
        log.warning("worker %d lost while running %s (%s); giving up after %d deaths",
                    entry.slot, task.job.key, reason, task.deaths)
        seconds = time.monotonic() - entry.started
        times = "time" if task.deaths == 1 else "times"
        self.on_result(task.job, failure_result(Status.ERROR, f"worker died {task.deaths} {times}: {reason}", seconds))

    def _retire(self, entry: _Running, reason: str) -> None:
        self.slots.kill(entry.slot)
        self.idle.remove(entry.slot)
        self.queue.appendleft(entry.task)
        log.warning("worker %d retired (%s); its job %s goes to another worker", entry.slot, reason,
                    entry.task.job.key)

    def _no_slots_left(self) -> None:
        """Every slot was retired: report what is left as errors rather than wait for workers forever."""
        while self.queue:
            task = self.queue.popleft()
            self.on_result(task.job, failure_result(Status.ERROR, "no worker left: the cluster lost every worker's share", 0.0))

    def _expire(self) -> None:
        """Kill the workers of jobs past ``timeout_s`` and report those jobs as timed out."""
        if self.timeout_s is None:
            return
        now = time.monotonic()
        for handle, entry in list(self.running.items()):
            if now - entry.started < self.timeout_s:
                continue
            del self.running[handle]
            self.slots.kill(entry.slot)
            self.idle.append(entry.slot)
            reason = f"killed by the executor after {self.timeout_s:g} s of wall-clock time since dispatch"
            self.on_result(entry.task.job, failure_result(Status.TIMEOUT, reason, now - entry.started))
