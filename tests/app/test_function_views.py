"""The function as the unit of a view, over the real search of the session's fixture: the gallery and its
filters (checked against afos.space.probe's own shape facts), the genealogy of a function within its search
(parents, children, gains, training runs), the overlay (whitelist-parsed, bounded, its family named) and the
values API with learnable constants; hostile, unknown and unreadable input answered 400, 404 or 422, and
everything a run holds shown escaped."""

from __future__ import annotations

import html
import json
import math
import re
import shutil
import sqlite3
from pathlib import Path
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from afos.app.gallery_view import SHAPE_CHOICES, constants_of
from afos.app.server import create_app
from afos.space.probe import properties
from afos.storage.store import RunStore

HOSTILE = '<script>alert("x")</script>'


def _keys_on_page(text: str) -> list[str]:
    return re.findall(r'<li class="card status-\w+" data-key="([^"]+)"', text)


def _gallery(client: TestClient, query: str = "") -> dict:
    answer = client.get(f"/api/runs/search/gallery?{query}")
    assert answer.status_code == 200, answer.text
    return answer.json()


def _client(root: Path) -> TestClient:
    return TestClient(create_app(root, hosts=["testserver"]))


def test_the_gallery_shows_every_function_of_the_search_best_first(client: TestClient, made_runs: Path) -> None:
    with RunStore(made_runs / "search" / "afos.db", readonly=True) as store:
        candidates = {c.key for c in store.candidates()}
        trained = {e.activation_key for e in store.evaluations() if e.phase.value in ("search", "baseline")}
    everything = _gallery(client)
    keys = [row["key"] for row in everything["functions"]]
    assert set(keys) == candidates | trained and len(keys) == len(set(keys)) == everything["total"]
    fitness = [row["fitness"] for row in everything["functions"] if row["fitness"] is not None]
    assert fitness == sorted(fitness, reverse=True) and fitness
    page = client.get("/runs/search/gallery")
    assert page.status_code == 200 and _keys_on_page(page.text) == keys
    assert page.text.count('<svg class="sketch"') == len(keys)  # f and f' of each, drawn on the server
    relu = next(row for row in everything["functions"] if row["canonical"] == "Max(0, x)")
    assert relu["known"] == "ReLU" and relu["made_by"] == "seed"
    for row in everything["functions"]:  # every link resolves: the function's page and its genealogy
        assert client.get(row["link"]).status_code == 200
        assert client.get("/functions/" + quote(row["canonical"], safe="")).status_code == 200
    assert '<a href="/runs/search/gallery">gallery</a>' in client.get("/runs/search").text


def _shape(canonical: str) -> dict[str, str]:
    facts = properties(canonical, dict(constants_of(canonical)))
    slope = "zero" if abs(facts.slope_at_0) < 1e-9 else "positive" if facts.slope_at_0 > 0 else "negative"
    yes = {True: "yes", False: "no"}
    return {"monotonic": facts.monotonic, "bounded_below": yes[facts.bounded_below], "slope": slope,
            "saturating": yes[facts.bounded_below and facts.bounded_above], "negative": yes[facts.minimum < 0]}


def test_each_shape_filter_keeps_exactly_the_functions_of_that_shape(client: TestClient) -> None:
    everything = {row["key"]: row["canonical"] for row in _gallery(client)["functions"]}
    shapes = {key: _shape(text) for key, text in everything.items()}
    narrowed = False
    for name, values in SHAPE_CHOICES.items():
        for value in values:
            kept = [row["key"] for row in _gallery(client, f"{name}={value}")["functions"]]
            assert set(kept) == {k for k, shape in shapes.items() if shape[name] == value}, (name, value)
            narrowed |= 0 < len(kept) < len(everything)
            page = client.get(f"/runs/search/gallery?{name}={value}")
            assert page.status_code == 200 and _keys_on_page(page.text) == kept
            assert f'<option value="{value}" selected>' in page.text  # the form says what it filtered by
    assert narrowed, "no filter narrowed the search's functions: the fixture lost its variety"
    both = _gallery(client, "negative=yes&monotonic=no")["functions"]
    assert {row["key"] for row in both} == {k for k, s in shapes.items() if s["negative"] == "yes" and s["monotonic"] == "no"}


def _spoil(root: Path) -> tuple[str, str, str]:
    """In a copy of the search: one function's run failed, one screened function and one untrained one added;
    their keys."""
    database = root / "search" / "afos.db"
    with sqlite3.connect(database) as db:
        failed = db.execute("SELECT activation_key FROM evaluations WHERE phase = 'search' ORDER BY id LIMIT 1").fetchone()[0]
        db.execute("UPDATE evaluations SET status = 'error', reason = ? WHERE activation_key = ? AND phase = 'search'",
                   (f"boom {HOSTILE}", failed))
        db.execute("INSERT INTO candidates (activation_key, tree, canonical, generation, status, reason, created, lineage) "
                   "VALUES ('00screened000000', 'exp(exp(x))', 'exp(exp(x))', 1, 'screened', 'exploding: |f(x)| reaches 3e+64', "
                   "0, '{\"made_by\": \"immigrant\", \"operators\": [], \"parents\": []}')")
        db.execute("INSERT INTO candidates (activation_key, tree, canonical, generation, status, reason, created, lineage) "
                   "VALUES ('00untrained00000', 'sin(x)', 'sin(x)', 1, 'valid', NULL, 0, NULL)")
    return failed, "00screened000000", "00untrained00000"


def test_the_status_filter_tells_ok_failed_screened_and_untrained_apart(results_root: Path) -> None:
    failed, screened, untrained = _spoil(results_root)
    client = _client(results_root)
    by_status = {s: {row["key"] for row in _gallery(client, f"status={s}")["functions"]}
                 for s in ("ok", "failed", "screened", "untrained")}
    assert by_status["failed"] == {failed} and by_status["screened"] == {screened} and by_status["untrained"] == {untrained}
    everything = {row["key"] for row in _gallery(client)["functions"]}
    assert by_status["ok"] == everything - {failed, screened, untrained} and by_status["ok"]
    page = client.get("/runs/search/gallery?status=screened")
    assert _keys_on_page(page.text) == [screened] and "exploding" in page.text
    shaped = _gallery(client, "status=screened&monotonic=increasing")["functions"]
    assert [row["key"] for row in shaped] == [screened]  # exp(exp(x)) rises everywhere


def test_bad_filters_pages_runs_and_kinds_are_refused(client: TestClient, results_root: Path) -> None:
    for query in ("monotonic=sideways", "status=great", "page=0", "page=abc", "page=2", "slope=" + quote(HOSTILE)):
        page, api = client.get(f"/runs/search/gallery?{query}"), client.get(f"/api/runs/search/gallery?{query}")
        assert page.status_code == api.status_code == 400, query
        assert HOSTILE not in page.text and "error" in api.json()
    for run in ("nosuch", quote(HOSTILE, safe="")):
        assert client.get(f"/runs/{run}/gallery").status_code == 404
        assert client.get(f"/api/runs/{run}/gallery").status_code == 404
        assert client.get(f"/runs/{run}/functions/abc").status_code == 404
    for run in ("evaluate", "compare"):  # a run of another kind has no gallery
        assert client.get(f"/runs/{run}/gallery").status_code == 400
        assert client.get(f"/api/runs/{run}/gallery").status_code == 400
    (results_root / "garbage").mkdir()
    (results_root / "garbage" / "afos.db").write_bytes(b"not a database at all" * 100)
    shutil.copytree(results_root / "search", results_root / "malformed")
    with sqlite3.connect(results_root / "malformed" / "afos.db") as db:
        db.execute("UPDATE candidates SET lineage = '{not json' WHERE rowid = 1")
    spoiled = _client(results_root)
    for run in ("garbage", "malformed"):
        for path in (f"/runs/{run}/gallery", f"/api/runs/{run}/gallery", f"/runs/{run}/functions/abc"):
            answer = spoiled.get(path)
            assert answer.status_code == 422 and "cannot be read" in answer.text, path
    assert spoiled.get("/runs/search/gallery").status_code == 200


def _link(run: str, key: str) -> str:
    return f"/runs/{run}/functions/{quote(key, safe='')}"


def test_a_genealogy_names_parents_children_gains_and_training_runs(results_root: Path) -> None:
    client = _client(results_root)
    rows = {row["key"]: row for row in _gallery(client)["functions"] if row["fitness"] is not None}
    child, mother, father = list(rows)[-1], list(rows)[0], list(rows)[1]
    lineage = {"made_by": "offspring", "operators": ["crossover", "shrink"], "parents": [mother, father]}
    with sqlite3.connect(results_root / "search" / "afos.db") as db:
        db.execute("UPDATE candidates SET lineage = ? WHERE activation_key = ?", (json.dumps(lineage), child))
    page = client.get(_link("search", child))
    assert page.status_code == 200 and "crossover + shrink" in page.text
    parents = page.text.split('<table id="parents">')[1].split("</table>")[0]
    assert [html.unescape(k) for k in re.findall(r'href="/runs/search/functions/([^"]+)"', parents)] == \
        [quote(mother, safe=""), quote(father, safe="")]
    gain = rows[child]["fitness"] - rows[mother]["fitness"]
    assert f"{gain:+.4f}" in parents
    with RunStore(results_root / "search" / "afos.db", readonly=True) as store:
        runs = store.evaluations(activation_key=child)
    assert page.text.split('<table id="runs">')[1].count("<tr>") == len(runs) + 1  # its runs, every phase, and a head
    mother_page = client.get(_link("search", mother))
    children = mother_page.text.split('<table id="children">')[1].split("</table>")[0]
    assert f'href="{_link("search", child)}"' in children and f"{gain:+.4f}" in children
    overlay = html.unescape(re.findall(r'<a href="(/overlay\?[^"]+)" id="overlay-link"', page.text)[0])
    assert client.get(overlay).status_code == 200 and overlay.count("f=") == 3  # the function and its two parents
    assert client.get(_link("search", "0" * 16)).status_code == 404


def test_the_hall_of_fame_links_each_lineage_to_its_genealogy(client: TestClient) -> None:
    page = client.get("/runs/search").text
    links = re.findall(r'<a class="lineage" href="(/runs/search/functions/[^"]+)"', page)
    hall = client.get("/api/runs/search/hall-of-fame").json()["hall_of_fame"]
    assert links == [_link("search", row["fingerprint"]) for row in hall] and links
    for link in links:
        answer = client.get(link)
        assert answer.status_code == 200 and "Training runs in this search" in answer.text


def test_what_a_run_holds_is_shown_escaped(results_root: Path) -> None:
    failed, _, _ = _spoil(results_root)
    with sqlite3.connect(results_root / "search" / "afos.db") as db:
        db.execute("UPDATE candidates SET canonical = ? WHERE activation_key = ?", (HOSTILE, failed))
        db.execute("UPDATE candidates SET reason = ? WHERE status = 'screened'", (HOSTILE,))
    client = _client(results_root)
    pages = [client.get(path).text for path in ("/runs/search/gallery", "/runs/search/gallery?status=screened",
                                                _link("search", failed), "/overlay?f=" + quote(HOSTILE))]
    for text in pages:
        assert HOSTILE not in text and "<script>alert" not in text
    assert "&lt;script&gt;" in pages[0] and "&lt;script&gt;" in pages[1] and "boom &lt;script&gt;" in pages[2]


def test_the_overlay_draws_what_the_parser_accepts_and_names_known_families(client: TestClient) -> None:
    page = client.get("/overlay?f=x*tanh(softplus(x))&f=p0*tanh(p1*x)&f=&run=search&top=2")
    assert page.status_code == 200
    data = json.loads(page.text.split('<script type="application/json" id="overlay-data">')[1].split("</script>")[0])
    hall = client.get("/api/runs/search/hall-of-fame").json()["hall_of_fame"]
    assert [f["expr"] for f in data["functions"]] == ["x*tanh(softplus(x))", "p0*tanh(p1*x)", *(r["canonical"] for r in hall[:2])]
    assert data["functions"][1]["params"] == {"p0": 1.0, "p1": 1.0} and data["baselines"] == ["relu", "silu", "gelu", "tanh"]
    assert re.search(r'<span class="badge known">Mish</span>', page.text)
    assert len(re.findall(r'<input type="range" class="slider" data-curve="1" data-name="p\d"', page.text)) == 2
    assert '<script src="/static/functions.js" defer></script>' in page.text
    assert client.get("/static/functions.js").status_code == 200
    assert client.get("/overlay").status_code == 200 and 'href="/overlay"' in client.get("/").text
    hostile = client.get("/overlay?f=__import__('os')&f=x")
    assert hostile.status_code == 400 and "__import__" in html.unescape(hostile.text) and '"expr": "x"' in hostile.text
    assert client.get("/overlay?" + "&".join(["f=x"] * 13)).status_code == 400
    assert client.get("/overlay?f=x&top=99&run=search").status_code == 400
    assert client.get("/overlay?f=x&run=nosuch").status_code == 404
    assert client.get("/overlay?f=x&run=evaluate").status_code == 400


def test_the_values_api_takes_learnable_constants(client: TestClient) -> None:
    start = client.get("/api/functions/values?expr=p0*tanh(p1*x)&x=0.5,1").json()
    moved = client.get("/api/functions/values?expr=p0*tanh(p1*x)&x=0.5,1&p0=2&p1=0.5").json()
    assert start["parameters"] == {"p0": 1.0, "p1": 1.0} and moved["parameters"] == {"p0": 2.0, "p1": 0.5}
    assert moved["f"] == pytest.approx([2 * math.tanh(0.5 * x) for x in (0.5, 1)])
    for bad in ("p2=1", "p0=nan", "p0=1e400", "p0=abc", "p0=1e7"):
        answer = client.get(f"/api/functions/values?expr=p0*tanh(p1*x)&x=1&{bad}")
        assert answer.status_code == 400 and "error" in answer.json(), bad
    paths = [route["path"] for route in client.get("/api").json()["routes"]]
    assert "/api/runs/{run}/gallery" in paths


def test_the_function_pages_never_write_into_the_results_root(results_root: Path) -> None:
    def snapshot() -> dict[str, tuple[int, int]]:
        return {str(p.relative_to(results_root)): (p.stat().st_size, p.stat().st_mtime_ns)
                for p in sorted(results_root.rglob("*")) if p.is_file()}

    before = snapshot()
    client = _client(results_root)
    key = _gallery(client)["functions"][0]["key"]
    for path in ("/runs/search/gallery?negative=yes", _link("search", key), "/overlay?f=x&run=search"):
        assert client.get(path).status_code == 200
    assert snapshot() == before
