"""Confirmation of a search's finalists on fresh seeds (digits, CPU, seconds) and the transfer study."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
from scipy import stats as sps

from afos.activation.spec import ActivationSpec
from afos.execution.local import SerialExecutor
from afos.records.evaluation import Origin, Phase
from afos.records.runs import MetaKey, Role, RunStatus, Verdict
from afos.runs.lifecycle import Options
from afos.runs.listing import list_runs
from afos.runs.search import search as run_search
from afos.search.config import SearchConfig
from afos.search.confirmation import Finalist, PlannedFunction, confirm_seeds, summarise
from afos.search.results import finalist_rows, hall_of_fame
from afos.search.verdict import verdict_sentence, winner
from afos.storage.store import RunStore
from afos.training.config import TrainConfig
from afos.training.fitness import run_fitness

SEARCH = {"population": 4, "generations": 2, "seed": 3, "fitness_seeds": 2, "elites": 1, "reuse_runs": False,
          "confirm_top": 2, "confirm_seeds": 3, "baseline": "silu",
          "train": {"dataset": "digits", "model": "mlp", "epochs": 2, "batch_size": 64}}


def _search(run_dir: Path, **changes: object) -> None:
    with SerialExecutor() as executor:
        run_search(SearchConfig.from_dict({**SEARCH, **changes}), run_dir, executor=executor)


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("finalists") / "run"
    _search(run_dir)
    return run_dir


def _finalists(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "finalists.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_confirmation_seeds_are_fresh_and_paired(searched: Path) -> None:
    with RunStore(searched / "afos.db", readonly=True) as store:
        search_seeds = {r.seed for r in store.evaluations(phase=Phase.SEARCH)}
        confirm = store.evaluations(phase=Phase.CONFIRM)
        plan = store.get_meta(MetaKey.CONFIRMATION)
    assert search_seeds == {3, 4}
    assert plan["seeds"] == confirm_seeds(3, 2, 3) == [5, 6, 7]
    assert {r.seed for r in confirm} == {5, 6, 7}
    keys = {r.activation_key for r in confirm}
    assert len(keys) == len(plan["functions"]) == 2 + 2  # two finalists, relu and silu
    assert all(sum(1 for r in confirm if r.activation_key == key) == 3 for key in keys)  # every seed each


def test_p_values_equal_scipy_on_the_stored_numbers(searched: Path) -> None:
    rows = _finalists(searched)
    with RunStore(searched / "afos.db", readonly=True) as store:
        confirm = store.evaluations(phase=Phase.CONFIRM)
    test = {(r.activation_key, r.seed): r.test_accuracy for r in confirm}
    relu = next(row for row in rows if row["expression"] == "relu")
    finalists = [row for row in rows if row["role"] == "finalist"]
    assert [row["rank"] for row in finalists] == ["1", "2"]
    assert float(finalists[0]["val_mean"]) >= float(finalists[1]["val_mean"])  # ranked by validation
    for row in finalists:
        mine = [test[(row["fingerprint"], s)] for s in (5, 6, 7)]
        theirs = [test[(relu["fingerprint"], s)] for s in (5, 6, 7)]
        expected = sps.ttest_rel(mine, theirs, alternative="greater").pvalue
        assert float(row["p_vs_relu"]) == pytest.approx(expected, rel=1e-9)
        assert float(row["delta_vs_relu"]) == pytest.approx(sum(mine) / 3 - sum(theirs) / 3)
        assert float(row["test_ci_low"]) <= float(row["test_mean"]) <= float(row["test_ci_high"])
        assert row["verdict"] in {"better", "no difference", "worse"}
    p = sorted(float(row["p_vs_relu"]) for row in finalists)
    assert sorted(float(row["p_holm"]) for row in finalists) == pytest.approx([min(1, 2 * p[0]), min(1, max(2 * p[0], p[1]))])
    baselines = [row for row in rows if row["role"] == "baseline"]
    strongest = max(baselines, key=lambda row: (float(row["val_mean"]), row["fingerprint"]))  # by validation
    theirs = [test[(strongest["fingerprint"], s)] for s in (5, 6, 7)]
    raw = []
    for row in finalists:
        mine = [test[(row["fingerprint"], s)] for s in (5, 6, 7)]
        assert row["strongest_baseline"] == strongest["expression"]
        assert float(row["delta_vs_strongest"]) == pytest.approx(sum(mine) / 3 - sum(theirs) / 3)
        raw.append(sps.ttest_rel(mine, theirs, alternative="greater").pvalue)
    low, high = sorted(raw)
    assert sorted(float(row["p_holm_vs_strongest"]) for row in finalists) == pytest.approx(
        [min(1, 2 * low), min(1, max(2 * low, high))])
    report = (searched / "report.md").read_text()
    assert "## Confirmation" in report and ("beats ReLU" in report)


def test_a_resumed_confirmation_trains_nothing_twice(searched: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(searched, copy)
    with RunStore(copy / "afos.db", readonly=True) as store:
        before = store.count_evaluations()
    _search(copy)  # the same command again: every search and confirmation run is read back
    with RunStore(copy / "afos.db", readonly=True) as store:
        assert store.count_evaluations() == before
        assert all(r.origin is Origin.TRAINED for r in store.evaluations())
    assert _finalists(copy) == _finalists(searched)


def test_no_confirm_writes_no_finalists(tmp_path: Path) -> None:
    _search(tmp_path / "run", confirm=False, generations=1)
    assert not (tmp_path / "run" / "finalists.csv").exists()
    with RunStore(tmp_path / "run" / "afos.db", readonly=True) as store:
        assert store.count_evaluations(Phase.CONFIRM) == 0
        first = hall_of_fame(store)[0]
    (row,) = list_runs(tmp_path)  # nothing confirmed: the hall of fame's first, marked as such
    assert (row.best, row.verdict, row.score) == (first.canonical, None, first.fitness.value)


def test_compare_from_search_takes_the_finalists(searched: Path, tmp_path: Path) -> None:
    finalists = [row["canonical"] for row in _finalists(searched) if row["role"] == "finalist"]
    out = tmp_path / "transfer"
    result = subprocess.run([sys.executable, "-m", "afos", "compare", "--from-search", str(searched), "--top", "1",
                             "--datasets", "digits,wine", "--seeds", "2", "--epochs", "1", "--out", str(out),
                             "--json", "--quiet"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    import json

    analysis = json.loads(result.stdout)
    names = {f["name"]: f["role"] for f in analysis["functions"]}
    assert names == {finalists[0]: "candidate", "relu": "baseline", "silu": "baseline"}
    assert "digits/mlp is the search's own (seen) task" in (out / "report.md").read_text()


def _planned(row: dict[str, str]) -> PlannedFunction:
    return PlannedFunction(Role(row["role"]), row["expression"], row["canonical"], row["fingerprint"],
                           ActivationSpec(row["expression"]))


def test_a_finalist_that_failed_on_one_seed_is_failed_and_ranked_last(searched: Path) -> None:
    """Real confirmation records of this search, with one seed of its best finalist replaced by that seed's
    run of a function that really diverges: it is ranked after every finalist whose seeds all finished,
    called failed (however well it did on the others), and the sentence never names it."""
    diverged = run_fitness("exp(exp(exp(x)))", TrainConfig(dataset="digits", model="mlp", epochs=2, batch_size=64))
    assert not diverged.ok
    rows = _finalists(searched)
    seeds = [int(s) for s in confirm_seeds(SEARCH["seed"], SEARCH["fitness_seeds"], SEARCH["confirm_seeds"])]
    finalists = [_planned(r) for r in rows]
    victim = finalists[0]
    with RunStore(searched / "afos.db", readonly=True) as store:
        stored = {(e.activation_key, e.seed): e for e in store.evaluations() if e.phase is Phase.CONFIRM}

    def records(function: PlannedFunction, seed: int) -> list:
        if function is victim and seed == seeds[0]:
            return [diverged]
        return [stored[function.key, seed]]

    summary = summarise(finalists, seeds, records)
    failed = next(f for f in summary if f.canonical == victim.canonical)
    assert failed.verdict is Verdict.FAILED and failed.failed == 1 and failed.p_holm is None
    assert "1 of 3 seeds failed" in failed.outcome()
    ranked = [f for f in summary if f.role is Role.FINALIST]
    assert ranked[-1] is failed and [f.rank for f in ranked] == list(range(1, len(ranked) + 1))
    assert failed.canonical not in verdict_sentence(summary) or len(ranked) == 1


def test_work_not_done_has_no_verdict(searched: Path) -> None:
    """The real confirmation records of this search with the last seed of one finalist (then of ReLU) not
    trained yet, as a confirmation under way or killed leaves them: pending, no winner, no headline."""
    rows = _finalists(searched)
    seeds = [int(s) for s in confirm_seeds(SEARCH["seed"], SEARCH["fitness_seeds"], SEARCH["confirm_seeds"])]
    functions = [_planned(r) for r in rows]
    with RunStore(searched / "afos.db", readonly=True) as store:
        stored = {(e.activation_key, e.seed): e for e in store.evaluations() if e.phase is Phase.CONFIRM}
    complete = summarise(functions, seeds, lambda f, seed: [stored[f.key, seed]])
    assert not any(f.verdict is Verdict.PENDING for f in complete) and winner(complete) is not None
    for missing in (functions[0], next(f for f in functions if f.expression == "relu")):
        summary = summarise(functions, seeds, lambda f, seed, gone=missing: None if (f is gone and seed == seeds[-1])
                            else [stored[f.key, seed]])
        verdicts = {f.canonical: f.verdict for f in summary if f.role is Role.FINALIST}
        assert Verdict.PENDING in verdicts.values() and winner(summary) is None
        assert verdict_sentence(summary).startswith("The confirmation has not finished")
        assert all(f.p_holm is None for f in summary if f.verdict is Verdict.PENDING)


def test_the_time_limit_bounds_the_confirmation_too(tmp_path: Path) -> None:
    """A search stopped by its time limit trains no confirmation run past it (the limit has passed when the
    search stops), says so, and stays resumable."""
    run_dir = tmp_path / "run"
    lines: list[str] = []
    with SerialExecutor() as executor:
        status = run_search(SearchConfig.from_dict({**SEARCH, "generations": 1000, "time_limit": 2}), run_dir,
                            executor=executor, options=Options(echo=lines.append))
    assert status is RunStatus.TIME_LIMIT and status.is_resumable()
    with RunStore(run_dir / "afos.db", readonly=True) as store:
        assert not [e for e in store.evaluations() if e.phase is Phase.CONFIRM]
    said = "\n".join(lines)
    assert "confirmation stopped at the time limit" in said or "no finalist to confirm" in said


def test_export_of_a_search_run_is_the_function_its_verdict_names(searched: Path) -> None:
    with RunStore(searched / "afos.db", readonly=True) as store:
        rows = finalist_rows(store)
    named = winner(rows or [])
    assert named is not None and named.canonical in verdict_sentence(rows or [])
    exported = subprocess.run([sys.executable, "-m", "afos", "export", str(searched)], capture_output=True,
                              text=True, timeout=120)
    assert exported.returncode == 0, exported.stderr
    assert f"    {named.canonical}\n" in exported.stdout and "The confirmed winner of" in exported.stdout
    first = subprocess.run([sys.executable, "-m", "afos", "export", str(searched), "--rank", "1"],
                           capture_output=True, text=True, timeout=120)
    assert "Rank 1 of the hall of fame" in first.stdout


def test_afos_runs_shows_the_confirmed_winner_not_the_search_rank_one(searched: Path) -> None:
    with RunStore(searched / "afos.db", readonly=True) as store:
        named = winner(finalist_rows(store) or [])
    assert named is not None
    (row,) = list_runs(searched.parent)
    assert (row.best, row.verdict, row.score) == (named.canonical, named.verdict, named.val_mean)
    shown = subprocess.run([sys.executable, "-m", "afos", "runs", str(searched.parent)], capture_output=True,
                           text=True, timeout=120)
    header, line = shown.stdout.splitlines()
    assert header.split() == ["STARTED", "RUN", "KIND", "STATUS", "GEN", "RUNS", "BEST"]
    verdict = {Verdict.BETTER: "better than ReLU", Verdict.NO_DIFFERENCE: "no difference from ReLU",
               Verdict.WORSE: "worse than ReLU"}[named.verdict]
    assert f"{named.canonical}  ({verdict}; confirmed val {named.val_mean:.4f})" in line


def test_the_verdict_says_whether_the_winner_also_beats_the_strongest_baseline() -> None:
    def row(verdict: Verdict, strongest: str, p_strongest: float) -> Finalist:
        return Finalist(1, Role.FINALIST, "x*erf(x)", "x*erf(x)", "k", 5, 0, 0.97, 0.01, 0.96, 0.01, 0.95, 0.97,
                        0.02, 0.01, 0.03, 0.001, 0.004, verdict, strongest, 0.004, p_strongest)

    beats_both = verdict_sentence([row(Verdict.BETTER, "gelu", 0.01)])
    assert beats_both.startswith("x*erf(x) beats ReLU: +2.00 points")
    assert beats_both.endswith("It also beats the strongest baseline, gelu: +0.40 points, p_holm = 0.01.")
    assert verdict_sentence([row(Verdict.BETTER, "gelu", 0.3)]).endswith(
        "It does not beat the strongest baseline, gelu, beyond noise (+0.40 points, p_holm = 0.3).")
    assert "strongest" not in verdict_sentence([row(Verdict.BETTER, "relu", 0.004)])  # ReLU was the strongest
    assert "strongest" not in verdict_sentence([row(Verdict.NO_DIFFERENCE, "gelu", 0.3)])


def test_an_accuracy_interval_stays_within_what_an_accuracy_can_be() -> None:
    """Two seeds far apart: the t-interval of their mean reaches past 1, which no accuracy can."""
    from afos.search.confirmation import _interval

    low, high = _interval([0.40, 0.99], (0.0, 1.0))
    assert low == 0.0 and high == 1.0
    unbounded = _interval([0.40, 0.99])
    assert unbounded[0] < 0.0 and unbounded[1] > 1.0  # what was printed before ("0.3773 – 1.0127" style)
