"""The ``cuda_graphs`` train key: a speed setting that must never change what a run computes.

On the CPU (where CI runs) the key is validated, takes no effect and stays out of the protocol; the
CUDA tests (run by benchmarks/gpu_suite.py on a GPU machine) check that graphed steps train the same
function as ungraphed ones, BatchNorm statistics included.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from afos.activation.module import Activation
from afos.errors import ConfigError
from afos.training.config import TrainConfig
from afos.training.data.registry import Dataset, load_dataset
from afos.training.fitness import run_fitness
from afos.training.protocol import protocol_id

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits")


def test_cuda_graphs_must_be_a_boolean() -> None:
    with pytest.raises(ConfigError, match="cuda_graphs"):
        TrainConfig.from_dict({"cuda_graphs": "yes"})


def test_cuda_graphs_is_not_part_of_the_protocol() -> None:
    assert protocol_id(TrainConfig(cuda_graphs=True)) == protocol_id(TrainConfig())


def test_cuda_graphs_take_no_effect_on_the_cpu(digits: Dataset) -> None:
    runs = [run_fitness(lambda: Activation("-x*erf(exp(-x))"), TrainConfig(device="cpu", epochs=2, cuda_graphs=graphs),
                        dataset=digits) for graphs in (False, True)]
    assert runs[1].status == "ok" and not runs[1].cuda_graphs and runs[1].kernel_note == ""
    plain, asked = ([replace(entry, seconds=0.0) for entry in run.history] for run in runs)
    assert asked == plain and runs[1].test_accuracy == runs[0].test_accuracy


@CUDA
@pytest.mark.parametrize("model", ["mlp", "small_cnn"])
def test_graphed_steps_train_the_same_function(digits: Dataset, model: str) -> None:
    runs = [run_fitness(lambda: Activation("-x*erf(exp(-x))"),
                        TrainConfig(device="cuda", model=model, epochs=3, amp=False, cuda_graphs=graphs), dataset=digits)
            for graphs in (False, True)]
    plain, graphed = runs
    assert graphed.status == "ok" and graphed.cuda_graphs, graphed.kernel_note
    assert graphed.kernels == plain.kernels == "compiled"
    for before, after in zip(plain.history, graphed.history):
        # cuDNN's kernels need not be deterministic, so equal up to rounding grown over ~40 steps
        assert after.train_loss == pytest.approx(before.train_loss, rel=1e-2, abs=1e-3)
        assert after.val_accuracy == pytest.approx(before.val_accuracy, abs=0.03)


@CUDA
def test_graphed_steps_with_bf16_and_learned_parameters(digits: Dataset) -> None:
    config = TrainConfig(device="cuda", model="small_cnn", epochs=2, cuda_graphs=True)
    result = run_fitness(lambda: Activation("b*tanh(a*x)", {"a": 1.0, "b": 1.0}, channel=True), config, dataset=digits)
    assert result.status == "ok" and result.cuda_graphs, result.kernel_note
    assert result.val_accuracy > 0.5
    assert any(value != 1.0 for site in result.params.values() for value in site["a"].values())
