"""The genetic search: configuration, trees, proposals, the generation loop, its hall of fame, confirmation.

* :mod:`~afos.search.config`: :class:`~afos.search.config.SearchConfig` and its rules, the tasks, seeds,
  budgets and baselines a config implies, and the fitness score of one run;
* :mod:`~afos.search.trees`: DEAP primitive sets, safe tree text, trees to sympy;
* :mod:`~afos.search.proposals`: the distinct, valid, new candidates of each generation;
* :mod:`~afos.search.loop`: the generation loop (its pseudocode is in :class:`~afos.search.loop.Search`);
* :mod:`~afos.search.budget`: early warnings that the training budget does not fit the machine;
* :mod:`~afos.search.confirmation`: the winners retrained on fresh seeds, with statistics;
* :mod:`~afos.search.results`: what a search's database holds, read back as typed rows.

Imports :mod:`afos.evaluation` and below; never the reports or the command line."""

from __future__ import annotations
