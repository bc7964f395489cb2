"""Where fitness runs happen: in this process, in local worker processes, or on a Ray cluster.

Search, ``afos evaluate`` and ``afos compare`` describe each training run as a :class:`~afos.execution.contract.Job` (plain data,
so it crosses process and network boundaries) and hand lists of them to an :class:`~afos.execution.contract.Executor`. Whatever
the executor, every result comes back to the *driver* through ``on_result``; the driver alone writes the
run database, so there is exactly one SQLite writer however many workers train.

* ``serial`` runs jobs in the driver process: no start-up cost, the reference behaviour.
* ``process`` runs one spawned worker process per *slot*: ``workers_per_gpu`` slots per visible GPU
  (each pinned to its GPU through ``CUDA_VISIBLE_DEVICES``), else ``workers`` CPU slots. Each slot is its
  own single-worker ``ProcessPoolExecutor``, so a worker that dies or is killed for a timeout breaks only
  its own pool: jobs on other workers keep running and are neither lost nor charged an attempt.
* ``ray`` runs long-lived actors (one per GPU share, or per CPU group) on a local or remote Ray cluster.

Workers are long-lived: torch is imported, CUDA initialised and the dataset loaded once per worker, not
once per job. A job's result depends only on the job (training is seeded), so on the CPU all executors
return identical records (except ``seconds``) when their workers use the same number of intra-op threads;
with different thread counts float reductions are summed in a different order and losses may differ in the
last bits.

Faults (process and ray): a worker that dies in the middle of a job (kill -9, a CUDA error that takes the
process down, the OOM killer) is replaced and the job retried, preferably on another slot, up to
``max_retries`` times; after that the job is reported as status ``error``, reason ``worker died N times: ...``.
Each loss is logged (``afos.execution`` logger, a warning). On Ray, a worker lost with its node is such a
death; a replacement the remaining nodes have no room for retires its slot instead of waiting forever (see
:class:`_RaySlots`), and with no slot left the remaining jobs are reported as ``error``.
``timeout_s`` is a hard wall-clock limit per job enforced by the driver, counted from dispatch (so it includes
a new worker's start-up): the worker is killed and replaced and the job reported as ``timeout``, not retried,
since a slow candidate would be slow again. ``TrainConfig.timeout_s`` remains the soft, in-run limit; set the
executor's well above it, as a guard against hangs. Mistakes of the caller (``ConfigError``,
``DatasetNotFound``, any exception raised by :func:`run_job`) are not retried: the run stops and the
exception reaches the driver, after the results already finished have been delivered.

Modules: :mod:`~afos.execution.contract` (the job, the executor protocol), :mod:`~afos.execution.worker`
(what a worker runs), :mod:`~afos.execution.driver` (dispatch, retries and timeouts over worker slots),
:mod:`~afos.execution.local` (serial and process), :mod:`~afos.execution.ray_cluster` (Ray) and
:mod:`~afos.execution.factory` (``--executor KIND``). Imports :mod:`afos.training` and below."""

from __future__ import annotations
