"""Storage: the SQLite run database of every run (``afos.db``), the other runs beside it, and liveness.

* :mod:`~afos.storage.database`: one SQLite file, opened for the filesystem it lies on, with transactions;
* :mod:`~afos.storage.store`: :class:`~afos.storage.store.RunStore`, one run's database, the system of record;
* :mod:`~afos.storage.schema`: its tables, their migration and the row <-> record mapping;
* :mod:`~afos.storage.siblings`: finished records of the other runs under one results root (the cache the
  evaluation layer copies from);
* :mod:`~afos.storage.liveness`: whether the process working on a run is still alive (``run.json``);
* :mod:`~afos.storage.filesystems`: whether a path lies on a network filesystem;
* :mod:`~afos.storage.atomic`: files replaced whole, so a reader never sees half of one.

Imports :mod:`afos.records` and :mod:`afos.errors` only: reading a run never imports torch."""

from __future__ import annotations
