"""Running one job from its record: claim it, skip the chunks already done, score the rest, merge, finish.

Every chunk is written and checkpointed before the next is counted, so a runner killed at any point (even
with SIGKILL) can be resumed with ``liveml jobs resume ID`` and gives the output an uninterrupted run gives."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pandas as pd
import pyarrow as pa

from liveml.errors import Invalid, LivemlError, Unavailable, first_line
from liveml.jobs.engines import DaskConnection, make_engine
from liveml.jobs.launch import job_dir
from liveml.jobs.outputs import Staging, default_errors_path, is_folder, merge, output_format
from liveml.jobs.scoring import ChunkOptions, ScoredChunk, check_columns, log_mask, logged_rows
from liveml.jobs.sources import Chunk, Source
from liveml.jobs.spec import Job, JobSpec
from liveml.jobs.store import HEARTBEAT_S, JobStopped, JobStore
from liveml.monitoring.records import NullSink, PredictionBatch, PredictionSink
from liveml.registry.loading import LoadedModel, load_version
from liveml.registry.registry import Registry

log = logging.getLogger("liveml.jobs")

#: called after every chunk with the job's counters: (rows done, total rows or None)
Progress = Callable[[int, int | None], None]


class TooManyErrors(Invalid):
    pass


def check_spec(spec: JobSpec) -> None:
    """Refuse, before anything is recorded, a job that cannot start: unknown output type, missing input."""
    output_format(spec.output, spec.output_format)
    Source(spec)


def run_job(
    registry: Registry,
    job_id: int,
    *,
    sink: PredictionSink | None = None,
    progress: Progress | None = None,
) -> Job:
    """Run (or resume) job ``job_id`` to the end in this process; returns its final record. A job that
    fails is recorded as failed (with the reason) and the error is raised."""
    store = JobStore(registry)
    job, owner = store.claim(job_id)
    own_sink = sink is None
    if sink is None and log_rate(job.spec, registry.settings.log_sample_rate) > 0:
        from liveml.monitoring.log import sink_for

        # the job samples its rows itself (``log_rate``): the log keeps every row it is given
        sink = sink_for(registry.settings.model_copy(update={"log_sample_rate": 1.0}))
    beat = _Heartbeat(store, job_id, owner)
    beat.start()
    try:
        _run(registry, store, job, owner, sink or NullSink(), progress, beat)
    except JobStopped:
        log.info("job %s stopped: %s", job_id, store.get(job_id).status)
    except BaseException as exc:
        message = exc.message if isinstance(exc, LivemlError) else f"{type(exc).__name__}: {first_line(exc)}"
        if isinstance(exc, KeyboardInterrupt):
            message = f"interrupted; resume with `liveml jobs resume {job_id}`"
        with contextlib.suppress(JobStopped, LivemlError):
            store.finish(job_id, owner, "failed", message)
        if isinstance(exc, OSError):  # a disk or file problem: a message, not a traceback
            raise Unavailable(
                f"job {job_id} stopped: {message}; fix it, then `liveml jobs resume {job_id}`"
            ) from exc
        raise
    finally:
        beat.stop()
        if own_sink and sink is not None and hasattr(sink, "close"):
            sink.close()  # everything this job predicted is in the log before it says it is done
    return store.get(job_id)


def _run(
    registry: Registry,
    store: JobStore,
    job: Job,
    owner: str,
    sink: PredictionSink,
    progress: Progress | None,
    beat: _Heartbeat,
) -> None:
    spec = job.spec
    fmt = output_format(spec.output, spec.output_format)
    errors_path = spec.errors or default_errors_path(spec.output)
    version = registry.get(job.ref)
    connection = None
    if spec.engine == "dask":  # the cluster starts and its workers load the model while this process does
        connection = DaskConnection(
            registry.settings, version, scheduler=spec.scheduler, workers=spec.workers
        )
    try:  # until the engine owns the connection
        # for Dask, checked but not loaded: the workers load their own, and this process needs only its
        # signature (saves the runtime's imports and the unpickling, ~1.4 s of CPU for the benchmark's
        # forest, while the workers it shares the machine with are starting)
        model = load_version(registry, version, load=spec.engine != "dask")
        staging = Staging(job_dir(registry.settings, job.id) / "parts", segments=not is_folder(spec.output))
        durable = staging.recover(job.chunks_done)
        source = Source(spec)
        store.set_total(job.id, owner, source.total_rows)
        chunk_rows = spec.chunk_rows
        counters = {
            "chunks": job.chunks_done,
            "rows": job.rows_done,
            "out": job.rows_out,
            "errors": job.errors,
        }
        if durable is not None:  # where the output is durable: the last closed segment
            counters = {
                "chunks": durable.chunks,
                "rows": durable.rows,
                "out": durable.rows_out,
                "errors": durable.errors,
            }
        busy = job.busy_s
        if progress:
            progress(counters["rows"], source.total_rows)
        options = ChunkOptions(uid=job.uid, keep=spec.keep, proba=spec.proba, explain=spec.explain)
        if spec.explain:
            from liveml.explain import background_for

            background, background_source = background_for(registry, model.version)
            options = replace(options, background=background, background_source=background_source)
        frames: dict[int, pd.DataFrame] = {}  # raw input of chunks in flight, for the prediction-record sink
        rate = log_rate(spec, registry.settings.log_sample_rate)
        logging = not isinstance(sink, NullSink) and rate > 0
        workers_read = workers_read_input(spec, source)
        options = replace(options, log_rate=rate, log_inputs=logging and workers_read)

        def checked(chunks: Iterator[Chunk]) -> Iterator[list[Chunk]]:
            for chunk in chunks:
                assert chunk.frame is not None
                check_columns(model, list(chunk.frame.columns), spec.keep, source.description)
                if logging:
                    frames[chunk.index] = chunk.frame
                yield [chunk]

        if workers_read:  # the job's process sends row ranges, a row group's at a time; workers read them
            check_columns(model, source.columns, spec.keep, source.description)
            runs = source.runs(chunk_rows, skip=counters["chunks"])
        else:
            runs = checked(source.chunks(chunk_rows, skip=counters["chunks"]))
        engine = make_engine(
            registry.settings,
            model,
            options,
            engine=spec.engine,
            workers=spec.workers,
            scheduler=spec.scheduler,
            spec=spec,
            connection=connection,
        )
    except BaseException:
        if connection is not None:
            connection.close()
        raise
    try:
        started = time.perf_counter()
        for result in engine.map(runs):
            staging.write(result.index, result.output, result.errors)
            if logging:
                _emit(sink, model, job, result, frames.pop(result.index, None), rate)
            counters["chunks"] = result.index + 1
            counters["rows"] += len(result.scored)
            counters["out"] += len(result.output)
            counters["errors"] += len(result.errors)
            now = time.perf_counter()
            busy += now - started
            started = now
            store.checkpoint(
                job.id,
                owner,
                chunks_done=counters["chunks"],
                rows_done=counters["rows"],
                rows_out=counters["out"],
                errors=counters["errors"],
                busy_s=busy,
            )
            if progress:
                progress(counters["rows"], source.total_rows)
            if spec.max_errors is not None and counters["errors"] > spec.max_errors:
                raise TooManyErrors(
                    f"{counters['errors']} rows failed validation, more than --max-errors {spec.max_errors}; "
                    f"the reasons are in {staging.folder} (errors-*.parquet) and, once the job ends, in {errors_path}. "
                    f"Fix the input, or raise --max-errors and run `liveml jobs resume {job.id}`"
                )
    except BaseException:
        with contextlib.suppress(Exception):
            staging.close_segment()  # what was written whole stays: a resume continues after it
        raise
    finally:
        engine.close()
    beat.check()
    staging.finish(counters["chunks"], spec.output, fmt)
    error_parts = staging.error_parts(counters["chunks"])
    if error_parts:
        merge(error_parts, errors_path, "csv")
    store.finish(
        job.id,
        owner,
        "succeeded",
        f"{counters['errors']} rows failed validation; see {errors_path}" if counters["errors"] else None,
    )
    staging.remove()


def workers_read_input(spec: JobSpec, source: Source) -> bool:
    """Whether the workers read their own chunks (the job's process only hands out row ranges): for a
    process pool or Dask, on Parquet files that any process can cut by row group (of a sensible size); with
    an external Dask cluster only for URLs (a local path may not exist on the workers' machines)."""
    if spec.engine == "local" and spec.workers == 1:
        return False
    if spec.scheduler is not None and "://" not in (spec.input or ""):
        return False
    if not source.splittable:
        return False
    # a worker holds the row group it reads: huge row groups would cost each worker that much memory
    return max((rows for _, _, rows in source.row_groups()), default=0) <= max(8 * spec.chunk_rows, 1 << 20)


def log_rate(spec: JobSpec, default: float) -> float:
    """The share of a job's rows that go to the prediction log: ``--log-sample``, else ``log_sample_rate``."""
    return default if spec.log_sample is None else spec.log_sample


def _emit(
    sink: PredictionSink,
    model: LoadedModel,
    job: Job,
    result: ScoredChunk,
    frame: pd.DataFrame | None,
    rate: float = 1.0,
) -> None:
    if not len(result.output):
        return
    chosen = log_mask(job.uid, result.index, len(result.output), rate)
    if chosen is not None and not chosen.any():
        return
    if result.logged is not None:  # the worker read the chunk and picked the rows itself
        inputs = result.logged
    else:
        assert frame is not None
        rows = logged_rows(result.scored, chosen)
        inputs = frame.loc[rows, model.signature.input_names].reset_index(drop=True)
    frame = result.output_frame()
    output = frame if chosen is None else frame[chosen]
    outputs = output.drop(columns=[*job.spec.keep, "model_version", "prediction_id"])
    outputs = outputs[[c for c in outputs.columns if not str(c).startswith("shap_")]]  # not predictions
    sink.emit_batch(
        PredictionBatch(
            model=model.version.model,
            version=model.version.version,
            at=datetime.now(UTC),
            prediction_ids=pa.array(output["prediction_id"]),
            inputs=inputs,
            outputs=outputs,
            latency_ms=result.seconds * 1000,
            job_id=str(job.id),
        )
    )


class _Heartbeat:
    """Tells the database the runner is alive while a long chunk runs; notices cancellation."""

    def __init__(self, store: JobStore, job_id: int, owner: str) -> None:
        self.store, self.job_id, self.owner = store, job_id, owner
        self._stop = threading.Event()
        self._stopped: JobStopped | None = None
        self._thread = threading.Thread(target=self._loop, name=f"liveml-job-{job_id}-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                self.store.heartbeat(self.job_id, self.owner)
            except JobStopped as exc:
                self._stopped = exc
                return
            except LivemlError as exc:  # a database hiccup: the next beat may get through
                log.warning("heartbeat of job %s failed: %s", self.job_id, exc)

    def check(self) -> None:
        if self._stopped is not None:
            raise self._stopped

    def stop(self) -> None:
        self._stop.set()


__all__ = ["Progress", "TooManyErrors", "check_spec", "log_rate", "run_job"]
