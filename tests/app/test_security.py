"""``afos serve`` only reads, escapes what it shows, keeps to loopback or a token, and survives a broken or
hostile run folder."""

from __future__ import annotations

import shutil
import socket
import sqlite3
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
