"""What a reader of ``afos serve`` sees on the pages of real runs: what was searched, the report's pictures
and files, the confirmation as a forest plot (pending shown as pending), the runs list newest first with
filters, and every table as a download."""

from __future__ import annotations

import csv
import io
import json
import shutil
import sqlite3
import time
from pathlib import Path

from starlette.testclient import TestClient

from afos.app.server import create_app
from afos.records.evaluation import Phase
from afos.storage.store import RunStore


def test_a_search_page_says_what_was_searched_and_shows_its_report(client: TestClient) -> None:
    page = client.get("/runs/search").text
    for fact in ("digits / mlp", "1 epochs, batch 64, sgd lr 0.05", "afos", "ga, surrogate knn, population 4 × 2",
                 "val_accuracy on 1 seed(s), seed 1"):
        assert fact in page, fact
    for picture in ("fitness.png", "genealogy.png", "top_functions.png", "front.png"):
        assert f'src="/runs/search/files/{picture}"' in page
        assert client.get(f"/runs/search/files/{picture}").headers["content-type"] == "image/png"
    report = client.get("/runs/search/files/report.md")
    assert report.status_code == 200 and "attachment" in report.headers["content-disposition"]
    assert report.text.startswith("#")
    assert client.get("/runs/search/files/run.json").status_code == 404  # liveness, not a result
    assert client.get("/runs/search/files/afos.db").status_code == 404


def test_baselines_are_named_alike_in_every_table(client: TestClient) -> None:
    page = client.get("/runs/search").text
    confirmation = page[page.index('id="confirmation"'):page.index('id="hall"')]
    assert ">relu</a>" in confirmation and ">Max(0, x)</a>" not in confirmation


def test_the_confirmation_is_a_forest_plot_and_unfinished_work_is_pending(client: TestClient,
                                                                          results_root: Path) -> None:
    page = client.get("/runs/search").text
    assert 'class="forest"' in page and '<circle class="mean"' in page
    with RunStore(results_root / "search" / "afos.db", readonly=True) as store:
        finalist = next(e for e in store.evaluations(phase=Phase.CONFIRM) if e.expression not in ("relu", "silu"))
    with sqlite3.connect(results_root / "search" / "afos.db") as db:  # as a confirmation killed half-way leaves it
        db.execute("DELETE FROM evaluations WHERE phase = 'confirm' AND activation_key = ? AND seed = ?",
                   (finalist.activation_key, finalist.seed))
    unfinished = TestClient(create_app(results_root, hosts=["testserver"])).get("/runs/search").text
    forest = unfinished[unfinished.index('class="forest"'):unfinished.index("</table>", unfinished.index('class="forest"'))]
    assert "pending: not every confirmation seed is trained" in forest and '<circle class="mean"' not in forest
    assert "The confirmation has not finished" in unfinished


def test_the_runs_list_is_newest_first_and_filters(results_root: Path) -> None:
    client = TestClient(create_app(results_root, hosts=["testserver"]))
    listed = [row["run"] for row in client.get("/api/runs").json()["runs"]]
    assert listed == ["compare", "evaluate", "search"]  # made in this order
    assert [r["run"] for r in client.get("/api/runs?kind=search").json()["runs"]] == ["search"]
    assert [r["run"] for r in client.get("/api/runs?name=VAL").json()["runs"]] == ["evaluate"]
    assert client.get("/api/runs?status=running").json()["runs"] == []
    assert client.get("/api/runs?kind=nonsense").status_code == 400
    page = client.get("/?kind=search&status=&name=").text
    assert "/runs/search" in page and "/runs/compare" not in page and 'value="search" selected' in page
    assert "No run matches these filters" in client.get("/?name=nothing-like-it").text


def test_every_table_downloads_as_csv(client: TestClient) -> None:
    for route, column in (("/api/runs/search/generations", "counts.trained"), ("/api/runs/search/hall-of-fame", "canonical"),
                          ("/api/runs/search/finalists", "verdict"), ("/api/runs?kind=search", "run"),
                          ("/api/runs/search/evaluations", "val_accuracy")):
        answer = client.get(route + ("&" if "?" in route else "?") + "format=csv")
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv"), route
        assert "attachment" in answer.headers["content-disposition"], route
        rows = list(csv.DictReader(io.StringIO(answer.text)))
        assert rows and column in rows[0], route
    every = list(csv.DictReader(io.StringIO(client.get("/api/runs/search/evaluations?format=csv").text)))
    with RunStore(Path(client.app.state.root) / "search" / "afos.db", readonly=True) as store:  # type: ignore[attr-defined]
        assert len(every) == store.count_evaluations()
    assert 'href="/api/runs/search/generations?format=csv"' in client.get("/runs/search").text


def test_the_runs_page_is_rendered_once_per_change_under_the_root(results_root: Path) -> None:
    from afos.app import pages

    client = TestClient(create_app(results_root, hosts=["testserver"]))
    client.get("/")
    before = pages.runs_html.cache_info()
    for _ in range(10):
        client.get("/")
    assert pages.runs_html.cache_info().misses == before.misses
    time.sleep(0.01)
    (results_root / "search" / "afos.db").touch()
    client.get("/")
    assert pages.runs_html.cache_info().misses == before.misses + 1


def test_searches_are_compared_on_one_anytime_chart_with_a_band_per_strategy(results_root: Path) -> None:
    shutil.copytree(results_root / "search", results_root / "search-again")
    client = TestClient(create_app(results_root, hosts=["testserver"]))
    page = client.get("/searches?run=search&run=search-again")
    assert page.status_code == 200
    chart = json.loads(page.text.split('class="chart-data">')[1].split("</script>")[0])["anytime"]
    assert chart["bands"] == [["ga + knn: highest", "ga + knn: lowest"]]
    median = chart["series"]["ga + knn: median of 2"]
    assert median == chart["series"]["ga + knn: highest"] and median[-1] is not None  # the copy is the same search
    assert client.get("/searches?run=evaluate").status_code == 400
    assert "choose the searches" in client.get("/searches").text
    assert 'name="run" value="search"' in client.get("/").text  # the runs list's compare boxes


def test_a_function_page_draws_its_learning_curves_from_every_run(client: TestClient) -> None:
    page = client.get("/functions/relu").text
    curves = json.loads(page.split('class="chart-data">')[1].split("</script>")[0])["curves"]
    runs = {label.split(":")[0] for label in curves["series"]}
    assert {"search", "evaluate", "compare"} <= runs and curves["xlabel"] == "epoch"
    assert all(len(values) == len(curves["x"]) for values in curves["series"].values())
