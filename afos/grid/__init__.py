"""Rigorous evaluation of fixed activation functions: a grid of training runs and its statistics.

``afos evaluate`` and ``afos compare`` share one engine. A :class:`~afos.grid.spec.Spec` names the grid (functions x tasks
x seeds under one training configuration); :func:`~afos.grid.results.run_grid` trains every run of it that the run database
does not already hold, so a killed grid resumes by running the same command again; :func:`~afos.grid.results.collect` reads
the grid back from the database and :func:`~afos.grid.analysis.analyse` turns it into the across-case statistics of
:mod:`afos.stats`. Statistics are always computed from the database, never from memory, so
``afos compare --from`` reproduces them without training.

Reporting metric: cells are **test accuracy**. The functions compared here are fixed before the grid
runs, so nothing is selected on these numbers and the held-out test split is the unbiased final measure;
validation accuracy (the search's fitness, on which a searched function *was* selected and is therefore
optimistically biased) is reported alongside. A cell counts as failed when any of its seeds failed
(diverged, error, timeout, ...): an unreliable function must not be averaged over its lucky seeds only.

Modules: :mod:`~afos.grid.spec` (what a grid trains), :mod:`~afos.grid.results` (running it and reading it
back), :mod:`~afos.grid.analysis` (the statistics over its cases) and :mod:`~afos.grid.sources` (stored grids
and a search's finalists as the input of a comparison). Imports :mod:`afos.search` (to read a search's
finalists), :mod:`afos.evaluation`, :mod:`afos.storage` and below."""

from __future__ import annotations
