"""afos.train: real, short training runs on the real digits data (CPU), no mocks.

Each run trains the default digits MLP for a few hundred milliseconds, so the file exercises the actual
measuring instrument: the statuses a search will see, reproducibility, budgets and parameter groups.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from afos.activation.module import Activation
from afos.errors import ConfigError
from afos.records.evaluation import FitnessResult, Status
from afos.training.config import OPTIMIZERS, SCHEDULES, TrainConfig
from afos.training.data.registry import Dataset, load_dataset
from afos.training.fitness import CHECK_EVERY, EpochProgress, run_fitness
from afos.training.learner import Learner, build_optimizer, lr_factor
from afos.training.models.registry import activation_sites, build_model

CPU = {"device": "cpu"}


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits")


@pytest.fixture(scope="module")
def per_epoch(digits: Dataset) -> int:
    """Training batches per epoch of the default config (the last partial batch is dropped)."""
    return len(digits.train_y) // TrainConfig().batch_size


def _without_seconds(result: FitnessResult) -> dict:
    record = result.to_dict()
    record.pop("seconds")
    record["history"] = [{k: v for k, v in entry.items() if k != "seconds"} for entry in record["history"]]
    record.pop("compile_seconds")
    return record


class Raising(nn.Module):
    """Raises in forward, as a candidate that blows up only once data flows through it."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise self.error


class VectorScale(nn.Module):
    """A learnable activation whose parameter is a tensor, not a scalar."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.linspace(0.5, 1.5, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x) * self.scale.mean()


# ------------------------------------------------------------------------------------------ statuses


@pytest.mark.parametrize("factory", [nn.ReLU, lambda: Activation("relu")], ids=["nn.ReLU", "Activation"])
def test_relu_learns_digits(factory, per_epoch: int) -> None:
    result = run_fitness(factory, TrainConfig(**CPU))  # loads digits itself
    assert result.status is Status.OK, result.reason
    assert result.val_accuracy >= 0.80
    assert 0.0 < result.test_accuracy <= 1.0 and math.isfinite(result.test_loss)
    assert result.steps == 10 * per_epoch and result.epochs == 10.0
    assert [entry.epoch for entry in result.history] == [float(e) for e in range(1, 11)]
    assert result.history[-1].val_accuracy == result.val_accuracy
    assert result.params == {}


def test_exploding_candidate_is_diverged_not_raised(digits: Dataset) -> None:
    result = run_fitness(lambda: Activation("exp(exp(exp(x)))"), TrainConfig(**CPU), dataset=digits)
    assert result.status in ("diverged", "rejected")
    assert "non-finite" in result.reason
    assert result.test_accuracy is None
    json.dumps(result.to_dict(), allow_nan=False)  # records stay strict JSON even when the loss was NaN


def test_divergence_is_caught_between_validation_passes(digits: Dataset) -> None:
    config = TrainConfig(batch_size=8, **CPU)  # ~160 steps per epoch: the periodic check must catch it
    result = run_fitness(lambda: Activation("exp(exp(exp(x)))"), config, dataset=digits)
    assert result.status is Status.DIVERGED
    assert result.steps == CHECK_EVERY and result.history == ()


def test_factory_that_raises_is_an_error(digits: Dataset) -> None:
    def factory() -> nn.Module:
        raise ValueError("no such primitive: frobnicate")

    result = run_fitness(factory, TrainConfig(**CPU), dataset=digits)
    assert result.status is Status.ERROR
    assert result.reason == "ValueError: no such primitive: frobnicate"
    assert result.steps == 0 and result.val_accuracy is None


def test_unparsable_expression_is_an_error(digits: Dataset) -> None:
    result = run_fitness(lambda: Activation("frobnicate(x)"), TrainConfig(**CPU), dataset=digits)
    assert result.status is Status.ERROR and "frobnicate" in result.reason


def test_failure_during_training_is_an_error(digits: Dataset) -> None:
    result = run_fitness(lambda: Raising(ArithmeticError("boom")), TrainConfig(**CPU), dataset=digits)
    assert (result.status, result.reason) == ("error", "ArithmeticError: boom")


def test_out_of_memory_is_reported_as_oom(digits: Dataset) -> None:
    error = torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
    result = run_fitness(lambda: Raising(error), TrainConfig(**CPU), dataset=digits)
    assert result.status is Status.OOM and "out of memory" in result.reason


def test_model_that_cannot_take_the_dataset_raises_config_error() -> None:
    with pytest.raises(ConfigError, match="resnet20"):
        run_fitness(nn.ReLU, TrainConfig(dataset="wine", model="resnet20", **CPU))


# -------------------------------------------------------------------------------- reproducibility


def test_same_seed_gives_identical_records(digits: Dataset) -> None:
    def factory() -> nn.Module:
        return Activation("x*tanh(softplus(x+beta))", learnable={"beta": -0.25})

    config = TrainConfig(epochs=2, seed=3, **CPU)
    first = run_fitness(factory, config, dataset=digits)
    second = run_fitness(factory, config, dataset=digits)
    assert first.status is Status.OK
    assert _without_seconds(first) == _without_seconds(second)


def test_different_seeds_differ(digits: Dataset) -> None:
    runs = [run_fitness(nn.ReLU, TrainConfig(epochs=2, seed=s, **CPU), dataset=digits) for s in (0, 1)]
    assert runs[0].history[0].train_loss != runs[1].history[0].train_loss
    assert runs[0].val_loss != runs[1].val_loss


def test_caller_rng_state_is_untouched(digits: Dataset) -> None:
    before = torch.random.get_rng_state()
    run_fitness(nn.ReLU, TrainConfig(epochs=0.2, seed=5, **CPU), dataset=digits)
    assert torch.equal(before, torch.random.get_rng_state())


# ----------------------------------------------------------------------------------------- budgets


def test_early_rejection_stops_after_the_configured_fraction(digits: Dataset, per_epoch: int) -> None:
    config = TrainConfig(early_reject_accuracy=0.99, early_reject_epochs=0.5, **CPU)
    result = run_fitness(nn.ReLU, config, dataset=digits)
    assert result.status is Status.REJECTED
    assert result.steps == round(0.5 * per_epoch)
    assert result.epochs == pytest.approx(0.5, abs=1 / per_epoch)
    assert len(result.history) == 1 and result.val_accuracy < 0.99
    assert result.test_accuracy is None


def test_a_reachable_bar_does_not_reject(digits: Dataset) -> None:
    config = TrainConfig(epochs=2, early_reject_accuracy=0.0, early_reject_epochs=0.5, **CPU)
    result = run_fitness(nn.ReLU, config, dataset=digits)
    assert result.status is Status.OK
    assert [entry.epoch for entry in result.history][:2] == [pytest.approx(0.5, abs=0.1), 1.0]


def test_timeout_returns_the_partial_record(digits: Dataset) -> None:
    result = run_fitness(nn.ReLU, TrainConfig(timeout_s=1e-9, **CPU), dataset=digits)
    assert result.status is Status.TIMEOUT and "timed out" in result.reason
    assert result.steps == 1 and result.test_accuracy is None


def test_fractional_epochs_train_the_right_number_of_steps(digits: Dataset, per_epoch: int) -> None:
    result = run_fitness(nn.ReLU, TrainConfig(epochs=2.5, **CPU), dataset=digits)
    assert result.steps == round(2.5 * per_epoch)
    assert [entry.step for entry in result.history] == [per_epoch, 2 * per_epoch, result.steps]


def test_steps_override_epochs(digits: Dataset, per_epoch: int) -> None:
    result = run_fitness(nn.ReLU, TrainConfig(epochs=5, steps=7, **CPU), dataset=digits)
    assert result.status is Status.OK
    assert result.steps == 7 and result.epochs == pytest.approx(7 / per_epoch)


def test_progress_reports_every_validation_pass(digits: Dataset) -> None:
    events: list[EpochProgress] = []
    result = run_fitness(nn.ReLU, TrainConfig(epochs=3, **CPU), dataset=digits, progress=events.append)
    assert [e.checkpoint.epoch for e in events] == [1.0, 2.0, 3.0]
    assert [e.checkpoint for e in events] == list(result.history)
    assert events[0].epochs == 3.0 and events[0].eta > 0.0 and events[-1].eta == 0.0


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_trains(digits: Dataset, optimizer: str) -> None:
    lr = {"sgd": 0.05, "adadelta": 1.0, "adagrad": 0.05}.get(optimizer, 1e-3)
    result = run_fitness(nn.ReLU, TrainConfig(epochs=3, optimizer=optimizer, lr=lr, **CPU), dataset=digits)
    assert result.status is Status.OK
    assert result.history[-1].train_loss < result.history[0].train_loss


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_every_schedule_trains(digits: Dataset, schedule: str) -> None:
    result = run_fitness(nn.ReLU, TrainConfig(epochs=3, schedule=schedule, **CPU), dataset=digits)
    assert result.status is Status.OK and result.val_accuracy > 0.3


def test_lr_schedules_have_their_shapes() -> None:
    assert [lr_factor("constant", s, 10, 0) for s in (0, 9)] == [1.0, 1.0]
    cosine = [lr_factor("cosine", s, 100, 0) for s in range(100)]
    assert cosine[0] == 1.0 and cosine == sorted(cosine, reverse=True) and cosine[-1] < 1e-3
    warmup = [lr_factor("warmup", s, 100, 10) for s in range(100)]
    assert warmup[0] == pytest.approx(0.1) and warmup[9] == 1.0 and warmup[10] == 1.0 and warmup[-1] < 1e-2
    onecycle = [lr_factor("onecycle", s, 100, 0) for s in range(100)]
    assert onecycle[0] == pytest.approx(1 / 25 + (1 - 1 / 25) / 30)  # ramps from lr/25 over 30% of the steps
    assert onecycle[29] == pytest.approx(1.0) and max(onecycle) == 1.0 and onecycle[-1] < 1e-2


# ------------------------------------------------------------------------- activation parameters


def _learnable() -> nn.Module:
    return Activation("x*tanh(softplus(x+beta))", learnable={"beta": -0.25})


def test_learnable_parameters_move_and_are_reported(digits: Dataset) -> None:
    result = run_fitness(_learnable, TrainConfig(epochs=3, param_lr=0.5, **CPU), dataset=digits)
    assert result.status is Status.OK
    assert sorted(result.params) == ["0", "1"]  # the digits MLP has two activation sites
    values = [site["beta"] for site in result.params.values()]
    assert all(v != -0.25 for v in values) and values[0] != values[1]


def test_param_lr_zero_freezes_activation_parameters(digits: Dataset) -> None:
    result = run_fitness(_learnable, TrainConfig(epochs=2, param_lr=0.0, **CPU), dataset=digits)
    assert result.status is Status.OK
    assert [site["beta"] for site in result.params.values()] == [-0.25, -0.25]


def test_tensor_parameters_are_summarised(digits: Dataset) -> None:
    result = run_fitness(VectorScale, TrainConfig(epochs=1, param_lr=0.0, **CPU), dataset=digits)
    assert result.params["0"] == {"scale": {"mean": 1.0, "min": 0.5, "max": 1.5}}


def test_activation_parameters_form_their_own_group_and_get_gradients() -> None:
    model = build_model("mlp", _learnable, in_channels=1, num_classes=3, image_size=None, num_features=5)
    sites = activation_sites(model)
    config = TrainConfig(lr=0.1, weight_decay=1e-3, param_lr=0.01, param_wd=1e-4, **CPU)
    optimizer = build_optimizer(model, config, sites)
    decayed, undecayed, own = optimizer.param_groups
    assert all(p.ndim == 2 for p in decayed["params"]) and decayed["weight_decay"] == 1e-3
    assert all(p.ndim == 1 for p in undecayed["params"]) and undecayed["weight_decay"] == 0.0
    assert own["params"] == [p for s in sites for p in s.parameters()]
    assert (own["lr"], own["weight_decay"]) == (0.01, 1e-4)

    learner = Learner(model, config, sites, device=torch.device("cpu"), total_steps=10, warmup_steps=0)
    learner.step(torch.randn(8, 5), torch.randint(0, 3, (8,)))
    assert all(p.grad is not None and p.grad.abs().item() > 0 for p in own["params"])


# ----------------------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("lr", -1.0),
        ("epochs", 0),
        ("epochs", True),
        ("steps", 2.5),
        ("optimizer", "rmsprop"),
        ("schedule", "linear"),
        ("momentum", 1.0),
        ("early_reject_accuracy", 1.5),
        ("timeout_s", 0),
        ("dataset", "imagenet"),
        ("model", "vgg"),
        ("device", "tpu"),
        ("val_fraction", 1.0),
        ("param_wd", float("nan")),
    ],
)
def test_validation_names_the_bad_key(key: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"{key}={value!r}"):
        TrainConfig(**{key: value}).validate()


def test_from_dict_rejects_unknown_keys_and_round_trips() -> None:
    with pytest.raises(ConfigError, match="learning_rate"):
        TrainConfig.from_dict({"learning_rate": 0.1})
    config = TrainConfig(epochs=2.5, optimizer="adamw", early_reject_accuracy=0.5, param_lr=0.01)
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_run_fitness_validates_before_training(digits: Dataset) -> None:
    with pytest.raises(ConfigError, match="batch_size"):
        run_fitness(nn.ReLU, TrainConfig(batch_size=0, **CPU), dataset=digits)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on machines without CUDA")
def test_cuda_without_cuda_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="device='cuda'"):
        TrainConfig(device="cuda").validate()
