"""What a grid trains: functions x tasks x seeds under one training configuration (:class:`Spec`).

Every function is parsed and every task checked when the spec is built, before anything trains, so a typo
cannot cost a grid; the spec is stored with the grid, so reading it back never depends on the training
defaults of a later afos version."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from afos.activation.spec import ActivationSpec, resolve_activation
from afos.config import did_you_mean, load_config, with_overrides
from afos.errors import ConfigError, UserError
from afos.evaluation import EvalRequest
from afos.records.evaluation import EvalKey, Evaluation, Phase
from afos.records.runs import Role, RunKind
from afos.space.display import display_form
from afos.space.families import FAMILIES
from afos.space.parse import parse
from afos.training.config import TrainConfig
from afos.training.data.registry import DATASETS, default_model
from afos.training.protocol import protocol_id, resolve_train, split_task

#: Epochs per run unless the user or a config file says otherwise. On digits the cosine schedule has
#: converged by then (about 97% validation accuracy), so more epochs would cost time without changing ranks.
DEFAULT_EPOCHS = 30.0
DEFAULT_SEEDS = 3
DEFAULT_BASELINES = ("relu", "silu", "gelu", "mish")
ALPHA = 0.05
#: The metric of the results matrix and every test; see the module docstring for why it is test accuracy.
METRIC = "test_accuracy"



@dataclass(frozen=True)
class Function:
    """A function of the grid: the text the user wrote (its label everywhere), its canonical form, its
    activation key (``fingerprint``, the name stored since afos began), its role and what is trained."""

    name: str
    canonical: str
    fingerprint: str
    role: Role
    activation: ActivationSpec

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "canonical": self.canonical, "fingerprint": self.fingerprint,
                "role": self.role.value, "activation": self.activation.to_dict()}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Function:
        activation = values.get("activation") or {"expression": values["canonical"]}
        return cls(str(values["name"]), str(values["canonical"]), str(values["fingerprint"]), Role(values["role"]),
                   ActivationSpec.from_dict(activation))


@dataclass(frozen=True)
class Run:
    """One stored training run of the grid."""

    function: Function
    task: str
    seed: int
    record: Evaluation

# ------------------------------------------------------------------------------------------ the spec


def resolve_functions(
    candidates: Sequence[str], baselines: Sequence[str] = (), *, learnable: Mapping[str, Any] | None = None,
    fixed: Mapping[str, float] | None = None, scope: str | None = None,
) -> tuple[list[Function], list[str]]:
    """Parse and fingerprint every function before anything trains, so a typo cannot cost a grid.

    ``learnable``/``fixed`` parameter settings apply to the candidates whose expression uses those
    names (each name must occur in at least one); family names (``mila``, ``adaptive_tanh``, …) resolve
    to their parametric forms. Texts denoting one function (``silu`` and ``swish``) are trained once: the
    first text names it, and it is a baseline if any of its texts was listed as one. Returns the functions
    and notes saying what was merged.
    """
    specs = [(text, Role.CANDIDATE, _candidate_spec(text, learnable or {}, fixed or {}, scope)) for text in candidates]
    specs += [(text, Role.BASELINE, resolve_activation(text)) for text in baselines]
    used = {name for _, _, spec in specs for name in (*spec.learnable, *spec.fixed)}
    unused = sorted((set(learnable or {}) | set(fixed or {})) - used)
    if unused:
        raise UserError(f"parameter(s) {', '.join(unused)} occur in none of the expressions")
    merged: dict[str, Function] = {}
    notes = []
    for text, role, spec in specs:
        key = spec.key()
        first = merged.get(key)
        if first is None:
            shown = display_form(spec.expression, fixed=spec.fixed, learnable=spec.learnable)
            merged[key] = Function(text, shown, key, role, spec)
            continue
        if text == first.name:
            notes.append(f"{text!r} is listed as a candidate and as a baseline; it is evaluated once, as a baseline")
        else:
            notes.append(f"{text!r} is the same function as {first.name!r}; it is evaluated once, as {first.name!r}")
        if role is Role.BASELINE:
            merged[key] = replace(first, role=Role.BASELINE)
    return list(merged.values()), notes


def _candidate_spec(text: str, learnable: Mapping[str, Any], fixed: Mapping[str, float],
                    scope: str | None) -> ActivationSpec:
    """A candidate's spec with the parameter settings that concern it (names its expression uses)."""
    family = FAMILIES.get(text.strip().lower())
    expression = family.expression if family else text
    declared = [*learnable, *fixed, *(family.learnable if family else ()), *(family.fixed if family else ())]
    names = {str(s) for s in parse(expression, params=declared).free_symbols} - {"x"}
    return resolve_activation(text, {k: v for k, v in learnable.items() if k in names},
                              {k: v for k, v in fixed.items() if k in names}, scope)


def _model_name(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def _check_dataset(name: str) -> None:
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; {did_you_mean(name, DATASETS)}choose one of {', '.join(DATASETS)}")


def make_tasks(datasets: Sequence[str], model_names: Sequence[str] = (), extra: Sequence[str] = ()) -> list[str]:
    """Every dataset with every model (each dataset's default model when none is named), then ``extra``.

    Names are normalised the way users type them (``CIFAR10``, ``small-cnn``); duplicates are dropped.
    """
    names = [d.strip().lower() for d in datasets]
    for name in names:
        _check_dataset(name)  # before default_model, whose error would not list the datasets
    chosen = [_model_name(m) for m in model_names]
    tasks = [f"{d}/{m or default_model(d)}" for d in names for m in (chosen or [""])]
    tasks += [f"{d.strip().lower()}/{_model_name(m)}" for d, _, m in (t.partition("/") for t in extra)]
    for task in tasks:
        split_task(task)
    return list(dict.fromkeys(tasks))


def train_config(config_path: str | Path | None, overrides: Mapping[str, Any]) -> TrainConfig:
    """The training settings: ``overrides`` (None = not given) over the file's ``[train]`` table over
    :data:`DEFAULT_EPOCHS` and the :class:`TrainConfig` defaults.

    A search config may be passed as is to evaluate under the search's protocol; its search keys are ignored.
    The budget is counted in epochs because it is part of each run's identity in the database.
    """
    values = with_overrides({"epochs": DEFAULT_EPOCHS, **load_config(config_path).get("train", {})}, overrides)
    config = TrainConfig.from_dict(values)
    if config.steps is not None:
        raise ConfigError("evaluate/compare budgets are in epochs; remove `steps` from the [train] table")
    return config


def spec_from_options(kind: RunKind | str, candidates: Sequence[str], baselines: Sequence[str], *,
                      datasets: Sequence[str] = (), model_names: Sequence[str] = (), tasks: Sequence[str] = (),
                      seeds: int | None = None, config_path: str | Path | None = None,
                      overrides: Mapping[str, Any] | None = None,
                      parameters: Mapping[str, Any] | None = None) -> Spec:
    """The grid that command-line options describe.

    Tasks are ``datasets`` x ``model_names`` plus ``tasks``; with none of them the config file's
    ``[train]`` dataset and model are used (else digits with its default model). A config's model is not
    applied to datasets named on the command line, where each dataset's default model is the better guess.
    ``parameters`` (``learnable``, ``fixed``, ``scope``) go to :func:`resolve_functions`.
    """
    train = train_config(config_path, overrides or {})
    if not datasets and not tasks:
        datasets, model_names = [train.dataset], model_names or ([train.model] if train.model else [])
    grid_tasks = make_tasks(datasets, model_names, tasks)
    return Spec.build(RunKind(kind), candidates, baselines, grid_tasks, DEFAULT_SEEDS if seeds is None else seeds, train,
                      parameters)


@dataclass(frozen=True)
class Spec:
    """What a grid trains: ``functions`` x ``tasks`` x ``seeds``, each run ``budget`` epochs.

    ``train`` holds the shared training settings (dataset, model and seed are set per run) and
    ``protocols`` each task's protocol hash; both are stored in the database with the grid, so that
    reading it back never depends on the training defaults of a later afos version.
    """

    kind: RunKind
    functions: tuple[Function, ...]
    tasks: tuple[str, ...]
    seeds: tuple[int, ...]
    budget: float
    train: TrainConfig
    protocols: dict[str, str]
    notes: tuple[str, ...] = ()

    @classmethod
    def build(cls, kind: RunKind, candidates: Sequence[str], baselines: Sequence[str], tasks: Sequence[str],
              seeds: int, train: TrainConfig, parameters: Mapping[str, Any] | None = None) -> Spec:
        """Validate everything a grid needs before it starts; raises UserError subclasses."""
        if seeds < 1:
            raise ConfigError(f"--seeds must be at least 1, got {seeds}")
        if not tasks:
            raise ConfigError("no task to run: name at least one dataset")
        functions, notes = resolve_functions(candidates, baselines, **(parameters or {}))
        protocols = {task: protocol_id(_task_config(train, task)) for task in tasks}
        return cls(RunKind(kind), tuple(functions), tuple(tasks), tuple(train.seed + i for i in range(seeds)),
                   float(train.epochs), train, protocols, tuple(notes))

    def config(self, task: str) -> TrainConfig:
        """The resolved training config of a task (budget and seed are set per request)."""
        return _task_config(self.train, task)

    def request(self, function: Function, task: str, seed: int) -> EvalRequest:
        return EvalRequest.make(function.activation, self.config(task), budget=self.budget, seed=seed,
                                label=function.canonical, phase=Phase.GRID)

    def runs(self) -> list[tuple[int, str, Function]]:
        """Seed-major order: a grid stopped half-way has every function on every task for its first seeds."""
        return [(seed, task, function) for seed in self.seeds for task in self.tasks for function in self.functions]

    def key(self, function: Function, task: str, seed: int) -> EvalKey:
        """The run database key of one run, under the protocol stored with the grid (so that reading a grid
        back never depends on how a later afos computes protocols)."""
        return EvalKey(function.fingerprint, self.protocols[task], self.budget, seed, task)

    def with_notes(self, notes: Sequence[str]) -> Spec:
        return replace(self, notes=(*self.notes, *notes))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "functions": [f.to_dict() for f in self.functions], "tasks": list(self.tasks),
                "seeds": list(self.seeds), "budget": self.budget, "train": self.train.to_dict(),
                "protocols": dict(self.protocols), "notes": list(self.notes)}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Spec:
        """A stored grid, checked like user input (a malformed one raises KeyError, TypeError or ValueError)."""
        return cls(RunKind(values["kind"]), tuple(Function.from_dict(f) for f in values["functions"]),
                   tuple(values["tasks"]), tuple(int(s) for s in values["seeds"]), float(values["budget"]),
                   TrainConfig.from_dict(values["train"]), dict(values["protocols"]), tuple(values.get("notes") or ()))


def _task_config(train: TrainConfig, task: str) -> TrainConfig:
    dataset, model = split_task(task)
    return resolve_train(replace(train, dataset=dataset, model=model).validate())
