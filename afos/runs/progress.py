"""Progress of a run as it goes: lines in the run's log, on the terminal a bar, elsewhere plain lines.

One printer serves every run kind: notes (``generation 3/8 done ...``) and one line per record the
evaluator adds (``run 12/40 ETA 3m05s ok val_acc 0.9521 4.2s [digits/mlp seed 0 10 ep] relu``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from tqdm.auto import tqdm

from afos.records.evaluation import Evaluation, Origin
from afos.reporting.tables import format_duration, format_number

Say = Callable[[str], None]
OnRecord = Callable[[Evaluation], None]


class ProgressLog:
    """Where a run reports: timestamped lines in ``log_path`` always; on a terminal a tqdm bar over the
    expected training runs with the lines above it; elsewhere (a log file, CI) plain lines through ``echo``,
    each record line with ``run i/n`` and an ETA.

    ``total`` is an estimate (a search's duplicates, budget or time limit change it); ``done`` counts the
    runs already in the database, so a resumed run's bar starts where it stopped. ``label`` names a
    record's function in its line (default: its expression); ``on_record`` gets each record after its line
    (e.g. TensorBoard).
    """

    def __init__(self, log_path: Path, echo: Say | None, *, total: int, done: int = 0, desc: str = "afos",
                 label: Callable[[Evaluation], str] | None = None, on_record: OnRecord | None = None) -> None:
        self.path = Path(log_path)
        self.echo, self.on_record = echo, on_record
        self.label = label or (lambda record: record.expression)
        self.total, self.done = max(done, total), done
        self.started, self.at_start = time.monotonic(), done
        self.bar = None
        if echo is not None and _interactive():
            self.bar = tqdm(total=self.total, initial=done, unit="run", file=sys.stderr, dynamic_ncols=True, desc=desc)

    def __call__(self, message: str) -> None:
        """A note: into the log, above the bar or through ``echo``."""
        with self.path.open("a") as handle:
            handle.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")
        try:
            if self.bar is not None:
                self.bar.write(message, file=sys.stderr)
            elif self.echo is not None:
                self.echo(message)
        except BrokenPipeError:  # the reader went away (`afos search ... | head`): the run goes on, logged
            self.bar = self.echo = None

    def record(self, record: Evaluation) -> None:
        """One line per record the evaluator adds, one step of the bar, then ``on_record``."""
        self.done += 1
        self.total = max(self.total, self.done)
        if self.bar is not None:
            self.bar.total = self.total
            self.bar.update(1)
        self(f"  run {self.done}/{self.total} {self._eta()} {describe(record, self.label(record))}")
        if self.on_record is not None:
            self.on_record(record)

    def _eta(self) -> str:
        rate = (time.monotonic() - self.started) / max(1, self.done - self.at_start)
        return f"ETA {format_duration(rate * (self.total - self.done))}"

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _interactive() -> bool:
    """Whether a bar can be drawn: a terminal, or a Jupyter kernel (whose stderr is no terminal, but whose
    page draws tqdm's notebook bar), where a search would otherwise stay silent for minutes."""
    return sys.stderr.isatty() or "ipykernel" in sys.modules


def describe(record: Evaluation, label: str) -> str:
    """One line for a record: status, validation accuracy, time or where it came from, the run, the function."""
    where = f"reused from {record.source}" if record.origin is Origin.REUSED else f"{record.seconds:.1f}s"
    return (f"{record.status.value:<8} val_acc {format_number(record.val_accuracy)}  {where}  "
            f"[{record.task} seed {record.seed} {record.budget:g} ep]  {label}")
