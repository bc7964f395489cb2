"""One optimizer step and one evaluation pass of a network: optimizer, schedule, precision, compilation.

:class:`Learner` is shared by :func:`afos.training.fitness.run_fitness` and the step-time benchmarks, so
that what is timed is what is trained. It owns the precision policy (bf16 autocast and channels_last on
CUDA only), the whole-network compile (``kernels = "model"``) and CUDA-graph replay (``cuda_graphs``)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from afos.activation.kernels import own_code
from afos.activation.module import Activation
from afos.training.config import TrainConfig
from afos.training.data.loader import DeviceLoader

# onecycle follows torch's OneCycleLR defaults: a ramp over 30% of the steps, starting at the peak lr / 25.
_ONECYCLE_WARMUP = 0.3
_ONECYCLE_START = 1 / 25

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


def on_cuda(flag: bool, device: torch.device) -> bool:
    """bf16 autocast and channels_last pay off on CUDA only; elsewhere training stays float32, contiguous."""
    return flag and device.type == "cuda"


def is_oom(exc: BaseException) -> bool:
    """Whether ``exc`` means the device (or the host) ran out of memory."""
    if isinstance(exc, (torch.cuda.OutOfMemoryError, MemoryError)):
        return True
    message = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in message or "not enough memory" in message)


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
        self.amp = on_cuda(config.amp, device)
        self.channels_last = on_cuda(config.channels_last, device)
        memory_format = torch.channels_last if self.channels_last else torch.preserve_format
        self.model = model.to(device, memory_format=memory_format)  # type: ignore[call-overload]  # 4-d weights only
        self.optimizer = build_optimizer(model, config, sites)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: lr_factor(config.schedule, step, total_steps, warmup_steps)
        )
        self.label_smoothing = config.label_smoothing
        graphs = on_cuda(config.cuda_graphs, device)
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
            if is_oom(exc):
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
    def evaluate(self, loader: DeviceLoader) -> tuple[float, float, float]:
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
