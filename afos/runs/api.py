"""The Python API: a search, an evaluation or a comparison from a script or a notebook, with typed results.

::

    import afos

    result = afos.run_search("quick", generations=3, train={"epochs": 2}, out="results/mine")
    print(result.verdict)                       # the sentence the console ends with
    best = result.winner                        # the confirmed winner (a Finalist), or None
    result.sympy(), result.torch_module()       # the function it names, as sympy and as a torch module
    result.rows()                               # the hall of fame as a table (result.dataframe() with pandas)
    table = afos.evaluate("relu", "x*sigmoid(x)", dataset="digits", seeds=3, epochs=5)
    analysis = afos.compare("x*erf(x)", datasets=["digits", "wine"], seeds=3, epochs=5)

Each call runs exactly what the command of the same name runs (``afos search`` calls :func:`run_search`),
in a run folder that the command line reads (``afos runs``, ``afos report``, ``afos export``) and that the
same call with the same ``out`` resumes. (The search is ``run_search`` because ``afos.search`` is the
package that holds the genetic search.)
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from afos.config import DEFAULT_SEARCH_CONFIG, load_config, with_overrides
from afos.errors import UserError
from afos.execution.contract import Executor
from afos.execution.factory import make_executor
from afos.grid.analysis import GridAnalysis
from afos.grid.results import Results
from afos.grid.spec import DEFAULT_BASELINES, spec_from_options
from afos.records.runs import MetaKey, RunStatus
from afos.records.search import HallOfFameEntry
from afos.reporting.tensorboard import TensorBoardLog
from afos.runs import grid as grids
from afos.runs import search as searches
from afos.runs.lifecycle import Options
from afos.search.config import SearchConfig
from afos.search.confirmation import Finalist
from afos.search.results import finalist_rows, hall_of_fame
from afos.search.verdict import verdict_sentence, winner
from afos.storage.layout import run_database
from afos.storage.store import RunStore


@dataclass(frozen=True)
class SearchResult:
    """What a search found: its hall of fame (best first, as of its last completed generation), the
    confirmation's finalists and baselines (empty without one), the function the confirmation names, and
    the verdict sentence (None without a confirmation)."""

    run_dir: Path
    status: RunStatus
    hall_of_fame: tuple[HallOfFameEntry, ...]
    finalists: tuple[Finalist, ...]
    winner: Finalist | None
    verdict: str | None

    def rows(self) -> list[dict[str, Any]]:
        """The hall of fame as a table, one dict per function, best first (as Optuna's ``trials_dataframe``
        and PySR's ``equations_``): rank, function, rung and fitness, the accuracies over its full-budget
        runs, and the confirmation's verdict and confirmed validation mean where it was a finalist."""
        confirmed = {f.fingerprint: f for f in self.finalists}
        return [{"rank": rank, "function": entry.canonical, "rung": entry.fitness.rung, "fitness": entry.fitness.value,
                 "val_accuracy": entry.val_accuracy, "val_std": entry.val_std, "test_accuracy": entry.test_accuracy,
                 "runs": entry.n_runs, "ok": entry.ok, "generation": entry.generation + 1,
                 "verdict": confirmed[entry.key].verdict.value if entry.key in confirmed else None,
                 "confirmed_val": confirmed[entry.key].val_mean if entry.key in confirmed else None}
                for rank, entry in enumerate(self.hall_of_fame, 1)]

    def dataframe(self) -> Any:
        """:meth:`rows` as a pandas DataFrame; pandas is not a dependency of afos, so it must be installed."""
        try:
            import pandas
        except ImportError:
            raise UserError("pandas is not installed; rows() gives the same table as a list of dicts") from None
        return pandas.DataFrame(self.rows())

    def sympy(self, rank: int | None = None) -> Any:
        """The function the confirmation names (a search without one: its hall of fame's first), or the
        ``rank``-th of the hall of fame, as a sympy expression in ``x``; learned constants are replaced by
        their values (per-channel ones by their mean)."""
        from afos.reporting.export.form import substituted

        return substituted(self._form(rank))

    def torch_module(self, rank: int | None = None) -> Any:
        """The same function as a ``torch.nn.Module`` (an afos ``Activation``): learned constants start at
        their learned values and stay trainable."""
        from afos.activation.module import Activation
        from afos.reporting.export.form import scalar

        form = self._form(rank)
        return Activation(form.expr, {name: scalar(value) for name, value in form.values.items()})

    def _form(self, rank: int | None) -> Any:
        from afos.reporting.export.form import hall_of_fame_form, winner_form

        return winner_form(self.run_dir) if rank is None else hall_of_fame_form(self.run_dir, rank)


def run_search(config: str | Path | Mapping[str, Any] | SearchConfig | None = None, *,
               out: str | Path | None = None, executor: str | Executor = "serial", progress: bool = True,
               tensorboard: str | Path | None = None, reuse: bool = True, **settings: Any) -> SearchResult:
    """Run (or, with an ``out`` that holds it, resume) a search and return what it found.

    ``config`` is a shipped config's name, a TOML file, a mapping of config keys or a
    :class:`~afos.search.config.SearchConfig` (default: ``spirals``); ``settings`` override its keys
    (``population=8``, ``train={"epochs": 2}``). ``executor`` is ``serial``, ``process``, ``ray`` or an open
    :class:`~afos.execution.contract.Executor`; ``progress`` (default on) shows a progress bar in a terminal
    or a notebook, else prints the progress lines on stderr;
    ``tensorboard`` is a folder for TensorBoard logs (each run's curves, the search's fitness per generation).
    """
    search_config = _search_config(config, settings)
    run_dir = Path(out) if out is not None else searches.new_run_dir("results", search_config)
    log = TensorBoardLog(tensorboard, search_config.to_dict()) if tensorboard is not None else None
    options = Options(_echo(progress), log, reuse, log.generation if log else None)
    with _executor(executor) as running:
        status = searches.search(search_config, run_dir, executor=running, options=options)
    return search_result(run_dir, status)


def search_result(run_dir: str | Path, status: RunStatus | None = None) -> SearchResult:
    """The :class:`SearchResult` of the search in ``run_dir`` as its database holds it now."""
    with RunStore(run_database(run_dir), readonly=True) as store:
        rows = finalist_rows(store)
        recorded = RunStatus(store.get_meta(MetaKey.STATUS, RunStatus.RUNNING.value))
        return SearchResult(Path(run_dir), status or recorded, tuple(hall_of_fame(store)), tuple(rows or ()),
                            winner(rows or []), verdict_sentence(rows) if rows else None)


def evaluate(*functions: str, baselines: Sequence[str] = (), dataset: str | None = None, model: str | None = None,
             seeds: int | None = None, config: str | Path | None = None, parameters: Mapping[str, Any] | None = None,
             out: str | Path | None = None, executor: str | Executor = "serial", progress: bool = True,
             **train: Any) -> Results:
    """Train ``functions`` (and ``baselines``) on one task over ``seeds`` seeds, as ``afos evaluate`` does;
    ``train`` sets training keys (``epochs=5``, ``batch_size=64``); ``parameters`` takes ``learnable``,
    ``fixed`` and ``scope`` as the command's options do."""
    spec = spec_from_options("evaluate", functions, baselines, datasets=[dataset] if dataset else [],
                             model_names=[model] if model else [], seeds=seeds, config_path=config,
                             overrides=train, parameters=parameters)
    with _executor(executor) as running:
        return grids.evaluate(spec, Path(out) if out else grids.default_out("evaluate"), executor=running,
                              options=Options(_echo(progress)))


def compare(*functions: str, baselines: Sequence[str] | None = None, datasets: Sequence[str] = (),
            models: Sequence[str] = (), tasks: Sequence[str] = (), seeds: int | None = None,
            config: str | Path | None = None, parameters: Mapping[str, Any] | None = None,
            out: str | Path | None = None, executor: str | Executor = "serial", progress: bool = True,
            **train: Any) -> GridAnalysis:
    """Compare ``functions`` with ``baselines`` (default relu, silu, gelu, mish) over datasets x models x
    seeds, as ``afos compare`` does, and return the analysis (ranks, Friedman, pairwise tests)."""
    spec = spec_from_options("compare", functions, DEFAULT_BASELINES if baselines is None else baselines,
                             datasets=datasets, model_names=models, tasks=tasks, seeds=seeds, config_path=config,
                             overrides=train, parameters=parameters)
    with _executor(executor) as running:
        return grids.compare(spec, Path(out) if out else grids.default_out("compare"), executor=running,
                             options=Options(_echo(progress)))


def _search_config(config: str | Path | Mapping[str, Any] | SearchConfig | None,
                   settings: Mapping[str, Any]) -> SearchConfig:
    if isinstance(config, SearchConfig):
        values: dict[str, Any] = config.to_dict()
    elif isinstance(config, Mapping):
        values = dict(config)
    else:
        values = load_config(config or DEFAULT_SEARCH_CONFIG)
    train = settings.get("train") or {}
    flat = {**{k: v for k, v in settings.items() if k != "train"}, **{f"train.{k}": v for k, v in train.items()}}
    return SearchConfig.from_dict(with_overrides(values, flat))


@contextlib.contextmanager
def _executor(executor: str | Executor) -> Iterator[Executor]:
    """An executor by name, opened and closed here; one given open is used and left open."""
    if not isinstance(executor, str):
        yield executor
        return
    with make_executor(executor) as running:
        yield running


def _echo(progress: bool) -> Any:
    return (lambda message: print(message, file=sys.stderr)) if progress else None
