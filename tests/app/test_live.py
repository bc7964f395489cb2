"""``afos serve`` as a user starts it, reading a search while the search writes it (in the ``browser`` suite,
beside the real-browser test: a live search takes a minute on two cores)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from afos.storage.store import RunStore

pytestmark = pytest.mark.browser

#: A search that writes for a while: 3 generations of 4 on digits, one epoch per training.
LIVE_SEARCH = ["search", "--population", "4", "--generations", "3", "--epochs", "1", "--seed", "2", "--no-confirm",
               "--quiet"]


def _get(address: str, path: str) -> Any:
    with urllib.request.urlopen(address + path, timeout=30) as answer:
        return json.loads(answer.read())


def test_a_search_is_followed_live_while_it_writes(served: tuple[str, Path]) -> None:
    address, root = served
    search = subprocess.Popen([sys.executable, "-m", "afos", *LIVE_SEARCH, "--out", str(root / "live")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen: list[dict[str, Any]] = []
    versions, statuses, after = set(), set(), 0
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        runs = {row["run"]: row for row in _get(address, "/api/runs")["runs"]}
        if "live" in runs:
            statuses.add(runs["live"]["status"])
            versions.add(_get(address, "/api/runs/live/version")["version"])
            page = _get(address, f"/api/runs/live/evaluations?after={after}")
            seen += page["evaluations"]
            after = page["next_after"]
        if search.poll() is not None and "finished" in statuses:
            break
        time.sleep(0.3)
    assert search.wait(timeout=60) == 0, search.stderr.read() if search.stderr else ""
    assert {"running", "finished"} <= statuses
    assert len(versions) >= 3  # it changed while the search wrote, not just once at the end
    seen += _get(address, f"/api/runs/live/evaluations?after={after}")["evaluations"]
    with RunStore(root / "live" / "afos.db", readonly=True) as store:
        assert [e["id"] for e in seen] == sorted({e["id"] for e in seen})
        assert len(seen) == store.count_evaluations()
    assert len(_get(address, "/api/runs/live/generations")["generations"]) == 3
