"""Surrogate-ranked proposals: predict a proposal's fitness before training it, and train the promising.

A generation with a surrogate proposes ``pool`` times as many distinct valid candidates as it has slots,
predicts each one's fitness from the feature vector of its shape (:mod:`afos.space.features`) with a
scikit-learn regressor fitted on **this run's own** finished evaluations (full-budget fitness, never test
accuracy, never another run's records), and trains the best predicted, keeping an ``explore`` share drawn
at random from the rest of the pool. Until :data:`MIN_RECORDS` functions have a fitness it proposes as the
plain GA does. Everything it decides depends on the run's records and the search's random state only, so a
surrogate search is deterministic given config and seed, resumes to the same proposals, and is identical
on every executor.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from afos.records.settings import SurrogateKind
from afos.search.proposals import Candidate, Ranker
from afos.space.features import features

#: Functions with a fitness before the surrogate ranks anything: fewer says nothing a neighbour would not.
MIN_RECORDS = 8




class Surrogate:
    """Ranks pools of proposals by predicted fitness; features are computed once per function text."""

    def __init__(self, kind: SurrogateKind, seed: int) -> None:
        self.kind, self.seed = kind, seed
        self.vectors: dict[str, np.ndarray] = {}

    def vector(self, text: str) -> np.ndarray:
        if text not in self.vectors:
            self.vectors[text] = features(text)
        return self.vectors[text]

    def predict(self, known: Mapping[str, float], pool: Sequence[str], generation: int) -> list[float] | None:
        """Predicted fitness of each text of ``pool`` from ``known`` (canonical text -> fitness); None while
        fewer than :data:`MIN_RECORDS` are known."""
        if len(known) < MIN_RECORDS or not pool:
            return None
        texts = sorted(known)
        model = self._model(generation)
        model.fit(np.stack([self.vector(t) for t in texts]), np.array([known[t] for t in texts]))
        return [float(v) for v in model.predict(np.stack([self.vector(t) for t in pool]))]

    def ranker(self, known: Mapping[str, float], generation: int, explore: float) -> Ranker:
        """What picks a generation's candidates from its pool: the best predicted, then the ``explore``
        share at random; each chosen candidate carries its prediction."""

        def rank(pool: list[Candidate], slots: int) -> list[Candidate]:
            predicted = self.predict(known, [c.text for c in pool], generation)
            if predicted is None:
                return pool[:slots]
            return [replace(pool[i], predicted=predicted[i]) for i in choose(predicted, slots, explore)]

        return rank

    def _model(self, generation: int) -> Any:
        if self.kind is SurrogateKind.KNN:
            from sklearn.neighbors import KNeighborsRegressor

            return KNeighborsRegressor(n_neighbors=3, weights="distance")
        from sklearn.ensemble import RandomForestRegressor

        return RandomForestRegressor(n_estimators=100, random_state=self.seed + generation, n_jobs=1)


def choose(predicted: Sequence[float], slots: int, explore: float) -> list[int]:
    """Indices of the pool to train: the best ``slots - round(explore * slots)`` by prediction (ties by
    pool order), then the exploration share drawn at random (Python's ``random``, the search's state) from
    the rest."""
    order = sorted(range(len(predicted)), key=lambda i: (-predicted[i], i))
    exploit = min(len(order), slots - min(slots, round(explore * slots)))
    chosen, rest = order[:exploit], order[exploit:]
    chosen += random.sample(rest, min(len(rest), slots - exploit))
    return chosen


def rank_correlation(pairs: Sequence[tuple[float, float]]) -> float | None:
    """Spearman's rho between predicted and obtained fitness (None for fewer than 3 pairs or no spread)."""
    if len(pairs) < 3:
        return None
    from scipy.stats import spearmanr

    rho = float(spearmanr([p for p, _ in pairs], [o for _, o in pairs]).statistic)
    return None if math.isnan(rho) else rho
