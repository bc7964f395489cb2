"""Executors: the same records everywhere, retries after kill -9, failure after max_retries, timeouts, Ctrl-C,
caller errors. CPU only, digits + mlp at 1 epoch, so every job trains in well under a second.

Worker functions other than run_job live here at module level: spawned processes import them by name, and the
Ray session below puts the repository on its workers' PYTHONPATH for the same reason.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import torch

from afos.activation.spec import resolve_activation
from afos.errors import ConfigError
from afos.execution import ray_cluster
from afos.execution.contract import Executor, Job
from afos.execution.factory import make_executor
from afos.execution.local import ProcessExecutor
from afos.execution.ray_cluster import RayExecutor
from afos.execution.worker import run_job
from afos.records.evaluation import FitnessResult
from afos.training.config import TrainConfig

EXPRESSIONS = ("relu", "silu", "-x*erf(exp(-x))", "exp(exp(exp(x)))")  # the last one diverges
PID_DIR = "AFOS_TEST_PID_DIR"  # where _announce_then_run writes "<key>.pid"
REPO = Path(__file__).resolve().parents[1]


def _job(expression: str, key: str | None = None, **train: Any) -> Job:
    config = TrainConfig(**{"dataset": "digits", "model": "mlp", "epochs": 1.0, **train})
    return Job(key or expression, resolve_activation(expression), config)


JOBS = [_job(e) for e in EXPRESSIONS]
SLOW = _job("silu", key="slow", epochs=300)  # a few seconds: long enough to be killed in the middle
ENDLESS = _job("relu", key="endless", epochs=1e6)  # only ever stopped by a timeout or a kill


# ------------------------------------------------------------------------------- worker functions


def _announce_then_run(job: Job) -> FitnessResult:
    """run_job, after writing this worker's pid where the test can find it (atomically: it polls)."""
    path = Path(os.environ[PID_DIR]) / f"{job.key}.pid"
    path.with_suffix(".tmp").write_text(str(os.getpid()))
    path.with_suffix(".tmp").replace(path)
    return run_job(job)


def _lethal(job: Job) -> FitnessResult:
    """run_job, except that a job keyed "lethal" kills its worker every time, like a CUDA crash would."""
    if job.key == "lethal":
        os.kill(os.getpid(), signal.SIGKILL)
    return run_job(job)


# ------------------------------------------------------------------------------------------ helpers


def _run(
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


def _timeless(record: dict) -> dict:
    """A record without its wall-clock times (run and kernel compile seconds), the only part allowed to
    differ between executors: a retry in a fresh worker builds its kernels again."""
    history = [{k: v for k, v in entry.items() if k != "seconds"} for entry in record["history"]]
    return {**{k: v for k, v in record.items() if k not in ("seconds", "compile_seconds")}, "history": history}


def _pid_of(path: Path, timeout: float = 120.0) -> int:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)
    return int(path.read_text())


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture(scope="module")
def reference() -> Callable[[Job, int], dict]:
    """Serial records, by job and intra-op thread count (float reductions depend on the thread count)."""
    cache: dict[tuple[str, int], dict] = {}

    def record(job: Job, threads: int) -> dict:
        if (job.key, threads) not in cache:
            before = torch.get_num_threads()
            torch.set_num_threads(threads)
            try:
                cache[job.key, threads] = _timeless(run_job(job).to_dict())
            finally:
                torch.set_num_threads(before)
        return cache[job.key, threads]

    return record


def _worker_threads(workers: int) -> int:
    """Intra-op threads of each CPU worker of a process executor (it shares out this process's threads)."""
    return max(1, torch.get_num_threads() // workers)


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


def test_serial_reports_every_job_and_raises_caller_errors(reference: Callable[[Job, int], dict]) -> None:
    with make_executor("serial") as executor:
        results = _run(executor, JOBS)
        threads = torch.get_num_threads()
        assert {k: _timeless(r) for k, r in results.items()} == {j.key: reference(j, threads) for j in JOBS}
        assert [results[e]["status"] for e in EXPRESSIONS] == ["ok", "ok", "ok", "diverged"]
        with pytest.raises(ConfigError, match="lr"):
            executor.run([_job("relu", lr=-1.0)], lambda job, record: None)


# ------------------------------------------------------------------------------------------ process


@pytest.fixture(scope="module")
def process_executor() -> Iterator[ProcessExecutor]:
    """Two CPU workers shared by the tests that leave them healthy (start-up costs seconds)."""
    with ProcessExecutor(workers=2) as executor:
        yield executor


def test_process_matches_serial(process_executor: ProcessExecutor, reference: Callable[[Job, int], dict]) -> None:
    threads = _worker_threads(2)
    results = _run(process_executor, JOBS)
    assert {k: _timeless(r) for k, r in results.items()} == {j.key: reference(j, threads) for j in JOBS}


def test_process_caller_error_is_raised_not_retried(process_executor: ProcessExecutor) -> None:
    bad = _job("relu", key="bad", lr=-1.0)
    delivered: list[str] = []
    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"lr=-1\.0"):
        process_executor.run([bad, *JOBS[:1]], lambda job, record: delivered.append(job.key))
    assert time.monotonic() - started < 60
    assert "bad" not in delivered
    assert _run(process_executor, JOBS[:1])  # the workers are still usable


def test_worker_that_died_while_idle_is_replaced(process_executor: ProcessExecutor) -> None:
    _run(process_executor, JOBS[:2])  # both workers up
    victim = process_executor._slots.processes[0][0]
    victim.kill()  # SIGKILL, as from the OOM killer, between two jobs
    victim.join(10)
    results = _run(process_executor, JOBS)
    assert [results[e]["status"] for e in EXPRESSIONS] == ["ok", "ok", "ok", "diverged"]


def test_worker_killed_mid_job_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reference: Callable[[Job, int], dict]
) -> None:
    monkeypatch.setenv(PID_DIR, str(tmp_path))  # inherited by the workers spawned below
    killed: list[int] = []

    def kill_slow_job() -> None:
        pid = _pid_of(tmp_path / "slow.pid")
        time.sleep(0.5)  # into the training loop
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    killer = threading.Thread(target=kill_slow_job, daemon=True)
    killer.start()
    with ProcessExecutor(workers=2, max_retries=1, target=_announce_then_run) as executor:
        results = _run(executor, [SLOW, *JOBS])
    killer.join()
    assert killed and _pid_of(tmp_path / "slow.pid") != killed[0]  # the retry ran in a new worker
    threads = _worker_threads(2)
    assert {k: _timeless(r) for k, r in results.items()} == {j.key: reference(j, threads) for j in [SLOW, *JOBS]}


def test_job_that_always_kills_its_worker_fails_after_max_retries() -> None:
    lethal = Job("lethal", JOBS[0].activation, JOBS[0].train)
    with ProcessExecutor(workers=2, max_retries=1, target=_lethal) as executor:
        results = _run(executor, [lethal, *JOBS])
    assert results["lethal"]["status"] == "error"
    # The signal is named when the dead process could still be inspected; the pool may reap it first.
    assert results["lethal"]["reason"] in {"worker died 2 times: worker process killed by SIGKILL",
                                           "worker died 2 times: worker process terminated abruptly"}
    assert set(results["lethal"]) == set(results["relu"])  # a record like any other
    assert [results[e]["status"] for e in EXPRESSIONS] == ["ok", "ok", "ok", "diverged"]


def test_timeout_kills_and_replaces_the_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PID_DIR, str(tmp_path))
    with ProcessExecutor(workers=1, timeout_s=30, target=_announce_then_run) as executor:
        _run(executor, JOBS[:1])  # start the worker, so the limit below times training, not start-up
        executor.timeout_s = 2.0
        started = time.monotonic()
        results = _run(executor, [ENDLESS])
        assert time.monotonic() - started < 2.0 + 5
        assert results["endless"]["status"] == "timeout" and "2 s" in results["endless"]["reason"]
        assert _gone(_pid_of(tmp_path / "endless.pid"))
        executor.timeout_s = 30
        assert _run(executor, JOBS[:1])["relu"]["status"] == "ok"  # on a fresh worker


def test_interrupt_stops_running_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PID_DIR, str(tmp_path))

    def interrupt(job: Job, record: dict) -> None:
        _pid_of(tmp_path / "endless.pid")  # the endless job is running
        raise KeyboardInterrupt

    with ProcessExecutor(workers=2, target=_announce_then_run) as executor:
        with pytest.raises(KeyboardInterrupt):
            executor.run([ENDLESS, JOBS[0]], interrupt)
        assert _gone(_pid_of(tmp_path / "endless.pid"))


# ---------------------------------------------------------------------------------------------- ray


@pytest.fixture(scope="module")
def ray_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One local Ray instance for the module: 2 CPUs and a logical GPU (torch still sees no CUDA)."""
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install afos[ray])")
    home = tmp_path_factory.mktemp("ray-home")
    saved = os.environ.get("HOME")
    os.environ["HOME"] = str(home)  # Ray writes ~/.ray (auth token); keep it out of the real home
    try:
        ray.init(
            num_cpus=2,
            num_gpus=1,
            include_dashboard=False,
            _temp_dir=str(tmp_path_factory.mktemp("ray")),
            runtime_env={"env_vars": {"PYTHONPATH": str(REPO)}},  # workers import this module's functions
            log_to_driver=False,
        )
        yield ray
    finally:
        ray.shutdown()
        if saved is None:
            os.environ.pop("HOME", None)
        else:
            os.environ["HOME"] = saved


def test_ray_matches_serial(ray_session: Any, reference: Callable[[Job, int], dict]) -> None:
    with RayExecutor(workers_per_gpu=2) as executor:  # two actors sharing the logical GPU, 1 CPU thread each
        assert executor.width == 2
        results = _run(executor, JOBS)
    assert {k: _timeless(r) for k, r in results.items()} == {j.key: reference(j, 1) for j in JOBS}
    assert ray_session.is_initialized()  # a session the executor did not start is left open


def test_ray_lost_actor_is_replaced(ray_session: Any) -> None:
    lethal = Job("lethal", JOBS[0].activation, JOBS[0].train)
    with RayExecutor(workers_per_gpu=2, max_retries=1, target=_lethal) as executor:
        results = _run(executor, [lethal, *JOBS])
    assert results["lethal"]["status"] == "error"
    assert results["lethal"]["reason"].startswith("worker died 2 times: ")
    assert [results[e]["status"] for e in EXPRESSIONS] == ["ok", "ok", "ok", "diverged"]


def test_ray_caller_error_is_raised(ray_session: Any) -> None:
    with RayExecutor(workers=1) as executor, pytest.raises(ConfigError, match=r"lr=-1\.0"):
        executor.run([_job("relu", lr=-1.0)], lambda job, record: None)


class _Squatter:
    """An actor that only holds cluster resources, as another user's job would."""


@pytest.mark.slow  # half a minute: the retirement waits out _PLACE_S, set above a busy machine's actor start
def test_ray_slot_without_room_is_retired(ray_session: Any, monkeypatch: pytest.MonkeyPatch,
                                          reference: Callable[[Job, int], dict]) -> None:
    monkeypatch.setattr(ray_cluster, "_PLACE_S", 30.0)  # well above an actor's start on a busy machine
    squatter = ray_session.remote(_Squatter).options(num_gpus=0.5, num_cpus=0).remote()
    ray_session.get(squatter.__ray_ready__.remote())
    try:  # two slots of half the GPU each, room for one: the second waits for resources, then is retired
        with RayExecutor(workers_per_gpu=2) as executor:
            results = _run(executor, JOBS)
            assert {k: _timeless(r) for k, r in results.items()} == {j.key: reference(j, 1) for j in JOBS}
            assert {k: _timeless(r) for k, r in _run(executor, JOBS[:2]).items()} == {
                j.key: reference(j, 1) for j in JOBS[:2]}  # the next call does not wait for the retired slot
    finally:
        ray_session.kill(squatter)


def test_ray_without_any_room_records_errors(ray_session: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ray_cluster, "_PLACE_S", 2.0)
    squatter = ray_session.remote(_Squatter).options(num_gpus=1, num_cpus=0).remote()
    ray_session.get(squatter.__ray_ready__.remote())
    try:
        with RayExecutor(workers_per_gpu=2) as executor:
            results = _run(executor, JOBS)
    finally:
        ray_session.kill(squatter)
    assert {r["status"] for r in results.values()} == {"error"}
    assert all(r["reason"].startswith("no worker left") for r in results.values())
