"""The protocol: which training settings make two numbers comparable, and its identity (:func:`protocol_id`).

The identity of a stored result is its activation's key, the protocol, the budget, the seed and the task;
the protocol is a hash of every setting that changes what a number means, derived here and nowhere else,
so a search, ``afos evaluate`` and ``afos compare`` find each other's records exactly when they measured the
same thing."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import torch

from afos import __version__
from afos.config import did_you_mean
from afos.errors import ConfigError
from afos.records.json import stable_hash
from afos.training.config import TrainConfig, resolve_device
from afos.training.data.registry import DATASETS, OWN_DATASETS, default_model, load_dataset
from afos.training.fitness import check_setup
from afos.training.models.registry import MODELS

#: Training settings that do not change what a number means: the budget and seed (part of the key
#: beside the protocol), where the work runs, the soft time limit, and the kernel path (fused, compiled or
#: eager kernels compute the same values and gradients, up to float rounding). Device *precision* does
#: change it and enters the protocol through :func:`protocol_settings`.
NOT_PROTOCOL = ("epochs", "steps", "seed", "device", "data_dir", "timeout_s", "amp", "channels_last", "kernels",
                "cuda_graphs")
#: Settings of the user's own data (``folder``, ``csv``), left out of other datasets' protocols, which
#: they do not affect.
OWN_DATA_SETTINGS = ("image_size", "target")


# ------------------------------------------------------------------------------------- the protocol


def split_task(task: str) -> tuple[str, str]:
    """``"digits/mlp"`` -> ``("digits", "mlp")``, checking both names."""
    dataset, _, model = task.partition("/")
    if dataset not in DATASETS:
        raise ConfigError(f"task {task!r}: unknown dataset {dataset!r}; {did_you_mean(dataset, DATASETS)}"
                          f"choose one of {', '.join(DATASETS)}")
    if model not in MODELS:
        raise ConfigError(f"task {task!r}: unknown model {model!r}; {did_you_mean(model, MODELS)}"
                          f"choose one of {', '.join(MODELS)}")
    return dataset, model


def check_tasks(configs: Iterable[TrainConfig]) -> None:
    """Load each dataset and build each model once before anything is created or trained, so that a
    missing dataset or a model that cannot take its dataset stops a command at once, leaving nothing
    behind, instead of hours into it."""
    unique = {(c.dataset, c.model, c.data_dir, c.val_fraction, c.seed, c.image_size, c.target): resolve_train(c)
              for c in configs}
    for config in unique.values():
        check_setup(config, load_dataset(config.dataset, config.data_dir, val_fraction=config.val_fraction,
                                              seed=config.seed, image_size=config.image_size, target=config.target))


def resolve_train(train: TrainConfig) -> TrainConfig:
    """The config as it will actually run: the dataset's default model filled in when none is named."""
    return train if train.model else replace(train, model=default_model(train.dataset))


def protocol_settings(train: TrainConfig) -> dict[str, Any]:
    """Everything that makes two training runs comparable, from the *resolved* config.

    The effective numerics replace the flags that ask for them (bf16 autocast and channels_last act on
    CUDA only), and the afos version and torch major.minor are included: a result is reused as a fact
    only where it would come out the same.
    """
    resolved = resolve_train(train)
    settings = {k: v for k, v in resolved.to_dict().items() if k not in NOT_PROTOCOL}
    if resolved.dataset in OWN_DATASETS:
        settings["data_dir"] = resolved.data_dir  # the user's own data: the path names the data itself
    else:
        for key in OWN_DATA_SETTINGS:
            settings.pop(key)
    on_cuda = resolve_device(resolved.device).type == "cuda"
    settings["precision"] = "bf16-autocast" if resolved.amp and on_cuda else "fp32"
    settings["memory_format"] = "channels_last" if resolved.channels_last and on_cuda else "contiguous"
    settings["afos"] = __version__
    settings["torch"] = ".".join(torch.__version__.split(".")[:2])
    return settings


def protocol_id(train: TrainConfig) -> str:
    """The protocol hash of a training config: the one definition search, evaluate and compare share."""
    return stable_hash(protocol_settings(train))
