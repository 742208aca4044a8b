"""The registry database: engines for SQLite (WAL) and PostgreSQL, migrations, and error translation."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from liveml.errors import LivemlError, NotInitialized, Unavailable
from liveml.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"
READ_ONLY = "liveml_read_only"
MIGRATION_LOCK_ID = 0x6C6976656D6C  # "liveml": the advisory lock held while migrating PostgreSQL


def normalize_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 here (the driver liveml installs), not psycopg2."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def safe_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"


class Database:
    """One engine per registry; sessions translate driver errors into liveml errors."""

    def __init__(self, settings: Settings) -> None:
        self.url = normalize_url(settings.resolved_database_url)
        self.display_url = safe_url(self.url)
        self.busy_timeout_s = settings.db_busy_timeout_s
        self.is_sqlite = self.url.startswith("sqlite")
        self.engine = self._create_engine()
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(
            self.engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False
        )

    def _create_engine(self) -> Engine:
        if self.is_sqlite:
            engine = create_engine(self.url, connect_args={"timeout": self.busy_timeout_s})

            @event.listens_for(engine, "connect")
            def _on_connect(dbapi_connection: Any, _record: Any) -> None:
                # Let SQLAlchemy, not the driver, open transactions, so BEGIN IMMEDIATE below is used.
                dbapi_connection.isolation_level = None
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
                cursor.execute("PRAGMA foreign_keys=ON")
                cursor.close()

            @event.listens_for(engine, "begin")
            def _on_begin(conn: Any) -> None:
                # Writers take the write lock up front: a deferred transaction that reads and then writes
                # can fail at once with SQLITE_BUSY instead of waiting for the busy timeout. Readers use a
                # plain BEGIN, which in WAL mode never waits for a writer.
                if conn.get_execution_options().get(READ_ONLY):
                    conn.exec_driver_sql("BEGIN")
                else:
                    conn.exec_driver_sql("BEGIN IMMEDIATE")

            return engine
        return create_engine(self.url, pool_pre_ping=True, connect_args={"connect_timeout": 10})

    # -- schema ----------------------------------------------------------------------------
    def sqlite_path(self) -> Path | None:
        if not self.is_sqlite:
            return None
        database = make_url(self.url).database
        return Path(database) if database and database != ":memory:" else None

    def upgrade(self) -> None:
        """Create or upgrade the schema to the newest migration (idempotent)."""
        from alembic import command
        from alembic.config import Config

        path = self.sqlite_path()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.translate(), self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # two servers starting at once must not both create the tables
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})")
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def current_revision(self) -> str | None:
        # plain SQL rather than alembic: a server opening an up-to-date registry never imports alembic
        with self.translate(), self.engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return None
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()

    def head_revision(self) -> str:
        """The newest migration. Revisions are numbered files (0001_..., 0002_...), so the head is the
        highest number; a test checks this agrees with alembic's own idea of the head."""
        return max(p.name.split("_", 1)[0] for p in (MIGRATIONS / "versions").glob("[0-9]*_*.py"))

    def ensure_ready(self) -> None:
        """Refuse a registry that was never created; bring an older schema up to date."""
        path = self.sqlite_path()
        if path is not None and not path.exists():
            raise NotInitialized(
                f"no liveml registry at {path.parent}; run `liveml init` first (or set LIVEML_HOME to an "
                "existing data home)"
            )
        with self.translate(), self.engine.connect() as connection:
            has_tables = inspect(connection).has_table("alembic_version")
        if not has_tables:
            raise NotInitialized(
                f"the database {self.display_url} has no liveml registry yet; run `liveml init` to create it"
            )
        if self.current_revision() != self.head_revision():
            self.upgrade()

    # -- sessions --------------------------------------------------------------------------
    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back on any error."""
        with self.translate(), self._sessions.begin() as session:
            yield session

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """A transaction for reading only: never waits for, nor blocks, a writer."""
        with self.translate(), self._read_sessions.begin() as session:
            yield session

    def lock_key(self, session: Session, key: str) -> None:
        """Serialize transactions that touch ``key`` until they commit. SQLite writers are serialized
        already (BEGIN IMMEDIATE); PostgreSQL takes a transaction-scoped advisory lock."""
        if self.engine.dialect.name == "postgresql":
            digest = hashlib.sha256(key.encode()).digest()
            session.execute(
                text("SELECT pg_advisory_xact_lock(:k)"),
                {"k": int.from_bytes(digest[:8], "big", signed=True)},
            )

    @contextmanager
    def translate(self) -> Iterator[None]:
        try:
            yield
        except LivemlError:
            raise
        except OperationalError as exc:
            raise self._unavailable(exc) from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise self._unavailable(exc) from exc
            raise

    def _unavailable(self, exc: SQLAlchemyError) -> Unavailable:
        text = (
            str(getattr(exc, "orig", exc)).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        )
        lowered = text.lower()
        if "locked" in lowered or "busy" in lowered:
            return Unavailable(
                f"the registry database {self.display_url} is locked by another process (waited "
                f"{self.busy_timeout_s:g}s); try again, or raise LIVEML_DB_BUSY_TIMEOUT_S"
            )
        if "no such table" in lowered or ("relation" in lowered and "does not exist" in lowered):
            return NotInitialized(
                f"the database {self.display_url} has no liveml registry yet; run `liveml init`"
            )
        if "unable to open" in lowered or "disk i/o" in lowered or "readonly" in lowered:
            return Unavailable(
                f"cannot open the registry database {self.display_url} ({text}); check that the file and its "
                "folder exist and are writable, or run `liveml init`"
            )
        return Unavailable(
            f"cannot use the registry database {self.display_url} ({text}); check LIVEML_DATABASE_URL and "
            "that the database server is running"
        )

    def dispose(self) -> None:
        self.engine.dispose()


__all__ = ["Database", "normalize_url", "safe_url"]
