"""Independent runs (campaign, fleet) on Dask: a LocalCluster on this
machine by default, or the scheduler of a cluster started with
`dask scheduler` / `dask worker`.

Each run is one Dask task. A task that raises is retried (`retries`); the
tasks of a worker that dies are rescheduled by the scheduler on the others,
up to `distributed.scheduler.allowed-failures` times, then fail with
KilledWorker. Every run that still fails comes back in `failed`, with its
job and the reason: none is dropped.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field


@dataclass
class Mapped:
    results: list  # in job order, None where a run failed
    failed: list = field(default_factory=list)  # (job, reason)
    workers: int = 0


@contextlib.contextmanager
def client(scheduler: str | None = None, workers: int | None = None):
    """A distributed Client: on `scheduler` (tcp://HOST:8786), else on a
    LocalCluster of `workers` processes (default: the cores), one thread
    each (a run is a lock-step pair of processes that wants a core)."""
    import dask
    from distributed import Client, LocalCluster

    # A worker holds only the run it is running (saturation 1.0 on one
    # thread): a worker that dies then takes no queued runs' retry counts
    # with it. After 2 deaths under one run, the run is the cause: lost.
    with dask.config.set({"distributed.scheduler.allowed-failures": 2,
                          "distributed.scheduler.worker-saturation": 1.0,
                          "distributed.worker.daemon": False}):
        if scheduler:
            with Client(scheduler) as c:
                yield c
            return
        n = workers or os.cpu_count() or 1
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                          silence_logs=40) as cluster, Client(cluster) as c:
            yield c


def worker_cpu() -> int | None:
    """The core index for this worker's lock-step pair: the LocalCluster's
    worker name (0..n-1); None elsewhere (then Simulation takes the least-pinned core)."""
    try:
        from distributed import get_worker
        name = get_worker().name
    except (ImportError, ValueError):
        return None
    return name if isinstance(name, int) else None


def run_all(c, fn, jobs: list, label: str, retries: int = 1) -> Mapped:
    """fn(job) for every job on the cluster, with a progress bar."""
    from distributed import as_completed
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    futures = c.map(fn, jobs, retries=retries, pure=False)
    index = {f.key: i for i, f in enumerate(futures)}
    out = Mapped([None] * len(jobs), [], len(c.nthreads()))
    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                  transient=False) as prog:
        task = prog.add_task("runs", total=len(jobs))
        for f in as_completed(futures):
            i = index[f.key]
            if f.status == "finished":
                out.results[i] = f.result()
            else:
                exc = f.exception()
                out.failed.append((jobs[i], f"{type(exc).__name__}: {exc}"[:300]))
            f.release()
            prog.advance(task)
    return out
