"""``afos serve``'s JSON API over real run folders: what it answers matches what the run database holds."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
from pathlib import Path

import pytest
import torch
from starlette.testclient import TestClient

from afos.app.server import create_app
from afos.records.evaluation import Phase, Status
from afos.reporting.export.form import Form
from afos.reporting.export.formats import render
from afos.runs.api import search_result
from afos.storage import liveness
from afos.storage.store import RunStore


def test_runs_lists_every_kind_with_its_status(client: TestClient) -> None:
    runs = {row["run"]: row for row in client.get("/api/runs").json()["runs"]}
    assert {name: (row["kind"], row["status"]) for name, row in runs.items()} == {
        "search": ("search", "finished"), "evaluate": ("evaluate", "finished"), "compare": ("compare", "finished")}
    assert runs["search"]["best"] == search_result(Path(client.app.state.root) / "search").winner.canonical


def test_a_search_reads_as_its_database_holds_it(client: TestClient, made_runs: Path) -> None:
    view = client.get("/api/runs/search").json()
    expected = search_result(made_runs / "search")
    assert view["verdict"] == expected.verdict
    assert [row["canonical"] for row in view["hall_of_fame"]] == [entry.canonical for entry in expected.hall_of_fame]
    assert [f["canonical"] for f in client.get("/api/runs/search/finalists").json()["finalists"]] == \
        [f.canonical for f in expected.finalists]
    generations = client.get("/api/runs/search/generations").json()["generations"]
    assert [g["generation"] for g in generations] == [1, 2]
    best = [g["best_so_far"] for g in generations]
    assert best == sorted(best) and best[-1] == max(g["best"] for g in generations)
    assert generations[-1]["trainings"] == sum(g["counts"]["trained"] + g["counts"]["reused"] for g in generations)
    with RunStore(made_runs / "search" / "afos.db", readonly=True) as store:
        failed = [e for e in store.evaluations() if not e.ok]
    assert [f["reason"] for f in view["failed"]] == [e.reason for e in failed]


def test_evaluations_page_through_every_run_and_filter(client: TestClient, made_runs: Path) -> None:
    with RunStore(made_runs / "search" / "afos.db", readonly=True) as store:
        stored = store.evaluations()
    seen, after = [], 0
    while True:
        page = client.get(f"/api/runs/search/evaluations?limit=3&after={after}").json()
        if not page["evaluations"]:
            break
        seen += page["evaluations"]
        after = page["next_after"]
    assert [(e["expression"], e["seed"], e["phase"]) for e in seen] == [(e.expression, e.seed, e.phase.value) for e in stored]
    confirm = client.get("/api/runs/search/evaluations?phase=confirm&limit=1000").json()["evaluations"]
    assert confirm and len(confirm) == sum(e.phase is Phase.CONFIRM for e in stored)
    any_phase = client.get("/api/runs/search/evaluations?phase=&status=ok&limit=1000")  # a form's "any" phase
    assert any_phase.status_code == 200
    assert len(any_phase.json()["evaluations"]) == sum(e.status is Status.OK for e in stored[:1000])
    page = client.get("/runs/search/evaluations?phase=&status=ok")
    assert page.status_code == 200
    for bad in ("phase=nosuch", "limit=0", "limit=1001", "after=-1", "after=x", "status=fine"):
        answer = client.get(f"/api/runs/search/evaluations?{bad}")
        assert answer.status_code == 400 and answer.json()["error"].startswith(bad.split("=")[0])


def test_a_compare_run_answers_its_statistics(client: TestClient) -> None:
    grid = client.get("/api/runs/compare/grid").json()
    names = [f["name"] for f in grid["analysis"]["functions"]]
    assert sorted(grid["analysis"]["average_ranks"]) == sorted(names) and grid["analysis"]["findings"]
    assert "cd_diagram.png" in grid["files"] and "report.md" in grid["files"]
    picture = client.get("/runs/compare/files/cd_diagram.png")
    assert picture.status_code == 200 and picture.headers["content-type"] == "image/png"
    assert client.get("/api/runs/search/grid").status_code == 400
    assert client.get("/api/runs/compare/generations").status_code == 400


def test_function_values_export_and_the_runs_that_trained_it(client: TestClient) -> None:
    values = client.get("/api/functions/values?expr=x*sigmoid(x)&x=-1,0&x=2").json()
    x = torch.tensor([-1.0, 0.0, 2.0], dtype=torch.float64)
    assert values["f"] == (x * torch.sigmoid(x)).tolist()
    assert values["df"][1] == 0.5
    assert len(client.get("/api/functions/values?expr=tanh(x)&lo=-2&hi=2&n=5").json()["f"]) == 5
    assert client.get("/api/functions/values?expr=log(x)&x=-1").json()["f"] == [None]
    exported = client.get("/api/functions/export?expr=mila&format=numpy").text
    from afos.activation.spec import resolve_activation

    spec = resolve_activation("mila")
    assert exported == render(Form.from_text(spec.expression, spec.typical_values(), source="Exported from 'mila'."),
                              "numpy")
    described = client.get("/api/functions/describe?expr=relu").json()
    assert described["canonical"] == "Max(0, x)" and described["valid"]
    assert {t["run"] for t in described["runs"]} == {"search", "evaluate", "compare"}
    with RunStore(Path(client.app.state.root) / "search" / "afos.db", readonly=True) as store:
        relu = [e for e in store.evaluations(activation_key=described["key"]) if e.ok]
    in_search = next(t for t in described["runs"] if t["run"] == "search")
    assert in_search["ok"] == len(relu) and in_search["val_accuracy"] == pytest.approx(
        sum(e.val_accuracy or 0.0 for e in relu) / len(relu))


def test_bad_function_requests_get_one_clear_error(client: TestClient) -> None:
    cases = (("expr=x**&x=1", "expected"), ("expr=__import__('os')&x=1", "unexpected"), ("expr=os(x)&x=1", "unknown"),
             ("x=1", "expr="), ("expr=x&x=" + ",".join(["1"] * 2002), "at most 2001"), ("expr=x&x=nan", "finite"),
             ("expr=x&lo=1&hi=0", "below"), ("expr=" + "x+" * 300 + "x&x=1", "characters"))
    for query, words in cases:
        answer = client.get(f"/api/functions/values?{query}")
        assert answer.status_code == 400, query
        assert words in answer.json()["error"], (query, answer.json())
    assert client.get("/api/functions/export?expr=x&format=pdf").status_code == 400


def test_the_api_lists_its_routes(client: TestClient) -> None:
    routes = {row["path"]: row["doc"] for row in client.get("/api").json()["routes"]}
    assert "/api/runs/{run}/evaluations" in routes and all(routes.values())


def test_a_run_whose_process_is_gone_is_shown_interrupted_without_a_new_write(
        results_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Liveness changes with time alone: a cached view must not keep saying 'running'."""
    folder = results_root / "search"
    with sqlite3.connect(folder / "afos.db") as db:
        db.execute("UPDATE meta SET value = '\"running\"' WHERE key = 'status'")
    state = json.loads((folder / "run.json").read_text())
    (folder / "run.json").write_text(json.dumps({**state, "status": "running", "host": socket.gethostname(),
                                                 "pid": os.getpid(), "heartbeat": time.time() - 100}))
    client = TestClient(create_app(results_root, hosts=["testserver"]))
    assert client.get("/api/runs/search").json()["summary"]["status"] == "running"
    monkeypatch.setattr(liveness, "STALE_S", 50.0)  # as if a minute passed with no heartbeat
    summary = client.get("/api/runs/search").json()["summary"]
    assert summary["status"] == "interrupted" and summary["resume"].startswith("afos search --resume")
    assert "interrupted" in client.get("/runs/search").text


def test_the_runs_list_and_a_run_page_learn_of_new_runs_and_of_dead_writers(results_root: Path) -> None:
    """The runs page polls /api/version: a run that appears changes it. A run page polls its run's version:
    when the process writing the run is killed its files stop changing, and the version changes anyway."""
    import json
    import shutil
    import socket
    import sqlite3
    import subprocess
    import time

    from afos.app.server import create_app

    client = TestClient(create_app(results_root, hosts=["testserver"]))
    before = client.get("/api/version").json()["version"]
    shutil.copytree(results_root / "search", results_root / "another")
    assert client.get("/api/version").json()["version"] != before
    writer = subprocess.Popen(["sleep", "60"])  # stands for the search's process
    state = {"kind": "search", "status": "running", "host": socket.gethostname(), "pid": writer.pid,
             "heartbeat": time.time(), "evaluations": 3}
    (results_root / "another" / "run.json").write_text(json.dumps(state))
    with sqlite3.connect(results_root / "another" / "afos.db") as connection:  # as a search under way holds it
        connection.execute("UPDATE meta SET value = ? WHERE key = 'status'", (json.dumps("running"),))
    assert client.get("/api/runs/another").json()["summary"]["status"] == "running"
    alive = client.get("/api/runs/another/version").json()["version"]
    assert client.get("/api/runs/another/version").json()["version"] == alive  # nothing changed, nothing said
    writer.kill()
    writer.wait()
    assert client.get("/api/runs/another/version").json()["version"] != alive
    assert client.get("/api/runs/another").json()["summary"]["status"] == "interrupted"


def test_a_watched_page_is_rendered_once_per_change_of_its_run(results_root: Path) -> None:
    """Twenty browsers reloading a search page must cost the search one render per change, not twenty."""
    from afos.app import pages

    client = TestClient(create_app(results_root, hosts=["testserver"]))
    first = client.get("/runs/search").text
    before = pages.run_html.cache_info()
    answers = {client.get("/runs/search").text for _ in range(20)}
    after = pages.run_html.cache_info()
    assert answers == {first} and after.misses == before.misses and after.hits == before.hits + 20
    with sqlite3.connect(results_root / "search" / "afos.db") as db:  # the run writes
        db.execute("UPDATE evaluations SET reason = 'a new write' WHERE id = 1")
    client.get("/runs/search")
    assert pages.run_html.cache_info().misses == after.misses + 1
