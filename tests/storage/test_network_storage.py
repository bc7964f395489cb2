"""Run databases on a network filesystem: detection from the real mount table, and the network mode itself
(rollback journal, the database held exclusively, liveness and status read from run.json, no reads of a run
that has not ended), exercised on this machine's disk with ``AFOS_NETWORK_FS=1``, the documented override.
A real NFS mount is tried where the kernel and the machine allow one (``-m cluster``), else skipped with why.
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from afos.records.runs import MetaKey, RunKind, RunStatus
from afos.runs.listing import list_runs
from afos.storage.filesystems import (
    NETWORK_TYPES,
    OVERRIDE,
    filesystem_type,
    is_network_filesystem,
    mount_type,
    mounts,
)
from afos.storage.liveness import read_state
from afos.storage.store import RunStore

NETWORK = {**os.environ, OVERRIDE: "1"}
SEARCH = ["search", "--population", "6", "--generations", "4", "--epochs", "1", "--no-confirm", "--quiet"]
LONG_SEARCH = [*SEARCH, "--generations", "30"]  # stopped by a kill long before its end

#: Lines in the format of /proc/self/mountinfo, as Linux writes them (the NFS line from a cluster node).
MOUNTINFO = """\
22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p1 rw
61 22 0:52 / /shared rw,relatime shared:30 - nfs4 head:/export rw,vers=4.2,rsize=1048576,hard,proto=tcp
62 61 0:53 / /shared/scratch rw,relatime shared:31 - lustre 10.0.0.1@tcp:/scratch rw,flock
63 22 0:54 / /mnt/my\\040data rw,relatime - fuse.sshfs user@host:/data rw,user_id=0
"""


def test_the_mount_table_names_each_path_s_filesystem() -> None:
    assert mounts(MOUNTINFO)[3] == ("/mnt/my data", "fuse.sshfs")  # octal escapes decoded
    assert mount_type("/shared/runs/a/afos.db", MOUNTINFO) == "nfs4"
    assert mount_type("/shared/scratch/runs", MOUNTINFO) == "lustre"  # the longest mount point wins
    assert mount_type("/shared-not/x", MOUNTINFO) == "ext4"  # a prefix of the name is not a parent
    assert mount_type("/mnt/my data/results", MOUNTINFO) == "fuse.sshfs"
    assert {"nfs4", "lustre", "fuse.sshfs"} <= NETWORK_TYPES and "ext4" not in NETWORK_TYPES


def test_this_machine_s_disk_is_local_unless_overridden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(OVERRIDE, raising=False)
    kind = filesystem_type(tmp_path / "not" / "yet" / "made")  # the nearest existing parent counts
    assert kind is not None and kind == filesystem_type(tmp_path)
    assert is_network_filesystem(tmp_path) is (kind in NETWORK_TYPES)
    monkeypatch.setenv(OVERRIDE, "1")
    assert is_network_filesystem(tmp_path)
    monkeypatch.setenv(OVERRIDE, "0")
    assert not is_network_filesystem(tmp_path)


def test_in_network_mode_the_writer_holds_its_database_alone(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(OVERRIDE, "1")
    path = tmp_path / "afos.db"
    with RunStore(path, meta={MetaKey.KIND: "search"}) as store:
        assert store._conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        store.set_meta(MetaKey.STATUS, "running")
        assert not Path(f"{path}-wal").exists() and not Path(f"{path}-shm").exists()
        other = sqlite3.connect(path, timeout=0.2)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("SELECT count(*) FROM meta").fetchone()
        other.close()
    with RunStore(path, readonly=True) as reader:  # once the writer is gone: an immutable read
        assert reader.get_meta(MetaKey.STATUS) == "running"


def _count_from_state(run: Path, count: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state = read_state(run)
        if state is not None and state.evaluations >= count:
            return
        time.sleep(0.05)
    pytest.fail(f"{run}/run.json never counted {count} runs")


@pytest.mark.slow  # half a minute: a search killed and resumed (.ci/run runs the slow suite)
def test_a_network_search_is_listed_from_run_json_killed_and_resumed(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """While it runs, `afos runs` reads its run.json (the database is held by its writer); killed, it shows
    interrupted, and no reader opens its database (only the resume may roll back its journal): a sibling
    search copies from the finished twin alone, though the killed run sorts first; resumed, it ends like
    its twin."""
    monkeypatch.setenv(OVERRIDE, "1")
    root = tmp_path / "root"
    process = subprocess.Popen([sys.executable, "-m", "afos", *LONG_SEARCH, "--out", str(root / "a"), "--no-reuse"],
                               env=NETWORK, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _count_from_state(root / "a", 3)
    (row,) = list_runs(root)
    assert row.status is RunStatus.RUNNING and row.evaluations >= 3 and row.best is None
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    (row,) = list_runs(root)
    assert (row.kind, row.status) == (RunKind.SEARCH, RunStatus.INTERRUPTED)
    for name in ("b", "c"):  # b trains everything; c copies from b, never from the killed a
        done = subprocess.run([sys.executable, "-m", "afos", *SEARCH, "--out", str(root / name)], env=NETWORK,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
    with RunStore(root / "c" / "afos.db", readonly=True) as store:
        assert {r.source for r in store.evaluations()} == {"b"}
    resumed = subprocess.run([sys.executable, "-m", "afos", "search", "--resume", str(root / "a"), "--quiet",
                              "--generations", "4"], env=NETWORK, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    with RunStore(root / "a" / "afos.db", readonly=True) as store:
        assert store._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert (root / "a" / "hall_of_fame.csv").read_text() == (root / "b" / "hall_of_fame.csv").read_text()
    assert {row.run: row.status for row in list_runs(root)} == dict.fromkeys("abc", RunStatus.FINISHED)


def _nfs_unavailable() -> str | None:
    """Why a real NFS mount cannot be made on this machine (None: it can be tried)."""
    try:
        kernel = Path("/proc/filesystems").read_text()
    except OSError:
        return "no /proc/filesystems: not a Linux kernel"
    if "nfs" not in kernel.split():
        return "the kernel has no NFS client (nfs is not in /proc/filesystems), so no NFS mount can be made here"
    if os.geteuid() != 0 or shutil.which("exportfs") is None or shutil.which("mount.nfs") is None:
        return "an NFS mount needs root and Debian's nfs-kernel-server (exportfs, mount.nfs)"
    return None


@pytest.mark.cluster
def test_a_search_on_a_real_nfs_mount_is_written_and_read_safely(tmp_path: Path) -> None:
    """nfs-kernel-server exports a folder to localhost, mounted over NFS; a search runs there, is killed,
    listed and resumed, and its database checks intact."""
    reason = _nfs_unavailable()
    if reason:
        pytest.skip(reason)
    export, mount = tmp_path / "export", tmp_path / "mnt"
    export.mkdir()
    mount.mkdir()
    subprocess.run(["exportfs", "-o", "rw,sync,no_root_squash,insecure", f"localhost:{export}"], check=True)
    try:
        subprocess.run(["mount", "-t", "nfs", "-o", "vers=4.2,nolock", f"localhost:{export}", str(mount)],
                       check=True, timeout=60)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        subprocess.run(["exportfs", "-u", f"localhost:{export}"], check=False)
        pytest.skip(f"the NFS server did not serve the mount here ({error})")
    try:
        assert filesystem_type(mount) in NETWORK_TYPES
        run = mount / "run"
        process = subprocess.Popen([sys.executable, "-m", "afos", *SEARCH, "--out", str(run)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _count_from_state(run, 3)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        assert list_runs(mount)[0].status is RunStatus.INTERRUPTED
        resumed = subprocess.run([sys.executable, "-m", "afos", "search", "--resume", str(run), "--quiet"],
                                 capture_output=True, text=True, timeout=300)
        assert resumed.returncode == 0, resumed.stderr
        with RunStore(run / "afos.db", readonly=True) as store:
            assert store._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert list_runs(mount)[0].status is RunStatus.FINISHED
    finally:
        subprocess.run(["umount", "-f", str(mount)], check=False)
        subprocess.run(["exportfs", "-u", f"localhost:{export}"], check=False)
