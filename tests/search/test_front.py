"""A search over accuracy and cost: the fitness record, the Pareto archive, NSGA-II, and the front in the
report, ``afos runs``, ``afos export --pick`` and the confirmation. (The contract every strategy meets,
determinism and kill -9 resume included, is tests/search/test_strategies.py.)"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from starlette.testclient import TestClient

from afos.app.server import create_app
from afos.cli import cli
from afos.errors import ConfigError
from afos.records.runs import Role
from afos.records.search import Fitness, HallOfFameEntry, Member
from afos.runs.listing import list_runs
from afos.search.confirmation import plan
from afos.search.hall_of_fame import ParetoArchive, spread
from afos.space.cost import cost
from tests.search.test_search import _config, _search

COSTED = {"strategy": "nsga2", "objectives": ["accuracy", "cost"]}


def _entry(key: str, value: float, price: float | None, rung: float = 0.0) -> HallOfFameEntry:
    return HallOfFameEntry(key, "x", f"f{key}", Fitness(rung, value, price), 0, n_runs=1, val_accuracy=value)


def test_a_fitness_reads_back_from_its_stored_form_old_and_new() -> None:
    assert Fitness.from_list([1, 0.5]) == Fitness(1.0, 0.5, None)
    assert Member.from_dict(Member("x", Fitness(0.0, 0.9, 2.5)).to_dict()).fitness == Fitness(0.0, 0.9, 2.5)
    assert Fitness(0.0, 0.9, 1.0).dominates(Fitness(0.0, 0.8, 2.0))
    assert not Fitness(0.0, 0.9, 3.0).dominates(Fitness(0.0, 0.8, 2.0))
    assert not Fitness(0.0, 0.9, 1.0).dominates(Fitness(0.0, 0.9, 1.0))
    assert not Fitness(0.0, 0.9, 1.0).dominates(Fitness(1.0, 0.5, 1.0))  # never one trained further


def test_the_archive_keeps_exactly_the_undominated_functions_of_the_full_budget() -> None:
    archive = ParetoArchive(0, [_entry("a", 0.9, 5.0), _entry("b", 0.8, 1.0), _entry("c", 0.7, 3.0)])
    assert [e.key for e in archive.ranked()] == ["a", "b"]  # c is dominated by b: most accurate first
    archive.update([_entry("d", 0.95, 5.0), _entry("e", 0.99, 0.5, rung=1.0)])  # e: another rung, not comparable
    assert [e.key for e in archive.ranked()] == ["d", "b"]
    members = [_entry(k, v, c) for k, v, c in (("p", 0.5, 1.0), ("q", 0.6, 2.0), ("r", 0.7, 3.0), ("s", 0.8, 4.0),
                                               ("t", 0.9, 5.0))]
    assert [e.key for e in spread(members, 3)] == ["t", "r", "p"]  # both ends and the middle
    assert [e.key for e in spread(members, 9)] == ["t", "s", "r", "q", "p"]


def test_confirmation_takes_members_spread_along_the_front() -> None:
    members = [_entry(k, v, c) for k, v, c in (("p", 0.5, 1.5), ("q", 0.6, 2.0), ("r", 0.7, 3.0), ("s", 0.8, 4.0))]
    finalists = [f.canonical for f in plan(members, ["silu"], 2) if f.role is Role.FINALIST]
    assert finalists == ["fs", "fp"]  # the most accurate and the cheapest, not the two most accurate
    floored = [f.canonical for f in plan(members, ["silu"], 2, floor=0.55) if f.role is Role.FINALIST]
    assert floored == ["fs", "fq"]  # p (0.5) is below every baseline: its seeds would be spent for nothing


def test_nsga2_needs_two_objectives_and_objectives_start_with_accuracy() -> None:
    with pytest.raises(ConfigError, match="two objectives for nsga2"):
        _config(strategy="nsga2")
    for bad in (["cost"], ["accuracy", "accuracy"], ["accuracy", "speed"]):
        with pytest.raises(ConfigError, match="objectives"):
            _config(objectives=bad)


@pytest.fixture(scope="module")
def front_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small real NSGA-II search over accuracy and cost on digits."""
    run_dir = tmp_path_factory.mktemp("front") / "run"
    assert _search(_config(**COSTED), run_dir) == "finished"
    return run_dir


def test_an_nsga2_search_keeps_the_front_of_what_it_trained(front_run: Path) -> None:
    with (front_run / "hall_of_fame.csv").open() as handle:
        front = [(float(row["fitness"]), float(row["cost"]), row["canonical"]) for row in csv.DictReader(handle)]
    assert front
    for _, price, text in front:
        assert price == cost(text)  # the stored cost is the model's, computed from the form
    report = (front_run / "report.md").read_text()
    assert "## Accuracy and cost" in report and (front_run / "cost_front.png").stat().st_size > 0
    # every member is undominated among the functions trained at the full budget (the report's table of them)
    from afos.reporting.search_report import read_report

    trained = [p for p in read_report(front_run).points if p.cost is not None]
    for value, price, _ in front:
        assert not any(p.fitness >= value and p.cost <= price and (p.fitness, p.cost) != (value, price)
                       for p in trained)
    row = next(r for r in list_runs(front_run.parent) if r.run == front_run.name)
    assert row.front_costs == tuple(sorted(price for _, price, _ in front))


def test_export_picks_a_member_of_the_front(front_run: Path) -> None:
    def export(*args: str) -> Result:
        return CliRunner().invoke(cli, ["export", str(front_run), "--format", "sympy", *args])

    with (front_run / "hall_of_fame.csv").open() as handle:
        by_cost = sorted(csv.DictReader(handle), key=lambda row: (float(row["cost"]), -float(row["fitness"])))
    assert export("--pick", "cheapest").output.strip() == by_cost[0]["canonical"]
    assert export("--pick", str(len(by_cost))).output.strip() == by_cost[-1]["canonical"]
    wrong = export("--pick", str(len(by_cost) + 1))
    assert wrong.exit_code == 2 and f"1..{len(by_cost)}" in wrong.output


def test_the_search_page_draws_the_front_and_lists_it_cheapest_first(front_run: Path) -> None:
    client = TestClient(create_app(front_run.parent, hosts=["testserver"]))
    page = client.get(f"/runs/{front_run.name}").text
    assert "Front of accuracy against cost" in page and 'class="steps"' in page
    with (front_run / "hall_of_fame.csv").open() as handle:
        members = sorted(csv.DictReader(handle), key=lambda row: (float(row["cost"]), -float(row["fitness"])))
    table = page[page.index("Front of accuracy against cost"):page.index("Front, by fitness")]
    positions = [table.index(f">{row['canonical']}</a>") for row in members]
    assert positions == sorted(positions)
    assert all(f">{name}</text>" in table for name in ("relu", "silu", "gelu"))  # the baselines, marked
    assert "accuracy and cost" in page  # what was searched
