"""Where fitness runs happen: in this process, in local worker processes, or on a Ray cluster.

Search, ``afos evaluate`` and ``afos compare`` describe each training run as a :class:`Job` (plain data,
so it crosses process and network boundaries) and hand lists of them to an :class:`Executor`. Whatever
the executor, every result comes back to the *driver* through ``on_result``; the driver alone writes the
run database, so there is exactly one SQLite writer however many workers train.

* ``serial`` runs jobs in the driver process: no start-up cost, the reference behaviour.
* ``process`` runs one spawned worker process per *slot*: ``workers_per_gpu`` slots per visible GPU
  (each pinned to its GPU through ``CUDA_VISIBLE_DEVICES``), else ``workers`` CPU slots. Each slot is its
  own single-worker ``ProcessPoolExecutor``, so a worker that dies or is killed for a timeout breaks only
  its own pool: jobs on other workers keep running and are neither lost nor charged an attempt.
* ``ray`` runs long-lived actors (one per GPU share, or per CPU group) on a local or remote Ray cluster.

Workers are long-lived: torch is imported, CUDA initialised and the dataset loaded once per worker, not
once per job. A job's result depends only on the job (training is seeded), so on the CPU all executors
return identical records (except ``seconds``) when their workers use the same number of intra-op threads;
with different thread counts float reductions are summed in a different order and losses may differ in the
last bits.

Faults (process and ray): a worker that dies in the middle of a job (kill -9, a CUDA error that takes the
process down, the OOM killer) is replaced and the job retried, preferably on another slot, up to
``max_retries`` times; after that the job is reported as status ``error``, reason ``worker died N times: ...``.
Each loss is logged (``afos.executors`` logger, a warning). On Ray, a worker lost with its node is such a
death; a replacement the remaining nodes have no room for retires its slot instead of waiting forever (see
:class:`_RaySlots`), and with no slot left the remaining jobs are reported as ``error``.
``timeout_s`` is a hard wall-clock limit per job enforced by the driver, counted from dispatch (so it includes
a new worker's start-up): the worker is killed and replaced and the job reported as ``timeout``, not retried,
since a slow candidate would be slow again. ``TrainConfig.timeout_s`` remains the soft, in-run limit; set the
executor's well above it, as a guard against hangs. Mistakes of the caller (``ConfigError``,
``DatasetNotFound``, any exception raised by :func:`run_job`) are not retried: the run stops and the
exception reaches the driver, after the results already finished have been delivered.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import re
import signal
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import torch

from afos.compile import ActivationSpec, activation_factory
from afos.data import Dataset, load_dataset
from afos.errors import ConfigError
from afos.train import FitnessResult, TrainConfig, run_fitness

__all__ = ["KINDS", "Executor", "Job", "ProcessExecutor", "RayExecutor", "SerialExecutor", "make_executor", "run_job"]

KINDS: tuple[str, ...] = ("serial", "process", "ray")

_POLL_S = 1.0  # longest uninterrupted wait of the driver: bounds how late a timeout is noticed
_JOIN_S = 10.0  # grace for a killed worker to be reaped, so its GPU memory is free before a replacement starts
_REASON_LIMIT = 300  # characters of a worker-death message kept in a record
_PLACE_S = 600.0  # longest wait for Ray to start an actor while the cluster seems to have room for it
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    """One training run as plain data: it is pickled to workers, so it never holds modules or trees.

    ``key`` is the caller's identifier (e.g. ``"{fingerprint}|{task}|{seed}"``), ``activation`` an
    :meth:`ActivationSpec.to_dict`, ``train`` a :meth:`TrainConfig.to_dict` with dataset, model, budget
    and seed already set.
    """

    key: str
    activation: dict[str, Any]
    train: dict[str, Any]


Record = dict[str, Any]
OnResult = Callable[[Job, Record], None]
Target = Callable[[Job], Record]


# ------------------------------------------------------------------------------------ in the worker


def run_job(job: Job) -> Record:
    """Train one job and return ``FitnessResult.to_dict()``.

    A bad candidate never raises (run_fitness turns its failure into a status); an invalid config or a
    missing dataset raises, because retrying the caller's mistake elsewhere would fail the same way.
    """
    config = TrainConfig.from_dict(job.train)
    dataset = _dataset(config.dataset, config.data_dir, config.val_fraction, config.seed, config.image_size,
                       config.target)
    factory = activation_factory(ActivationSpec(**job.activation))
    return run_fitness(factory, config, dataset=dataset).to_dict()


@functools.lru_cache(maxsize=4)
def _dataset(
    name: str, data_dir: str | None, val_fraction: float, seed: int, image_size: int, target: str | None
) -> Dataset:
    """Datasets loaded in this process, so a worker reads CIFAR once, not once per candidate.

    The split depends on the seed, so a search with several fitness seeds holds one copy per seed; four
    bounds the memory when seeds or tasks vary more.
    """
    return load_dataset(name, data_dir, val_fraction=val_fraction, seed=seed, image_size=image_size, target=target)


def _failure(status: str, reason: str, seconds: float) -> Record:
    """A record for a job the executor had to give up on, with the same keys as a trained one."""
    return FitnessResult(status=status, reason=reason, seconds=seconds).to_dict()


# ------------------------------------------------------------------------------------ the interface


class Executor(Protocol):
    """Runs jobs; ``width`` is how many run at once (callers size their batches by it)."""

    width: int

    def run(self, jobs: Sequence[Job], on_result: OnResult) -> None:
        """Run every job and call ``on_result(job, record)`` in this (driver) process as each finishes, in
        any order, exactly once per job; return when all are done. Ctrl-C stops the workers promptly."""

    def close(self) -> None:
        """Stop the workers and release what they hold; the executor is unusable afterwards."""

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc: object) -> None: ...


_C = TypeVar("_C", bound="_Closing")


class _Closing:
    """Context-manager support, so ``with make_executor(...) as executor:`` always stops workers."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: _C) -> _C:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SerialExecutor(_Closing):
    """Jobs one after another in this process.

    It cannot enforce a wall-clock timeout (nothing can interrupt a running torch op from the same
    thread); ``TrainConfig.timeout_s`` is the limit here.
    """

    width = 1

    def run(self, jobs: Sequence[Job], on_result: OnResult) -> None:
        for job in jobs:
            on_result(job, run_job(job))

    def close(self) -> None:
        _dataset.cache_clear()  # the driver lives on after a search; the datasets need not


# ------------------------------------------------------------------------ scheduling over worker slots


class _WorkerDied(Exception):
    """The worker running a job disappeared; the job itself may be fine."""


class _SlotLost(Exception):
    """The slot's worker cannot be started any more (its share of the cluster is gone, e.g. with a lost Ray
    node): the slot is retired and its job, which never started, goes back to the queue uncharged."""


class _Slots(Protocol):
    """A fixed number of single-job worker slots: what :class:`_Driver` needs from processes or actors."""

    width: int

    def submit(self, slot: int, job: Job) -> Hashable:
        """Start ``job`` on ``slot`` (starting its worker if there is none); return a handle to wait on."""

    def wait(self, handles: list[Hashable], timeout: float) -> list[Hashable]:
        """The handles finished within ``timeout`` seconds (maybe none)."""

    def collect(self, handle: Hashable, slot: int) -> Record:
        """The record of a finished handle; raises _WorkerDied, _SlotLost, or the job's own exception."""

    def kill(self, slot: int) -> None:
        """Stop the slot's worker now, whatever it is doing; the next submit starts a fresh one."""

    def usable(self) -> list[int]:
        """The slots that can still run jobs (all but those retired after a _SlotLost)."""


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


class _Driver:
    """One ``run`` of the process or Ray executor: dispatch to idle slots, collect, retry, time out.

    Whatever ends it early (Ctrl-C, a caller error, an exception in ``on_result``) kills the workers still
    running, so no orphan keeps training; idle workers are kept for the next call.
    """

    def __init__(self, slots: _Slots, on_result: OnResult, max_retries: int, timeout_s: float | None) -> None:
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
            except _SlotLost as lost:
                self._retire(entry, str(lost))
                continue
            except _WorkerDied as death:
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
        self.on_result(task.job, _failure("error", f"worker died {task.deaths} {times}: {reason}", seconds))

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
            self.on_result(task.job, _failure("error", "no worker left: the cluster lost every worker's share", 0.0))

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
            self.on_result(entry.task.job, _failure("timeout", reason, now - entry.started))


def _check(workers: int | None, workers_per_gpu: int, max_retries: int, timeout_s: float | None) -> None:
    if workers is not None and workers < 1:
        raise ConfigError(f"workers={workers} is invalid; expected an integer >= 1")
    if workers_per_gpu < 1:
        raise ConfigError(f"workers_per_gpu={workers_per_gpu} is invalid; expected an integer >= 1")
    if max_retries < 0:
        raise ConfigError(f"max_retries={max_retries} is invalid; expected an integer >= 0")
    if timeout_s is not None and not timeout_s > 0:
        raise ConfigError(f"timeout_s={timeout_s} is invalid; expected a number > 0")


def _cpu_count() -> int:
    """CPUs this process may use: under Slurm or taskset that is fewer than the machine has."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity masks
        return os.cpu_count() or 1


def _visible_gpus() -> list[str]:
    """Ids of the GPUs this process sees, as ``CUDA_VISIBLE_DEVICES`` entries for the workers.

    Under Slurm ``CUDA_VISIBLE_DEVICES`` may be ``"2,3"``: worker 0 must get ``"2"``, not ``"0"``.
    """
    count = torch.cuda.device_count()
    declared = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [d.strip() for d in declared.split(",") if d.strip()] if declared is not None else []
    return (ids or [str(i) for i in range(count)])[:count]


# ------------------------------------------------------------------------------------------ process


def _init_worker(gpu: str | None, threads: int) -> None:
    """First code in a worker process. Pins it to its GPU before torch initialises CUDA (CUDA reads the
    variable once), sizes its CPU thread pool so workers do not oversubscribe the cores, and leaves Ctrl-C
    to the driver, which kills workers itself instead of letting each print a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    torch.set_num_threads(threads)


def _death_reason(processes: list[multiprocessing.process.BaseProcess]) -> str:
    for process in processes:
        process.join(_JOIN_S)
        code = process.exitcode
        if code is not None and code < 0:
            return f"worker process killed by {signal.Signals(-code).name}"
        if code is not None:
            return f"worker process exited with code {code}"
    return "worker process terminated abruptly"


class _ProcessSlots:
    """One single-worker ProcessPoolExecutor per slot, so a death or a kill affects one job only."""

    def __init__(self, gpus: list[str | None], threads: int, target: Target) -> None:
        self.gpus, self.threads, self.target = gpus, threads, target
        self.width = len(gpus)
        self.context = multiprocessing.get_context("spawn")  # fork would copy the driver's CUDA state and locks
        self.pools: list[ProcessPoolExecutor | None] = [None] * self.width
        self.processes: list[list[multiprocessing.process.BaseProcess]] = [[] for _ in gpus]

    def submit(self, slot: int, job: Job) -> Future[Record]:
        try:
            future = self._pool(slot).submit(self.target, job)
        except BrokenProcessPool:  # its worker died while idle (e.g. the OOM killer chose it): replace it
            self.kill(slot)
            future = self._pool(slot).submit(self.target, job)
        # The pool forgets its processes once broken; keep them to kill, reap and explain deaths.
        self.processes[slot] = list((getattr(self.pools[slot], "_processes", None) or {}).values())
        return future

    def _pool(self, slot: int) -> ProcessPoolExecutor:
        pool = self.pools[slot]
        if pool is None:
            pool = ProcessPoolExecutor(
                1, mp_context=self.context, initializer=_init_worker, initargs=(self.gpus[slot], self.threads)
            )
            self.pools[slot] = pool
        return pool

    def wait(self, handles: list[Hashable], timeout: float) -> list[Hashable]:
        done, _ = wait(handles, timeout=timeout, return_when=FIRST_COMPLETED)  # type: ignore[arg-type]
        return list(done)

    def collect(self, handle: Hashable, slot: int) -> Record:
        try:
            return handle.result()  # type: ignore[attr-defined, no-any-return]
        except BrokenProcessPool:
            raise _WorkerDied(_death_reason(self.processes[slot])) from None

    def kill(self, slot: int) -> None:
        pool, processes = self.pools[slot], self.processes[slot]
        self.pools[slot], self.processes[slot] = None, []
        for process in processes:
            if process.is_alive():
                process.kill()
        for process in processes:
            process.join(_JOIN_S)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def usable(self) -> list[int]:
        return list(range(self.width))  # a local process always fits: no slot is ever retired

    def close(self) -> None:
        for slot in range(self.width):
            self.kill(slot)


def _slot_gpus(workers: int | None, workers_per_gpu: int) -> list[str | None]:
    """The GPU of each worker slot (None: a CPU worker). GPUs are interleaved (0, 1, 0, 1, ...) so that
    capping ``workers`` below the GPU slots still spreads the workers over the GPUs."""
    slots: list[str | None] = [gpu for _ in range(workers_per_gpu) for gpu in _visible_gpus()]
    if not slots:
        return [None] * (workers or _cpu_count())
    return slots[: workers or len(slots)]


class ProcessExecutor(_Closing):
    """Spawned worker processes on this machine: ``workers_per_gpu`` per visible GPU, else CPU workers.

    ``target`` is the function workers run (:func:`run_job`); tests substitute one that kills its worker.
    """

    def __init__(
        self,
        *,
        workers: int | None = None,
        workers_per_gpu: int = 1,
        max_retries: int = 2,
        timeout_s: float | None = None,
        target: Target = run_job,
    ) -> None:
        _check(workers, workers_per_gpu, max_retries, timeout_s)
        slots = _slot_gpus(workers, workers_per_gpu)
        # A share of this process's torch threads: one worker trains exactly like serial (same reductions,
        # same numbers), and OMP_NUM_THREADS or a torch.set_num_threads() of the caller is honoured.
        self._slots = _ProcessSlots(slots, max(1, torch.get_num_threads() // len(slots)), target)
        self.width = len(slots)
        self.max_retries, self.timeout_s = max_retries, timeout_s

    def run(self, jobs: Sequence[Job], on_result: OnResult) -> None:
        _Driver(self._slots, on_result, self.max_retries, self.timeout_s).run(jobs)

    def close(self) -> None:
        self._slots.close()


# ---------------------------------------------------------------------------------------------- ray


class _RayWorker:
    """The body of a Ray actor: one long-lived process per slot, so torch and the dataset cache are
    initialised once. Ray sets ``CUDA_VISIBLE_DEVICES`` to the actor's GPU before this runs."""

    def __init__(self, threads: int, target: Target) -> None:
        torch.set_num_threads(threads)
        self.target = target

    def run(self, job: Job) -> Record:
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
                num_cpus=_cpu_count(),
                num_gpus=len(_visible_gpus()),
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

    def collect(self, handle: Hashable, slot: int) -> Record:
        if slot in self.retired:
            raise _SlotLost(self.retired[slot])
        exceptions = self.ray.exceptions
        try:
            return self.ray.get(handle)  # type: ignore[no-any-return]
        except exceptions.RayActorError as exc:
            if getattr(exc, "actor_init_failed", False):  # e.g. afos not importable on a node: no retry helps
                raise ConfigError(f"a Ray worker could not start: {_one_line(exc)}") from None
            raise _WorkerDied(_one_line(exc)) from None
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


class RayExecutor(_Closing):
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
        _check(workers, workers_per_gpu, max_retries, timeout_s)
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
        _Driver(self._slots, on_result, self.max_retries, self.timeout_s).run(jobs)

    def close(self) -> None:
        if not self._ray.is_initialized():
            return
        self._slots.close()
        if self._owns_session:
            self._ray.shutdown()


# ------------------------------------------------------------------------------------------ factory


def make_executor(
    kind: str = "serial",
    *,
    workers: int | None = None,
    workers_per_gpu: int = 1,
    address: str | None = None,
    max_retries: int = 2,
    timeout_s: float | None = None,
) -> Executor:
    """The executor for ``--executor KIND``; see the module docstring for what each option means.

    ``address`` applies to ``ray`` only; ``serial`` ignores the worker, retry and timeout options
    (it has one worker, which is the driver itself).
    """
    if kind == "serial":
        _check(workers, workers_per_gpu, max_retries, timeout_s)
        return SerialExecutor()
    if kind == "process":
        return ProcessExecutor(
            workers=workers, workers_per_gpu=workers_per_gpu, max_retries=max_retries, timeout_s=timeout_s
        )
    if kind == "ray":
        return RayExecutor(
            workers=workers,
            workers_per_gpu=workers_per_gpu,
            address=address,
            max_retries=max_retries,
            timeout_s=timeout_s,
        )
    raise ConfigError(f"executor {kind!r} is unknown; expected one of {', '.join(KINDS)}")
