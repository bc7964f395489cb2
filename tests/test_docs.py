"""The docs stay true: generated blocks match the code, links resolve, the README stays short, and the
tutorial's commands run as written (offline, on digits) with the outcome it describes."""

from __future__ import annotations

import ast
import csv
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
PAGES = [REPO / "README.md", *sorted(DOCS.glob("*.md"))]
README_MAX_BYTES = 12_000


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_generated_blocks_match_the_code() -> None:
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import gen_docs
    finally:
        sys.path.remove(str(REPO / "scripts"))
    for page in sorted(DOCS.glob("*.md")):
        _, stale = gen_docs.generated(page.read_text())
        assert not stale, f"{page.name}: {stale} out of date; run python scripts/gen_docs.py"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_links_resolve(page: Path) -> None:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        assert file.exists(), f"{page.name}: broken link {target}"
        if anchor and file.suffix == ".md":
            anchors = {_slug(h) for h in re.findall(r"^#+ (.+)$", file.read_text(), flags=re.M)}
            assert anchor in anchors, f"{page.name}: no heading for #{anchor} in {file.name}"


def test_readme_is_short_and_points_to_the_docs() -> None:
    readme = (REPO / "README.md").read_text()
    assert len(readme.encode()) <= README_MAX_BYTES
    assert "docs/README.md" in readme


def _tutorial_commands() -> list[list[str]]:
    text = (DOCS / "tutorial.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    return [shlex.split(line) for block in blocks for line in block.splitlines() if line.strip()]


@pytest.mark.slow  # most of a minute: every tutorial command in its own process (.ci/run runs the slow suite)
def test_the_tutorial_runs_as_written(tmp_path: Path) -> None:
    commands = _tutorial_commands()
    assert commands and all(c[0] == "afos" for c in commands)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for command in commands:
        done = subprocess.run([sys.executable, "-m", "afos", *command[1:]], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{shlex.join(command)}:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    assert (tmp_path / "results/tutorial-search/finalists.csv").exists()
    assert "def activation(x)" in (tmp_path / "best.py").read_text()
    with (tmp_path / "results/tutorial-compare/runs.csv").open() as handle:
        runs = list(csv.DictReader(handle))
    digits = {r["origin"] for r in runs if r["dataset"] == "digits"}
    assert digits == {"reused"}, "the tutorial says compare reuses the evaluate run's digits runs"


@pytest.mark.slow
def test_the_python_api_example_runs_as_written(tmp_path: Path) -> None:
    (block,) = re.findall(r"```python\n(.*?)```", (DOCS / "python-api.md").read_text(), flags=re.S)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", block], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    first, verdict, *rest = done.stdout.splitlines()
    assert first.startswith("finished ") and first.endswith("functions in the hall of fame")
    assert "ReLU" in verdict and rest[-2] == "6 training runs"
    ranks = ast.literal_eval(rest[-1])  # a mapping function -> average rank, ranks 1..3 summing to 6
    assert set(ranks) == {"x*erf(x)", "relu", "silu"} and sum(ranks.values()) == pytest.approx(6.0)
    tensor_line = next(line for line in rest if line.startswith("tensor("))
    expression, top = rest[rest.index(tensor_line) - 1], rest[rest.index(tensor_line) + 1]
    assert "x" in expression and top.startswith("1 ")  # the sympy form, then rank 1 of the table
    listed = subprocess.run([sys.executable, "-m", "afos", "runs", "results"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120).stdout
    assert all(name in listed for name in ("api-search", "api-evaluate", "api-compare"))
