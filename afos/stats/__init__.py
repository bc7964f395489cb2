"""Statistics for comparing activation functions over many cases (pure numpy/scipy).

A *case* is one (dataset, model) pair; a *result matrix* has one row per case and one column per activation
function, each cell the mean accuracy over seeds (higher is better) or NaN when the run failed.

The procedure follows Demšar (2006), "Statistical Comparisons of Classifiers over Multiple Data Sets", JMLR 7:
rank the functions within every case, test the average ranks with the Friedman test (and its Iman-Davenport
F form), then either compare all pairs with the Nemenyi critical difference, or compare candidates against
baselines with Wilcoxon signed-rank tests under a Holm correction. Per-case win counts (the AFOS paper's
"better in 26 of 28 cases") are provided as a *description*; the inferential claims come from the tests above.

Failure policy, used everywhere: a failed run (NaN) is the worst possible outcome in its case. Dropping such
cells instead would silently favour a function that crashes exactly where it would have done badly. A case in
which every compared function failed carries no information about their order and is left out.

Modules: :mod:`~afos.stats.common` (the result matrix, finite means, JSON-ready results),
:mod:`~afos.stats.ranks` (ranks, Friedman, Nemenyi) and :mod:`~afos.stats.pairwise` (Holm, Wilcoxon,
per-case significance, wins). Imports numpy, scipy and :mod:`afos.records` (for the JSON form of results)."""

from __future__ import annotations
