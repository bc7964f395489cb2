"""What an executor costs per candidate, and what concurrent workers buy.

Why: the search trains thousands of short runs. An executor that adds tens of milliseconds per job is free
on a 2-minute CIFAR run but would dominate a 20-millisecond digits run, and two training processes on one GPU
only help if one alone leaves the GPU idle (small models, Python-bound steps). This measures both.

CPU mode (default): the same list of tiny digits/mlp jobs (--epochs 0.2 by default, and 5) runs on
every executor — serial, process and (when installed) ray, with 1 and 2 workers — in one invocation, so the
ratios share the machine's state. Each executor is first started and warmed with one job per worker (its
start-up: process spawn, imports, dataset load; reported separately), then the timed list runs.

    python benchmarks/executor_overhead.py [--jobs 48] [--epochs 0.2 5] [--repeats 3] [--no-ray]

GPU mode: candidates per hour on ONE GPU with 1, 2 and 4 concurrent worker processes
(``--executor process --workers-per-gpu K``), on the cifar10-resnet20 protocol (the ``[train]`` table of
the shipped config cifar10-resnet20). It needs CIFAR-10 in the torchvision layout under --data-dir or
$AFOS_DATA_DIR (``<DIR>/cifar-10-batches-py/``); use --epochs to shorten each run (the default, the config's
8 epochs, takes minutes per candidate).

    python benchmarks/executor_overhead.py --gpu [--data-dir DIR] [--candidates 8] [--epochs 1] [--concurrency 1 2 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from afos.activation.spec import resolve_activation
from afos.config import load_config
from afos.execution.contract import Executor, Job
from afos.execution.factory import make_executor
from afos.training.config import TrainConfig

EXPRESSIONS = ("relu", "silu", "gelu", "-x*erf(exp(-x))", "x*tanh(softplus(x))", "tanh(x)")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gpu", action="store_true", help="candidates/hour on one GPU (cifar10-resnet20)")
    parser.add_argument("--jobs", type=int, default=48, help="CPU mode: timed jobs per executor")
    parser.add_argument(
        "--repeats", type=int, help="timed repetitions per executor, the fastest counts; default: 3, with --gpu 1"
    )
    parser.add_argument("--epochs", type=float, nargs="+", help="budget per job; CPU default: 0.2 5, GPU: the config's")
    parser.add_argument("--ray", action=argparse.BooleanOptionalAction, default=True, help="CPU mode: include ray")
    parser.add_argument("--config", default="cifar10-resnet20", help="GPU mode protocol")
    parser.add_argument("--data-dir", help="GPU mode: folder holding cifar-10-batches-py/")
    parser.add_argument("--candidates", type=int, default=8, help="GPU mode: timed candidates per concurrency")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4], help="GPU mode: workers on the GPU")
    return parser.parse_args()


def make_jobs(config: TrainConfig, count: int, tag: str = "") -> list[Job]:
    """``count`` jobs cycling through the activations, all with the config's seed, as in a search with one
    fitness seed: a worker loads the dataset split once (during warm-up) and reuses it."""
    jobs = []
    for i in range(count):
        expression = EXPRESSIONS[i % len(EXPRESSIONS)]
        jobs.append(Job(f"{tag}{i}|{expression}", resolve_activation(expression).to_dict(), config.to_dict()))
    return jobs


@dataclass
class Measurement:
    label: str
    workers: int
    startup: float  # seconds from construction to the warm-up jobs' results
    wall: float  # seconds for the timed jobs
    records: list[dict[str, Any]]

    @property
    def per_job(self) -> float:
        return self.wall / len(self.records)


def timed_run(executor: Executor, jobs: Sequence[Job]) -> tuple[float, list[dict[str, Any]]]:
    records: list[dict[str, Any]] = []
    started = time.perf_counter()
    executor.run(jobs, lambda job, record: records.append(record))
    return time.perf_counter() - started, records


def measure(
    label: str, kind: str, warmup: Sequence[Job], jobs: Sequence[Job], repeats: int, **options: Any
) -> Measurement:
    """Start an executor, warm every worker with one job, then time ``jobs`` ``repeats`` times and keep the
    fastest, as timeit does: other load on the machine only ever adds time."""
    started = time.perf_counter()
    with make_executor(kind, **options) as executor:
        executor.run(list(warmup)[: executor.width], lambda job, record: None)
        startup = time.perf_counter() - started
        runs = [timed_run(executor, jobs) for _ in range(repeats)]
        workers = executor.width
    wall, records = min(runs, key=lambda run: run[0])
    failed = [r for r in records if r["status"] not in ("ok", "diverged")]
    if failed:
        sys.exit(f"{label}: {len(failed)} job(s) failed, e.g. {failed[0]['status']}: {failed[0]['reason']}")
    return Measurement(label, workers, startup, wall, records)


# ---------------------------------------------------------------------------------------------- CPU


def cpu_table(measurements: list[Measurement], jobs: int, epochs: float, repeats: int) -> str:
    serial = measurements[0].per_job
    lines = [
        f"\ndigits/mlp, {epochs:g} epochs per job, {jobs} jobs; wall: fastest of {repeats} runs",
        "",
        "| executor | workers | start-up (s) | wall (s) | per job (ms) | per job / serial | speed-up vs serial |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in measurements:
        lines.append(
            f"| {m.label} | {m.workers} | {m.startup:.2f} | {m.wall:.2f} | {1000 * m.per_job:.1f} | "
            f"{m.per_job / serial:.2f} | {serial / m.per_job:.2f}x |"
        )
    train = statistics.fmean(r["seconds"] for r in measurements[0].records)
    lines.append(f"\nserial: {1000 * train:.1f} ms of each job is the training run itself (record 'seconds').")
    return "\n".join(lines)


def cpu_mode(args: argparse.Namespace) -> None:
    plans: list[tuple[str, str, dict[str, Any]]] = [("serial", "serial", {})]
    plans += [("process", "process", {"workers": n}) for n in (1, 2)]
    if args.ray:
        try:
            import ray  # noqa: F401 - only probing whether it is installed
        except ImportError:
            print("ray is not installed: skipping it (pip install afos[ray])")
        else:
            plans += [("ray", "ray", {"workers": n}) for n in (1, 2)]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"CPU: {cores} cores, torch {torch.__version__}, Python {sys.version.split()[0]}")
    for epochs in args.epochs or [0.2, 5.0]:
        config = TrainConfig(dataset="digits", model="mlp", epochs=epochs, device="cpu")
        warmup, jobs = make_jobs(config, 2, tag="warm-up "), make_jobs(config, args.jobs)
        repeats = args.repeats or 3
        results = [measure(label, kind, warmup, jobs, repeats, **options) for label, kind, options in plans]
        print(cpu_table(results, args.jobs, epochs, repeats))


# ---------------------------------------------------------------------------------------------- GPU


def gpu_mode(args: argparse.Namespace) -> None:
    # One GPU only: the workers_per_gpu slots must share it, not spread over the machine's GPUs. Set before
    # anything initialises CUDA in this process (the check below is the first CUDA call).
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0].strip() or "0"
    os.environ["CUDA_VISIBLE_DEVICES"] = visible
    if not torch.cuda.is_available():
        sys.exit("--gpu needs CUDA; none is available here")
    table = load_config(args.config).get("train", {})
    config = TrainConfig.from_dict({**table, "device": "auto", "data_dir": args.data_dir})
    if args.epochs:
        config = replace(config, epochs=args.epochs[0])
    print(f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}; {config.dataset}/{config.model}, "
          f"{config.epochs:g} epochs, batch {config.batch_size}; {args.candidates} candidates per row\n")
    warmup_config = replace(config, epochs=min(config.epochs, 0.1), early_reject_accuracy=None)
    rows = []
    for k in args.concurrency:
        warmup = make_jobs(warmup_config, k, tag="warm-up ")
        jobs = make_jobs(config, args.candidates)
        rows.append(measure(f"{k} per GPU", "process", warmup, jobs, args.repeats or 1, workers=k, workers_per_gpu=k))
    base = rows[0].per_job
    print("| workers on the GPU | candidates/hour | speed-up | mean training run (s) | start-up (s) |")
    print("|---|---|---|---|---|")
    for m in rows:
        train = statistics.fmean(r["seconds"] for r in m.records)
        print(f"| {m.workers} | {3600 / m.per_job:.0f} | {base / m.per_job:.2f}x | {train:.1f} | {m.startup:.1f} |")


def main() -> None:
    args = parse_args()
    if args.gpu:
        gpu_mode(args)
    else:
        cpu_mode(args)


if __name__ == "__main__":
    main()
