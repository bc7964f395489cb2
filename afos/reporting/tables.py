"""How numbers and tables look, in the terminal, Markdown and CSV: one place for every format."""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from afos.storage.atomic import replaced_atomically

HOF_COLUMNS = ("rank", "canonical", "fingerprint", "fitness", "cost", "n_runs", "val_accuracy", "val_std", "test_accuracy",
               "generation", "size", "learned", "tree", "lineage")
GENERATION_COLUMNS = ("generation", "best", "mean", "median", "proposed", "duplicate", "screened", "trained",
                      "reused", "failed", "crossovers", "mutations", "ranked_out", "rank_correlation")


def write_csv(path: Path, columns: Iterable[str], rows: Iterable[Mapping[str, Any]]) -> None:
    """A CSV file of ``columns``, replaced atomically; lists and dicts are written as JSON text (extra keys are
    ignored)."""
    with replaced_atomically(path) as partial, partial.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows({k: json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v
                          for k, v in row.items()} for row in rows)

RUN_COLUMNS = ("expression", "canonical", "fingerprint", "role", "dataset", "model", "seed", "status", "reason",
               "val_accuracy", "val_loss", "test_accuracy", "test_loss", "train_loss", "budget", "epochs", "steps",
               "seconds", "origin", "source", "attempts", "params", "val_f1", "test_f1")
CELL_COLUMNS = ("case", "function", "canonical", "role", "n", "ok", "statuses", "test_accuracy",
                "test_accuracy_std", "val_accuracy", "val_accuracy_std", "seconds", "test_f1", "test_f1_std",
                "val_f1", "val_f1_std")


def format_number(value: Any) -> str:
    """An accuracy, loss or fitness with 4 decimals; '-' for a missing measurement (a failed run)."""
    return "-" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.4f}"


def format_duration(seconds: float) -> str:
    """12s, 3m05s, 1h02m: an ETA or a run time as people read it."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def format_points(value: float | None) -> str:
    """A difference of accuracies in percentage points with its sign ("+1.62 pts"); "-" when there is none."""
    return "-" if value is None else f"{100 * value:+.2f} pts"


def format_p(value: float | None) -> str:
    """A p-value at three significant digits; "-" for a test that was not made."""
    return "-" if value is None else f"{value:.3g}"


def plus_minus(mean: float | None, std: float | None) -> str:
    """``mean ± std``, or the mean alone when there is no spread to show (one run)."""
    return format_number(mean) if std is None else f"{format_number(mean)} ± {std:.4f}"


def safe_name(name: str) -> str:
    """A readable folder name for an expression ('-x*erf(exp(-x))' -> 'f_-x*erf(exp(-x))'): spaces go,
    ``**`` and ``/`` become ``^`` and ``_div_``, anything else but letters, digits and ``_.,+-*()^`` becomes
    '_', and a name that would start with '-' or '.' (an option to a shell command, a hidden file) gets 'f_'
    in front; the callers append the fingerprint for uniqueness."""
    readable = name.replace(" ", "").replace("**", "^").replace("/", "_div_")
    text = re.sub(r"[^A-Za-z0-9_.,+\-*()^]+", "_", readable)[:60] or "f"
    return f"f_{text}" if text[0] in "-." else text
