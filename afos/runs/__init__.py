"""Runs: the lifecycle every run kind shares (search, evaluate, compare), starting, resuming and listing them.

This is the layer between the library and the command line: it opens a run's database, the cache of the
other runs under the same results root and the evaluator, hands them to the search or the grid, keeps the
run's status true (running with a heartbeat, finished, stopped by a limit, interrupted, failed), reports
progress, and writes the reports when the work ends. Imports everything below it; only :mod:`afos.cli`
imports it."""

from __future__ import annotations
