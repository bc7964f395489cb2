"""Build, export and describe afos's own tabular benchmark (afos.grid.table, afos.execution.replay).

    python benchmarks/tabular.py build  [--tasks hard-checkerboard ...] [--seeds 3] [--root results/table]
                                        [--workers 2] [--limit N]
    python benchmarks/tabular.py export [--tasks ...] [--root results/table] [--out benchmarks/tables/NAME]
    python benchmarks/tabular.py stats  [--table benchmarks/tables/NAME]

``build`` enumerates every tree of height <= 2 over the afos primitives (de-duplicated and screened as the
search does) and trains each unique function plus the baselines on every task at ``--seeds`` seeds, as one
ordinary ``afos evaluate`` grid per task under ``--root``: the same command after a kill, or on another day,
resumes where it stopped. ``--limit N`` trains the first N functions only (a smoke run). ``export`` writes the
finished grids as one gzipped JSON table with its datasheet (``<out>`` and ``<out minus .json.gz>.md``).
``stats`` prints what makes a task hard, measured on the table: the baselines' spread against their seeds'
spread, the seed-to-seed rank correlation of functions, and the share of functions within one seed-spread of
the table's best.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from scipy.stats import spearmanr

import afos
from afos.activation.spec import resolve_activation
from afos.execution.factory import make_executor
from afos.execution.replay import Table, read_table, write_table
from afos.grid.sources import load_results
from afos.grid.table import TABLE_BASELINES, enumerate_space, table_from_grids
from afos.records.evaluation import Status

HARD_TASKS = ("hard-checkerboard", "hard-rings", "hard-deep")
DEFAULT_OUT = Path(__file__).parent / "tables" / "afos-h2-v2.json.gz"


def build(args: argparse.Namespace) -> None:
    space = enumerate_space(args.primitives).first(args.limit)
    texts = [f.canonical for f in space.functions]
    print(f"space: {space.trees} trees of height <= 2, {len(space.functions) + len(space.screened)} unique, "
          f"{len(space.screened)} screened out, {len(texts)} to train (+ {len(TABLE_BASELINES)} baselines)",
          file=sys.stderr)
    with make_executor("process" if args.workers > 1 else "serial", workers=args.workers) as executor:
        for task in args.tasks:
            start = time.monotonic()
            afos.evaluate(*texts, baselines=TABLE_BASELINES, config=task, seeds=args.seeds,
                          out=Path(args.root) / Path(task).stem, executor=executor, progress=True)
            print(f"{task}: done in {time.monotonic() - start:.0f} s", file=sys.stderr)


def export(args: argparse.Namespace) -> None:
    space = enumerate_space(args.primitives).first(args.limit)
    grids = {Path(task).stem: load_results([Path(args.root) / Path(task).stem]) for task in args.tasks}
    seconds = sum(run.record.seconds for results in grids.values() for run in results.all_runs())
    datasheet = {
        "title": f"afos tabular benchmark: every tree of height <= 2 over the {args.primitives} primitives",
        "licence": "MIT (the afos project's own licence); built by afos, no third-party data",
        "afos": afos.__version__,
        "commit": _commit(),
        "machine": f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores, {platform.system()}",
        "python": platform.python_version(),
        "torch": _torch_version(),
        "training_seconds": round(seconds, 1),
        "built": time.strftime("%Y-%m-%d"),
        "replicates": "a job's seed answers itself where the table has it; any other seed s by replicate s mod R",
        "build_command": f"python benchmarks/tabular.py build --tasks {' '.join(args.tasks)}",
    }
    table = table_from_grids(space, grids, datasheet)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_table(table, out)
    out.with_name(out.name.removesuffix(".json.gz") + ".md").write_text(datasheet_text(table))
    print(f"{out}: {len(table.functions)} functions x {len(table.tasks)} task(s), {out.stat().st_size // 1024} KiB")


def datasheet_text(table: Table) -> str:
    """The datasheet beside the table file: what it covers, how it was made, and what it measures."""
    lines = [f"# {table.datasheet['title']}", "", "## Space", ""]
    lines += [f"- {key}: {value}" for key, value in table.space.items()]
    lines += ["", "## Provenance", ""]
    lines += [f"- {key}: {value}" for key, value in table.datasheet.items() if key != "title"]
    for task in table.tasks:
        lines += ["", f"## Task {task.name}", "", f"- seeds: {', '.join(map(str, task.seeds))}"]
        lines += [f"- {key}: {value}" for key, value in sorted(task.settings.items())]
        lines += ["", *stats_lines(table, task.name)]
    return "\n".join(lines) + "\n"


def stats_lines(table: Table, task: str) -> list[str]:
    """The hardness measures of ``task`` (see the module docstring)."""
    names = {f.key: f.canonical for f in table.functions}
    runs = table.outcomes[task]
    accuracy = {key: [o.values[0] if o.status is Status.OK and o.values[0] is not None else 0.0 for o in outcome]
                for key, outcome in runs.items()}
    means = {key: statistics.mean(values) for key, values in accuracy.items()}
    spread = statistics.median(statistics.pstdev(values) for values in accuracy.values())
    best_key = max(means, key=means.__getitem__)
    near = sum(1 for value in means.values() if value >= means[best_key] - spread)
    lines = [f"validation accuracy, mean over seeds; median seed spread (sd) {spread:.4f}", ""]
    for name in TABLE_BASELINES:
        key = resolve_activation(name).key()
        if key in accuracy:
            lines.append(f"- baseline {name}: {means[key]:.4f} ± {statistics.pstdev(accuracy[key]):.4f}")
    seeds = len(next(iter(accuracy.values())))
    for other in range(1, seeds):
        rho = spearmanr([v[0] for v in accuracy.values()], [v[other] for v in accuracy.values()]).statistic
        lines.append(f"- rank correlation of functions, replicate 0 vs {other}: {rho:.3f}")
    failed = sum(1 for outcome in runs.values() if any(o.status is not Status.OK for o in outcome))
    lines += [f"- best: {names[best_key]} {means[best_key]:.4f}",
              f"- within one seed spread of the best: {near} of {len(means)} ({near / len(means):.2%})",
              f"- functions with a failed run: {failed}"]
    return lines


def stats(args: argparse.Namespace) -> None:
    table = read_table(args.table)
    for task in table.tasks:
        print(f"{task.name} ({len(table.outcomes[task.name])} functions, seeds {list(task.seeds)})")
        print("\n".join(stats_lines(table, task.name)), end="\n\n")


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _torch_version() -> str:
    import torch  # noqa: PLC0415 - the export needs only its version string

    return torch.__version__


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, run in (("build", build), ("export", export), ("stats", stats)):
        sub = commands.add_parser(name)
        sub.set_defaults(run=run)
        sub.add_argument("--tasks", nargs="+", default=list(HARD_TASKS))
        sub.add_argument("--root", default="results/table")
        sub.add_argument("--seeds", type=int, default=3)
        sub.add_argument("--workers", type=int, default=2)
        sub.add_argument("--limit", type=int, default=None)
        sub.add_argument("--primitives", type=lambda text: text if "," not in text else text.split(","), default="afos",
                         help="the primitive set the space is enumerated over (a set name or a comma list)")
        sub.add_argument("--out", default=str(DEFAULT_OUT))
        sub.add_argument("--table", default=str(DEFAULT_OUT))
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
