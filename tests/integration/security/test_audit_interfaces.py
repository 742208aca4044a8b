"""The audit trail as people and scripts reach it: ``liveml audit`` (list, verify, head, export) with its
exit codes, and ``GET /v1/audit`` on a real server."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from starlette.applications import Starlette

from liveml import Registry
from liveml.api import audit as audit_api
from liveml.api.context import ApiContext
from liveml.security import audit
from liveml.serving import ModelHost
from tests.conftest import Cli, CliResult, run_cli
from tests.live_server import LiveServer


def _churn(registry: Registry, model_files: dict[str, Path]) -> Registry:
    registry.push("churn", model_files["logistic"], aliases=["production"])
    registry.push("churn", model_files["forest"])
    return registry


@pytest.fixture
def churn(registry: Registry, model_files: dict[str, Path]) -> Registry:
    return _churn(registry, model_files)


@pytest.fixture(scope="module")
def refusing(module_registry: Registry, model_files: dict[str, Path]) -> Registry:
    """``churn`` for the whole module, for the commands and requests that must be refused."""
    return _churn(module_registry, model_files)


def _cli_on(
    churn: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Cli:
    """``liveml ARGS`` in this process, on ``churn``."""
    settings = churn.settings
    monkeypatch.setenv("LIVEML_HOME", str(settings.home))
    monkeypatch.setenv("LIVEML_USER", "tester")
    if settings.database_url:
        monkeypatch.setenv("LIVEML_DATABASE_URL", settings.database_url)
    monkeypatch.chdir(tmp_path)

    def run(*args: object) -> CliResult:
        return run_cli(capsys, *args)

    return run


@pytest.fixture
def cli(
    churn: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Cli:
    return _cli_on(churn, tmp_path, monkeypatch, capsys)


@pytest.fixture
def refusing_cli(
    refusing: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Cli:
    return _cli_on(refusing, tmp_path, monkeypatch, capsys)


def test_audit_list_verify_head_and_export(cli: Cli, churn: Registry, tmp_path: Path) -> None:
    assert cli("alias", "set", "churn", "staging", "2").code == 0
    listed = cli("audit")
    assert listed.code == 0, listed.err
    for word in ("seq", "user:tester", "alias.set", "churn@staging", "model.push", "churn:2", "+ version=2"):
        assert word in listed.out, word
    entries = cli("audit", "list", "--action", "alias", "--json").json()
    assert [(e["seq"], e["action"], e["target"], e["after"]) for e in entries] == [
        (4, "alias.set", "churn@staging", {"version": 2}),
        (2, "alias.set", "churn@production", {"version": 1}),
    ]
    assert [e["seq"] for e in cli("audit", "--limit", "2", "--json").json()] == [4, 3]
    assert (
        cli("audit", "list", "--since", "1h", "--actor", "user:nobody").out.strip()
        == "no audit entries match"
    )

    head = audit.head(churn.db)
    assert head is not None
    verified = cli("audit", "verify")
    assert verified.code == 0 and verified.out.strip() == f"audit log intact: 4 entries, head 4:{head.hash}"
    assert cli("audit", "head").out.strip() == f"4:{head.hash}"
    assert cli("audit", "head", "--json").json()["hash"] == head.hash
    assert cli("audit", "verify", "--head", f"4:{head.hash}").code == 0

    exported = cli(
        "audit", "export", "--since", "2000-01-01", "--format", "csv", "--output", tmp_path / "a.csv"
    )
    assert exported.code == 0 and "exported 4 audit entries" in exported.err
    with (tmp_path / "a.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["action"] for r in rows] == ["model.push", "alias.set", "model.push", "alias.set"]
    lines = cli("audit", "export", "--since", "7d").out.splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [1, 2, 3, 4]

    with churn.db.engine.begin() as conn:
        conn.execute(text("""UPDATE audit_log SET "after" = '{"version": 7}' WHERE seq = 2"""))
    broken = cli("audit", "verify")
    assert broken.code == 1 and "entry 2: edited: entry 2 was edited" in broken.err
    assert "audit log TAMPERED: 1 problem(s) in 4 entries" in broken.err
    report = cli("audit", "verify", "--json")
    assert report.code == 1 and report.json()["ok"] is False
    assert [(p["seq"], p["kind"]) for p in report.json()["problems"]] == [(2, "edited")]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["audit", "--since", "last tuesday"], "--since 'last tuesday' is not a time"),
        (["audit", "export", "--format", "xml"], "unknown export format 'xml'"),
        (["audit", "verify", "--head", "4:nothex"], "is not SEQ:HASH"),
        (["audit", "export", "--output", "/nowhere/at/all/a.jsonl"], "does not exist"),
    ],
)
def test_bad_audit_options_get_one_line_errors(
    refusing_cli: Cli, refusing: Registry, args: list[str], says: str
) -> None:
    result = refusing_cli(*args)
    assert result.code == 2 and says in result.err and "Traceback" not in result.err
    assert [e.seq for e in audit.entries(refusing.db)] == [1, 2, 3]  # the trail is as it was


# -- HTTP --------------------------------------------------------------------------------------------
@contextmanager
def _serving(churn: Registry) -> Iterator[str]:
    """The audit routes alone (the auth layer in front of them is tested with it)."""
    app = Starlette(routes=audit_api.routes(ApiContext(ModelHost(churn))))
    with LiveServer(app) as live:
        yield live.url


@pytest.fixture
def server(churn: Registry) -> Iterator[str]:
    for version in (1, 2, 1):
        churn.set_alias("churn", "staging", version)
    with _serving(churn) as url:
        yield url


@pytest.fixture(scope="module")
def refusing_server(refusing: Registry) -> Iterator[str]:
    with _serving(refusing) as url:
        yield url


def test_get_audit_lists_newest_first_with_filters_and_pages(server: str) -> None:
    with httpx.Client(base_url=server, timeout=30) as http:
        everything = http.get("/v1/audit")
        assert everything.status_code == 200, everything.text
        body = everything.json()
        assert [e["seq"] for e in body["entries"]] == [6, 5, 4, 3, 2, 1] and body["next"] is None
        first = body["entries"][-1]
        assert set(first) == set(audit.COLUMNS) and first["actor"] == "user:tester"
        assert (first["action"], first["target"], first["before"]) == ("model.push", "churn:1", None)

        page = http.get("/v1/audit", params={"action": "alias", "limit": 2}).json()
        assert [e["seq"] for e in page["entries"]] == [6, 5]
        assert page["next"] == "/v1/audit?action=alias&limit=2&before=5"
        rest = http.get(page["next"]).json()
        assert [e["seq"] for e in rest["entries"]] == [4, 2] and rest["next"] is None

        assert http.get("/v1/audit", params={"actor": "user:nobody"}).json()["entries"] == []
        assert (
            len(http.get("/v1/audit", params={"since": "1h", "until": "2999-01-01"}).json()["entries"]) == 6
        )
        assert http.get("/v1/audit", params={"until": "2000-01-01"}).json()["entries"] == []


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"limit": "0"}, "limit must be a whole number from 1 to 1000"),
        ({"limit": "many"}, "limit must be a whole number"),
        ({"since": "soon"}, "since 'soon' is not a time"),
        ({"before": "-3"}, "before must be a whole number"),
        ({"sort": "asc"}, "unknown query parameter(s) sort"),
    ],
)
def test_get_audit_refuses_bad_queries(refusing_server: str, params: dict[str, str], says: str) -> None:
    response = httpx.get(refusing_server + "/v1/audit", params=params, timeout=30)
    assert response.status_code == 400 and says in response.json()["error"]
