"""The executor that ``--executor KIND`` names."""

from __future__ import annotations

from afos.errors import ConfigError
from afos.execution.contract import Executor, check_options
from afos.execution.local import ProcessExecutor, SerialExecutor
from afos.execution.ray_cluster import RayExecutor
from afos.records.settings import ExecutorKind


def make_executor(
    kind: str | ExecutorKind = ExecutorKind.SERIAL,
    *,
    workers: int | None = None,
    workers_per_gpu: int = 1,
    address: str | None = None,
    max_retries: int = 2,
    timeout_s: float | None = None,
) -> Executor:
    """The executor for ``--executor KIND`` (see :mod:`afos.execution` for what each option means).

    ``address`` applies to ``ray`` only; ``serial`` ignores the worker, retry and timeout options
    (it has one worker, which is the driver itself).
    """
    try:
        kind = ExecutorKind(kind)
    except ValueError:
        known = ", ".join(k.value for k in ExecutorKind)
        raise ConfigError(f"executor {kind!r} is unknown; expected one of {known}") from None
    if kind is ExecutorKind.SERIAL:
        check_options(workers, workers_per_gpu, max_retries, timeout_s)
        return SerialExecutor()
    if kind is ExecutorKind.PROCESS:
        return ProcessExecutor(workers=workers, workers_per_gpu=workers_per_gpu, max_retries=max_retries,
                               timeout_s=timeout_s)
    return RayExecutor(workers=workers, workers_per_gpu=workers_per_gpu, address=address, max_retries=max_retries,
                       timeout_s=timeout_s)
