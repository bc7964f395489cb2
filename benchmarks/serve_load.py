"""What ``afos serve`` costs: API latency on a run of 100,000 training runs, the slowdown of a search that
20 browsers watch, and the weight of each page.

Why: the server must stay fast on the biggest runs a cluster makes and must not slow the search it shows
(it runs on the same machine, reading the database the search writes).

1. **Latency.** A real small search is made, copied, and its evaluations table grown to --evaluations rows
   (copies of its real records under new seeds, so every row is a distinct training run of the real
   schema). ``afos serve`` runs in its own process; each route is asked --repeat times over one keep-alive
   connection. The first answer of a run's view reads the database (cold); later ones hit the cache that
   a version stamp keeps (warm, what pollers get). Median and 95th percentile per route.
2. **Slowdown.** The same search (same config and seed, so the same work) runs --pairs times in each of
   three ways, in turn after one uncounted warm-up, in fresh run folders: alone; while --clients pollers
   follow its page as the page's own script does (the version every --interval seconds, the whole page when
   it changed); and while --clients readers reload the whole page every --interval seconds, as a browser's
   reload button does. The ratio of median wall times is the slowdown (the same ratio as trainings per
   minute), the server's own CPU time included, on the same cores.
3. **Page weight.** The bytes of each page's HTML and of the scripts, styles and fonts it loads, as sent
   plain and gzipped (the server compresses for browsers that accept it).

    python benchmarks/serve_load.py [--evaluations 100000] [--clients 20] [--pairs 3] [--epochs 10] [--out DIR]
"""

from __future__ import annotations

import argparse
import http.client
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import afos
from afos.storage.store import RunStore

TINY = {"population": 4, "generations": 2, "seed": 1, "fitness_seeds": 1, "confirm_top": 1, "confirm_seeds": 2,
        "baseline": ["silu"], "train": {"dataset": "digits", "model": "mlp", "epochs": 1, "batch_size": 64}}
WATCHED = ["search", "--population", "8", "--generations", "6", "--seed", "4", "--no-confirm", "--quiet"]
ROUTES = ("/api/runs", "/api/runs/big", "/api/runs/big/version", "/api/runs/big/evaluations?limit=100",
          "/api/runs/big/evaluations?after=99000&limit=100", "/api/runs/big/evaluations?phase=confirm&limit=100",
          "/api/runs/big/generations", "/api/functions/values?expr=x*sigmoid(x)&lo=-5&hi=5&n=401", "/",
          "/runs/big", "/runs/big/evaluations?after=50000", "/functions/x*sigmoid(x)")
ASSETS = ("/static/vendor/uplot/uPlot.iife.min.js", "/static/vendor/uplot/uPlot.min.css",
          "/static/vendor/katex/katex.min.js", "/static/vendor/katex/katex.min.css", "/static/app.js", "/static/app.css",
          "/static/vendor/katex/fonts/KaTeX_Main-Regular.woff2", "/static/vendor/katex/fonts/KaTeX_Math-Italic.woff2")


def grow(db: Path, rows: int) -> int:
    """Add copies of the run's real evaluations under new seeds until it holds ``rows``."""
    with RunStore(db) as store:
        real = store.evaluations()
        missing = rows - len(real)
        with store.transaction():
            for i in range(max(0, missing)):
                store.add_evaluation(replace(real[i % len(real)], seed=10_000 + i))
        return store.count_evaluations()


class Server:
    """``afos serve`` in its own process, on a free port."""

    def __init__(self, root: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process = subprocess.Popen([sys.executable, "-m", "afos", "serve", str(root), "--port", str(self.port)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                self.get("/api")
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("afos serve did not start")

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)

    def get(self, path: str, connection: http.client.HTTPConnection | None = None, *, gzip: bool = False) -> bytes:
        """The body of ``path`` as it crossed the wire (compressed when ``gzip`` asks for it)."""
        conn = connection or self.connection()
        conn.request("GET", path, headers={"Accept-Encoding": "gzip"} if gzip else {})
        answer = conn.getresponse()
        body = answer.read()
        if answer.status != 200:
            raise RuntimeError(f"{path}: {answer.status} {body[:200]!r}")
        return body

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def latency(server: Server, repeat: int) -> dict[str, dict[str, float]]:
    conn = server.connection()
    table = {}
    for route in ROUTES:
        times = []
        for _ in range(repeat + 1):
            start = time.perf_counter()
            server.get(route, conn)
            times.append(1000 * (time.perf_counter() - start))
        warm = sorted(times[1:])
        table[route] = {"cold_ms": times[0], "median_ms": statistics.median(warm),
                        "p95_ms": warm[min(len(warm) - 1, round(0.95 * (len(warm) - 1)))]}
    return table


def poller(server: Server, run: str, interval: float, stop: threading.Event, counts: list[int],
           reload: bool = False) -> None:
    """What the page's script does: the version every ``interval`` s, the whole page when it changed (with
    ``reload``, what a reader pressing reload does: the whole page every time)."""
    conn, seen = server.connection(), None
    while not stop.wait(interval):
        try:
            now = "reload" if reload else json.loads(server.get(f"/api/runs/{run}/version", conn))["version"]
            counts[0] += 1
            if now != seen or reload:
                server.get(f"/runs/{run}", conn)
                counts[1] += 1
                seen = now
        except (OSError, RuntimeError, http.client.HTTPException):
            conn = server.connection()  # the run is not there yet, or a connection dropped


def watched_search(root: Path, name: str, server: Server | None, clients: int, interval: float,
                   epochs: float, reload: bool = False) -> tuple[float, list[int]]:
    stop, counts = threading.Event(), [0, 0]
    threads = [threading.Thread(target=poller, args=(server, name, interval, stop, counts, reload), daemon=True)
               for _ in range(clients if server else 0)]
    for thread in threads:
        thread.start()
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "afos", *WATCHED, "--epochs", str(epochs), "--out", str(root / name)], check=True)
    wall = time.perf_counter() - start
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    return wall, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evaluations", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--epochs", type=float, default=10.0,
                        help="epochs per training of the watched search (digits, MLP): 10 makes each a second or so")
    parser.add_argument("--out", type=Path, default=None, help="folder for the results JSON (default: print only)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="afos-serve-") as scratch:
        root = Path(scratch) / "results"
        afos.run_search(TINY, out=root / "small")
        shutil.copytree(root / "small", root / "big")
        rows = grow(root / "big" / "afos.db", args.evaluations)
        server = Server(root)
        try:
            timings = latency(server, args.repeat)
            weights = {route: [len(server.get(route)), len(server.get(route, gzip=True))]
                       for route in ("/", "/runs/big", "/runs/small", "/functions/x*sigmoid(x)")}
            assets = {path: [len(server.get(path)), len(server.get(path, gzip=True))] for path in ASSETS}
            walls: dict[str, list[float]] = {"alone": [], "watched": [], "reloaded": []}
            polls = {"watched": [0, 0], "reloaded": [0, 0]}
            watched_search(root, "warm-up", None, 0, args.interval, args.epochs)  # caches and imports: not counted
            for pair in range(args.pairs):
                walls["alone"].append(watched_search(root, f"alone-{pair}", None, 0, args.interval, args.epochs)[0])
                for way in ("watched", "reloaded"):
                    wall, counts = watched_search(root, f"{way}-{pair}", server, args.clients, args.interval,
                                                  args.epochs, reload=way == "reloaded")
                    walls[way].append(wall)
                    polls[way] = [polls[way][0] + counts[0], polls[way][1] + counts[1]]
        finally:
            server.stop()
    alone = statistics.median(walls["alone"])
    slowdown = {way: statistics.median(walls[way]) / alone - 1 for way in ("watched", "reloaded")}
    report: dict[str, Any] = {"evaluations": rows, "latency": timings, "page_bytes": weights, "asset_bytes": assets,
                              "walls": walls, "slowdown": slowdown, "polls": polls,
                              "clients": args.clients, "interval_s": args.interval, "epochs": args.epochs}
    print(f"run of {rows:,} training runs; latency over {args.repeat} warm requests each (ms):")
    print(f"{'route':<58} {'cold':>8} {'median':>8} {'p95':>8}")
    for route, t in timings.items():
        print(f"{route:<58} {t['cold_ms']:>8.1f} {t['median_ms']:>8.1f} {t['p95_ms']:>8.1f}")
    print(f"\nsearch alone {', '.join(f'{w:.1f}' for w in walls['alone'])} s")
    for way, doing in (("watched", "following it as its page does"), ("reloaded", "reloading its page")):
        print(f"{way} by {args.clients} clients {doing} every {args.interval:g} s: "
              f"{', '.join(f'{w:.1f}' for w in walls[way])} s; slowdown of the median {100 * slowdown[way]:+.1f} % "
              f"({polls[way][0]} polls, {polls[way][1]} page fetches)")
    print("\npage HTML bytes (gzipped): " + ", ".join(f"{page} {raw:,} ({gz:,})" for page, (raw, gz) in weights.items()))
    print(f"scripts, styles and two fonts: {sum(raw for raw, _ in assets.values()):,} bytes, "
          f"{sum(gz for _, gz in assets.values()):,} gzipped (" +
          ", ".join(f"{Path(p).name} {raw:,}" for p, (raw, _) in assets.items()) + ")")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "serve_load.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
