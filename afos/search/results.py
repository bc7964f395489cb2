"""What a search's database holds, read back: its hall of fame, generations, baselines and confirmation.

Readers (reports, ``afos runs``, ``evaluate --from-search``) import this, not the loop that wrote it: reading
a search needs its database and its config's vocabulary only."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from afos.records import EvalKey, Evaluation
from afos.search.config import score
from afos.search.confirmation import Finalist, summarise
from afos.space.display import display_form
from afos.stats.common import finite_mean
from afos.storage.store import RunStore


def hall_of_fame_rows(store: RunStore) -> list[dict[str, Any]]:
    """The hall of fame of the last completed generation, ranked, as flat rows."""
    saved = store.last_generation()
    entries = saved["hall_of_fame"] if saved else []
    return [
        {"rank": rank, "expression": e["tree"], "canonical": e["canonical"], "fingerprint": e["fingerprint"],
         "fitness": e["fitness"][1], "rung": e["fitness"][0], "n_runs": e.get("n_runs"), "ok": e.get("ok", True),
         "val_accuracy": e["val_accuracy"], "val_std": e.get("val_std"), "test_accuracy": e["test_accuracy"],
         "generation": e["generation"],
         "learned": json.dumps(e.get("learned")) if e.get("learned") else "",
         "form": _form(e)}
        for rank, e in enumerate(entries, start=1)
    ]


def _form(entry: Mapping[str, Any]) -> str:
    """A hall-of-fame function as shown: learned constants with their mean ± spread over the runs."""
    learned = {k: v for k, v in (entry.get("learned_runs") or {}).items() if v}
    return display_form(entry["canonical"], learned=learned) if learned else entry["canonical"]


def generation_rows(store: RunStore) -> list[dict[str, Any]]:
    return [{"generation": g["generation"], **g["stats"]} for g in store.generations()]


def baseline_summaries(store: RunStore) -> list[dict[str, Any]]:
    """Mean validation/test accuracy of each baseline (ReLU first), trained by the run on its fitness seeds."""
    baselines = store.get_meta("baseline")
    baselines = [baselines] if isinstance(baselines, dict) else baselines  # afos before baseline lists
    protocols = store.get_meta("protocols") or {}
    config = store.get_meta("config") or {}
    seeds = range(config.get("seed", 0), config.get("seed", 0) + config.get("fitness_seeds", 1))
    summaries = []
    for baseline in baselines if isinstance(baselines, list) else []:
        records = [r for r in store.evaluations(activation_key=baseline.get("fingerprint"))
                   if r.budget == baseline.get("budget") and protocols.get(r.task) == r.protocol and r.seed in seeds]
        if not records:
            continue
        ok = [r for r in records if r.ok]
        summaries.append({
            "expression": baseline["expression"],
            "canonical": records[0].expression,
            "n_runs": len(records),
            "fitness": finite_mean(score(r, config.get("fitness", "val_accuracy")) for r in records),
            "val_accuracy": finite_mean(r.val_accuracy for r in ok),
            "test_accuracy": finite_mean(r.test_accuracy for r in ok),
            "status": ", ".join(sorted({r.status.value for r in records})),
        })
    return summaries


def finalist_rows(store: RunStore) -> list[Finalist] | None:
    """The confirmation table of a search from its stored runs (None for a search without one)."""
    plan = store.get_meta("confirmation")
    protocols = store.get_meta("protocols") or {}
    if not isinstance(plan, dict):
        return None

    def records(function: Mapping[str, Any], seed: int) -> list[Evaluation] | None:
        found = [store.find_evaluation(EvalKey(function["fingerprint"], protocol, plan["budget"], seed, task))
                 for task, protocol in protocols.items()]
        return None if any(r is None for r in found) else [r for r in found if r is not None]

    return summarise(plan["functions"], plan["seeds"], records)
