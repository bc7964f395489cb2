"""``afos serve`` only reads, escapes what it shows, keeps to loopback or a token, and survives a broken or
hostile run folder."""

from __future__ import annotations

import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from afos.app.server import HEADERS, check_binding, create_app
from afos.cli import cli
from afos.errors import UserError

HOSTILE = '<script>alert("x")</script>'
#: A folder name cannot hold "/", so a hostile run name is markup without one.
HOSTILE_NAME = "run<img src=x onerror=alert(1)>"


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(path.relative_to(root)): (path.stat().st_size, path.stat().st_mtime_ns)
            for path in sorted(root.rglob("*")) if path.is_file()}


def _every_page(client: TestClient, runs: list[str]) -> list[str]:
    paths = ["/", "/api/runs", "/functions/relu", "/api/functions/describe?expr=relu"]
    for run in runs:
        quoted = run.replace("<", "%3C").replace(">", "%3E").replace('"', "%22")
        paths += [f"/runs/{quoted}", f"/runs/{quoted}/evaluations", f"/api/runs/{quoted}",
                  f"/api/runs/{quoted}/evaluations", f"/api/runs/{quoted}/version"]
    answers = [client.get(path) for path in paths]
    return [answer.text for answer in answers]


def test_serving_never_writes_into_the_results_root(results_root: Path) -> None:
    client = TestClient(create_app(results_root, hosts=["testserver"]))
    before = _snapshot(results_root)
    _every_page(client, ["search", "evaluate", "compare"])
    assert _snapshot(results_root) == before


#: A writer that commits one change and is killed before it closes: the change lives in the write-ahead log.
KILLED_WRITER = """
import os, signal, sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA wal_autocheckpoint=0")
db.execute("UPDATE evaluations SET status = 'error', reason = 'committed just before the kill' WHERE id = 1")
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_run_is_read_whole_without_writing_into_its_folder(results_root: Path) -> None:
    killed = results_root / "killed"
    shutil.copytree(results_root / "search", killed)
    run = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(killed / "afos.db")], check=False)
    assert run.returncode == -signal.SIGKILL
    (killed / "afos.db-shm").unlink()
    assert (killed / "afos.db-wal").stat().st_size > 0
    before, folder_time = _snapshot(results_root), killed.stat().st_mtime_ns
    client = TestClient(create_app(results_root, hosts=["testserver"]))
    assert "committed just before the kill" in client.get("/runs/killed/evaluations?status=error").text
    assert client.get("/runs/killed").status_code == 200
    listed = CliRunner().invoke(cli, ["runs", str(results_root)])
    assert listed.exit_code == 0 and "killed" in listed.output
    assert _snapshot(results_root) == before and killed.stat().st_mtime_ns == folder_time
    assert not (killed / "afos.db-shm").exists()


def test_everything_shown_is_escaped(results_root: Path) -> None:
    hostile_run = results_root / HOSTILE_NAME
    shutil.copytree(results_root / "search", hostile_run)
    with sqlite3.connect(hostile_run / "afos.db") as db:
        db.execute("UPDATE evaluations SET status = 'error', reason = ?, expression = ? WHERE id = 1",
                   (f"boom {HOSTILE}", HOSTILE))
    client = TestClient(create_app(results_root, hosts=["testserver"]))
    run = quote(HOSTILE_NAME, safe="")
    pages = [client.get(path).text for path in ("/", f"/runs/{run}", f"/runs/{run}/evaluations",
                                                "/functions/" + quote(HOSTILE, safe=""))]
    for page in pages:
        assert HOSTILE not in page and "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in pages[0] and "&lt;img src=x" in pages[1]
    assert "boom &lt;script&gt;" in pages[1] and "boom &lt;script&gt;" in pages[2] and "&lt;script&gt;" in pages[3]


def test_a_broken_or_hostile_run_is_reported_and_the_rest_keeps_working(results_root: Path) -> None:
    (results_root / "garbage").mkdir()
    (results_root / "garbage" / "afos.db").write_bytes(b"not a database at all" * 100)
    shutil.copytree(results_root / "evaluate", results_root / "malformed")
    with sqlite3.connect(results_root / "malformed" / "afos.db") as db:
        db.execute("UPDATE meta SET value = '{not json' WHERE key = 'grid'")
        db.execute("UPDATE evaluations SET history = '[[[' WHERE id = 1")
    client = TestClient(create_app(results_root, hosts=["testserver"]))
    listed = {row["run"]: row for row in client.get("/api/runs").json()["runs"]}
    assert listed["garbage"]["status"] is None and listed["garbage"]["reason"].startswith("unreadable")
    for run in ("garbage", "malformed"):
        page = client.get(f"/runs/{run}")
        assert page.status_code == 422 and "cannot be read" in page.text
        assert client.get(f"/api/runs/{run}").status_code == 422
    assert client.get("/api/runs/malformed/evaluations").status_code == 422
    assert client.get("/runs/search").status_code == 200 and client.get("/").status_code == 200


def test_a_huge_stored_reason_is_shown_clipped(results_root: Path) -> None:
    with sqlite3.connect(results_root / "search" / "afos.db") as db:
        db.execute("UPDATE evaluations SET status = 'error', reason = ? WHERE id = 1", ("x" * 2_000_000,))
    client = TestClient(create_app(results_root, hosts=["testserver"]))
    for path in ("/runs/search/evaluations", "/api/runs/search/evaluations", "/runs/search", "/api/runs/search"):
        answer = client.get(path)
        assert answer.status_code == 200 and len(answer.content) < 400_000, path
        assert "more characters" in answer.text, path


def test_a_linked_run_folder_or_database_is_not_served(results_root: Path, tmp_path: Path) -> None:
    outside = Path(shutil.copytree(results_root / "search", tmp_path / "outside"))
    (results_root / "linked").symlink_to(outside, target_is_directory=True)
    (results_root / "db-linked").mkdir()
    (results_root / "db-linked" / "afos.db").symlink_to(outside / "afos.db")
    client = TestClient(create_app(results_root, hosts=["testserver"]))
    listed = {row["run"] for row in client.get("/api/runs").json()["runs"]}
    assert listed == {"search", "evaluate", "compare"}
    for run in ("linked", "db-linked"):
        assert client.get(f"/runs/{run}").status_code == 404
        assert client.get(f"/api/runs/{run}/evaluations").status_code == 404
    pictures = sorted(path.name for path in outside.glob("*.png"))
    assert pictures and client.get(f"/runs/linked/files/{pictures[0]}").status_code == 404


def test_runs_are_found_by_name_never_by_path(client: TestClient) -> None:
    for path in ("/api/runs/..%2F..%2Fetc", "/api/runs/%2E%2E", "/runs/../search", "/runs/search/files/..%2Fafos.db",
                 "/runs/search/files/afos.db", "/runs/search/files/%2Fetc%2Fpasswd"):
        assert client.get(path).status_code == 404, path


def test_every_answer_carries_the_security_headers(client: TestClient) -> None:
    for path in ("/", "/api/runs", "/static/app.js", "/runs/nosuch", "/api/functions/values?expr=x"):
        answer = client.get(path)
        assert {k: answer.headers.get(k) for k in HEADERS} == HEADERS, path
    assert "script-src 'self'" in HEADERS["Content-Security-Policy"] and "unsafe" not in HEADERS["Content-Security-Policy"]


def test_requests_are_bounded(client: TestClient) -> None:
    assert client.get("/api/runs?" + "a" * 9000).status_code == 414
    assert client.post("/api/runs").status_code in (405, 413)
    assert client.request("GET", "/api/runs", content=b"x" * 10).status_code == 413
    assert client.get("/api/runs", headers={"host": "evil.example"}).status_code == 400


def test_a_token_guards_every_request(made_runs: Path) -> None:
    client = TestClient(create_app(made_runs, token="s3cret", hosts=["*"]))
    assert client.get("/api/runs").status_code == 401
    assert client.get("/api/runs", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/api/runs", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    first = client.get("/?token=s3cret")
    assert first.status_code == 200 and "afos_token" in first.headers["set-cookie"]
    assert client.get("/runs/search").status_code == 200  # the cookie now carries it


def test_serving_beyond_loopback_needs_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    check_binding("127.0.0.1", None)
    check_binding("::1", None)
    with pytest.raises(UserError, match="--token"):
        check_binding("0.0.0.0", None)
    monkeypatch.delenv("AFOS_SERVE_TOKEN", raising=False)
    done = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0"])
    assert done.exit_code == 2 and done.stderr.count("\n") == 1 and "--token" in done.stderr


def test_a_port_in_use_is_one_clear_line(made_runs: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        done = CliRunner().invoke(cli, ["serve", str(made_runs), "--port", str(holder.getsockname()[1])])
    assert done.exit_code == 2 and "choose another with --port" in done.stderr and done.stderr.count("\n") == 1
