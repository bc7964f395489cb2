"""Wall time of the commands that do not train, from a fresh process each time (what a user waits for).

Why: `afos runs`, `show`, `export`, `report` and `primitives` are typed many times a day; their time is
almost all Python imports (torch alone takes seconds), not work. Each command runs --repeat times,
interleaved, and the median is printed. A throwaway results folder with one small finished search is made
first (a few seconds of training), so `runs`, `report` and `export RUN` read a real run.

    python benchmarks/command_start.py [--repeat 5] [--source DIR]

--source DIR runs the afos found in DIR (a checkout of another commit, e.g. made with `git worktree add
/tmp/old <commit>`) by putting it first on PYTHONPATH, so two versions are timed against the same run
folder: run the script once per version and compare the medians measured on the same machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SEARCH = ["search", "--population", "4", "--generations", "1", "--epochs", "1", "--confirm-seeds", "2", "--quiet"]


def commands(root: Path) -> dict[str, list[str]]:
    run, out = str(root / "run"), str(root / "report-out")
    return {"--help": ["--help"], "runs": ["runs", str(root)], "primitives": ["primitives"],
            "show relu": ["show", "relu"], "export relu": ["export", "relu"], "export RUN": ["export", run],
            "report RUN": ["report", run, "--out", out]}


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "afos", *argv], env=env, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--source", default=None, help="Checkout whose afos is timed (default: the installed one).")
    args = parser.parse_args()
    env = dict(os.environ)
    if args.source:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(args.source).resolve()), env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        # Run from the temporary folder: `python -m` puts the working directory first on the path.
        subprocess.run([sys.executable, "-m", "afos", *SEARCH, "--out", str(root / "run")], env=env, cwd=root,
                       check=True)
        times: dict[str, list[float]] = {name: [] for name in commands(root)}
        for _ in range(args.repeat):
            for name, argv in commands(root).items():
                times[name].append(timed(argv, env, root))
    print(f"{'command':<14} median s  (of {args.repeat}, fresh process each)")
    for name, values in times.items():
        print(f"{name:<14} {statistics.median(values):8.2f}")


if __name__ == "__main__":
    main()
