"""Training: the protocol a candidate is measured under and the one short run that measures it.

Owns :class:`~afos.training.config.TrainConfig` and its rules, the protocol identity of a config
(:mod:`afos.training.protocol`), the datasets (:mod:`afos.training.data`) and networks
(:mod:`afos.training.models`), the learner (optimizer, schedule, precision, compiled or graphed steps) and
:func:`~afos.training.fitness.run_fitness`, which trains once and returns a record.

Imports :mod:`afos.activation`, :mod:`afos.records`, :mod:`afos.config` and :mod:`afos.errors`; nothing
above it."""

from __future__ import annotations
