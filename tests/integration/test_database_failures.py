"""When the registry database is locked, gone or unreachable: a clear liveml error, and nothing half-done."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from liveml import NotInitialized, Registry, Settings, Unavailable

CLOSED_PORT_URL = "postgresql://u:secret@127.0.0.1:1/x"


@contextmanager
def exclusive_lock(database: Path) -> Iterator[None]:
    """Another process's writer: a raw sqlite3 connection holding BEGIN EXCLUSIVE until the block ends."""
    conn = sqlite3.connect(database, isolation_level=None, timeout=0)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        yield
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def snapshot(reg: Registry, settings: Settings) -> dict[str, Any]:
    """Everything a failed operation must leave exactly as it was."""
    artifacts = settings.home_path / "artifacts"
    return {
        "models": [(m.name, m.versions, m.latest_version, m.aliases) for m in reg.models()],
        "versions": [(v.version, v.sha256, v.aliases) for v in reg.versions("churn")],
        "history": [(e.alias, e.action, e.from_version, e.to_version) for e in reg.alias_history("churn")],
        "files": sorted(str(p.relative_to(artifacts)) for p in artifacts.rglob("*") if p.is_file()),
    }


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", db_busy_timeout_s=0.3, user="tester")


@pytest.fixture
def pushed(sqlite_settings: Settings, model_files: dict[str, Path]) -> Iterator[Registry]:
    """A SQLite registry holding churn:1 (production) and churn:2."""
    with Registry.init(sqlite_settings) as reg:
        reg.push("churn", model_files["logistic"], aliases=["production"])
        reg.push("churn", model_files["logistic"])
        yield reg


def assert_locked_message(exc: BaseException) -> None:
    message = str(exc)
    assert "locked" in message and "try again" in message and "LIVEML_DB_BUSY_TIMEOUT_S" in message
    assert "0.3s" in message and "\n" not in message


# -- (a) a locked SQLite database ------------------------------------------------------------------


def test_push_while_locked_is_unavailable_and_leaves_no_trace(
    pushed: Registry, sqlite_settings: Settings, model_files: dict[str, Path]
) -> None:
    before = snapshot(pushed, sqlite_settings)
    with exclusive_lock(sqlite_settings.home_path / "registry.db"), pytest.raises(Unavailable) as caught:
        pushed.push("churn", model_files["forest"], aliases=["staging"])  # new content: a new blob
    assert_locked_message(caught.value)
    assert snapshot(pushed, sqlite_settings) == before, (
        "a push that failed left versions, aliases or an orphan blob"
    )
    assert pushed.push("churn", model_files["forest"]).version == 3  # and the registry works again


def test_set_alias_while_locked_is_unavailable_and_moves_nothing(
    pushed: Registry, sqlite_settings: Settings
) -> None:
    before = snapshot(pushed, sqlite_settings)
    with exclusive_lock(sqlite_settings.home_path / "registry.db"):
        with pytest.raises(Unavailable) as caught:
            pushed.set_alias("churn", "production", 2)
        with pytest.raises(Unavailable):
            pushed.rollback("churn")
    assert_locked_message(caught.value)
    assert snapshot(pushed, sqlite_settings) == before
    assert pushed.set_alias("churn", "production", 2).from_version == 1


def test_opening_a_locked_registry_is_unavailable(pushed: Registry, sqlite_settings: Settings) -> None:
    with exclusive_lock(sqlite_settings.home_path / "registry.db"), pytest.raises(Unavailable) as caught:
        Registry(sqlite_settings)
    assert_locked_message(caught.value)


# -- (b) a database that is gone, unreachable or empty ---------------------------------------------


def test_deleted_sqlite_file_says_run_init(pushed: Registry, sqlite_settings: Settings) -> None:
    pushed.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{sqlite_settings.home_path / 'registry.db'}{suffix}").unlink(missing_ok=True)
    with pytest.raises(NotInitialized) as caught:
        Registry(sqlite_settings)
    message = str(caught.value)
    assert "liveml init" in message and str(sqlite_settings.home_path) in message
    assert "Traceback" not in message and "\n" not in message
    assert not (sqlite_settings.home_path / "registry.db").exists(), (
        "opening must not create an empty database"
    )


def test_missing_home_says_run_init(tmp_path: Path) -> None:
    with pytest.raises(NotInitialized, match=r"run `liveml init` first"):
        Registry(Settings(home=tmp_path / "never-created"))
    assert not (tmp_path / "never-created").exists()


@pytest.mark.parametrize("create", [False, True], ids=["open", "init"])
def test_unreachable_postgres_is_unavailable_without_the_password(tmp_path: Path, create: bool) -> None:
    settings = Settings(home=tmp_path / "home", database_url=CLOSED_PORT_URL)
    with pytest.raises(Unavailable) as caught:
        Registry(settings, create=create)
    message = str(caught.value)
    assert not isinstance(caught.value, NotInitialized)
    assert "secret" not in message
    assert "u:***@127.0.0.1:1/x" in message
    assert "LIVEML_DATABASE_URL" in message and "\n" not in message


@pytest.mark.postgres
def test_postgres_database_without_tables_says_run_init(postgres_url: str, tmp_path: Path) -> None:
    with pytest.raises(NotInitialized, match=r"has no liveml registry yet; run `liveml init`"):
        Registry(Settings(home=tmp_path / "home", database_url=postgres_url))


@pytest.mark.postgres
def test_missing_postgres_database_is_unavailable_without_the_password(
    postgres_url: str, tmp_path: Path
) -> None:
    base, name = postgres_url.rsplit("/", 1)
    url = base.replace("postgres@", "postgres:secret@", 1) + f"/{name}_missing"
    with pytest.raises(Unavailable) as caught:
        Registry(Settings(home=tmp_path / "home", database_url=url))
    message = str(caught.value)
    assert f"{name}_missing" in message and "secret" not in message and "\n" not in message


# -- (c) the CLI says the same, in one line --------------------------------------------------------


def run_cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("liveml")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "liveml.cli.main"]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LIVEML_")}
    return subprocess.run(
        [*command, *args],
        cwd=tmp_path,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    line = lines[0]
    assert line.startswith("error: ") and len(line) < 400
    assert "Traceback" not in result.stderr + result.stdout
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    return line


def test_cli_without_a_registry(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "models", LIVEML_HOME=str(tmp_path / "nothing-here"))
    assert_one_line_error(result, "liveml init")


def test_cli_with_unreachable_postgres(tmp_path: Path) -> None:
    result = run_cli(
        tmp_path, "models", LIVEML_HOME=str(tmp_path / "home"), LIVEML_DATABASE_URL=CLOSED_PORT_URL
    )
    line = assert_one_line_error(result, "127.0.0.1:1", "LIVEML_DATABASE_URL")
    assert "secret" not in result.stderr + result.stdout and "secret" not in line


def test_cli_with_locked_sqlite(pushed: Registry, sqlite_settings: Settings, tmp_path: Path) -> None:
    home = str(sqlite_settings.home_path)
    with exclusive_lock(sqlite_settings.home_path / "registry.db"):
        result = run_cli(
            tmp_path,
            "alias",
            "set",
            "churn",
            "production",
            "2",
            LIVEML_HOME=home,
            LIVEML_DB_BUSY_TIMEOUT_S="0.3",
        )
    assert_one_line_error(result, "locked", "LIVEML_DB_BUSY_TIMEOUT_S")
    assert pushed.get("churn@production").version == 1
