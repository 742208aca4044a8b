"""The one settings object: LIVEML_* environment variables and an optional liveml.toml.

Nothing else in liveml reads the environment; build a ``Settings`` once and pass it down.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


def _default_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry (containers); still record something honest
        return "unknown"


class Settings(BaseSettings):
    """Where liveml keeps its state and how it reaches it."""

    model_config = SettingsConfigDict(
        env_prefix="LIVEML_", toml_file="liveml.toml", extra="ignore", populate_by_name=True
    )

    home: Path = Field(
        default=Path(".liveml"),
        description="Data home: the SQLite registry, artifacts and caches live here unless overridden.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the registry database; default: SQLite file <home>/registry.db.",
    )
    artifact_root: str | None = Field(
        default=None,
        description="Where artifacts are stored: a local folder or any fsspec URL (s3://bucket/prefix).",
    )
    artifact_storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description="Options passed to the fsspec filesystem of artifact_root (JSON in the environment), "
        'e.g. {"client_kwargs": {"endpoint_url": "http://127.0.0.1:9000"}}.',
    )
    db_busy_timeout_s: float = Field(
        default=30.0, gt=0, description="How long to wait for a locked SQLite database before giving up."
    )
    user: str = Field(default_factory=_default_user, description="Who is recorded as pushing or moving.")

    # -- serving -----------------------------------------------------------------------------
    server_host: str = Field(default="127.0.0.1", description="Address `liveml serve` binds.")
    server_port: int = Field(
        default=8000,
        ge=0,
        le=65535,
        validation_alias=AliasChoices(
            "AIP_HTTP_PORT", "SAGEMAKER_BIND_TO_PORT", "LIVEML_SERVER_PORT", "server_port"
        ),
        description="Port `liveml serve` binds. The port a platform names wins (Vertex AI's AIP_HTTP_PORT, "
        "SageMaker's SAGEMAKER_BIND_TO_PORT), then LIVEML_SERVER_PORT; 8080 on a managed cloud, else 8000.",
    )
    server_loop: Literal["auto", "asyncio", "uvloop"] = Field(
        default="auto",
        description="The event loop `liveml serve` runs on: `auto` (the default) picks Python's own asyncio "
        "loop, which accepts a burst of new connections at once under full load; `uvloop` is the libuv "
        "loop (installed with uvicorn[standard]).",
    )
    serve_models: list[str] | None = Field(
        default=None, description="References to serve (e.g. churn, fraud@staging); default: every model."
    )
    default_model: str | None = Field(
        default=None,
        description="The model single-model contracts answer for (SageMaker /invocations, Vertex AI).",
    )
    alias_poll_s: float = Field(
        default=1.0, ge=0, description="How often the server checks for alias moves (0: never)."
    )
    max_request_rows: int = Field(default=10_000, ge=1, description="Rows allowed in one prediction request.")
    max_body_bytes: int = Field(
        default=32 * 1024 * 1024, ge=1024, description="Largest request body accepted."
    )
    lazy_load: bool = Field(default=False, description="Load models on first request instead of at start.")
    model_dir: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("LIVEML_MODEL_DIR", "model_dir"),
        description="A folder holding one model (a bundle, or one model file) to serve without a registry "
        "database (a model image's /opt/ml/model); AZUREML_MODEL_DIR and AIP_STORAGE_URI win over it.",
    )

    # -- managed clouds: what SageMaker, Vertex AI and Azure ML tell a model container -----------
    vertex_predict_route: str | None = Field(
        default=None,
        validation_alias=AliasChoices("AIP_PREDICT_ROUTE", "vertex_predict_route"),
        description="Vertex AI's predict route (AIP_PREDICT_ROUTE); default /vertex/predict.",
    )
    vertex_health_route: str | None = Field(
        default=None,
        validation_alias=AliasChoices("AIP_HEALTH_ROUTE", "vertex_health_route"),
        description="Vertex AI's health route (AIP_HEALTH_ROUTE); default /vertex/health.",
    )
    vertex_storage_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("AIP_STORAGE_URI", "vertex_storage_uri"),
        description="Where Vertex AI put the model's artifacts (AIP_STORAGE_URI): a folder, file:// or an "
        "fsspec URL (gs:// needs gcsfs); served like model_dir.",
    )
    azureml_model_dir: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("AZUREML_MODEL_DIR", "azureml_model_dir"),
        description="Where Azure ML mounted the deployment's model (AZUREML_MODEL_DIR); the model may sit "
        "in a subfolder (the registered folder's name).",
    )
    sagemaker_batch: bool = Field(
        default=False,
        validation_alias=AliasChoices("SAGEMAKER_BATCH", "sagemaker_batch"),
        description="SageMaker Batch Transform runs this container (SAGEMAKER_BATCH): a request may carry "
        "as many rows as fit in the payload, so max_request_rows does not apply unless set.",
    )
    sagemaker_max_payload_mb: int | None = Field(
        default=None,
        ge=0,
        le=100,
        validation_alias=AliasChoices("SAGEMAKER_MAX_PAYLOAD_IN_MB", "sagemaker_max_payload_mb"),
        description="Batch Transform's MaxPayloadInMB (SAGEMAKER_MAX_PAYLOAD_IN_MB); the body limit is "
        "raised to it; answered by GET /execution-parameters (default 6).",
    )
    sagemaker_batch_strategy: Literal["MULTI_RECORD", "SINGLE_RECORD"] | None = Field(
        default=None,
        validation_alias=AliasChoices("SAGEMAKER_BATCH_STRATEGY", "sagemaker_batch_strategy"),
        description="Batch Transform's BatchStrategy (SAGEMAKER_BATCH_STRATEGY); answered by "
        "GET /execution-parameters (default MULTI_RECORD).",
    )
    sagemaker_max_concurrent_transforms: int | None = Field(
        default=None,
        ge=1,
        validation_alias=AliasChoices(
            "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS", "sagemaker_max_concurrent_transforms"
        ),
        description="Batch Transform's MaxConcurrentTransforms (SAGEMAKER_MAX_CONCURRENT_TRANSFORMS); "
        "answered by GET /execution-parameters (default: the number of CPUs).",
    )

    # -- prediction log ------------------------------------------------------------------------
    log_predictions: bool = Field(
        default=True, description="Persist every prediction (serving and batch) in the prediction log."
    )
    log_url: str | None = Field(
        default=None,
        description="Where the prediction log's Parquet segments go: a folder or fsspec URL; default <home>/predictions.",
    )
    log_flush_s: float = Field(
        default=1.0, gt=0, le=3600, description="How often buffered predictions are written to the log."
    )
    log_durability: Literal["buffered", "strict"] = Field(
        default="buffered",
        description="buffered: a SIGKILL loses at most the last log_flush_s of predictions; strict: every "
        "prediction is in a write-ahead file before it is answered, so none is lost.",
    )
    log_sample_rate: float = Field(
        default=1.0, ge=0, le=1, description="Share of predictions logged (1: all; 0.1: one in ten)."
    )
    log_retention_days: float = Field(
        default=30, gt=0, description="Log segments older than this many days are deleted."
    )

    # -- monitoring and alerts ----------------------------------------------------------------
    monitor_interval_s: float = Field(
        default=300.0,
        ge=0,
        description="How often `liveml serve` / `liveml scheduler` run the monitors of models with alert rules (0: never).",
    )
    smtp_host: str | None = Field(default=None, description="SMTP server for e-mail alerts.")
    smtp_port: int | None = Field(
        default=None, ge=1, le=65535, description="SMTP port (default 25, 465 with smtp_ssl)."
    )
    smtp_user: str | None = Field(default=None, description="SMTP login, when the server wants one.")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP password.")
    smtp_from: str | None = Field(default=None, description="Sender address of alert e-mails.")
    smtp_starttls: bool = Field(default=False, description="Upgrade the SMTP connection with STARTTLS.")
    smtp_ssl: bool = Field(default=False, description="Connect to SMTP over TLS from the start.")

    # -- security ------------------------------------------------------------------------------
    auth: bool = Field(
        default=True,
        description="Require an API key on every endpoint but health and readiness. Off only on a loopback "
        "address (`liveml serve --no-auth`) or behind a platform that authenticates callers (SageMaker, Vertex AI).",
    )
    platform_auth: bool = Field(
        default=False,
        description="The platform in front (SageMaker, Vertex AI, Lambda, an authenticating proxy) checks "
        "every caller: liveml serves without API keys on any address, and says so at start.",
    )
    api_key: SecretStr | None = Field(
        default=None, description="The key the CLI and the Python client send (else the credentials file)."
    )
    credentials_file: Path | None = Field(
        default=None,
        description="Where `liveml init` keeps the admin key (mode 0600); default <home>/credentials.",
    )
    ssl_certfile: Path | None = Field(
        default=None, description="`liveml serve` speaks HTTPS with this certificate (PEM) and ssl_keyfile."
    )
    ssl_keyfile: Path | None = Field(default=None, description="The private key (PEM) of ssl_certfile.")
    pickle_policy: Literal["trusted", "strict"] = Field(
        default="trusted",
        description="trusted: load pickle-based artifacts (recording who pushed them); strict: refuse them "
        "(ONNX, skops, XGBoost/LightGBM native files and TorchScript still load).",
    )
    rate_limit_per_s: float = Field(
        default=100.0, ge=0, description="Requests per second per key (0: no limit)."
    )
    rate_limit_burst: int = Field(
        default=200, ge=1, description="Requests a key may send at once above the rate."
    )
    max_concurrent_per_key: int = Field(
        default=32, ge=1, description="Requests of one key in progress at once."
    )
    request_timeout_s: float = Field(
        default=60.0, gt=0, description="Longest a request may take before a 503."
    )

    @field_validator("sagemaker_batch_strategy", mode="before")
    @classmethod
    def _batch_strategy(cls, value: Any) -> Any:
        """SageMaker's API spells it MultiRecord, its environment MULTI_RECORD: take either."""
        if isinstance(value, str):
            spelled = {"MULTIRECORD": "MULTI_RECORD", "SINGLERECORD": "SINGLE_RECORD"}
            return spelled.get(value.strip().upper().replace("_", ""), value)
        return value

    @property
    def resolved_credentials_file(self) -> Path:
        return self.credentials_file or self.home_path / "credentials"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @property
    def resolved_log_url(self) -> str:
        return self.log_url or str(self.home_path / "predictions")

    @property
    def local_server_url(self) -> str:
        """Where a client on this machine reaches `liveml serve` (a wildcard bind answers on loopback)."""
        address = "127.0.0.1" if self.server_host in ("0.0.0.0", "::", "") else self.server_host
        address = f"[{address}]" if ":" in address else address
        scheme = "https" if self.ssl_certfile else "http"
        return f"{scheme}://{address}:{self.server_port}"

    @property
    def home_path(self) -> Path:
        return self.home.expanduser().absolute()

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home_path / 'registry.db'}"

    @property
    def resolved_artifact_root(self) -> str:
        return self.artifact_root or str(self.home_path / "artifacts")

    @property
    def cache_dir(self) -> Path:
        return self.home_path / "cache"


__all__ = ["Settings"]
