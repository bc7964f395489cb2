"""Fixtures of the executor tests: serial reference records, and one local Ray instance per test module."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch

from afos.execution.contract import Job
from afos.execution.worker import run_job

from .jobs import RAY_GPUS, REPO, timeless


@pytest.fixture(scope="module")
def reference() -> Callable[[Job, int], dict]:
    """Serial records, by job and intra-op thread count (float reductions depend on the thread count)."""
    cache: dict[tuple[str, int], dict] = {}

    def record(job: Job, threads: int) -> dict:
        if (job.key, threads) not in cache:
            before = torch.get_num_threads()
            torch.set_num_threads(threads)
            try:
                cache[job.key, threads] = timeless(run_job(job).to_dict())
            finally:
                torch.set_num_threads(before)
        return cache[job.key, threads]

    return record


# ---------------------------------------------------------------------------------------------- ray


@pytest.fixture(scope="session")
def ray_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One local Ray instance for the whole test run, 2 CPUs and RAY_GPUS logical GPUs: Ray cannot start
    a second instance in a process that shut one down (its GCS never comes up)."""
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install afos[ray])")
    home = tmp_path_factory.mktemp("ray-home")
    saved = os.environ.get("HOME")
    os.environ["HOME"] = str(home)  # Ray writes ~/.ray (auth token); keep it out of the real home
    try:
        ray.init(
            num_cpus=2,
            num_gpus=RAY_GPUS,
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
