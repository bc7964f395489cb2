"""One short, reproducible training run that scores an activation function.

This is the measuring instrument of the search: :func:`run_fitness` trains a model whose every activation
site holds the candidate and returns a :class:`FitnessResult`. The rules below protect the measurement:

* **Honest.** Fitness is the validation split only. The test split is evaluated once, after training, for
  reporting beside the fitness; it never selects, stops or rejects anything.
* **Robust.** A bad candidate never raises: an exception while building the activation or the model, a
  non-finite loss, an early rejection, a timeout or running out of memory become a status with a reason.
  Only mistakes of the caller (an invalid :class:`TrainConfig`, a missing dataset, a model that cannot
  take the dataset) raise, as :class:`afos.errors.UserError` subclasses.
* **Fast.** Every split lives on the device (:class:`afos.data.DeviceLoader`); the training loop only
  synchronises with the host at check points, every :data:`CHECK_EVERY` steps and at evaluations, where the
  loss accumulated on the device is read once.
* **Reproducible.** Model init, data split, batch order and augmentation all derive from ``config.seed``;
  on the CPU the same seed gives bit-identical records. The caller's global RNG state is left untouched.
"""

from __future__ import annotations

import gc
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from afos import data, models
from afos.compile import KERNEL_PATHS, Activation, own_code
from afos.config import (
    BOOLEAN,
    MAX_SEED,
    Rule,
    check_keys,
    check_rules,
    integer,
    is_text,
    number,
    one_of,
    optional,
)
from afos.errors import ConfigError

__all__ = [
    "CHECK_EVERY",
    "OPTIMIZERS",
    "SCHEDULES",
    "STATUSES",
    "FitnessResult",
    "Learner",
    "TrainConfig",
    "build_network",
    "build_optimizer",
    "check_setup",
    "check_validation_split",
    "lr_factor",
    "macro_f1",
    "resolve_device",
    "run_fitness",
]

ActivationFactory = Callable[[], nn.Module]
Progress = Callable[[dict[str, Any]], None]

OPTIMIZERS: tuple[str, ...] = ("sgd", "adam", "adamw", "adagrad", "adadelta")
SCHEDULES: tuple[str, ...] = ("constant", "cosine", "onecycle", "warmup")
STATUSES: tuple[str, ...] = ("ok", "diverged", "rejected", "timeout", "oom", "error")
MODEL = "model"
"""The kernels setting that compiles the whole network (the activations traced in their fused form)."""
KERNELS: tuple[str, ...] = ("auto", *KERNEL_PATHS, MODEL)
CPU_COMPILE_MIN_STEPS = 500
"""With ``kernels = "auto"`` on the CPU, runs of at least this many steps compile their activation's kernels;
shorter ones run the eager chain. Measured on the 2-core development CPU (ResNet-20, batch 32,
benchmarks/RESULTS.md): compiled kernels beat the chain for 14 of 23 forms, by up to 100 ms a step on deep
trees, after a compile of 2-8 s, a median break-even of ~210 steps among those 14 (at most ~940); forms that
are a native op or two lose up to 20 ms a step. The fused kernels run eagerly are slower than the chain for
every form on the CPU (their backward recomputes the forward), so a short run gains nothing from them but
memory, which a CPU run rarely lacks."""

CPU_MODEL_MIN_STEPS = 5000
"""With ``kernels = "auto"`` on the CPU, runs of at least this many steps compile the whole network
(``model``). On the development CPU that compile took ~40 s for ResNet-20 and saved ~23 ms a step (batch
32) over compiled kernels per site for `-x*erf(exp(-x))` and mila, a break-even of ~1,700-2,200 steps;
5,000 leaves room for bigger networks, which take longer to compile (benchmarks/RESULTS.md)."""

CHECK_EVERY = 20
"""Steps between reads of the training loss. Each read is a host synchronisation; a NaN between reads is
still caught at the next one because the loss is accumulated (NaN and inf are absorbing under addition)."""

_EVAL_BATCH = 1024  # evaluation keeps no activations for backward, so it can use big batches
# onecycle follows torch's OneCycleLR defaults: a ramp over 30% of the steps, starting at the peak lr / 25.
_ONECYCLE_WARMUP = 0.3
_ONECYCLE_START = 1 / 25
_REASON_LIMIT = 1000  # characters of an exception message kept in a record


# --------------------------------------------------------------------------------------------- config


def _device_ok(value: Any) -> bool:
    """"auto", or a device string torch parses and this machine has (asking for absent CUDA is a mistake)."""
    if value == "auto":
        return True
    if not isinstance(value, str):
        return False
    try:
        device = torch.device(value)
    except (RuntimeError, TypeError):
        return False
    if device.type != "cuda":
        return True
    return torch.cuda.is_available() and (device.index or 0) < torch.cuda.device_count()


_POSITIVE = number(0, open_low=True)
_FRACTION = number(0, 1, open_high=True)

#: Upper bounds that no sensible fitness run comes near; they turn a typo (an extra zero or three) into an
#: error instead of a run that never fits in memory. Epochs stay unbounded: a run meant to be stopped only
#: by its time limit is legitimate.
MAX_BATCH_SIZE = 1 << 20
MAX_STEPS = 10**9

_RULES: dict[str, Rule] = {
    "dataset": (one_of(data.DATASETS), f"one of {', '.join(data.DATASETS)}"),
    "model": (optional(one_of(models.MODELS)), f"None or one of {', '.join(models.MODELS)}"),
    "epochs": (_POSITIVE, "a number > 0"),
    "steps": (optional(integer(1, MAX_STEPS)), f"None or an integer in [1, {MAX_STEPS}]"),
    "batch_size": (integer(1, MAX_BATCH_SIZE), f"an integer in [1, {MAX_BATCH_SIZE}]"),
    "optimizer": (one_of(OPTIMIZERS), f"one of {', '.join(OPTIMIZERS)}"),
    "lr": (_POSITIVE, "a number > 0"),
    "momentum": (_FRACTION, "a number in [0, 1)"),
    "nesterov": BOOLEAN,
    "weight_decay": (number(0), "a number >= 0"),
    "schedule": (one_of(SCHEDULES), f"one of {', '.join(SCHEDULES)}"),
    "warmup_epochs": (number(0), "a number >= 0"),
    "label_smoothing": (_FRACTION, "a number in [0, 1)"),
    "augment": BOOLEAN,
    "early_reject_epochs": (_POSITIVE, "a number > 0"),
    "early_reject_accuracy": (optional(number(0, 1)), "None or a number in [0, 1]"),
    "timeout_s": (optional(_POSITIVE), "None or a number > 0"),
    "seed": (integer(0, MAX_SEED), "an integer in [0, 2**63 - 1]"),
    "device": (_device_ok, "'auto', 'cpu', or 'cuda[:N]' where CUDA is available"),
    "amp": BOOLEAN,
    "channels_last": BOOLEAN,
    "data_dir": (optional(is_text), "None or a folder path"),
    "val_fraction": (number(0, 1, open_low=True, open_high=True), "a number in (0, 1)"),
    "param_lr": (optional(number(0)), "None or a number >= 0"),
    "param_wd": (optional(number(0)), "None or a number >= 0"),
    "model_options": (lambda v: isinstance(v, dict), "a table of model settings, e.g. {hidden = [256, 128]}"),
    "image_size": (integer(1, 4096), "an integer in [1, 4096] (pixels; dataset 'folder')"),
    "target": (optional(lambda v: is_text(v) and bool(v)), "None or a column name (dataset 'csv')"),
    "kernels": (lambda v: v in KERNELS, f"one of {', '.join(KERNELS)}"),
    "cuda_graphs": BOOLEAN,
}


@dataclass
class TrainConfig:
    """Everything that defines one fitness run; the defaults suit the offline ``digits`` dataset.

    Budget: ``epochs`` may be fractional (0.5 trains half the batches of one epoch); ``steps``, when set,
    overrides it. The learning-rate ``schedule`` is stepped per batch: ``constant``, ``cosine`` (to zero),
    ``onecycle`` (linear ramp from lr/25 over 30% of the steps, then cosine; momentum is not cycled) or
    ``warmup`` (linear ramp over ``warmup_epochs``, then cosine).

    Weight decay applies to weight matrices and kernels only: biases, normalisation parameters and the
    activation's own parameters are shape parameters that decay would pull towards zero, changing the
    function rather than regularising it. Activation parameters form their own optimizer group with
    ``param_lr`` (None: ``lr``) and ``param_wd`` (None: 0); ``param_lr=0`` freezes them.

    ``augment`` applies the dataset's default augmentation (:func:`afos.data.default_augment`); it is off
    by default because a short fitness run is limited by how fast it fits, not by overfitting (on digits,
    10 epochs reach ~95% validation accuracy without it, ~82% with it). ``amp``
    (bf16 autocast) and ``channels_last`` take effect on CUDA only; the CPU trains in float32.
    ``image_size`` (the side images of dataset ``folder`` are fitted to) and ``target`` (the class column of
    dataset ``csv``) apply to the user's own data only; there ``data_dir`` is the data itself.
    Early rejection (off while ``early_reject_accuracy`` is None) stops a run whose validation accuracy
    after ``early_reject_epochs`` is below ``early_reject_accuracy``.

    ``kernels`` picks how candidate activations compute (:data:`afos.compile.KERNEL_PATHS`, or ``model``:
    the whole network compiled, the activations in it in their fused form): ``auto`` compiles the
    activations' kernels on CUDA always; on the CPU it compiles the network for runs of at least
    :data:`CPU_MODEL_MIN_STEPS` steps, the kernels for runs of at least :data:`CPU_COMPILE_MIN_STEPS`, and
    else runs the eager chain. It changes speed, not the function, so it is not part of the protocol.
    ``cuda_graphs`` (CUDA only, like ``amp``) records the model's forward and backward of a training batch
    once as CUDA graphs and replays them every step, so a small network stops paying one kernel launch per
    op (:class:`Learner`); it is not part of the protocol either.
    """

    dataset: str = "digits"
    model: str | None = None
    epochs: float = 10.0
    steps: int | None = None
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.0
    augment: bool = False
    early_reject_epochs: float = 1.0
    early_reject_accuracy: float | None = None
    timeout_s: float | None = None
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    channels_last: bool = True
    data_dir: str | None = None
    val_fraction: float = 0.1
    param_lr: float | None = None
    param_wd: float | None = None
    model_options: dict[str, Any] = field(default_factory=dict)
    image_size: int = 32
    target: str | None = None
    kernels: str = "auto"
    cuda_graphs: bool = False

    def __post_init__(self) -> None:
        # Paths arrive from the CLI as pathlib objects; records and TOML files want plain strings.
        if isinstance(self.data_dir, os.PathLike):
            self.data_dir = os.fspath(self.data_dir)

    def validate(self) -> TrainConfig:
        """Raise ConfigError naming the first invalid key and its value; return self for chaining."""
        check_rules(self, _RULES, "train config")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        """Build and validate a config from e.g. a TOML table; unknown keys are an error, not ignored."""
        if not isinstance(values, Mapping):
            raise ConfigError(f"train config must be a table of settings ([train] in TOML), got {values!r}")
        check_keys(cls, values, "train config")
        return cls(**values).validate()


def resolve_device(name: str) -> torch.device:
    """``"auto"`` means CUDA when present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


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
    :class:`afos.compile.Activation`), ``compile_seconds`` the compilation and CUDA graph capture this run
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


def macro_f1(confusion: torch.Tensor) -> torch.Tensor:
    """Unweighted mean of the per-class F1 scores of a confusion matrix (rows: true class, columns: predicted).

    As scikit-learn's ``f1_score(average="macro")``: a class neither present nor predicted is left out, a
    class present but never predicted correctly scores 0.
    """
    hits = confusion.diagonal()
    denominator = confusion.sum(0) + confusion.sum(1)  # 2 tp + fp + fn
    seen = denominator > 0
    return (2 * hits[seen] / denominator[seen]).mean()


# ----------------------------------------------------------------------------------- optimisation


def build_optimizer(model: nn.Module, config: TrainConfig, sites: list[nn.Module]) -> torch.optim.Optimizer:
    """The configured optimizer over three parameter groups: decayed weights, undecayed biases and
    normalisation parameters, and the activation sites' own parameters (their own lr and decay)."""
    own = {id(p): p for site in sites for p in site.parameters()}
    rest = [p for p in model.parameters() if id(p) not in own]
    groups = [
        {"params": [p for p in rest if p.ndim >= 2], "weight_decay": config.weight_decay},
        {"params": [p for p in rest if p.ndim < 2], "weight_decay": 0.0},
        {
            "params": list(own.values()),
            "weight_decay": config.param_wd or 0.0,
            "lr": config.lr if config.param_lr is None else config.param_lr,
        },
    ]
    groups = [g for g in groups if g["params"]]
    if config.optimizer == "sgd":
        nesterov = config.nesterov and config.momentum > 0  # torch refuses nesterov without momentum
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=nesterov)
    optimizer_class = {
        "adam": torch.optim.Adam,
        "adamw": torch.optim.AdamW,
        "adagrad": torch.optim.Adagrad,
        "adadelta": torch.optim.Adadelta,
    }[config.optimizer]
    return optimizer_class(groups, lr=config.lr)


def lr_factor(schedule: str, step: int, total: int, warmup: int) -> float:
    """Multiplier of each group's base lr at (0-based) optimizer step ``step`` of ``total``.

    ``warmup`` is the ramp length for the ``warmup`` schedule; ``onecycle`` fixes its own (30%).
    """
    if schedule == "constant":
        return 1.0
    start = 0.0
    if schedule == "onecycle":
        warmup, start = max(1, round(_ONECYCLE_WARMUP * total)), _ONECYCLE_START
    elif schedule == "cosine":
        warmup = 0
    if step < warmup:
        return start + (1.0 - start) * (step + 1) / warmup
    return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def _on_cuda(flag: bool, device: torch.device) -> bool:
    """bf16 autocast and channels_last pay off on CUDA only; elsewhere training stays float32, contiguous."""
    return flag and device.type == "cuda"


def _call_network(x: torch.Tensor, *, network: nn.Module) -> torch.Tensor:
    """What a compiled network's training step calls, on a code object of its own per network (own_code)."""
    return network(x)


class Learner:
    """A model with its optimizer, schedule and precision policy: one training step, one evaluation.

    Shared by :func:`run_fitness` and the step-time benchmark so that what is timed is what is trained.

    With ``compile_model`` the training steps run ``torch.compile`` of the whole network (kernels setting
    ``model``): one graph, in which inductor fuses each activation's fused form with the BatchNorm and
    additions around it, so no activation pays a call of its own. Static shapes suffice, since the train
    loader drops the last partial batch; evaluation runs the uncompiled network, which would otherwise
    compile a second time for eval mode and the last batch's shape.

    With ``cuda_graphs`` on CUDA a compiled network is compiled with ``mode="reduce-overhead"`` (torch's
    own CUDA graphs); otherwise the first step captures the model's forward and backward for that batch
    shape (``torch.cuda.make_graphed_callables``) and every step replays them; the loss and the optimizer
    step stay eager. The capture's warm-up passes would move BatchNorm's running statistics, so the model's
    state is put back before the first real step: graphed and ungraphed runs train the same function from
    the same start. A network that does not compile, or a capture that fails, trains as it is, with the
    reason in :attr:`note`; neither ever fails the candidate.
    """

    def __init__(
        self,
        model: nn.Module,
        config: TrainConfig,
        sites: list[nn.Module],
        *,
        device: torch.device,
        total_steps: int,
        warmup_steps: int,
        compile_model: bool = False,
    ) -> None:
        self.device = device
        self.amp = _on_cuda(config.amp, device)
        self.channels_last = _on_cuda(config.channels_last, device)
        memory_format = torch.channels_last if self.channels_last else torch.preserve_format
        self.model = model.to(device, memory_format=memory_format)  # type: ignore[call-overload]  # 4-d weights only
        self.optimizer = build_optimizer(model, config, sites)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: lr_factor(config.schedule, step, total_steps, warmup_steps)
        )
        self.label_smoothing = config.label_smoothing
        graphs = _on_cuda(config.cuda_graphs, device)
        self.graphs_pending = graphs and not compile_model  # a compiled model is graphed by torch.compile
        self.compile_pending = compile_model
        self.compile_mode = "reduce-overhead" if graphs else "default"
        self.train_model: Callable[[torch.Tensor], torch.Tensor] = self.model  # training calls it; evaluation self.model
        self.graphed = False
        self.setup_seconds = 0.0  # model compilation or graph capture, less the kernel compilation inside it
        self.activations = list({id(s): s for s in sites if isinstance(s, Activation)}.values())
        self.note = ""  # why the model is not compiled or graphed although the config asked for it

    def _autocast(self) -> torch.autocast:
        # Autocast's weight-cast cache cannot live inside a captured graph; without graphs it saves casts.
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp, cache_enabled=not self.graphed)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One optimizer step; returns the batch loss as a device tensor (reading it is the caller's sync)."""
        if self.graphs_pending:
            self._capture(x)
        if self.compile_pending:
            return self._first_compiled_step(x, y)
        return self._step(self.train_model, x, y)

    def _step(self, model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with self._autocast():
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y, label_smoothing=self.label_smoothing)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        return loss.detach()

    def _first_compiled_step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The first step through ``torch.compile`` of the whole model (static shapes: every training batch has
        this one's), which compiles it; a model that does not compile trains uncompiled, with a note."""
        self.compile_pending = False
        start = self._clock()
        call = own_code(_call_network, f"afos_network_{id(self):x}", network=self.model)
        self.train_model = torch.compile(call, mode=self.compile_mode, dynamic=False)
        try:
            loss = self._step(self.train_model, x, y)
        except Exception as exc:  # noqa: BLE001 - a model that does not compile still trains, uncompiled
            if _is_oom(exc):
                raise
            self.train_model = self.model
            self.note = f"the model did not compile ({type(exc).__name__}: {str(exc)[:120]}); it trained uncompiled"
            loss = self._step(self.model, x, y)
        else:
            self.graphed = self.compile_mode == "reduce-overhead"
        self.setup_seconds = self._clock() - start
        return loss

    def _clock(self) -> float:
        """Seconds, less the kernel compilation the activations count themselves, after the device is idle."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - sum(a.compile_seconds for a in self.activations)

    def _capture(self, x: torch.Tensor) -> None:
        """Replace the model's training forward and backward by CUDA graphs recorded on a batch like ``x``."""
        self.graphs_pending = False
        start = self._clock()
        state = {name: value.clone() for name, value in self.model.state_dict().items()}
        self.graphed = True  # the capture runs under the autocast the steps will use
        try:
            with self._autocast():
                torch.cuda.make_graphed_callables(self.model, (x.detach().clone(),), allow_unused_input=True)
        except Exception as exc:  # noqa: BLE001 - a model that cannot be captured still trains, uncaptured
            self.graphed = False
            self.note = f"CUDA graph capture failed ({type(exc).__name__}: {str(exc)[:120]}); steps ran uncaptured"
        with torch.no_grad():  # in place: the graphs hold these very tensors
            for name, value in self.model.state_dict().items():
                value.copy_(state[name])
        self.setup_seconds = self._clock() - start

    @torch.no_grad()  # not inference_mode: a module caching a tensor here must still be usable in training
    def evaluate(self, loader: data.DeviceLoader) -> tuple[float, float, float]:
        """(mean cross-entropy without label smoothing, accuracy, macro-F1), read from the device once.

        A confusion matrix is accumulated on the device, so F1 costs one bincount per batch and no host
        round trip; accuracy is its trace.
        """
        self.model.eval()
        loss = torch.zeros((), device=self.device)
        confusion: torch.Tensor | None = None
        for x, y in loader:
            with self._autocast():
                logits = self.model(x).float()
            loss += F.cross_entropy(logits, y, reduction="sum")
            classes = logits.shape[1]
            counts = torch.bincount(y * classes + logits.argmax(1), minlength=classes * classes)
            confusion = counts if confusion is None else confusion + counts
        self.model.train()
        assert confusion is not None  # DeviceLoader refuses to be empty
        confusion = confusion.view(classes, classes).double()
        count = confusion.sum()
        total_loss, accuracy, f1 = torch.stack([loss.double() / count, confusion.trace() / count,
                                                macro_f1(confusion)]).tolist()
        return total_loss, accuracy, f1


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
    train: data.DeviceLoader
    val: data.DeviceLoader
    test: data.DeviceLoader


def _make_loaders(dataset: data.Dataset, config: TrainConfig, device: torch.device, channels_last: bool) -> _Loaders:
    crop, flip = data.default_augment(dataset.name) if config.augment else (False, False)

    def loader(x: torch.Tensor, y: torch.Tensor, *, train: bool) -> data.DeviceLoader:
        return data.DeviceLoader(
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


def check_validation_split(dataset: data.Dataset, config: TrainConfig) -> None:
    """Raise :class:`ConfigError` when the validation split is too small to rank candidates by."""
    held_out, total = len(dataset.val_y), len(dataset.val_y) + len(dataset.train_y)
    floor = max(dataset.num_classes, min(MIN_VAL_EXAMPLES, total // 10))
    if held_out < floor:
        raise ConfigError(f"train config: val_fraction={config.val_fraction!r} leaves {held_out} validation "
                          f"example(s) of {dataset.name}; fitness needs at least {floor}: raise val_fraction")


def build_network(config: TrainConfig, dataset: data.Dataset, activation: ActivationFactory) -> nn.Module:
    """The configured model for ``dataset`` with ``activation()`` at every site; a model without any
    activation site is a :class:`ConfigError`, since every candidate would score the same in it."""
    name = config.model or models.default_model(dataset.name)
    model = models.build_model(name, activation, in_channels=dataset.in_channels, num_classes=dataset.num_classes,
                               image_size=dataset.image_size, num_features=dataset.num_features,
                               **config.model_options)
    if not models.activation_sites(model):
        raise ConfigError(f"train config: model {name!r} with model_options={config.model_options!r} has no "
                          "activation site, so the activation cannot matter; give it at least one hidden layer")
    return model


def check_setup(config: TrainConfig, dataset: data.Dataset) -> None:
    """Everything about a protocol that needs its dataset, checked before anything is created or trained:
    the validation split is big enough, and the model takes the dataset and has an activation site."""
    check_validation_split(dataset, config)
    build_network(config, dataset, nn.Identity)


def _endless(loader: data.DeviceLoader) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches across epoch boundaries, so a budget of 2.5 epochs is one flat loop of steps."""
    while True:
        yield from loader


class _Run:
    """One fitness run. It writes into ``result`` as it goes, so a run stopped by any exception still
    leaves a truthful partial record, and it keeps the activation ``sites`` so that their learned
    parameters can be reported whatever the outcome."""

    def __init__(
        self, config: TrainConfig, dataset: data.Dataset, device: torch.device, progress: Progress | None
    ) -> None:
        self.config, self.dataset, self.device, self.progress = config, dataset, device, progress
        check_validation_split(dataset, config)
        self.loaders = _make_loaders(dataset, config, device, _on_cuda(config.channels_last, device))
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
        self.sites = models.activation_sites(model)
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


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    message = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in message or "not enough memory" in message)


def run_fitness(
    activation: ActivationFactory,
    config: TrainConfig,
    *,
    dataset: data.Dataset | None = None,
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
        dataset = data.load_dataset(config.dataset, config.data_dir, val_fraction=config.val_fraction, seed=config.seed,
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
            result.status = "oom" if _is_oom(exc) else "error"
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
