"""The Ray executor: long-lived actors on a local or remote Ray cluster (an existing engine, not a home-made one)."""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Hashable, Sequence
from typing import Any

import torch

from afos.errors import ConfigError
from afos.execution.contract import Closing, Job, OnResult, Target, check_options
from afos.execution.driver import Driver, SlotLost, WorkerDied
from afos.execution.local import cpu_count, visible_gpus
from afos.execution.worker import run_job
from afos.records.evaluation import FitnessResult

_REASON_LIMIT = 300  # characters of a worker-death message kept in a record
_PLACE_S = 600.0  # longest wait for Ray to start an actor while the cluster seems to have room for it
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

class _RayWorker:
    """The body of a Ray actor: one long-lived process per slot, so torch and the dataset cache are
    initialised once. Ray sets ``CUDA_VISIBLE_DEVICES`` to the actor's GPU before this runs."""

    def __init__(self, threads: int, target: Target) -> None:
        torch.set_num_threads(threads)
        self.target = target

    def run(self, job: Job) -> FitnessResult:
        return self.target(job)


def _import_ray() -> Any:
    try:
        import ray  # optional dependency, imported only when asked for
    except ImportError as exc:  # absent, or installed but broken: say which
        raise ConfigError(f"the ray executor needs Ray: pip install afos[ray] ({exc})") from None
    return ray


def _connect(ray: Any, address: str | None) -> bool:
    """Join the cluster at ``address`` (or ``$RAY_ADDRESS``), else start a local one sized to this machine.

    Returns whether this call started the connection (and so must shut it down); a session opened by the
    caller, e.g. a test or a notebook, is used as is and left open.
    """
    if ray.is_initialized():
        return False
    target = address or os.environ.get("RAY_ADDRESS")
    try:
        if target:
            ray.init(address=target, logging_level=logging.WARNING)
        else:
            ray.init(
                address="local",  # never the cluster a stale ray_current_cluster file names (Ray's default)
                num_cpus=cpu_count(),
                num_gpus=len(visible_gpus()),
                include_dashboard=False,
                logging_level=logging.WARNING,
            )
    except ConnectionError as exc:
        raise ConfigError(f"cannot join the Ray cluster at {target}: {exc}") from None
    return True


def _one_line(exc: BaseException) -> str:
    """Ray's message, on one line, without its terminal colours, short enough for a record."""
    text = " ".join(_ANSI.sub("", str(exc)).split())
    return (text or type(exc).__name__)[:_REASON_LIMIT]


def _room(nodes: list[dict[str, Any]], demand: dict[str, float]) -> int:
    """How many actors that each need ``demand`` (Ray resource -> amount) the alive ``ray.nodes()`` hold."""
    return sum(
        min(int(node["Resources"].get(name, 0.0) / need + 1e-9) for name, need in demand.items())
        for node in nodes
        if node["Alive"]
    )


class _RaySlots:
    """One actor per slot, created on first use and replaced (killed, recreated) when lost.

    Ray notices a lost node itself (the GCS health-checks every raylet) and fails the tasks of the actors
    that lived there with ``RayActorError``: a worker death, retried like a killed process. Ray's own actor
    restarts (``max_restarts``, ``max_task_retries``) stay off, so that retries are counted, placed and
    recorded the same way for every executor, and a timed-out actor is not brought back. What Ray does not
    bound is the start of a replacement: an actor the remaining nodes have no room for waits for resources
    forever. So each new actor's ``__ray_ready__`` is watched, and while it has not started its slot is
    retired once the alive nodes cannot hold every slot any more (or after ``_PLACE_S`` without a start).
    """

    def __init__(self, ray: Any, width: int, demand: dict[str, float], threads: int, target: Target) -> None:
        self.ray, self.width, self.demand, self.threads, self.target = ray, width, demand, threads, target
        options = {"num_gpus": demand["GPU"], "num_cpus": 0} if "GPU" in demand else {"num_cpus": demand["CPU"]}
        self.actor_class = ray.remote(_RayWorker).options(max_restarts=0, **options)
        self.actors: list[Any] = [None] * width
        self.handles: dict[int, Hashable] = {}  # slot -> the task it runs
        self.starting: dict[int, tuple[Any, float]] = {}  # slot -> (its new actor's ready ref, creation time)
        self.retired: dict[int, str] = {}  # slot -> why it can no longer be placed

    def submit(self, slot: int, job: Job) -> Hashable:
        if self.actors[slot] is None:
            self.actors[slot] = self.actor_class.remote(self.threads, self.target)
            self.starting[slot] = (self.actors[slot].__ray_ready__.remote(), time.monotonic())
        self.handles[slot] = self.actors[slot].run.remote(job)
        return self.handles[slot]

    def wait(self, handles: list[Hashable], timeout: float) -> list[Hashable]:
        ready, _ = self.ray.wait(handles, num_returns=1, timeout=timeout)
        if ready:  # take every other result that is already in, in one round
            ready, _ = self.ray.wait(handles, num_returns=len(handles), timeout=0)
        stuck = [self.handles[slot] for slot in self._unplaceable() if self.handles.get(slot) in handles]
        return list(dict.fromkeys([*ready, *stuck]))

    def _unplaceable(self) -> list[int]:
        """Newly retired slots: their actor has not started, and the alive nodes have no room for it."""
        if not self.starting:
            return []
        refs = [ref for ref, _ in self.starting.values()]
        started, _ = self.ray.wait(refs, num_returns=len(refs), timeout=0)
        for slot, (ref, _) in list(self.starting.items()):
            if ref in started:
                del self.starting[slot]
        if not self.starting:
            return []
        room, active = _room(self.ray.nodes(), self.demand), self.width - len(self.retired)
        retired = []
        for slot, (_, created) in self.starting.items():
            if slot in self.retired:
                continue
            if room < active:
                self.retired[slot] = f"the alive Ray nodes have room for {room} workers, not {active}"
            elif time.monotonic() - created > _PLACE_S:
                self.retired[slot] = f"Ray did not start its actor within {_PLACE_S:g} s"
            else:
                continue
            active -= 1
            retired.append(slot)
        return retired

    def collect(self, handle: Hashable, slot: int) -> FitnessResult:
        if slot in self.retired:
            raise SlotLost(self.retired[slot])
        exceptions = self.ray.exceptions
        try:
            return self.ray.get(handle)  # type: ignore[no-any-return]
        except exceptions.RayActorError as exc:
            if getattr(exc, "actor_init_failed", False):  # e.g. afos not importable on a node: no retry helps
                raise ConfigError(f"a Ray worker could not start: {_one_line(exc)}") from None
            raise WorkerDied(_one_line(exc)) from None
        except exceptions.RayTaskError as exc:
            raise (exc.cause or exc) from None  # the job's own exception, e.g. ConfigError, unwrapped

    def kill(self, slot: int) -> None:
        actor, self.actors[slot] = self.actors[slot], None
        self.starting.pop(slot, None)
        self.handles.pop(slot, None)
        if actor is not None:
            self.ray.kill(actor, no_restart=True)

    def usable(self) -> list[int]:
        return [slot for slot in range(self.width) if slot not in self.retired]

    def close(self) -> None:
        for slot in range(self.width):
            self.kill(slot)


class RayExecutor(Closing):
    """Long-lived Ray actors on a local or remote cluster.

    With GPUs in the cluster there are ``workers_per_gpu`` actors per GPU (``num_gpus=1/K``, no CPU
    reservation, so CPUs never limit GPU placement); without, one actor per CPU group
    (``num_cpus=cpus // workers``). ``workers`` caps the count at what the cluster can place at once, so
    that no actor waits forever for resources.
    """

    def __init__(
        self,
        *,
        workers: int | None = None,
        workers_per_gpu: int = 1,
        address: str | None = None,
        max_retries: int = 2,
        timeout_s: float | None = None,
        target: Target = run_job,
    ) -> None:
        check_options(workers, workers_per_gpu, max_retries, timeout_s)
        self._ray = _import_ray()
        self._owns_session = _connect(self._ray, address)
        resources = self._ray.cluster_resources()
        cpus, gpus = int(resources.get("CPU", 1)), int(resources.get("GPU", 0))
        capacity = gpus * workers_per_gpu or max(1, cpus)
        self.width = min(workers or capacity, capacity)
        threads = max(1, cpus // self.width)
        demand = {"GPU": 1 / workers_per_gpu} if gpus else {"CPU": float(threads)}
        self._slots = _RaySlots(self._ray, self.width, demand, threads, target)
        self.max_retries, self.timeout_s = max_retries, timeout_s

    def run(self, jobs: Sequence[Job], on_result: OnResult) -> None:
        Driver(self._slots, on_result, self.max_retries, self.timeout_s).run(jobs)

    def close(self) -> None:
        if not self._ray.is_initialized():
            return
        self._slots.close()
        if self._owns_session:
            self._ray.shutdown()
