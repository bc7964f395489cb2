"""The Ray executor where the cluster has no room for its actors: a slot that cannot be placed is retired and
its runs go to the others; with no slot placed at all, every run is an error with the reason.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from afos.execution import ray_cluster
from afos.execution.contract import Job
from afos.execution.ray_cluster import RayExecutor

from .jobs import JOBS, RAY_GPUS, run_all, timeless


class _Squatter:
    """An actor that only holds cluster resources, as another user's job would."""


@pytest.mark.slow  # half a minute: the retirement waits out _PLACE_S, set above a busy machine's actor start
def test_ray_slot_without_room_is_retired(ray_session: Any, monkeypatch: pytest.MonkeyPatch,
                                          reference: Callable[[Job, int], dict]) -> None:
    monkeypatch.setattr(ray_cluster, "_PLACE_S", 30.0)  # well above an actor's start on a busy machine
    squatters = [ray_session.remote(_Squatter).options(num_gpus=share, num_cpus=0).remote()
                 for share in [1] * (RAY_GPUS - 1) + [0.5]]  # Ray takes whole GPUs or a fraction of one
    ray_session.get([s.__ray_ready__.remote() for s in squatters])
    try:  # two slots of half a GPU on each GPU, room for one: the others wait for resources, then are retired
        with RayExecutor(workers_per_gpu=2) as executor:
            results = run_all(executor, JOBS)
            assert {k: timeless(r) for k, r in results.items()} == {j.key: reference(j, 1) for j in JOBS}
            assert {k: timeless(r) for k, r in run_all(executor, JOBS[:2]).items()} == {
                j.key: reference(j, 1) for j in JOBS[:2]}  # the next call does not wait for the retired slot
    finally:
        for squatter in squatters:
            ray_session.kill(squatter)


def test_ray_without_any_room_records_errors(ray_session: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ray_cluster, "_PLACE_S", 2.0)
    squatter = ray_session.remote(_Squatter).options(num_gpus=RAY_GPUS, num_cpus=0).remote()
    ray_session.get(squatter.__ray_ready__.remote())
    try:
        with RayExecutor(workers_per_gpu=2) as executor:
            results = run_all(executor, JOBS)
    finally:
        ray_session.kill(squatter)
    assert {r["status"] for r in results.values()} == {"error"}
    assert all(r["reason"].startswith("no worker left") for r in results.values())


@pytest.mark.slow  # starts a Ray instance of its own
def test_ray_starts_its_own_cluster_beside_another_sessions_address_file(tmp_path: Path) -> None:
    """Another Ray session (`ray start`) leaves ``ray_current_cluster`` in Ray's temp folder; Ray's default
    would join the cluster it names and refuse afos's CPU and GPU counts with a traceback."""
    import shutil
    import subprocess
    import sys
    import tempfile

    ray_tmp = tempfile.mkdtemp(prefix="afos-ray-", dir="/tmp")  # Ray's socket paths must stay short
    try:
        (Path(ray_tmp) / "ray").mkdir()
        (Path(ray_tmp) / "ray" / "ray_current_cluster").write_text("127.0.0.1:6390\n")
        command = [sys.executable, "-m", "afos", "evaluate", "relu", "--seeds", "1", "--epochs", "1",
                   "--executor", "ray", "--workers", "1", "--out", str(tmp_path / "run")]
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, env={**env, "RAY_TMPDIR": ray_tmp})
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)
