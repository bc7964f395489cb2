"""Executors: one contract body run over serial, process and Ray (every job reported once with the serial
record, a caller's error raised and not retried, a job that kills its worker failed after max_retries),
then what only local processes do: retries after kill -9, hard timeouts, Ctrl-C. Ray's own behaviour
(a cluster without room) is in test_ray_executor.py.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from afos.errors import ConfigError
from afos.execution.contract import Executor, Job
from afos.execution.factory import make_executor
from afos.execution.local import ProcessExecutor, SerialExecutor
from afos.execution.ray_cluster import RayExecutor
from afos.execution.worker import run_job
from afos.records.evaluation import FitnessResult

from .jobs import (
    ENDLESS,
    EXPRESSIONS,
    JOBS,
    PID_DIR,
    SLOW,
    announce_then_run,
    gone,
    kill_lethal_jobs,
    make_job,
    pid_of,
    run_all,
    timeless,
    worker_threads,
)

# ------------------------------------------------------------------------------- factory and serial


def test_make_executor_validates() -> None:
    with pytest.raises(ConfigError, match="unknown"):
        make_executor("threads")
    with pytest.raises(ConfigError, match="workers=0"):
        make_executor("process", workers=0)
    with pytest.raises(ConfigError, match="max_retries"):
        make_executor("serial", max_retries=-1)
    with make_executor("process", workers=3) as executor:  # no worker starts before the first job
        assert executor.width == 3


def test_ray_missing_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(ConfigError, match=r"pip install afos\[ray\]"):
        make_executor("ray")


# ------------------------------------------------------------------- the contract, over every executor


def _executor(kind: str, *, target: Callable[[Job], FitnessResult] = run_job, max_retries: int = 2) -> Executor:
    """Two workers for process and Ray (two actors sharing a logical GPU, one CPU thread each)."""
    if kind == "serial":
        return SerialExecutor()
    if kind == "process":
        return ProcessExecutor(workers=2, max_retries=max_retries, target=target)
    return RayExecutor(workers=2, workers_per_gpu=2, max_retries=max_retries, target=target)


#: Intra-op threads of each worker: records equal the serial ones computed with as many threads.
THREADS = {"serial": torch.get_num_threads, "process": lambda: max(1, torch.get_num_threads() // 2), "ray": lambda: 1}


@pytest.fixture(scope="module", params=["serial", "process", "ray"])
def healthy(request: pytest.FixtureRequest) -> Iterator[tuple[str, Executor]]:
    """Each executor once for the module, for the tests that leave its workers healthy (start-up costs)."""
    if request.param == "ray":
        request.getfixturevalue("ray_session")
    with _executor(request.param) as executor:
        yield request.param, executor


def test_every_job_is_reported_once_with_the_serial_record(healthy: tuple[str, Executor],
                                                           reference: Callable[[Job, int], dict]) -> None:
    kind, executor = healthy
    results = run_all(executor, JOBS)
    threads = THREADS[kind]()
    assert {k: timeless(r) for k, r in results.items()} == {j.key: reference(j, threads) for j in JOBS}
    assert [results[e]["status"] for e in EXPRESSIONS] == ["ok", "ok", "ok", "diverged"]


def test_a_small_network_trains_on_one_thread_and_the_caller_keeps_its_own() -> None:
    """A small fully connected network on one thread on every machine (on a busy CPU every extra thread
    waits); a convolutional one on the process's share. Both recorded; the caller's thread count is given
    back."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        small, convolutional = run_job(make_job("relu")), run_job(make_job("relu", model="lenet5"))
        assert (small.threads, convolutional.threads, torch.get_num_threads()) == (1, 2, 2)
    finally:
        torch.set_num_threads(before)
    assert small.ok and convolutional.ok


def test_a_caller_error_is_raised_not_retried(healthy: tuple[str, Executor]) -> None:
    _, executor = healthy
    delivered: list[str] = []
    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"lr=-1\.0"):
        executor.run([make_job("relu", key="bad", lr=-1.0), *JOBS[:1]], lambda job, record: delivered.append(job.key))
    assert time.monotonic() - started < 60 and "bad" not in delivered
    assert run_all(executor, JOBS[:1])  # the executor is still usable


@pytest.mark.parametrize("kind", ["process", pytest.param("ray", marks=pytest.mark.slow)])
def test_a_job_that_always_kills_its_worker_fails_after_max_retries(kind: str, request: pytest.FixtureRequest) -> None:
    """(Serial runs jobs in the driver itself: a job that kills its process ends the command.)"""
    if kind == "ray":
        request.getfixturevalue("ray_session")
    doomed = Job("lethal", JOBS[0].activation, JOBS[0].train)
    with _executor(kind, target=kill_lethal_jobs, max_retries=1) as executor:
        results = run_all(executor, [doomed, *JOBS])
    assert results["lethal"]["status"] == "error" and results["lethal"]["reason"].startswith("worker died 2 times: ")
    assert set(results["lethal"]) == set(results["relu"])  # a record like any other
    assert [results[e]["status"] for e in EXPRESSIONS] == ["ok", "ok", "ok", "diverged"]



# ------------------------------------------------------------------------------------------ process


@pytest.mark.slow
def test_worker_that_died_while_idle_is_replaced() -> None:
    with ProcessExecutor(workers=2) as executor:
        run_all(executor, JOBS[:2])  # both workers up
        victim = executor._slots.processes[0][0]
        victim.kill()  # SIGKILL, as from the OOM killer, between two jobs
        victim.join(10)
        results = run_all(executor, JOBS)
    assert [results[e]["status"] for e in EXPRESSIONS] == ["ok", "ok", "ok", "diverged"]


@pytest.mark.slow
def test_worker_killed_mid_job_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reference: Callable[[Job, int], dict]
) -> None:
    monkeypatch.setenv(PID_DIR, str(tmp_path))  # inherited by the workers spawned below
    killed: list[int] = []

    def kill_slow_job() -> None:
        pid = pid_of(tmp_path / "slow.pid")
        time.sleep(0.5)  # into the training loop
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    killer = threading.Thread(target=kill_slow_job, daemon=True)
    killer.start()
    with ProcessExecutor(workers=2, max_retries=1, target=announce_then_run) as executor:
        results = run_all(executor, [SLOW, *JOBS])
    killer.join()
    assert killed and pid_of(tmp_path / "slow.pid") != killed[0]  # the retry ran in a new worker
    threads = worker_threads(2)
    assert {k: timeless(r) for k, r in results.items()} == {j.key: reference(j, threads) for j in [SLOW, *JOBS]}


@pytest.mark.slow
def test_timeout_kills_and_replaces_the_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PID_DIR, str(tmp_path))
    with ProcessExecutor(workers=1, timeout_s=30, target=announce_then_run) as executor:
        run_all(executor, JOBS[:1])  # start the worker, so the limit below times training, not start-up
        executor.timeout_s = 2.0
        started = time.monotonic()
        results = run_all(executor, [ENDLESS])
        assert time.monotonic() - started < 2.0 + 5
        assert results["endless"]["status"] == "timeout" and "2 s" in results["endless"]["reason"]
        assert gone(pid_of(tmp_path / "endless.pid"))
        executor.timeout_s = 30
        assert run_all(executor, JOBS[:1])["relu"]["status"] == "ok"  # on a fresh worker


def test_interrupt_stops_running_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PID_DIR, str(tmp_path))

    def interrupt(job: Job, record: dict) -> None:
        pid_of(tmp_path / "endless.pid")  # the endless job is running
        raise KeyboardInterrupt

    with ProcessExecutor(workers=2, target=announce_then_run) as executor:
        with pytest.raises(KeyboardInterrupt):
            executor.run([ENDLESS, JOBS[0]], interrupt)
        assert gone(pid_of(tmp_path / "endless.pid"))


