"""Run chunk tasks on a Dask cluster (the optional `distributed` extra).

    pip install 'bubblesim[distributed]'
    bubblesim batch scenarios/ --scheduler tcp://HOST:8786   # an existing cluster
    bubblesim batch scenarios/ --workers 4                    # a LocalCluster on loopback

`DaskExecutor` has the `submit(fn, *args)` of a concurrent.futures executor, so
`sim.engine.simulate(..., executor=DaskExecutor(client))` sends each chunk (its own stream
key) to the cluster and reduces the returned statistics in chunk order on the client:
results are bit-identical to the in-process engine for the same seed and chunk size
(on workers with the same CPU type; numba compiles for the host CPU, set
NUMBA_CPU_NAME=generic everywhere for mixed hardware).

Threads: the numba kernels are serial and release the GIL, one chunk task keeps one core
busy. Workers run one thread each (`threads_per_worker=1`, one worker process per core)
with NUMBA_NUM_THREADS=1 and the BLAS/OpenMP pools at 1, so neither numba nor numpy
starts thread pools that would oversubscribe the cores Dask already fills. Start workers
of an existing cluster the same way: ``NUMBA_NUM_THREADS=1 dask worker tcp://HOST:8786
--nworkers N --nthreads 1``. Each worker compiles (or loads from numba's on-disk cache)
the kernels once, when it joins (`WarmupPlugin`).

This module imports `distributed` at import time; import it only when Dask is wanted.
"""

from __future__ import annotations

import contextlib
import os

import dask
from distributed import Client, LocalCluster, WorkerPlugin

from sim.engine.model import ModelArrays

WORKER_ENV = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "OPENBLAS_NUM_THREADS": "1"}


def _worker_info():
    import sim

    return {"bubblesim": sim.__version__, "numba_threads": os.environ.get("NUMBA_NUM_THREADS")}


class WarmupPlugin(WorkerPlugin):
    """Compile / load the numba kernels once on each worker, before its first chunk."""

    name = "bubblesim-warmup"

    def setup(self, worker):
        from sim.engine import warmup

        warmup()


class DaskExecutor:
    """`submit(fn, *args)` onto a Dask client; a ModelArrays argument is broadcast to the
    workers once (per model) instead of being shipped with every chunk task."""

    def __init__(self, client: Client):
        self.client = client
        self._model = None
        self._model_future = None

    def _scatter(self, M):
        if M is not self._model:
            self._model_future = self.client.scatter([M], broadcast=True, hash=False)[0]
            self._model = M
        return self._model_future

    def submit(self, fn, *args):
        args = tuple(self._scatter(a) if isinstance(a, ModelArrays) else a for a in args)
        return self.client.submit(fn, *args, pure=False)

    @property
    def nthreads(self) -> int:
        return max(1, sum(self.client.nthreads().values()))


@contextlib.contextmanager
def dask_executor(scheduler: str | None = None, workers: int | None = None, log=None):
    """Yield (DaskExecutor, engine info) for an existing scheduler or a new LocalCluster."""
    log = log or (lambda m: None)
    cluster = None
    client = None
    try:
        if scheduler:
            client = Client(scheduler, timeout="30s")
        else:
            env = {**dask.config.get("distributed.nanny.pre-spawn-environ", {}), **WORKER_ENV}
            with dask.config.set({"distributed.nanny.pre-spawn-environ": env}):
                cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address="127.0.0.1:0", env=WORKER_ENV)
            client = Client(cluster)
            client.wait_for_workers(workers, timeout=120)
        client.register_plugin(WarmupPlugin(), name=WarmupPlugin.name)
        infos = client.run(_worker_info)
        import sim

        bad = {w: i["bubblesim"] for w, i in infos.items() if i["bubblesim"] != sim.__version__}
        if bad:
            raise RuntimeError(f"workers run another bubblesim version than this client ({sim.__version__}): {bad}")
        ex = DaskExecutor(client)
        info = {"kind": "dask", "scheduler": client.scheduler.address, "workers": len(infos),
                "threads": ex.nthreads, "local_cluster": cluster is not None}
        log(f"dask: {info['workers']} workers, {info['threads']} threads at {info['scheduler']}")
        yield ex, info
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
