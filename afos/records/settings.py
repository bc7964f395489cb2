"""The vocabularies of afos's settings: what a search, an executor, an activation's parameters and an export
may be set to.

Why here, below everything that trains: the command line builds its choice lists from these enums, and a
reader of a stored run (``afos runs``, ``afos serve``) rebuilds settings from them, and neither may import
torch to do so. The modules that act on a setting import its vocabulary from here.
"""

from __future__ import annotations

from enum import Enum


class Strategy(str, Enum):
    """How a search makes the candidates of each generation after the first: the genetic algorithm
    (varied offspring of the population plus immigrants), every one drawn at random from the same tree
    generator (the baseline that tells what the evolution buys), or NSGA-II (offspring of parents chosen by
    Pareto rank and crowding, survivors by DEAP's ``selNSGA2``; it needs two objectives). Everything else is
    the same: generation 0, screening, de-duplication, budget, records and confirmation."""

    GA = "ga"
    RANDOM = "random"
    NSGA2 = "nsga2"


class Objective(str, Enum):
    """What a search optimises: the config's fitness measure (``accuracy``, always first) and, optionally, the
    cost of the function in ReLUs (:mod:`afos.space.cost`), minimised. With both, a search keeps the Pareto
    front of accuracy against cost instead of a hall of fame."""

    ACCURACY = "accuracy"
    COST = "cost"


class SurrogateKind(str, Enum):
    """The regressor that predicts fitness: none (the plain GA), k nearest neighbours (AQuaSurF's choice,
    k = 3, distance-weighted) or a random forest (100 trees)."""

    NONE = "none"
    KNN = "knn"
    FOREST = "forest"


class FitnessMeasure(str, Enum):
    """What a search maximises: validation accuracy, accuracy over loss (AFOS's), or macro-F1."""

    VAL_ACCURACY = "val_accuracy"
    ACCURACY_LOSS = "accuracy_loss"
    VAL_F1 = "val_f1"


class ExecutorKind(str, Enum):
    """Where training runs happen (``--executor``)."""

    SERIAL = "serial"
    PROCESS = "process"
    RAY = "ray"


class Scope(str, Enum):
    """Where learnable parameters live: one set for the network, one per activation site, one per channel."""

    SHARED = "shared"
    LAYER = "layer"
    CHANNEL = "channel"


class ExportFormat(str, Enum):
    """What ``afos export --format`` writes."""

    TORCH = "torch"
    NUMPY = "numpy"
    LATEX = "latex"
    SYMPY = "sympy"
