"""Shared fixtures: settings per backend (SQLite file, real PostgreSQL), registries, real trained models, and
the `liveml` command run in-process."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from liveml import Registry, Settings

PG_ADMIN_URL = os.environ.get("LIVEML_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@cache
def postgres_problem() -> str | None:
    """None when the PostgreSQL server answers, else why not (the tests that need it skip with it)."""
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3, autocommit=True) as conn:
            conn.execute("select 1")
        return None
    except Exception as exc:  # any failure means: skip, loudly
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    problem = postgres_problem()
    if problem:
        terminalreporter.write_sep("!", "PostgreSQL tests were SKIPPED", red=True, bold=True)
        terminalreporter.write_line(problem)


@contextmanager
def new_postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database on the real server (skips when none answers), dropped afterwards."""
    problem = postgres_problem()
    if problem:
        pytest.skip(problem)
    import psycopg

    name = f"liveml_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_scratch() -> Iterator[str]:
    """This test process's own PostgreSQL database, emptied for each test that asks for one."""
    with new_postgres_database() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_scratch: str) -> str:
    """An empty PostgreSQL database on the real server. Emptying one (its connections ended, its schema
    dropped and made again) costs a fraction of creating and dropping a database for every test."""
    import psycopg

    with psycopg.connect(postgres_scratch, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    return postgres_scratch


#: the metadata backends every registry test runs on
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for a fresh data home, on each metadata backend."""
    home = tmp_path / "home"
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        return Settings(home=home, database_url=url, user="tester")
    return Settings(home=home, user="tester")


@pytest.fixture
def registry(settings: Settings) -> Iterator[Registry]:
    reg = Registry.init(settings)
    yield reg
    reg.close()


@pytest.fixture(scope="module", params=BACKENDS)
def module_registry(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Registry]:
    """One registry for a whole module, on each metadata backend: for tests that only read it, or that
    check that a refused request changed nothing (one server answers them all)."""
    home = tmp_path_factory.mktemp("module") / "home"
    with ExitStack() as stack:
        url = stack.enter_context(new_postgres_database()) if request.param == "postgres" else None
        registry = stack.enter_context(Registry.init(Settings(home=home, database_url=url, user="tester")))
        yield registry


@pytest.fixture(scope="session")
def iris_frame() -> pd.DataFrame:
    data = load_iris(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    return frame


@pytest.fixture(scope="session")
def model_files(tmp_path_factory: pytest.TempPathFactory, iris_frame: pd.DataFrame) -> dict[str, Path]:
    """Real models trained on iris, with reference data: the registry tests' raw material."""
    root = tmp_path_factory.mktemp("models")
    features = iris_frame.drop(columns=["target"])
    target = iris_frame["target"]
    logistic = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(features, target)
    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(features, target)
    joblib.dump(logistic, root / "logistic.joblib")
    joblib.dump(forest, root / "forest.joblib")
    features.to_parquet(root / "reference.parquet")
    iris_frame.to_csv(root / "reference_with_label.csv", index=False)
    features.head(20).to_csv(root / "rows.csv", index=False)
    return {
        "logistic": root / "logistic.joblib",
        "forest": root / "forest.joblib",
        "reference": root / "reference.parquet",
        "reference_with_label": root / "reference_with_label.csv",
        "rows": root / "rows.csv",
    }


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


Cli = Callable[..., CliResult]


def run_cli(capsys: pytest.CaptureFixture[str], *args: object) -> CliResult:
    """``liveml ARGS`` through the real entry point in this process (its error handling included)."""
    from liveml.cli.main import main

    capsys.readouterr()
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return CliResult(code, captured.out, captured.err)


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    """Run ``liveml ARGS`` in this process, as a user would type it, in a fresh data home (``tmp_path /
    "home"``): the same entry point as the ``liveml`` command, without starting an interpreter each time."""
    monkeypatch.setenv("LIVEML_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LIVEML_USER", "tester")
    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> CliResult:
        return run_cli(capsys, *args)

    return run


def checked(cli: Cli, *args: str, ok: tuple[int, ...] = (0,)) -> CliResult:
    """``cli(*args)``, asserting that its exit code is one of ``ok`` and that it printed no traceback."""
    done = cli(*args)
    assert done.code in ok, f"{args}: exit code {done.code}\n{done.out}\n{done.err}"
    assert "Traceback" not in done.err
    return done


def init_and_push_iris(cli: Cli, model_files: dict[str, Path]) -> None:
    """``liveml init``, then the iris forest pushed as ``iris`` with its reference, alias production."""
    checked(cli, "init")
    checked(
        cli,
        "push",
        "iris",
        str(model_files["forest"]),
        "--alias",
        "production",
        "--reference",
        str(model_files["reference"]),
    )
