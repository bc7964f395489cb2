"""A search's wall time on a shared CPU: alone, then beside busy processes, as a ratio of the two.

Why: a researcher's laptop or a login node is rarely idle. torch's default thread pool takes every core, so
each training of a tiny network waits for cores that other processes hold; afos picks one thread for small
fully connected networks (afos/execution/worker.py, ``cpu_threads``). The goal (issue 34): a default search
beside two busy cores takes at most 1.5 times its idle time.

Each trial runs the same ``afos search`` command (the shipped default config, shortened by --generations and
--population, no confirmation, no reuse, into a fresh folder) with ``--busy`` CPU-bound processes started
beside it (pure Python loops, each holding one core) or none. The trials alternate idle / loaded --repeats
times, so a drift of the machine's own load hits both alike; the ratio is of the median times. ``--source``
runs another checkout of afos (for example the commit before the thread choice) with this interpreter.

    python benchmarks/contention.py [--busy 2] [--generations 2] [--population 8] [--repeats 2]
        [--source DIR] [--out results/contention.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUSY_LOOP = "while True:\n    pass\n"


def search_seconds(source: Path, generations: int, population: int, busy: int) -> float:
    """Wall seconds of one search with ``busy`` CPU-bound processes beside it."""
    hogs = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(busy)]
    try:
        with tempfile.TemporaryDirectory() as scratch:
            command = [sys.executable, "-m", "afos", "search", "--generations", str(generations), "--population",
                       str(population), "--no-confirm", "--no-reuse", "--quiet", "--out", f"{scratch}/run"]
            env = {**os.environ, "PYTHONPATH": str(source)}
            env.pop("OMP_NUM_THREADS", None)  # afos's own choice is what is measured
            start = time.perf_counter()
            subprocess.run(command, check=True, cwd=scratch, env=env, stdout=subprocess.DEVNULL)
            return time.perf_counter() - start
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--busy", type=int, default=2, help="CPU-bound processes beside the loaded search")
    parser.add_argument("--generations", type=int, default=2)
    parser.add_argument("--population", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2, help="idle/loaded pairs, alternated")
    parser.add_argument("--source", type=Path, default=Path(__file__).resolve().parents[1],
                        help="the afos checkout to run (default: this one)")
    parser.add_argument("--out", type=Path, default=Path("results/contention.json"))
    args = parser.parse_args()
    times: dict[str, list[float]] = {"idle": [], "loaded": []}
    for repeat in range(args.repeats):
        for label, busy in (("idle", 0), ("loaded", args.busy)):
            seconds = search_seconds(args.source, args.generations, args.population, busy)
            times[label].append(seconds)
            print(f"repeat {repeat + 1}/{args.repeats} {label}: {seconds:.1f} s", flush=True)
    ratio = statistics.median(times["loaded"]) / statistics.median(times["idle"])
    summary = {"source": str(args.source), "busy": args.busy, "cores": os.cpu_count(),
               "generations": args.generations, "population": args.population, "times": times,
               "loaded_over_idle": ratio}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2))
    print(f"loaded / idle = {ratio:.2f} (median of {args.repeats}; goal <= 1.5) -> {args.out}")


if __name__ == "__main__":
    main()
