"""Jobs, worker functions and helpers shared by the executor tests. Worker functions live in this importable
module because spawned processes import them by name (and Ray workers find it on the PYTHONPATH that the
Ray session fixture gives them). CPU only, digits + mlp at 1 epoch, so every job trains in well under a second.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from afos.activation.spec import resolve_activation
from afos.execution.contract import Executor, Job
from afos.execution.worker import run_job
from afos.records.evaluation import FitnessResult
from afos.training.config import TrainConfig

EXPRESSIONS = ("relu", "silu", "-x*erf(exp(-x))", "exp(exp(exp(x)))")  # the last one diverges
PID_DIR = "AFOS_TEST_PID_DIR"  # where announce_then_run writes "<key>.pid"
REPO = Path(__file__).resolve().parents[2]
#: Logical GPUs of the test Ray instance (torch still sees no CUDA): the contract's module-long executor
#: holds one, a test's own executor the other.
RAY_GPUS = 2


def make_job(expression: str, key: str | None = None, **train: Any) -> Job:
    config = TrainConfig(**{"dataset": "digits", "model": "mlp", "epochs": 1.0, **train})
    return Job(key or expression, resolve_activation(expression), config)


JOBS = [make_job(e) for e in EXPRESSIONS]
SLOW = make_job("silu", key="slow", epochs=300)  # a few seconds: long enough to be killed in the middle
ENDLESS = make_job("relu", key="endless", epochs=1e6)  # only ever stopped by a timeout or a kill


# ------------------------------------------------------------------------------- worker functions


def announce_then_run(job: Job) -> FitnessResult:
    """run_job, after writing this worker's pid where the test can find it (atomically: it polls)."""
    path = Path(os.environ[PID_DIR]) / f"{job.key}.pid"
    path.with_suffix(".tmp").write_text(str(os.getpid()))
    path.with_suffix(".tmp").replace(path)
    return run_job(job)


def kill_lethal_jobs(job: Job) -> FitnessResult:
    """run_job, except that a job keyed "lethal" kills its worker every time, like a CUDA crash would."""
    if job.key == "lethal":
        os.kill(os.getpid(), signal.SIGKILL)
    return run_job(job)


# ------------------------------------------------------------------------------------------ helpers


def run_all(
    executor: Executor, jobs: Sequence[Job], on_result: Callable[[Job, FitnessResult], None] | None = None
) -> dict[str, dict]:
    """Run and collect records (as plain data) by key, checking that each job is reported exactly once."""
    results: dict[str, dict] = {}

    def collect(job: Job, record: FitnessResult) -> None:
        assert job.key not in results, f"{job.key} reported twice"
        assert isinstance(record, FitnessResult)
        results[job.key] = record.to_dict()
        if on_result is not None:
            on_result(job, record)

    executor.run(jobs, collect)
    assert set(results) == {job.key for job in jobs}
    return results


def timeless(record: dict) -> dict:
    """A record without its wall-clock times (run and kernel compile seconds), the only part allowed to
    differ between executors: a retry in a fresh worker builds its kernels again."""
    history = [{k: v for k, v in entry.items() if k != "seconds"} for entry in record["history"]]
    return {**{k: v for k, v in record.items() if k not in ("seconds", "compile_seconds")}, "history": history}


def pid_of(path: Path, timeout: float = 120.0) -> int:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)
    return int(path.read_text())


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def worker_threads(workers: int) -> int:
    """Intra-op threads of each CPU worker of a process executor (it shares out this process's threads)."""
    return max(1, torch.get_num_threads() // workers)
