"""The training settings of one fitness run (:class:`TrainConfig`), checked by one rule table.

Every key a ``[train]`` table may hold is a field here, with its rule in :data:`RULES` (the config reference
in ``docs/config.md`` is generated from that table). ``kernels`` and the CPU thresholds that ``auto`` uses
are here too, because they are settings; what they do is :mod:`afos.training.learner`'s."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

import torch

from afos.activation.module import KERNEL_PATHS
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
from afos.training.data.registry import DATASETS
from afos.training.models.registry import MODELS

OPTIMIZERS: tuple[str, ...] = ("sgd", "adam", "adamw", "adagrad", "adadelta")
SCHEDULES: tuple[str, ...] = ("constant", "cosine", "onecycle", "warmup")

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


# --------------------------------------------------------------------------------------------- config


def _check_cuda(value: Any) -> None:
    """A GPU asked for on a machine without one is no typo: say what is missing and what to use instead."""
    if isinstance(value, str) and value.startswith("cuda") and not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        raise ConfigError(f"train config: device={value!r} asks for a GPU, but torch ({torch.__version__}, {build}) "
                          "sees none on this machine; use --device cpu (or auto, which takes a GPU where there is one)")


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

RULES: dict[str, Rule] = {
    "dataset": (one_of(DATASETS), f"one of {', '.join(DATASETS)}"),
    "model": (optional(one_of(MODELS)), f"None or one of {', '.join(MODELS)}"),
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


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines one fitness run (frozen: a change is a new record, ``dataclasses.replace``);
    the defaults suit the offline ``digits`` dataset.

    Budget: ``epochs`` may be fractional (0.5 trains half the batches of one epoch); ``steps``, when set,
    overrides it. The learning-rate ``schedule`` is stepped per batch: ``constant``, ``cosine`` (to zero),
    ``onecycle`` (linear ramp from lr/25 over 30% of the steps, then cosine; momentum is not cycled) or
    ``warmup`` (linear ramp over ``warmup_epochs``, then cosine).

    Weight decay applies to weight matrices and kernels only: biases, normalisation parameters and the
    activation's own parameters are shape parameters that decay would pull towards zero, changing the
    function rather than regularising it. Activation parameters form their own optimizer group with
    ``param_lr`` (None: ``lr``) and ``param_wd`` (None: 0); ``param_lr=0`` freezes them.

    ``augment`` applies the dataset's default augmentation (:func:`afos.default_augment`); it is off
    by default because a short fitness run is limited by how fast it fits, not by overfitting (on digits,
    10 epochs reach ~95% validation accuracy without it, ~82% with it). ``amp``
    (bf16 autocast) and ``channels_last`` take effect on CUDA only; the CPU trains in float32.
    ``image_size`` (the side images of dataset ``folder`` are fitted to) and ``target`` (the class column of
    dataset ``csv``) apply to the user's own data only; there ``data_dir`` is the data itself.
    Early rejection (off while ``early_reject_accuracy`` is None) stops a run whose validation accuracy
    after ``early_reject_epochs`` is below ``early_reject_accuracy``.

    ``kernels`` picks how candidate activations compute (:data:`afos.activation.module.KERNEL_PATHS`, or ``model``:
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
            object.__setattr__(self, "data_dir", os.fspath(self.data_dir))  # frozen: set once, here

    def validate(self) -> TrainConfig:
        """Raise ConfigError naming the first invalid key and its value; return self for chaining."""
        _check_cuda(self.device)
        check_rules(self, RULES, "train config")
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
