"""One short, reproducible training run that scores an activation function.

This is the measuring instrument of the search: :func:`run_fitness` trains a model whose every activation
site holds the candidate and returns a :class:`FitnessResult`. The rules below protect the measurement:

* **Honest.** Fitness is the validation split only. The test split is evaluated once, after training, for
  reporting beside the fitness; it never selects, stops or rejects anything.
* **Robust.** A bad candidate never raises: an exception while building the activation or the model, a
  non-finite loss, an early rejection, a timeout or running out of memory become a status with a reason.
  Only mistakes of the caller (an invalid :class:`TrainConfig`, a missing dataset, a model that cannot
  take the dataset) raise, as :class:`afos.errors.UserError` subclasses.
* **Fast.** Every split lives on the device (:class:`afos.training.data.loader.DeviceLoader`); the training
  loop only synchronises with the host at check points, every :data:`CHECK_EVERY` steps and at
  evaluations, where the loss accumulated on the device is read once.
* **Reproducible.** Model init, data split, batch order and augmentation all derive from ``config.seed``;
  on the CPU the same seed gives bit-identical records. The caller's global RNG state is left untouched."""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from afos.activation.module import Activation
from afos.errors import ConfigError
from afos.training.config import CPU_COMPILE_MIN_STEPS, CPU_MODEL_MIN_STEPS, MODEL, TrainConfig, resolve_device
from afos.training.data.loader import DeviceLoader
from afos.training.data.registry import Dataset, default_augment, load_dataset
from afos.training.learner import Learner, is_oom, on_cuda
from afos.training.models.registry import activation_sites, build_model, default_model

ActivationFactory = Callable[[], nn.Module]
Progress = Callable[[dict[str, Any]], None]

CHECK_EVERY = 20
"""Steps between reads of the training loss. Each read is a host synchronisation; a NaN between reads is
still caught at the next one because the loss is accumulated (NaN and inf are absorbing under addition)."""

_EVAL_BATCH = 1024  # evaluation keeps no activations for backward, so it can use big batches

_REASON_LIMIT = 1000  # characters of an exception message kept in a record

# --------------------------------------------------------------------------------------------- result


@dataclass
class FitnessResult:
    """The record of one fitness run; partial (metrics None) when the run stopped early.

    ``val_*`` is the fitness, from the last validation pass (for ``rejected``, the one that rejected).
    ``test_*`` is filled only for ``ok`` runs. ``history`` holds one entry per validation pass (each epoch
    end, the early-rejection point and the final step): {step, epoch, train_loss, val_loss, val_accuracy,
    val_f1, seconds}, with ``train_loss`` the mean since the previous pass. ``params`` maps activation site index
    (forward order) to its learned parameters: a float per scalar, {mean, min, max} per tensor. Non-finite
    numbers are stored as None so that records are valid JSON and compare equal (JSON turns the site
    indices into strings). ``kernels`` is the kernel path the candidate trained on (empty without an
    :class:`afos.activation.module.Activation`), ``compile_seconds`` the compilation and CUDA graph capture this run
    paid for (already compiled kernels cost none), ``cuda_graphs`` whether its steps replayed CUDA graphs and
    ``kernel_note`` why the path is not the one asked for, if it is not.
    """

    status: str
    reason: str = ""
    val_accuracy: float | None = None
    val_loss: float | None = None
    test_accuracy: float | None = None
    test_loss: float | None = None
    train_loss: float | None = None
    val_f1: float | None = None
    test_f1: float | None = None
    epochs: float = 0.0
    steps: int = 0
    seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
    params: dict[int, dict[str, Any]] = field(default_factory=dict)
    kernels: str = ""
    compile_seconds: float = 0.0
    cuda_graphs: bool = False
    kernel_note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def kernel_path(setting: str, device: torch.device, steps: int) -> str:
    """The kernel path (or :data:`MODEL`) ``kernels = setting`` means for a run of ``steps`` steps on ``device``."""
    if setting != "auto":
        return setting
    if device.type == "cuda":
        return "compiled"
    return MODEL if steps >= CPU_MODEL_MIN_STEPS else "compiled" if steps >= CPU_COMPILE_MIN_STEPS else "eager"


def _record_kernels(result: FitnessResult, sites: list[nn.Module], learner: Learner | None) -> None:
    activations = list({id(s): s for s in sites if isinstance(s, Activation)}.values())
    notes = sorted({a.kernel_note for a in activations if a.kernel_note})
    result.kernels = "fused" if notes else activations[0].kernels if activations else ""
    result.compile_seconds = sum(a.compile_seconds for a in activations)
    if learner is not None:
        result.cuda_graphs, result.compile_seconds = learner.graphed, result.compile_seconds + learner.setup_seconds
        if learner.train_model is not learner.model and not notes:
            result.kernels = "model"
        notes += [learner.note] if learner.note else []
    result.kernel_note = "; ".join(notes)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _param_summary(sites: list[nn.Module]) -> dict[int, dict[str, Any]]:
    summary: dict[int, dict[str, Any]] = {}
    for index, site in enumerate(sites):
        values: dict[str, Any] = {}
        for name, param in site.named_parameters():
            name = name.removeprefix("params.")  # Activation keeps its scalars in a ParameterDict
            p = param.detach().float()
            if p.numel() == 1:
                values[name] = _finite(p.item())
            else:
                stats = torch.stack([p.mean(), p.min(), p.max()]).tolist()
                values[name] = {k: _finite(v) for k, v in zip(("mean", "min", "max"), stats)}
        if values:
            summary[index] = values
    return summary


# ---------------------------------------------------------------------------------------- the run


class _Stop(Exception):
    """Ends a run early with a non-ok status; raised inside the loop, turned into the record's status."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True)
class _Plan:
    """Step counts of a run, all in optimizer steps."""

    per_epoch: int
    total: int
    warmup: int
    reject_at: int | None  # None: early rejection off, or its point lies beyond the budget

    @classmethod
    def of(cls, config: TrainConfig, per_epoch: int) -> _Plan:
        def steps(epochs: float) -> int:
            return max(1, round(epochs * per_epoch))

        total = config.steps if config.steps is not None else steps(config.epochs)
        reject_at = steps(config.early_reject_epochs) if config.early_reject_accuracy is not None else None
        return cls(
            per_epoch=per_epoch,
            total=total,
            warmup=min(total, round(config.warmup_epochs * per_epoch)),
            reject_at=reject_at if reject_at is not None and reject_at <= total else None,
        )

    def evaluates_at(self, step: int) -> bool:
        return step % self.per_epoch == 0 or step == self.total or step == self.reject_at


@dataclass
class _Loaders:
    train: DeviceLoader
    val: DeviceLoader
    test: DeviceLoader


def _make_loaders(dataset: Dataset, config: TrainConfig, device: torch.device, channels_last: bool) -> _Loaders:
    crop, flip = default_augment(dataset.name) if config.augment else (False, False)

    def loader(x: torch.Tensor, y: torch.Tensor, *, train: bool) -> DeviceLoader:
        return DeviceLoader(
            x,
            y,
            batch_size=config.batch_size if train else _EVAL_BATCH,
            mean=dataset.mean,
            std=dataset.std,
            train=train,
            augment=train and crop,
            flip=train and flip,
            seed=config.seed,
            device=device,
            channels_last=channels_last,
        )

    return _Loaders(
        train=loader(dataset.train_x, dataset.train_y, train=True),
        val=loader(dataset.val_x, dataset.val_y, train=False),
        test=loader(dataset.test_x, dataset.test_y, train=False),
    )


#: Smallest validation split fitness is measured on: below it accuracy moves in steps too coarse to rank
#: candidates (one example: fitness 0 or 1). Datasets under 500 examples (wine: 142) need only a tenth.
MIN_VAL_EXAMPLES = 50


def check_validation_split(dataset: Dataset, config: TrainConfig) -> None:
    """Raise :class:`ConfigError` when the validation split is too small to rank candidates by."""
    held_out, total = len(dataset.val_y), len(dataset.val_y) + len(dataset.train_y)
    floor = max(dataset.num_classes, min(MIN_VAL_EXAMPLES, total // 10))
    if held_out < floor:
        raise ConfigError(f"train config: val_fraction={config.val_fraction!r} leaves {held_out} validation "
                          f"example(s) of {dataset.name}; fitness needs at least {floor}: raise val_fraction")


def build_network(config: TrainConfig, dataset: Dataset, activation: ActivationFactory) -> nn.Module:
    """The configured model for ``dataset`` with ``activation()`` at every site; a model without any
    activation site is a :class:`ConfigError`, since every candidate would score the same in it."""
    name = config.model or default_model(dataset.name)
    model = build_model(name, activation, in_channels=dataset.in_channels, num_classes=dataset.num_classes,
                               image_size=dataset.image_size, num_features=dataset.num_features,
                               **config.model_options)
    if not activation_sites(model):
        raise ConfigError(f"train config: model {name!r} with model_options={config.model_options!r} has no "
                          "activation site, so the activation cannot matter; give it at least one hidden layer")
    return model


def check_setup(config: TrainConfig, dataset: Dataset) -> None:
    """Everything about a protocol that needs its dataset, checked before anything is created or trained:
    the validation split is big enough, and the model takes the dataset and has an activation site."""
    check_validation_split(dataset, config)
    build_network(config, dataset, nn.Identity)


def _endless(loader: DeviceLoader) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches across epoch boundaries, so a budget of 2.5 epochs is one flat loop of steps."""
    while True:
        yield from loader


class _Run:
    """One fitness run. It writes into ``result`` as it goes, so a run stopped by any exception still
    leaves a truthful partial record, and it keeps the activation ``sites`` so that their learned
    parameters can be reported whatever the outcome."""

    def __init__(
        self, config: TrainConfig, dataset: Dataset, device: torch.device, progress: Progress | None
    ) -> None:
        self.config, self.dataset, self.device, self.progress = config, dataset, device, progress
        check_validation_split(dataset, config)
        self.loaders = _make_loaders(dataset, config, device, on_cuda(config.channels_last, device))
        self.plan = _Plan.of(config, len(self.loaders.train))
        self.result = FitnessResult(status="ok")
        self.sites: list[nn.Module] = []
        self.learner: Learner | None = None
        self.start = time.perf_counter()  # the clock starts after the data is on the device

    def execute(self, activation: ActivationFactory) -> None:
        learner = self.learner = self._build(activation)
        self._train(learner)
        result = self.result
        result.test_loss, result.test_accuracy, result.test_f1 = map(_finite, learner.evaluate(self.loaders.test))

    def _build(self, activation: ActivationFactory) -> Learner:
        model = build_network(self.config, self.dataset, activation)
        self.sites = activation_sites(model)
        plan = self.plan
        path = kernel_path(self.config.kernels, self.device, plan.total)
        for site in self.sites:
            if isinstance(site, Activation):
                site.use_kernels("fused" if path == MODEL else path)  # a compiled model traces the fused form
        return Learner(model, self.config, self.sites, device=self.device, total_steps=plan.total,
                       warmup_steps=plan.warmup, compile_model=path == MODEL)

    def _train(self, learner: Learner) -> None:
        plan, result = self.plan, self.result
        deadline = math.inf if self.config.timeout_s is None else self.start + self.config.timeout_s
        batches = _endless(self.loaders.train)
        loss_sum = torch.zeros((), device=self.device)
        since = 0  # the step of the previous validation pass
        for step in range(1, plan.total + 1):
            loss_sum += learner.step(*next(batches))
            result.steps, result.epochs = step, step / plan.per_epoch
            if plan.evaluates_at(step):
                self._validate(learner, step, loss_sum.item() / (step - since))
                loss_sum.zero_()
                since = step
                if step == plan.reject_at:
                    self._early_reject()
            elif step % CHECK_EVERY == 0:
                _check_finite(loss_sum.item(), step)
            if step < plan.total and time.perf_counter() > deadline:
                raise _Stop("timeout", f"timed out after {step} of {plan.total} steps")

    def _validate(self, learner: Learner, step: int, train_loss: float) -> None:
        result = self.result
        result.train_loss = _finite(train_loss)
        _check_finite(train_loss, step)
        val_loss, result.val_accuracy, result.val_f1 = learner.evaluate(self.loaders.val)
        result.val_loss = _finite(val_loss)
        seconds = time.perf_counter() - self.start
        entry = {
            "step": step,
            "epoch": result.epochs,
            "train_loss": result.train_loss,
            "val_loss": result.val_loss,
            "val_accuracy": result.val_accuracy,
            "val_f1": result.val_f1,
            "seconds": seconds,
        }
        result.history.append(entry)
        if self.progress is not None:
            eta = seconds / step * (self.plan.total - step)
            self.progress({"event": "epoch", "epochs": self.plan.total / self.plan.per_epoch, "eta": eta, **entry})
        if result.val_loss is None:
            raise _Stop("diverged", f"non-finite validation loss at step {step}")

    def _early_reject(self) -> None:
        accuracy, threshold = self.result.val_accuracy, self.config.early_reject_accuracy
        if threshold is not None and accuracy is not None and accuracy < threshold:
            raise _Stop(
                "rejected",
                f"validation accuracy {accuracy:.4f} < {threshold} after {self.result.epochs:.3g} epochs",
            )


def _check_finite(loss: float, step: int) -> None:
    if not math.isfinite(loss):
        raise _Stop("diverged", f"non-finite training loss by step {step}")


def run_fitness(
    activation: ActivationFactory,
    config: TrainConfig,
    *,
    dataset: Dataset | None = None,
    progress: Progress | None = None,
) -> FitnessResult:
    """Train once with ``activation()`` at every activation site and return the record; see the module doc.

    ``dataset`` lets a caller load once for many candidates (else it is loaded from ``config``); when given,
    it is used as is, split included. ``progress`` receives a dict per validation pass
    ({"event": "epoch", "step", "epoch", "epochs", "train_loss", "val_loss", "val_accuracy", "val_f1", "seconds",
    "eta"}); nothing is printed. Raises only for the caller's mistakes: ConfigError (invalid config, or a
    model that cannot take the dataset) and DatasetNotFound.
    """
    config.validate()
    if dataset is None:
        dataset = load_dataset(config.dataset, config.data_dir, val_fraction=config.val_fraction, seed=config.seed,
                                    image_size=config.image_size, target=config.target)
    device = resolve_device(config.device)
    run = _Run(config, dataset, device, progress)  # outside the guard: data problems are the caller's
    result = run.result
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(config.seed)
        try:
            run.execute(activation)
        except _Stop as stop:
            result.status, result.reason = stop.status, str(stop)
        except ConfigError:
            raise  # the model cannot take this dataset: the configuration's fault, not the candidate's
        except Exception as exc:  # noqa: BLE001 - a candidate may fail in any way; it must not end the search
            result.status = "oom" if is_oom(exc) else "error"
            result.reason = f"{type(exc).__name__}: {exc}"[:_REASON_LIMIT]
    if result.status == "oom":
        gc.collect()  # the exception's frames are gone now, so the model and its activations can be freed
        if device.type == "cuda":
            torch.cuda.empty_cache()
    elif result.status != "error":
        result.params = _param_summary(run.sites)
    _record_kernels(result, run.sites, run.learner)
    result.seconds = time.perf_counter() - run.start
    return result
