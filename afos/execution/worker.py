"""What a worker does with a job: load its dataset (once per process) and train it."""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Iterator
from dataclasses import replace

import torch
from torch import nn

from afos.activation.module import activation_factory
from afos.execution.contract import Job
from afos.records.evaluation import FitnessResult
from afos.training.config import TrainConfig
from afos.training.data.registry import Dataset, load_dataset
from afos.training.fitness import build_network, run_fitness

#: A network of fully connected layers only, with fewer parameters than this, trains on one CPU thread.
#: Why: its matrix products are too small for a thread pool to pay (spirals and digits MLPs train as fast on
#: one thread as on two on an idle machine), and on a shared CPU every extra thread waits for a busy core
#: (5-8x slower with three busy processes beside it, benchmarks/RESULTS.md). One thread on every machine
#: also makes its numbers independent of the core count, which they were not: retrained at one thread
#: instead of two, 456 of 1,422 table runs changed their loss in the last digits and one its accuracy.
SMALL_MODEL_PARAMETERS = 100_000


def run_job(job: Job) -> FitnessResult:
    """Train one job.

    A bad candidate never raises (run_fitness turns its failure into a status); an invalid config or a
    missing dataset raises, because retrying the caller's mistake elsewhere would fail the same way.
    """
    config = job.train
    dataset = _dataset(config.dataset, config.data_dir, config.val_fraction, config.seed, config.image_size,
                       config.target)
    threads = cpu_threads(config, dataset)
    with _torch_threads(threads):
        result = run_fitness(activation_factory(job.activation), config, dataset=dataset)
    return replace(result, threads=threads)


def cpu_threads(config: TrainConfig, dataset: Dataset) -> int:
    """The CPU threads a job trains on: one for a small fully connected network
    (:data:`SMALL_MODEL_PARAMETERS`), else this process's share (``torch.get_num_threads()``: the
    executor's share of the cores, or ``OMP_NUM_THREADS``). A function of the job, never of the machine's
    load at the moment: the thread count changes sums in their last digits, and a job's numbers must
    depend only on its config and seed."""
    key = (config.model, json.dumps(config.model_options, sort_keys=True, default=str), dataset.name,
           dataset.in_channels, dataset.num_classes, dataset.image_size, dataset.num_features)
    if key not in _SMALL:  # built once per process for each network, not once per job (a ResNet takes a while)
        network = build_network(config, dataset, nn.Identity)
        convolutional = any(isinstance(module, nn.modules.conv._ConvNd) for module in network.modules())
        _SMALL[key] = not convolutional and sum(p.numel() for p in network.parameters()) < SMALL_MODEL_PARAMETERS
    return 1 if _SMALL[key] else torch.get_num_threads()


#: Whether each network a worker built was small and fully connected, by model, options and dataset shape.
_SMALL: dict[tuple[object, ...], bool] = {}


@contextlib.contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    """Train on ``threads`` threads, then give the process (a notebook's, in a serial run) its own back."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@functools.lru_cache(maxsize=4)
def _dataset(
    name: str, data_dir: str | None, val_fraction: float, seed: int, image_size: int, target: str | None
) -> Dataset:
    """Datasets loaded in this process, so a worker reads CIFAR once, not once per candidate.

    The split depends on the seed, so a search with several fitness seeds holds one copy per seed; four
    bounds the memory when seeds or tasks vary more.
    """
    return load_dataset(name, data_dir, val_fraction=val_fraction, seed=seed, image_size=image_size, target=target)


def clear_datasets() -> None:
    """Forget the datasets this process loaded (the driver lives on after a search; they need not)."""
    _dataset.cache_clear()
