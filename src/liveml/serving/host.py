"""The serving host: which versions are served, loading them, predicting, and following alias moves.

It knows nothing of HTTP: the api package translates requests into calls on a ``ModelHost``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from liveml.errors import Invalid, LivemlError, ModelFailed, NotFound, Unavailable
from liveml.ids import PredictionIds
from liveml.monitoring.records import NullSink, PredictionBatch, PredictionSink
from liveml.registry import ModelRef, ModelVersion, Registry, parse_ref
from liveml.registry.loading import LoadedModel, Rows, load_version, to_frame
from liveml.runtimes import Prediction
from liveml.serving.batcher import BatchStats, MicroBatcher
from liveml.serving.metrics import ServingMetrics
from liveml.serving.warmup import warm_up

if TYPE_CHECKING:  # pandas is not needed to serve numeric rows: it is imported where it is used
    import pandas as pd

log = logging.getLogger("liveml.serving")


@dataclass(eq=False)
class ServedModel:
    """One loaded version and the requests running on it (a retired one is unloaded when they end)."""

    version: ModelVersion
    loaded: LoadedModel
    in_flight: int = 0
    retired: bool = False
    #: moving average of one call's validation + model CPU time, in seconds (inf until measured)
    cost_s: float = float("inf")
    #: merges concurrent requests into one model call (None: every request calls the model itself)
    batcher: MicroBatcher | None = None
    #: memory the version took when loaded (process RSS growth, at least the artifact's size)
    memory_bytes: int = 0
    #: when a request last used it (time.monotonic), for least-recently-used unloading
    last_used: float = 0.0

    @property
    def name(self) -> str:
        return self.version.model

    @property
    def number(self) -> int:
        return self.version.version


@dataclass(eq=False)
class Binding:
    """A movable reference the host follows (``churn`` or ``churn@staging``) and what it serves now."""

    ref: ModelRef
    served: ServedModel | None = None
    error: str | None = None
    swapped_at: datetime | None = None
    #: a request asked for it (with lazy loading, only those count for readiness)
    asked: bool = False
    #: unloaded to stay within the memory budget: loaded again by the next request, not by the watcher
    evicted: bool = False


@dataclass(frozen=True)
class HostResult:
    model: str
    version: int
    prediction: Prediction
    ids: Sequence[str]  #: ``PredictionIds`` from ``predict``
    latency_ms: float


@dataclass
class HostOptions:
    poll_interval_s: float = 1.0
    max_rows: int = 10_000
    warm_up: bool = True
    lazy: bool = False
    #: serve a version's compiled form (checked equal at push) when it has one
    compiled: bool = True
    #: adaptive micro-batching of concurrent requests (not for custom models, whose output may depend
    #: on what else is in the batch)
    batching: bool = True
    max_batch_size: int = 64
    max_latency_ms: float = 0.0
    #: keep the loaded versions within this many MiB, unloading the least recently used (None: no limit)
    memory_budget_mb: float | None = None


class ModelHost:
    """Serves the versions ``refs`` point at (default: every model's ``production`` alias, else latest)."""

    def __init__(
        self,
        registry: Registry,
        *,
        refs: Sequence[str] | None = None,
        sink: PredictionSink | None = None,
        options: HostOptions | None = None,
        metrics: ServingMetrics | None = None,
    ) -> None:
        self.registry = registry
        self.options = options or HostOptions()
        self.sink = sink or NullSink()
        self.metrics = metrics or ServingMetrics()
        self._explicit = [parse_ref(r) for r in refs] if refs else None
        self._bindings: dict[str, Binding] = {}
        self._versions: dict[tuple[str, int], ServedModel] = {}
        #: models unloaded through the API: not served, not reloaded by requests or the watcher, until loaded
        self._parked: set[str] = set()
        self._lock = threading.RLock()
        #: one load at a time: two requests for an unloaded model must not load it twice
        self._load_lock = threading.Lock()
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._started = False
        self._loaded_count = 0  # versions loaded in memory, for the gauge (set, not inc/dec: see metrics.py)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, *, watch: bool = True) -> None:
        """Load (unless lazy) and warm every served reference, then follow alias moves."""
        for ref in self._wanted_refs():
            binding = self._bindings.setdefault(_key(ref), Binding(ref))
            if not self.options.lazy:
                self._refresh_binding(binding)
        self._started = True
        if watch:
            self.start_watching()

    def start_watching(self) -> None:
        """Follow alias moves in a background thread (again in a forked worker, where threads are gone)."""
        if self.options.poll_interval_s <= 0 or (self._watcher is not None and self._watcher.is_alive()):
            return
        self._watcher = threading.Thread(target=self._watch, name="liveml-alias-watcher", daemon=True)
        self._watcher.start()

    def after_fork(self) -> None:
        """In a forked worker: fresh database connections (sockets must not be shared between processes)
        and a watcher thread of its own."""
        self.registry.db.engine.dispose(close=False)
        self.start_watching()

    def stop(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        close = getattr(self.sink, "close", None)
        if callable(close):  # e.g. the prediction log: write what it holds before the process ends
            try:
                close()
            except Exception:
                log.exception("closing the prediction sink failed")
        with self._lock:
            for served in {
                *self._versions.values(),
                *(b.served for b in self._bindings.values() if b.served),
            }:
                served.loaded.unload()
            self._versions.clear()
            self._bindings.clear()
            self._loaded_count = 0
        self.metrics.loaded.set(0)

    @property
    def live(self) -> bool:
        return not self._stop.is_set()

    @property
    def ready(self) -> bool:
        """Started, and every followed reference has a loaded, warmed version (lazy ones count once asked)."""
        if not self._started:
            return False
        with self._lock:
            return all(
                b.served is not None
                for b in self._bindings.values()
                if (not self.options.lazy or b.asked) and b.ref.name not in self._parked and not b.evicted
            )

    def _wanted_refs(self) -> list[ModelRef]:
        if self._explicit is not None:
            return list(self._explicit)
        return [ModelRef(name) for name in self.registry.model_names()]

    # -- what is served ---------------------------------------------------------------------
    def bindings(self) -> list[Binding]:
        with self._lock:
            return list(self._bindings.values())

    def served_models(self) -> list[ServedModel]:
        with self._lock:
            seen = {id(b.served): b.served for b in self._bindings.values() if b.served is not None}
            seen.update({id(s): s for s in self._versions.values()})
            return sorted(seen.values(), key=lambda s: (s.name, s.number))

    def resolve(self, ref: str | ModelRef) -> ServedModel:
        """The loaded version a reference means now; loads it on first use when allowed."""
        parsed = parse_ref(ref)
        if parsed.name in self._parked:
            raise Unavailable(
                f"model {parsed.name!r} was unloaded through the repository API; "
                f"POST /v2/repository/models/{parsed.name}/load to serve it again"
            )
        with self._lock:
            if parsed.version is not None:
                served = self._versions.get((parsed.name, parsed.version))
                if served is None:
                    served = self._find_loaded(parsed.name, parsed.version)
                if served is not None:
                    return served
            else:
                binding = self._bindings.get(_key(parsed))
                if binding is not None:
                    binding.asked = True
                    if binding.served is not None:
                        return binding.served
        self._check_allowed(parsed)
        if parsed.version is not None:
            version = self.registry.get(parsed)
            with self._load_lock:
                with self._lock:
                    served = self._versions.get((version.model, version.version)) or self._find_loaded(
                        version.model, version.version
                    )
                if served is None:
                    served = self._load(version)
                with self._lock:
                    return self._versions.setdefault((version.model, version.version), served)
        self.registry.get(parsed)  # an unknown model or alias is a 404, not "not loaded yet"
        with self._lock:
            binding = self._bindings.setdefault(_key(parsed), Binding(parsed))
            binding.asked = True
            binding.evicted = False
        self._refresh_binding(binding)
        if binding.served is None:
            raise Unavailable(binding.error or f"model {parsed} is not loaded yet; retry in a moment")
        return binding.served

    def acquire(self, ref: str | ModelRef) -> ServedModel:
        """``resolve`` plus counting the caller in, atomically: a version is retired (swap, unload,
        memory budget) only when nobody is using it, so one that was retired in between is skipped."""
        for _ in range(10):
            served = self.resolve(ref)
            with self._lock:
                if not served.retired:
                    served.in_flight += 1
                    return served
        raise Unavailable(f"model {ref} is being swapped; retry in a moment")

    def unload(self, ref: str | ModelRef) -> None:
        """Stop serving a model (every version and alias of it) until ``load``; requests get a 503 that
        says how to load it again. In-flight requests finish on the version they started with."""
        parsed = parse_ref(ref)
        self._check_allowed(parsed)
        self.registry.get(ModelRef(parsed.name))  # an unknown model is a NotFound
        with self._lock:
            self._parked.add(parsed.name)
            dropped = [b.served for b in self._bindings.values() if b.ref.name == parsed.name and b.served]
            for binding in self._bindings.values():
                if binding.ref.name == parsed.name:
                    binding.served = None
            for key in [k for k in self._versions if k[0] == parsed.name]:
                dropped.append(self._versions.pop(key))
            for served in {id(s): s for s in dropped if s is not None}.values():
                served.retired = True
                if served.in_flight == 0:
                    self._unload(served)

    def load(self, ref: str | ModelRef) -> ServedModel:
        """Serve a model again after ``unload`` (or load it now instead of on first use)."""
        self._parked.discard(parse_ref(ref).name)
        return self.resolve(ref)

    def peek(self, ref: str | ModelRef) -> ServedModel | None:
        """What ``ref`` is served by right now, without loading anything or asking the registry."""
        try:
            parsed = parse_ref(ref)
        except LivemlError:
            return None
        with self._lock:
            if parsed.version is not None:
                return self._versions.get((parsed.name, parsed.version)) or self._find_loaded(
                    parsed.name, parsed.version
                )
            binding = self._bindings.get(_key(parsed))
            return binding.served if binding is not None else None

    def _find_loaded(self, name: str, number: int) -> ServedModel | None:
        for binding in self._bindings.values():
            if binding.served is not None and binding.served.name == name and binding.served.number == number:
                return binding.served
        return None

    def _check_allowed(self, ref: ModelRef) -> None:
        if self._explicit is None:
            return
        if not any(r.name == ref.name for r in self._explicit):
            served = ", ".join(sorted({r.name for r in self._explicit}))
            raise NotFound(f"model {ref.name!r} is not served here; this server serves: {served}")

    # -- predicting --------------------------------------------------------------------------
    def predict(self, ref: str | ModelRef, rows: Rows, *, batch: bool = True) -> HostResult:
        """Validate ``rows`` against the version's signature and predict; never raises anything but
        ``LivemlError`` for bad input. With ``batch``, concurrent callers share model calls; callers on
        the event loop pass False so they never wait for another thread's batch."""
        served = self.acquire(ref)
        served.last_used = started = time.perf_counter()
        cpu_started = time.thread_time()
        try:
            records = isinstance(rows, list) and all(isinstance(r, dict) for r in rows)
            frame = None if records else to_frame(rows)
            count = len(rows) if frame is None else len(frame)
            if count > self.options.max_rows:
                raise Invalid(
                    f"{count} rows in one request; the limit is {self.options.max_rows} "
                    "(split the request, or use a batch job for large files)"
                )
            signature = served.loaded.signature
            conformed = signature.frame_from_records(rows) if frame is None else signature.conform(frame)  # type: ignore[arg-type]
            batched = batch and served.batcher is not None
            if batched:
                prediction = served.batcher.submit_sync(conformed)  # type: ignore[union-attr]
            else:
                prediction = served.loaded.runtime.predict(conformed)
                self.metrics.model_series(served.name, served.number).batch_rows.observe(len(conformed))
        except LivemlError as exc:
            self.metrics.errors.labels(served.name, exc.kind).inc()
            self._emit_error(served, exc.kind)
            raise
        except Exception as exc:  # a model bug must not take the server down or leak a traceback
            self.metrics.errors.labels(served.name, "model_error").inc()
            self._emit_error(served, "model_error")
            log.exception("model %s failed", served.version.ref)
            raise ModelFailed(
                f"model {served.version.ref} failed on this input ({type(exc).__name__}); see the server log"
            ) from exc
        finally:
            self._release(served)
        elapsed = time.perf_counter() - started
        if not batched:  # batched calls are measured by the batcher (a waiting caller spends no CPU)
            # CPU, not wall time: waiting for the GIL is not the model's cost
            _observe_cost(served, time.thread_time() - cpu_started)
        series = self.metrics.model_series(served.name, served.number)
        series.requests.inc()
        series.rows.inc(len(conformed))
        series.model_seconds.observe(elapsed)
        # one random head per request (96 random bits), numbered per row: no string per row made here
        ids = PredictionIds.new(len(conformed))
        self._emit(served, conformed, prediction, ids, elapsed * 1000)
        return HostResult(served.name, served.number, prediction, ids, elapsed * 1000)

    def _release(self, served: ServedModel) -> None:
        with self._lock:
            served.in_flight -= 1
            if served.retired and served.in_flight == 0:
                self._unload(served)

    def _emit_error(self, served: ServedModel, kind: str) -> None:
        try:
            self.sink.emit_error(served.name, served.number, kind)
        except Exception:
            log.exception("prediction sink failed")

    def _emit(
        self,
        served: ServedModel,
        frame: pd.DataFrame,
        prediction: Prediction,
        ids: Sequence[str],
        latency_ms: float,
    ) -> None:
        if isinstance(self.sink, NullSink):
            return
        # columns as they are: the sink copies nothing on the predict path (a log writes them later)
        batch = PredictionBatch(
            served.name, served.number, datetime.now(UTC), ids, frame, prediction, latency_ms
        )
        try:
            self.sink.emit_batch(batch)
        except Exception:  # the log must never fail a prediction
            log.exception("prediction sink failed")

    # -- following alias moves --------------------------------------------------------------
    def refresh(self) -> list[tuple[str, int | None, int]]:
        """Check every followed reference once; returns the swaps made as (ref, old, new)."""
        swaps = []
        if self._explicit is None:  # new models pushed since start are served too
            with self._lock:
                known = set(self._bindings)
            try:
                for ref in self._wanted_refs():
                    if _key(ref) not in known:
                        with self._lock:
                            self._bindings.setdefault(_key(ref), Binding(ref))
            except LivemlError as exc:
                log.warning("cannot list models: %s", exc)
        for binding in self.bindings():
            if binding.ref.name in self._parked or binding.evicted:
                continue
            before = binding.served.number if binding.served else None
            if self.options.lazy and binding.served is None:
                continue
            self._refresh_binding(binding)
            after = binding.served.number if binding.served else None
            if after is not None and after != before:
                swaps.append((str(binding.ref), before, after))
        return swaps

    def _refresh_binding(self, binding: Binding) -> None:
        try:
            version = self.registry.get(binding.ref)
        except LivemlError as exc:
            binding.error = str(exc)
            return
        with self._load_lock:  # a concurrent request or the watcher may be loading this very version
            current = binding.served
            if current is not None and current.number == version.version and current.name == version.model:
                binding.error = None
                return
            try:
                with self._lock:
                    found = self._find_loaded(version.model, version.version) or self._versions.get(
                        (version.model, version.version)
                    )
                served = found or self._load(version)
            except LivemlError as exc:
                binding.error = f"cannot load {version.ref}: {exc}"
                log.error("%s", binding.error)
                return
            with self._lock:
                binding.served = served
                binding.error = None
                binding.swapped_at = datetime.now(UTC)
                if current is not None:
                    self.metrics.swaps.labels(version.model).inc()
                    log.info("%s now serves %s (was version %s)", binding.ref, version.ref, current.number)
                    if not self._still_used(current):
                        current.retired = True
                        if current.in_flight == 0:
                            self._unload(current)

    def _still_used(self, served: ServedModel) -> bool:
        return any(b.served is served for b in self._bindings.values()) or served in self._versions.values()

    def _load(self, version: ModelVersion) -> ServedModel:
        before = _rss_bytes()
        loaded = load_version(self.registry, version, compiled=self.options.compiled)
        if self.options.warm_up:
            warm_up(self.registry, loaded)
        with self._lock:
            self._loaded_count += 1
            self.metrics.loaded.set(self._loaded_count)
        size = version.compiled.size if loaded.compiled and version.compiled else version.size
        served = ServedModel(version, loaded, memory_bytes=max(_rss_bytes() - before, size))
        served.last_used = time.perf_counter()
        if self.options.batching and loaded.serving_format != "custom":
            served.batcher = MicroBatcher(
                loaded.runtime.predict,
                max_batch_size=self.options.max_batch_size,
                max_latency_ms=self.options.max_latency_ms,
                on_batch=self._batch_observer(served),
            )
        self._keep_within_budget(served)
        return served

    def _keep_within_budget(self, keep: ServedModel) -> None:
        """Unload least-recently-used versions (not ``keep``, none with requests running) while the loaded
        versions take more than the memory budget. Evicted references load again on their next request."""
        budget = self.options.memory_budget_mb
        if budget is None:
            return
        with self._lock:
            loaded = [s for s in self.served_models() if s is not keep]
            total = keep.memory_bytes + sum(s.memory_bytes for s in loaded)
            for victim in sorted((s for s in loaded if s.in_flight == 0), key=lambda s: s.last_used):
                if total <= budget * 1024 * 1024:
                    break
                total -= victim.memory_bytes
                for binding in self._bindings.values():
                    if binding.served is victim:
                        binding.served, binding.evicted = None, True
                for key in [k for k, v in self._versions.items() if v is victim]:
                    del self._versions[key]
                victim.retired = True
                self._unload(victim)
                self.metrics.evictions.labels(victim.name).inc()
                log.info("unloaded %s to stay within the %g MiB memory budget", victim.version.ref, budget)
            if total > budget * 1024 * 1024:
                log.warning("loaded models take %.0f MiB, over the %g MiB budget", total / 2**20, budget)

    def _batch_observer(self, served: ServedModel) -> Callable[[BatchStats], None]:
        def observe(stats: BatchStats) -> None:
            _observe_cost(served, stats.run_s / max(stats.calls, 1))
            # looked up per batch, not kept here: the series are made anew when workers fork (metrics.py)
            series = self.metrics.model_series(served.name, served.number)
            series.batch_rows.observe(stats.rows)
            for wait in stats.queue_waits_s:
                series.queue_seconds.observe(wait)

        return observe

    def _unload(self, served: ServedModel) -> None:
        if served.batcher is not None:
            served.batcher.close()
        served.loaded.unload()
        with self._lock:
            self._loaded_count -= 1
            self.metrics.loaded.set(self._loaded_count)

    def _watch(self) -> None:
        while not self._stop.wait(self.options.poll_interval_s):
            try:
                self.refresh()
            except Exception:  # keep watching whatever happens
                log.exception("alias watcher failed")


def _observe_cost(served: ServedModel, seconds: float) -> None:
    """Moving average of the model's cost per call, which decides where its requests run."""
    served.cost_s = seconds if served.cost_s == float("inf") else 0.9 * served.cost_s + 0.1 * seconds


def _rss_bytes() -> int:
    """This process's resident memory (Linux /proc; 0 elsewhere, leaving the artifact size as estimate)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _key(ref: ModelRef) -> str:
    # `churn` and `churn@production` differ when the model has no production alias (latest vs 404)
    return str(ref)


__all__ = ["Binding", "HostOptions", "HostResult", "ModelHost", "ServedModel"]
