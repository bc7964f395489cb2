"""The cluster path for real: Slurm jobs on a one-node Slurm cluster and a two-node Ray cluster, both on this
machine, cancellations, a requeue and a lost Ray node included. Every test ends with the hall of fame of a
serial run of the same search, and with as many stored evaluations (so none was trained twice).

The Slurm cluster comes from ``scripts/ci/cluster.sh`` (it installs slurm-wlm and munge where it can); where
Slurm cannot run, the Slurm tests skip and say why. The Ray cluster is a head and a second node started by
``ray start --block`` in their own process groups. Marked ``cluster``; about three minutes on 2 cores.
Matched torch threads: the serial reference trains with 1 thread, as each of the two workers does.
"""

from __future__ import annotations

import functools
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]
HARNESS = REPO / "scripts" / "ci" / "cluster.sh"
SINGLE_NODE = REPO / "scripts" / "slurm" / "single-node-multi-gpu.sh"
RAY_JOB = REPO / "scripts" / "slurm" / "afos-ray.sbatch"
BIN = Path(sys.executable).parent  # the environment's afos and ray
# Long enough per training (about a second) that a cancel or a node loss lands in the middle of the search.
SEARCH = ["--dataset", "digits", "--population", "4", "--generations", "2", "--epochs", "20", "--seed", "3"]
QUICK = ["--config", "quick"]  # what the jobs get through CONFIG; a bare `afos search` would run the default
JOB = ["--nodes=1", "--ntasks=1", "--cpus-per-task=2", "--time=10"]  # overrides the scripts' GPU-sized lines
RUN_S = 300  # the most any search or job here may take before the test calls it a hang


@dataclass(frozen=True)
class Outcome:
    hall_of_fame: str  # hall_of_fame.csv as written
    evaluations: int  # rows of the run's evaluations table


def _outcome(run_dir: Path) -> Outcome:
    return Outcome((run_dir / "hall_of_fame.csv").read_text(), _evaluations(run_dir))


def _evaluations(run_dir: Path) -> int:
    """Rows stored so far; 0 while the database does not exist yet."""
    if not (run_dir / "afos.db").exists():
        return 0
    try:
        with sqlite3.connect(f"file:{run_dir / 'afos.db'}?mode=ro", uri=True, timeout=5) as db:
            return int(db.execute("select count(*) from evaluations").fetchone()[0])
    except sqlite3.OperationalError:  # created, but the schema is not there yet
        return 0


def _says(log: Path, text: str) -> bool:
    return text in log.read_text()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _until(condition: Callable[[], bool], what: str, timeout: float, log: Path | None = None) -> None:
    """Poll ``condition`` every 0.2 s; fail naming ``what`` (and the log's tail) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            tail = log.read_text()[-3000:] if log is not None and log.exists() else ""
            pytest.fail(f"{what} did not happen within {timeout:g} s\n{tail}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The environment of every search, job and Ray node: this checkout importable, Ray's files (sockets:
    short paths) and ~/.ray kept in temporary folders, torch at one thread."""
    ray_tmp = tempfile.mkdtemp(prefix="afos-ray-", dir="/tmp")
    yield {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "HOME": str(tmp_path_factory.mktemp("home")),
        "RAY_TMPDIR": ray_tmp,
        "RAY_USAGE_STATS_ENABLED": "0",
        "OMP_NUM_THREADS": "1",
    }
    subprocess.run(["rm", "-rf", ray_tmp], check=False)


@pytest.fixture(scope="module")
def serial(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    """The reference: the same search, serial, in its own results root."""
    run_dir = tmp_path_factory.mktemp("serial") / "run"
    subprocess.run([BIN / "afos", "search", *QUICK, *SEARCH, "--quiet", "--out", run_dir], env=env, cwd=REPO,
                   check=True, timeout=RUN_S, capture_output=True)
    return _outcome(run_dir)


# -------------------------------------------------------------------------------------------- Slurm


@pytest.fixture(scope="module")
def slurm(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A one-node Slurm cluster (2 CPUs, no GPU) for this module; the job environment to submit with."""
    state = tmp_path_factory.mktemp("slurm")
    start = subprocess.run([HARNESS, "start", state], check=False, capture_output=True, text=True, timeout=600)
    if start.returncode == 3:
        pytest.skip(f"no Slurm here: {start.stderr.strip()}")
    job_env = {**env, "SLURM_CONF": str(state / "slurm.conf"), "VENV": sys.prefix, "CONFIG": "quick",
               "OMP_NUM_THREADS": "2"}  # two workers, one torch thread each
    try:
        assert start.returncode == 0, f"the Slurm harness failed:\n{start.stderr}"
        yield job_env
    finally:
        jobs = subprocess.run(["squeue", "--noheader", "--format=%i"], check=False, env=job_env, capture_output=True,
                              text=True)
        if jobs.stdout.split():
            subprocess.run(["scancel", *jobs.stdout.split()], env=job_env, check=False)
        subprocess.run([HARNESS, "stop", state], check=False, timeout=120)


def _sbatch(job_env: dict[str, str], script: Path, args: list[str], log: Path, *, wait: bool,
            sbatch: tuple[str, ...] = ()) -> str:
    """Submit ``script`` from the repository root; with ``wait``, until it ends (asserting success)."""
    command = ["sbatch", "--parsable", *JOB, *sbatch, f"--output={log}", "--open-mode=append"]
    done = subprocess.run([*command, *(["--wait"] if wait else []), script, *args], check=False, env=job_env,
                          cwd=REPO, capture_output=True, text=True, timeout=RUN_S)
    log_text = log.read_text() if log.exists() else ""
    assert done.returncode == 0, f"sbatch {script.name} failed ({done.returncode}): {done.stderr}\n{log_text[-3000:]}"
    return done.stdout.split(";")[0].strip()


def _job_state(job_env: dict[str, str], job: str) -> str:
    shown = subprocess.run(["scontrol", "show", "job", job], check=False, env=job_env, capture_output=True, text=True)
    return next((f.split("=", 1)[1] for f in shown.stdout.split() if f.startswith("JobState=")), "UNKNOWN")


def _stop_midway(job_env: dict[str, str], job: str, run_dir: Path, serial: Outcome, log: Path,
                 command: list[str]) -> None:
    """Once the running job has stored its first results, ``command`` it (scancel, requeue); check that it
    was stopped in the middle, not after the end."""
    _until(lambda: _evaluations(run_dir) >= 2, f"job {job} storing its first results", RUN_S, log)
    subprocess.run([*command, job], env=job_env, check=True, timeout=60)
    stored = _evaluations(run_dir)
    assert stored < serial.evaluations, f"job {job} had finished ({stored} runs stored) before `{command[0]}`"


def test_single_node_job_matches_serial(slurm: dict[str, str], serial: Outcome, tmp_path: Path) -> None:
    run_dir = tmp_path / "results" / "run"
    _sbatch(slurm, SINGLE_NODE, [*SEARCH, "--workers", "2", "--out", str(run_dir)], tmp_path / "job.log",
            wait=True, sbatch=("--gpus=0",))
    assert _outcome(run_dir) == serial  # CONFIG honoured too: the script's default config has another protocol


def test_ray_job_matches_serial(slurm: dict[str, str], serial: Outcome, tmp_path: Path) -> None:
    run_dir = tmp_path / "results" / "run"
    job_env = {**slurm, "HEAD_IP": "127.0.0.1", "RAY_PORT": str(_free_port()), "OMP_NUM_THREADS": "1"}
    log = tmp_path / "job.log"
    _sbatch(job_env, RAY_JOB, [*SEARCH, "--out", str(run_dir)], log, wait=True, sbatch=("--gpus-per-task=0",))
    assert "Ray head on" in log.read_text()
    assert _outcome(run_dir) == serial


def test_cancelled_job_resumes_when_resubmitted(slurm: dict[str, str], serial: Outcome, tmp_path: Path) -> None:
    run_dir, log = tmp_path / "results" / "run", tmp_path / "job.log"
    args = [*SEARCH, "--workers", "2", "--out", str(run_dir)]
    job = _sbatch(slurm, SINGLE_NODE, args, log, wait=False, sbatch=("--gpus=0",))
    _stop_midway(slurm, job, run_dir, serial, log, ["scancel"])
    _until(lambda: _job_state(slurm, job) == "CANCELLED", f"job {job} ending after scancel", 60, log)
    _sbatch(slurm, SINGLE_NODE, ["--resume", str(run_dir), "--workers", "2"], log, wait=True, sbatch=("--gpus=0",))
    assert "resuming it" in log.read_text()
    assert _outcome(run_dir) == serial


def test_requeued_job_resumes_by_itself(slurm: dict[str, str], serial: Outcome, tmp_path: Path) -> None:
    run_dir, log = tmp_path / "results" / "run", tmp_path / "job.log"
    job = _sbatch(slurm, SINGLE_NODE, [*SEARCH, "--workers", "2", "--out", str(run_dir)], log, wait=False,
                  sbatch=("--gpus=0",))
    _stop_midway(slurm, job, run_dir, serial, log, ["scontrol", "requeue"])
    # Slurm holds a requeued job back for a while (its BeginTime); release it now rather than wait.
    _until(lambda: _job_state(slurm, job) == "PENDING", f"requeued job {job} pending", 60, log)
    subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], env=slurm, check=True, timeout=60)
    _until(lambda: _job_state(slurm, job) in {"COMPLETED", "FAILED", "CANCELLED"}, f"requeued job {job} ending",
           RUN_S, log)
    assert _job_state(slurm, job) == "COMPLETED", log.read_text()[-3000:]
    assert "resuming it" in log.read_text()
    assert _outcome(run_dir) == serial


# ---------------------------------------------------------------------------------------------- Ray


def _raylet_of(session: int) -> int | None:
    """The pid of the raylet in process session ``session`` (a node started with its own session)."""
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except (OSError, ValueError):
            continue
        name, fields = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
        if name == "raylet" and fields[0] not in "ZX" and int(fields[3]) == session:
            return int(entry.name)
    return None


def _stop_node(node: subprocess.Popen[bytes]) -> None:
    """SIGTERM the node's process group (``ray start --block`` then stops its node), SIGKILL what is left."""
    for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
        try:
            os.killpg(node.pid, sig)
        except ProcessLookupError:
            return
        try:
            node.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture
def ray_cluster(env: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A Ray head (1 CPU) and a second node (1 CPU, resource ``node2``) on this machine: (address, node 2)."""
    if not (BIN / "ray").exists():
        pytest.skip("ray is not installed (pip install afos[ray])")
    port = _free_port()
    address = f"127.0.0.1:{port}"
    common = ["--block", "--num-cpus=1", "--node-ip-address=127.0.0.1", "--disable-usage-stats"]
    commands = {
        "head": ["--head", f"--port={port}", f"--temp-dir={env['RAY_TMPDIR']}/cluster", "--include-dashboard=false",
                 f"--dashboard-port={_free_port()}"],
        "node2": [f"--address={address}", '--resources={"node2": 1}'],
    }
    nodes: list[subprocess.Popen[bytes]] = []
    try:
        for name, extra in commands.items():
            log = tmp_path / f"{name}.log"
            with log.open("wb") as out:
                nodes.append(subprocess.Popen([BIN / "ray", "start", *common, *extra], env=env, stdout=out,
                                              stderr=subprocess.STDOUT, start_new_session=True))
            _until(functools.partial(_says, log, "Ray runtime started"), f"Ray {name} starting", 120, log)
        yield address, nodes[1]
    finally:
        for node in reversed(nodes):
            _stop_node(node)


def test_ray_node_loss_is_retried_on_the_head(ray_cluster: tuple[str, subprocess.Popen[bytes]],
                                              env: dict[str, str], serial: Outcome, tmp_path: Path) -> None:
    address, node2 = ray_cluster
    run_dir, log = tmp_path / "results" / "run", tmp_path / "search.log"
    with log.open("wb") as out:
        search = subprocess.Popen([BIN / "afos", "search", *QUICK, *SEARCH, "--out", run_dir, "--executor", "ray",
                                   "--address", address], env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    try:
        _until(lambda: _evaluations(run_dir) >= 1, "the search storing its first result", RUN_S, log)
        raylet = _raylet_of(node2.pid)
        assert raylet is not None, "node 2 has no raylet"
        os.kill(raylet, signal.SIGKILL)
        assert _evaluations(run_dir) < serial.evaluations, "the search had finished before node 2 was lost"
        try:
            search.wait(RUN_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the search hung after node 2 was lost\n{log.read_text()[-3000:]}")
    finally:
        search.kill()
        search.wait()
    text = log.read_text()
    assert search.returncode == 0, text[-3000:]
    assert "lost while running" in text, text[-3000:]  # the driver noticed and said so
    assert _outcome(run_dir) == serial
