"""afos: discover activation functions for neural networks by genetic search, and evaluate them.

The public names below load lazily (PEP 562), so ``import afos`` and the parser stay fast and torch is
imported only when something numeric is asked for.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "parse": "afos.space.parse",
    "canonical": "afos.space.parse",
    "fingerprint": "afos.space.probe",
    "equivalent": "afos.space.probe",
    "screen": "afos.space.probe",
    "properties": "afos.space.probe",
    "Activation": "afos.activation.module",
    "ActivationSpec": "afos.activation.spec",
    "resolve_activation": "afos.activation.spec",
    "build_model": "afos.training.models.registry",
    "activation_sites": "afos.training.models.registry",
    "MODELS": "afos.training.models.registry",
    "load_dataset": "afos.training.data.registry",
    "DATASETS": "afos.training.data.registry",
    "TrainConfig": "afos.training.config",
    "FitnessResult": "afos.training.fitness",
    "run_fitness": "afos.training.fitness",
    "UserError": "afos.errors",
    "run_search": "afos.runs.api",
    "evaluate": "afos.runs.api",
    "compare": "afos.runs.api",
    "SearchResult": "afos.runs.api",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'afos' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    """The public API only (PEP 562), not this module's helpers and imports."""
    return sorted(__all__)
