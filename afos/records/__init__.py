"""Typed records: what crosses modules, processes and the run database, at the bottom of the layering.

Plain data and the standard library only, so that reading a run database (``afos runs``, ``afos report``)
never imports torch or sympy, and every layer above may use them.

* :mod:`~afos.records.json`: the one JSON normaliser (:func:`~afos.records.json.plain`) and the stable hash
  of a value;
* :mod:`~afos.records.evaluation`: one training run, its outcome (:class:`~afos.records.evaluation.FitnessResult`)
  and its stored record (:class:`~afos.records.evaluation.Evaluation`), and their vocabularies;
* :mod:`~afos.records.search`: what a search saves per generation (statistics, population, hall of fame);
* :mod:`~afos.records.runs`: run kinds and statuses, roles and verdicts, the ``afos runs`` summary.
"""
