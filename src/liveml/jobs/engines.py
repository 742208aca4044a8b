"""Engines run ``score_chunk`` over a stream of runs of chunks and give the results back in input order.

A run is one task: one chunk with its rows, or the chunks (without rows) that start in one Parquet row
group, which the worker reads itself (``Source.runs``), so it decodes that row group once for them all.

- ``local`` with one worker scores in this process (no copies);
- ``local`` with N workers forks N processes after the model is loaded, so they share its memory
  (copy-on-write) and each run travels to a worker by pickle, and its results back as the Arrow tables
  the output file stores (``ScoredChunk.to_arrow``: one IPC stream each; the job's process converts none);
- ``dask`` sends runs to a ``dask.distributed`` cluster; each worker process loads the pinned version
  from the registry once (the cluster must reach the registry: the same data home, or PostgreSQL and an
  object store). Without ``--scheduler`` it starts a local cluster of ``--workers`` processes. The
  connection (``DaskConnection``) begins before the job's process loads the model, and a warm-up task
  has every worker load it meanwhile.

A few runs are in flight at a time (``_ordered``), which bounds memory whatever the input size. Every
process that scores keeps its heap between chunks (``heap.keep_heap``)."""

from __future__ import annotations

import logging
import multiprocessing
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any, Protocol

from liveml.errors import LivemlError, Unavailable
from liveml.jobs.heap import keep_heap
from liveml.jobs.scoring import ChunkOptions, ScoredChunk, score_chunk
from liveml.jobs.sources import Chunk, Source
from liveml.jobs.spec import JobSpec
from liveml.registry.loading import LoadedModel
from liveml.registry.types import ModelVersion
from liveml.settings import Settings

log = logging.getLogger("liveml.jobs")

#: one task: a chunk with its rows, or the chunks that start in one row group, without rows (``Source.runs``)
Run = Sequence[Chunk]


class Engine(Protocol):
    workers: int

    def map(self, runs: Iterator[Run]) -> Iterator[ScoredChunk]: ...

    def close(self) -> None: ...


def _ordered(
    submit: Callable[[Run], Any],
    result: Callable[[Any], list[ScoredChunk]],
    runs: Iterator[Run],
    workers: int,
    *,
    queued: int = 1,
) -> Iterator[ScoredChunk]:
    """Submit runs and give their chunks back in order: a run per worker in flight and ``queued`` more
    waiting (a worker that finishes finds the next at once), and at least two chunks per worker."""
    in_flight: deque[tuple[Any, int]] = deque()
    chunks = 0
    for run in runs:
        in_flight.append((submit(run), len(run)))
        chunks += len(run)
        if len(in_flight) >= workers + queued and chunks >= 2 * workers:
            done, size = in_flight.popleft()
            chunks -= size
            yield from result(done)
    while in_flight:
        yield from result(in_flight.popleft()[0])


class InProcess:
    workers = 1

    def __init__(self, model: LoadedModel, options: ChunkOptions) -> None:
        self.model = model
        self.options = options

    def map(self, runs: Iterator[Run]) -> Iterator[ScoredChunk]:
        for run in runs:
            for chunk in run:
                assert chunk.frame is not None, "one process reads its input itself"
                yield score_chunk(self.model, chunk.index, chunk.first_row, chunk.frame, self.options)

    def close(self) -> None:
        return None


_FORKED: tuple[LoadedModel, ChunkOptions, JobSpec | None] | None = None
#: per process: the inputs it reads chunks from itself, by job spec
_SOURCES: dict[str, Source] = {}


def _rows(spec: JobSpec | None, chunk_first_row: int, rows: int, frame: Any) -> Any:
    """A chunk's rows: as sent, or read here (this worker's own read of its row groups)."""
    if frame is not None:
        return frame
    assert spec is not None, "a chunk without rows needs the job's input"
    key = spec.model_dump_json()
    source = _SOURCES.get(key)
    if source is None:
        _SOURCES.clear()  # one job's input at a time
        source = _SOURCES[key] = Source(spec)
    return source.read_rows(chunk_first_row, chunk_first_row + rows)


def _score_run(
    model: LoadedModel, options: ChunkOptions, spec: JobSpec | None, run: Run
) -> list[ScoredChunk]:
    return [
        score_chunk(model, c.index, c.first_row, _rows(spec, c.first_row, c.rows, c.frame), options)
        for c in run
    ]


def _score_forked(run: Run) -> list[ScoredChunk]:
    assert _FORKED is not None, "the pool's processes are forked after the model is loaded"
    return [chunk.to_arrow() for chunk in _score_run(*_FORKED, run)]


class ProcessPool:
    def __init__(
        self, model: LoadedModel, options: ChunkOptions, workers: int, spec: JobSpec | None = None
    ) -> None:
        global _FORKED
        self.workers = workers
        _FORKED = (model, options, spec)
        self.pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))

    def map(self, runs: Iterator[Run]) -> Iterator[ScoredChunk]:
        def submit(run: Run) -> Future[list[ScoredChunk]]:
            return self.pool.submit(_score_forked, run)

        return _ordered(submit, lambda f: f.result(), runs, self.workers)

    def close(self) -> None:
        global _FORKED
        self.pool.shutdown(wait=True, cancel_futures=True)
        _FORKED = None


#: per Dask worker process: the versions it has loaded, by (registry, model, version)
_DASK_MODELS: dict[tuple[str, str, str, int], LoadedModel] = {}


def _dask_model(registry_env: tuple[str, str], model: str, version: int) -> LoadedModel:
    """The version, loaded in this Dask worker once (by its first task: the warm-up or the first run)."""
    key = (*registry_env, model, version)
    loaded = _DASK_MODELS.get(key)
    if loaded is None:
        keep_heap()  # Dask's nanny starts workers with a malloc that maps fresh pages for every array
        from liveml.registry import Registry
        from liveml.registry.loading import load_version

        home, database_url = registry_env
        settings = Settings(home=home, database_url=database_url or None)
        with Registry(settings) as registry:
            loaded = load_version(registry, registry.get(f"{model}:{version}"))
        _DASK_MODELS[key] = loaded
    return loaded


def _warm_on_dask(registry_env: tuple[str, str], model: str, version: int) -> None:
    _dask_model(registry_env, model, version)


def _score_on_dask(
    registry_env: tuple[str, str],
    model: str,
    version: int,
    run: Run,
    options: ChunkOptions,
    spec: JobSpec | None = None,
) -> list[ScoredChunk]:
    return [
        chunk.to_arrow()
        for chunk in _score_run(_dask_model(registry_env, model, version), options, spec, run)
    ]


#: how long to wait for a Dask scheduler to answer before giving up
CONNECT_TIMEOUT_S = 20


#: the library a runtime's models need, imported once by the local cluster's fork server
_FRAMEWORKS = {
    "sklearn": "sklearn",
    "skops": "sklearn",
    "onnx": "onnxruntime",
    "lightgbm": "lightgbm",
    "xgboost": "xgboost",
    "torchscript": "torch",
    "torch_export": "torch",
}


def _start_fork_server(version: ModelVersion) -> bool:
    """On Linux, start the server process a local cluster's workers are forked from, importing Dask,
    liveml's scoring code, the version's runtime and its library once (``liveml.jobs.forkserver`` first:
    without the garbage collector), rather than each spawned worker importing them all again (~3 s of
    CPU per worker for a scikit-learn forest, on the cores the job itself needs: 2 workers were warm after
    ~7 s spawned, ~3.5 s forked). Started before this process imports Dask, so both import at once.
    False where there is no fork server (the workers then spawn). A server already running keeps what it
    imported."""
    if sys.platform != "linux" or "forkserver" not in multiprocessing.get_all_start_methods():
        return False
    from multiprocessing import forkserver

    from liveml.runtimes import get_runtime

    try:
        runtime = get_runtime(version.format).__module__
    except LivemlError:
        runtime = "liveml.runtimes"
    framework = _FRAMEWORKS.get(version.format)
    preload = ["liveml.jobs.forkserver", "distributed", __name__, runtime, *filter(None, [framework])]
    # Dask sets its own list when it first asks for the context; a server already running keeps ours
    multiprocessing.get_context("forkserver").set_forkserver_preload(preload)
    forkserver.ensure_running()
    return True


@contextmanager
def _local_cluster(forked: bool) -> Iterator[None]:
    """Dask's settings while the job's own local cluster starts (its workers take them with them): workers
    forked from the fork server (``_start_fork_server``) where there is one, and no statistical profiler
    in the workers (a thread that takes the GIL 100 times a second to sample the scoring thread, for a
    dashboard that a job's cluster does not show)."""
    import dask

    config: dict[str, Any] = {"distributed.worker.profile.enabled": False}
    if forked:
        config["distributed.worker.multiprocessing-method"] = "forkserver"
    with dask.config.set(config):
        yield


class DaskConnection:
    """A client of the job's Dask cluster (started here without ``--scheduler``), made in a background
    thread from the moment the job knows its version: the cluster starts, and each worker imports the
    runtime and loads the version (a warm-up task), while this process loads its own copy and plans the
    input. ``result`` waits for it and raises what went wrong (``Unavailable`` for an unreachable
    scheduler); ``close`` stops what was started, whether or not anyone waited."""

    def __init__(
        self, settings: Settings, version: ModelVersion, *, scheduler: str | None, workers: int
    ) -> None:
        self.scheduler = scheduler
        self.requested = workers
        self.env = (str(settings.home_path), settings.database_url or "")
        self.version = version
        self.client: Any = None
        self.cluster: Any = None
        self.workers = workers
        #: the connected workers' addresses, each with its number of threads (``slots``)
        self._slots: dict[str, int] = {}
        self._warm: list[Any] = []  # futures held: a released future's task is cancelled
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._connect, name="liveml-dask-connect", daemon=True)
        self._thread.start()

    def _connect(self) -> None:
        forked = False
        if self.scheduler is None:
            try:
                forked = _start_fork_server(self.version)
            except OSError as exc:  # the workers spawn instead
                log.warning("no fork server for the Dask workers (%s); they start on their own", exc)
            except BaseException as exc:  # e.g. multiprocessing refusing to start processes here
                self._error = exc
                return
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:
            self._error = Unavailable(
                "the dask engine needs dask.distributed; install it with `pip install 'liveml[dask]'`"
            )
            self._error.__cause__ = exc
            return
        try:
            if self.scheduler is None:
                with _local_cluster(forked):
                    self.cluster = LocalCluster(
                        n_workers=self.requested,
                        threads_per_worker=1,
                        processes=True,
                        host="127.0.0.1",
                        dashboard_address=":0",
                        silence_logs=40,
                    )
                self.client = Client(self.cluster)
            else:
                self.client = Client(self.scheduler, timeout=f"{CONNECT_TIMEOUT_S}s")
            info = self.client.scheduler_info().get("workers", {})
            self._slots = {address: max(1, int(w.get("nthreads") or 1)) for address, w in info.items()}
            self.workers = max(1, len(self._slots) or self.requested)
            for address in self._slots:
                self._warm.append(
                    self.client.submit(
                        _warm_on_dask,
                        self.env,
                        self.version.model,
                        self.version.version,
                        workers=[address],
                        allow_other_workers=False,
                        pure=False,
                        priority=1,  # before any run (their priorities are 0 and below)
                    )
                )
        except (OSError, TimeoutError) as exc:
            self._error = Unavailable(
                f"cannot reach the Dask scheduler {self.scheduler!r}: {exc}; check the address and that the "
                "scheduler runs"
            )
            self._error.__cause__ = exc
        except BaseException as exc:
            self._error = exc

    def result(self) -> Any:
        """The client, once connected (and the warm-up tasks submitted)."""
        self._thread.join()
        if self._error is not None:
            self.close()
            raise self._error
        return self.client

    def slots(self) -> dict[str, int]:
        """The workers' addresses when it connected, each with its number of threads (empty if none was
        known)."""
        self.result()
        return dict(self._slots)

    def close(self) -> None:
        self._thread.join()
        self._warm.clear()
        if self.client is not None:
            self.client.close()
            self.client = None
        if self.cluster is not None:
            self.cluster.close()
            self.cluster = None


class DaskEngine:
    def __init__(
        self,
        settings: Settings,
        model: LoadedModel,
        options: ChunkOptions,
        *,
        scheduler: str | None,
        workers: int,
        spec: JobSpec | None = None,
        connection: DaskConnection | None = None,
    ) -> None:
        self.connection = connection or DaskConnection(
            settings, model.version, scheduler=scheduler, workers=workers
        )
        self.client = self.connection.result()
        self.workers = self.connection.workers
        self.env = self.connection.env
        self.model = model.version
        self.options = options
        self.spec = spec

    def map(self, runs: Iterator[Run]) -> Iterator[ScoredChunk]:
        """Each run goes to the worker with the fewest runs per thread in flight, which also has its next
        run waiting (``queued``): Dask gives a task to a worker when it is submitted, and a run given to
        a busy worker stayed behind its run while the other worker, done first, waited for the job's
        process to take the results in order and submit the next (0.3 to 0.5 s per run of five chunks,
        bench/results/batch-ab-8). The pin is loose: if that worker is gone, any other runs it."""
        slots = self.connection.slots()
        load = dict.fromkeys(slots, 0)
        where: dict[Any, str] = {}

        def submit(run: Run) -> Any:
            address = min(load, key=lambda a: load[a] / slots[a], default=None)
            future = self.client.submit(
                _score_on_dask,
                self.env,
                self.model.model,
                self.model.version,
                run,
                self.options,
                self.spec if any(c.frame is None for c in run) else None,
                pure=False,
                priority=-run[0].index,  # in input order (tasks of equal priority run in any order)
                workers=None if address is None else [address],
                allow_other_workers=True,
            )
            if address is not None:
                load[address] += 1
                where[future.key] = address
            return future

        def result(future: Any) -> list[ScoredChunk]:
            try:
                return future.result()
            finally:
                address = where.pop(future.key, None)
                if address is not None:
                    load[address] -= 1

        threads = sum(slots.values()) or self.workers
        return _ordered(submit, result, runs, threads, queued=threads)

    def close(self) -> None:
        self.connection.close()


def make_engine(
    settings: Settings,
    model: LoadedModel,
    options: ChunkOptions,
    *,
    engine: str,
    workers: int,
    scheduler: str | None,
    spec: JobSpec | None = None,
    connection: DaskConnection | None = None,
) -> Engine:
    """``spec`` lets the workers read chunks that come without their rows (``Chunk.frame`` None);
    ``connection``, for ``dask``, is a connection begun earlier (``DaskConnection``)."""
    keep_heap()  # before the pool forks: its workers inherit it
    if engine == "dask":
        return DaskEngine(
            settings,
            model,
            options,
            scheduler=scheduler,
            workers=workers,
            spec=spec,
            connection=connection,
        )
    if workers == 1:
        return InProcess(model, options)
    return ProcessPool(model, options, workers, spec)


__all__ = ["DaskConnection", "DaskEngine", "Engine", "InProcess", "ProcessPool", "make_engine"]
