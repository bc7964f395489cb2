"""What a worker does with a job: load its dataset (once per process) and train it."""

from __future__ import annotations

import functools

from afos.activation.module import activation_factory
from afos.execution.contract import Job
from afos.records.evaluation import FitnessResult
from afos.training.data.registry import Dataset, load_dataset
from afos.training.fitness import run_fitness


def run_job(job: Job) -> FitnessResult:
    """Train one job.

    A bad candidate never raises (run_fitness turns its failure into a status); an invalid config or a
    missing dataset raises, because retrying the caller's mistake elsewhere would fail the same way.
    """
    config = job.train
    dataset = _dataset(config.dataset, config.data_dir, config.val_fraction, config.seed, config.image_size,
                       config.target)
    return run_fitness(activation_factory(job.activation), config, dataset=dataset)


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
