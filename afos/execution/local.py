"""Executors on this machine: serial (in the driver) and process (spawned workers, per GPU or per CPU)."""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Hashable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

import torch

from afos.execution.contract import Closing, Job, OnResult, Target, check_options
from afos.execution.driver import Driver, WorkerDied
from afos.execution.worker import clear_datasets, run_job
from afos.records.evaluation import FitnessResult

_JOIN_S = 10.0  # grace for a killed worker to be reaped, so its GPU memory is free before a replacement starts

class SerialExecutor(Closing):
    """Jobs one after another in this process.

    It cannot enforce a wall-clock timeout (nothing can interrupt a running torch op from the same
    thread); ``TrainConfig.timeout_s`` is the limit here.
    """

    width = 1

    def run(self, jobs: Sequence[Job], on_result: OnResult) -> None:
        for job in jobs:
            on_result(job, run_job(job))

    def close(self) -> None:
        clear_datasets()  # the driver lives on after a search; the datasets need not


def cpu_count() -> int:
    """CPUs this process may use: under Slurm or taskset that is fewer than the machine has."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity masks
        return os.cpu_count() or 1


def visible_gpus() -> list[str]:
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

    def submit(self, slot: int, job: Job) -> Future[FitnessResult]:
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

    def collect(self, handle: Hashable, slot: int) -> FitnessResult:
        try:
            return handle.result()  # type: ignore[attr-defined, no-any-return]
        except BrokenProcessPool:
            raise WorkerDied(_death_reason(self.processes[slot])) from None

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
    slots: list[str | None] = [gpu for _ in range(workers_per_gpu) for gpu in visible_gpus()]
    if not slots:
        return [None] * (workers or cpu_count())
    return slots[: workers or len(slots)]


class ProcessExecutor(Closing):
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
        check_options(workers, workers_per_gpu, max_retries, timeout_s)
        slots = _slot_gpus(workers, workers_per_gpu)
        # A share of this process's torch threads: one worker trains exactly like serial (same reductions,
        # same numbers), and OMP_NUM_THREADS or a torch.set_num_threads() of the caller is honoured.
        self._slots = _ProcessSlots(slots, max(1, torch.get_num_threads() // len(slots)), target)
        self.width = len(slots)
        self.max_retries, self.timeout_s = max_retries, timeout_s

    def run(self, jobs: Sequence[Job], on_result: OnResult) -> None:
        Driver(self._slots, on_result, self.max_retries, self.timeout_s).run(jobs)

    def close(self) -> None:
        self._slots.close()
