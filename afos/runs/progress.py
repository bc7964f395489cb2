"""Progress of a run as it goes: lines in the run's log, on the terminal a bar, elsewhere plain lines."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from afos.evaluation import RunDatabase
from afos.grid.spec import Spec
from afos.records import Evaluation, Origin
from afos.reporting.tables import format_duration, format_number
from afos.search.config import SearchConfig, expected_runs

Progress = Callable[[str], None]

class SearchLog:
    """Where a search reports: timestamped lines in ``search.log`` always; on a terminal a tqdm progress bar
    over the expected training runs with the lines above it; elsewhere (a log file, CI) plain lines, each
    record line with ``run i/n`` and an ETA.

    The expected total (every generation's new candidates on every task and fitness seed, the halving
    rungs, the baseline and the confirmation) is an estimate: duplicates accepted from the refill, a budget
    or a time limit change it.
    """

    def __init__(self, run_dir: Path, config: SearchConfig, echo: Progress | None, *, done: int = 0,
                 on_record: Callable[[Evaluation], None] | None = None) -> None:
        self.path = Path(run_dir) / "search.log"
        self.echo, self.on_record = echo, on_record
        self.total = max(done, expected_runs(config))
        self.done = done
        self.started, self.at_start = time.monotonic(), done
        self.bar = None
        if echo is not None and sys.stderr.isatty():
            self.bar = tqdm(total=self.total, initial=done, unit="run", file=sys.stderr, dynamic_ncols=True,
                            desc="afos search")

    def __call__(self, message: str) -> None:
        with self.path.open("a") as handle:
            handle.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")
        if self.bar is not None:
            self.bar.write(message, file=sys.stderr)
        elif self.echo is not None:
            self.echo(message)

    def record(self, record: Evaluation) -> None:
        """One line per record the evaluator adds, one step of the bar, then ``on_record`` (e.g. TensorBoard)."""
        self.done += 1
        self.total = max(self.total, self.done)
        if self.bar is not None:
            self.bar.total = self.total
            self.bar.update(1)
        self(f"  run {self.done}/{self.total} {self._eta()} " + describe(record))
        if self.on_record is not None:
            self.on_record(record)

    def _eta(self) -> str:
        rate = (time.monotonic() - self.started) / max(1, self.done - self.at_start)
        return f"ETA {format_duration(rate * (self.total - self.done))}"

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class GridProgress:
    """One progress line per record a grid adds (``run i/n``, status, accuracy, ETA), then ``on_record``."""

    def __init__(self, spec: Spec, store: RunDatabase, say: Progress,
                 on_record: Callable[[Evaluation], None] | None = None) -> None:
        self.names = {f.fingerprint: f for f in spec.functions}
        self.todo = sum(1 for seed, task, fn in spec.runs() if store.find_evaluation(spec.key(fn, task, seed)) is None)
        self.say, self.on_record = say, on_record
        self.done, self.started = 0, time.monotonic()

    def __call__(self, record: Evaluation) -> None:
        self.done += 1
        function = self.names[record.activation_key]
        eta = (time.monotonic() - self.started) / self.done * max(0, self.todo - self.done)
        where = f"reused from {record.source}" if record.origin is Origin.REUSED else f"{record.seconds:.1f}s"
        self.say(f"run {self.done}/{self.todo}  {function.name}  {record.task}  seed {record.seed}  "
                 f"{record.status.value}  val_acc {format_number(record.val_accuracy)}  {where}  ETA {format_duration(eta)}")
        if self.on_record is not None:
            self.on_record(record)


def describe(evaluation: Evaluation) -> str:
    """One progress line for a record: status, validation accuracy, time, where it came from."""
    accuracy = evaluation.val_accuracy
    shown = "-" if accuracy is None else f"{accuracy:.4f}"
    where = f"reused from {evaluation.source}" if evaluation.origin is Origin.REUSED else f"{evaluation.seconds:.1f}s"
    return (f"{evaluation.status.value:<8} val_acc {shown}  {where}  "
            f"[{evaluation.task} seed {evaluation.seed} {evaluation.budget:g} ep]  {evaluation.expression}")
