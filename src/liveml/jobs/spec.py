"""What a batch job does (``JobSpec``) and what the database says about it (``Job``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from liveml.errors import Invalid

Engine = Literal["local", "dask"]
Status = Literal["queued", "running", "succeeded", "failed", "cancelled"]
#: a job in one of these states can be resumed (continues from its last checkpoint)
RESUMABLE: frozenset[str] = frozenset({"queued", "running", "failed", "cancelled"})
DEFAULT_CHUNK_ROWS = 100_000


class JobSpec(BaseModel):
    """Everything needed to run (and re-run, after a crash) one batch job. Stored with the job."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(description="NAME, NAME:VERSION or NAME@ALIAS; pinned to a version at submission")
    input: str | None = Field(
        default=None, description="a file, glob, partitioned folder or fsspec URL (CSV, Parquet, JSON lines)"
    )
    input_sql: str | None = Field(default=None, description="a SELECT to read the rows from `db`")
    db: str | None = Field(default=None, description="SQLAlchemy URL that `input_sql` runs on")
    input_format: Literal["auto", "csv", "parquet", "jsonl"] = "auto"
    output: str = Field(description="a .parquet or .csv file, or a folder (ending in /) of part files")
    output_format: Literal["auto", "csv", "parquet"] = "auto"
    errors: str | None = Field(default=None, description="where rows that fail validation go (CSV)")
    keep: tuple[str, ...] = Field(default=(), description="input columns copied to the output (ids)")
    proba: bool = Field(default=False, description="add class probability columns")
    explain: bool = Field(
        default=False,
        description="add per-column attributions: shap_<column>, shap_base, shap_output (what they add up "
        "to), shap_space and, for classifiers, shap_class",
    )
    chunk_rows: int = Field(default=DEFAULT_CHUNK_ROWS, ge=1, le=50_000_000)
    max_errors: int | None = Field(default=None, ge=0, description="fail the job past this many bad rows")
    engine: Engine = "local"
    workers: int = Field(default=1, ge=1, le=512, description="processes (local) or local-cluster workers")
    scheduler: str | None = Field(default=None, description="Dask scheduler address, e.g. tcp://host:8786")
    log_sample: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="share of the job's rows that go to the prediction log (0: none, 1: all); "
        "default: the log_sample_rate setting",
    )

    @model_validator(mode="after")
    def _one_input(self) -> JobSpec:
        if (self.input is None) == (self.input_sql is None):
            raise ValueError("give exactly one of input (a file, glob or URL) and input_sql (a query)")
        if self.input_sql is not None and not self.db:
            raise ValueError("input_sql needs db, the SQLAlchemy URL of the database to run it on")
        if self.scheduler is not None and self.engine != "dask":
            raise ValueError("scheduler is for engine dask; add engine dask (--engine dask)")
        return self

    @classmethod
    def parse(cls, data: dict[str, Any]) -> JobSpec:
        """Validate user-given fields; errors name each field and what is wrong with it."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise Invalid(f"invalid job: {describe(exc)}") from exc

    @property
    def source(self) -> str:
        return self.input if self.input is not None else f"sql: {self.input_sql}"


def describe(exc: ValidationError) -> str:
    """Pydantic's errors as one line: ``field: problem; field: problem``."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


class Job(BaseModel):
    """A job as recorded: status, progress counters, timings, the pinned version, where it reads and writes."""

    model_config = ConfigDict(frozen=True)

    id: int
    uid: str
    model: str
    version: int
    status: Status
    spec: JobSpec
    chunks_done: int
    rows_done: int
    rows_out: int
    errors: int
    total_rows: int | None
    busy_s: float
    message: str | None
    runner: str | None
    heartbeat_at: datetime | None
    attempts: int
    schedule_id: int | None
    scheduled_for: datetime | None
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    #: running, but its runner stopped sending heartbeats (killed, or the machine went down)
    stale: bool = False

    @property
    def ref(self) -> str:
        return f"{self.model}:{self.version}"

    @property
    def rows_per_s(self) -> float | None:
        return self.rows_done / self.busy_s if self.busy_s > 0 else None

    @property
    def display_status(self) -> str:
        return "interrupted" if self.stale else self.status


__all__ = ["DEFAULT_CHUNK_ROWS", "RESUMABLE", "Engine", "Job", "JobSpec", "Status", "describe"]
