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
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from afos.activation.module import Activation
from afos.errors import ConfigError
from afos.records.evaluation import Checkpoint, FitnessResult, Params, Status
from afos.training.config import CPU_COMPILE_MIN_STEPS, CPU_MODEL_MIN_STEPS, MODEL, TrainConfig, resolve_device
from afos.training.data.loader import DeviceLoader
from afos.training.data.registry import Dataset, default_augment, default_model, load_dataset
from afos.training.learner import Learner, is_oom, on_cuda
from afos.training.models.registry import activation_sites, build_model

ActivationFactory = Callable[[], nn.Module]
Progress = Callable[["EpochProgress"], None]

CHECK_EVERY = 20
"""Steps between reads of the training loss. Each read is a host synchronisation; a NaN between reads is
still caught at the next one because the loss is accumulated (NaN and inf are absorbing under addition)."""

_EVAL_BATCH = 1024  # evaluation keeps no activations for backward, so it can use big batches

_REASON_LIMIT = 1000  # characters of an exception message kept in a record

@dataclass(frozen=True)
class EpochProgress:
    """What ``run_fitness(progress=...)`` receives after each validation pass: the pass, the run's budget in
    epochs and the estimated seconds left."""

    checkpoint: Checkpoint
    epochs: float
    eta: float


def kernel_path(setting: str, device: torch.device, steps: int) -> str:
    """The kernel path (or :data:`MODEL`) ``kernels = setting`` means for a run of ``steps`` steps on ``device``."""
    if setting != "auto":
        return setting
    if device.type == "cuda":
        return "compiled"
    return MODEL if steps >= CPU_MODEL_MIN_STEPS else "compiled" if steps >= CPU_COMPILE_MIN_STEPS else "eager"


def _kernel_facts(sites: list[nn.Module], learner: Learner | None) -> dict[str, Any]:
    """The kernel fields of a result: the path the sites ran, what compiling cost, graphs, notes."""
    activations = list({id(s): s for s in sites if isinstance(s, Activation)}.values())
    notes = sorted({a.kernel_note for a in activations if a.kernel_note})
    kernels = "fused" if notes else activations[0].kernels if activations else ""
    compile_seconds, graphed = sum(a.compile_seconds for a in activations), False
    if learner is not None:
        graphed, compile_seconds = learner.graphed, compile_seconds + learner.setup_seconds
        if learner.train_model is not learner.model and not notes:
            kernels = "model"
        notes += [learner.note] if learner.note else []
    return {"kernels": kernels, "compile_seconds": compile_seconds, "cuda_graphs": graphed,
            "kernel_note": "; ".join(notes)}


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _param_summary(sites: list[nn.Module]) -> Params:
    summary: Params = {}
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
            summary[str(index)] = values
    return summary


# ---------------------------------------------------------------------------------------- the run


class _Stop(Exception):
    """Ends a run early with a non-ok status; raised inside the loop, turned into the record's status."""

    def __init__(self, status: Status, reason: str) -> None:
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
                          f"example(s) of {dataset.name}; fitness needs at least {floor}: raise val_fraction in the "
                          "config's [train] table, or give the dataset more images")


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
    """One fitness run. It notes its measurements in ``measured`` (result field -> value) as it goes, so a
    run stopped by any exception still leaves a truthful partial record, and it keeps the activation
    ``sites`` so that their learned parameters can be reported whatever the outcome."""

    def __init__(
        self, config: TrainConfig, dataset: Dataset, device: torch.device, progress: Progress | None
    ) -> None:
        self.config, self.dataset, self.device, self.progress = config, dataset, device, progress
        check_validation_split(dataset, config)
        self.loaders = _make_loaders(dataset, config, device, on_cuda(config.channels_last, device))
        self.plan = _Plan.of(config, len(self.loaders.train))
        self.measured: dict[str, Any] = {}
        self.history: list[Checkpoint] = []
        self.sites: list[nn.Module] = []
        self.learner: Learner | None = None
        self.start = time.perf_counter()  # the clock starts after the data is on the device

    def execute(self, activation: ActivationFactory) -> None:
        learner = self.learner = self._build(activation)
        self._train(learner)
        test = dict(zip(("test_loss", "test_accuracy", "test_f1"), map(_finite, learner.evaluate(self.loaders.test))))
        self.measured.update(test)

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
        plan = self.plan
        deadline = math.inf if self.config.timeout_s is None else self.start + self.config.timeout_s
        batches = _endless(self.loaders.train)
        loss_sum = torch.zeros((), device=self.device)
        since = 0  # the step of the previous validation pass
        for step in range(1, plan.total + 1):
            loss_sum += learner.step(*next(batches))
            self.measured.update(steps=step, epochs=step / plan.per_epoch)
            if plan.evaluates_at(step):
                self._validate(learner, step, loss_sum.item() / (step - since))
                loss_sum.zero_()
                since = step
                if step == plan.reject_at:
                    self._early_reject()
            elif step % CHECK_EVERY == 0:
                _check_finite(loss_sum.item(), step)
            if step < plan.total and time.perf_counter() > deadline:
                raise _Stop(Status.TIMEOUT, f"timed out after {step} of {plan.total} steps")

    def _validate(self, learner: Learner, step: int, train_loss: float) -> None:
        _check_finite(train_loss, step)
        val_loss, val_accuracy, val_f1 = learner.evaluate(self.loaders.val)
        seconds = time.perf_counter() - self.start
        checkpoint = Checkpoint(step, self.measured["epochs"], _finite(train_loss), _finite(val_loss), val_accuracy,
                                val_f1, seconds)
        self.history.append(checkpoint)
        self.measured.update(train_loss=checkpoint.train_loss, val_loss=checkpoint.val_loss,
                             val_accuracy=val_accuracy, val_f1=val_f1)
        if self.progress is not None:
            eta = seconds / step * (self.plan.total - step)
            self.progress(EpochProgress(checkpoint, self.plan.total / self.plan.per_epoch, eta))
        if checkpoint.val_loss is None:
            raise _Stop(Status.DIVERGED, f"non-finite validation loss at step {step}")

    def _early_reject(self) -> None:
        accuracy, threshold = self.measured.get("val_accuracy"), self.config.early_reject_accuracy
        if threshold is not None and accuracy is not None and accuracy < threshold:
            raise _Stop(
                Status.REJECTED,
                f"validation accuracy {accuracy:.4f} < {threshold} after {self.measured['epochs']:.3g} epochs",
            )

    def result(self, status: Status, reason: str) -> FitnessResult:
        """The record of the run as it stands: what was measured, the learned parameters of a run that did
        not fail in an unknown way, and how its kernels ran."""
        params = _param_summary(self.sites) if status not in (Status.ERROR, Status.OOM) else {}
        return FitnessResult(status=status, reason=reason, **self.measured, history=tuple(self.history),
                             params=params, **_kernel_facts(self.sites, self.learner),
                             seconds=time.perf_counter() - self.start)


def _check_finite(loss: float, step: int) -> None:
    if not math.isfinite(loss):
        raise _Stop(Status.DIVERGED, f"non-finite training loss by step {step}")


def run_fitness(
    activation: ActivationFactory,
    config: TrainConfig,
    *,
    dataset: Dataset | None = None,
    progress: Progress | None = None,
) -> FitnessResult:
    """Train once with ``activation()`` at every activation site and return the record; see the module doc.

    ``dataset`` lets a caller load once for many candidates (else it is loaded from ``config``); when given,
    it is used as is, split included. ``progress`` receives an :class:`EpochProgress` per validation pass;
    nothing is printed. Raises only for the caller's mistakes: ConfigError (invalid config, or a model that
    cannot take the dataset) and DatasetNotFound.
    """
    config.validate()
    if dataset is None:
        dataset = load_dataset(config.dataset, config.data_dir, val_fraction=config.val_fraction, seed=config.seed,
                                    image_size=config.image_size, target=config.target)
    device = resolve_device(config.device)
    run = _Run(config, dataset, device, progress)  # outside the guard: data problems are the caller's
    status, reason = Status.OK, ""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(config.seed)
        try:
            run.execute(activation)
        except _Stop as stop:
            status, reason = stop.status, str(stop)
        except ConfigError:
            raise  # the model cannot take this dataset: the configuration's fault, not the candidate's
        except Exception as exc:  # noqa: BLE001 - a candidate may fail in any way; it must not end the search
            status = Status.OOM if is_oom(exc) else Status.ERROR
            reason = f"{type(exc).__name__}: {exc}"[:_REASON_LIMIT]
    if status is Status.OOM:
        gc.collect()  # the exception's frames are gone now, so the model and its activations can be freed
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return run.result(status, reason)
