"""Reporting: every file and table a run produces, derived from its database, and exports of functions.

* :mod:`~afos.reporting.tables`: number formats, CSV files and their columns;
* :mod:`~afos.reporting.search_report`: a search's report, CSVs, plots and terminal summary;
* :mod:`~afos.reporting.grid_report`: what ``afos evaluate`` and ``afos compare`` write and print;
* :mod:`~afos.reporting.plots`: every figure (matplotlib, Agg);
* :mod:`~afos.reporting.tensorboard`: per-run curves for TensorBoard;
* :mod:`~afos.reporting.export`: standalone code of a function, one module per format.

Reports are rebuilt at any time from a run's database alone, so a resumed run reports exactly what an
uninterrupted one would. Imports :mod:`afos.search`, :mod:`afos.grid` and below."""

from __future__ import annotations
