"""A bad setting in the environment is one clear line and exit code 2, never a pydantic traceback."""

from __future__ import annotations

import pytest

from tests.unit.cli.conftest import Cli


@pytest.mark.parametrize(
    ("variable", "value", "names"),
    [
        ("LIVEML_SERVER_PORT", "eighty", "LIVEML_SERVER_PORT"),
        ("LIVEML_LOG_SAMPLE_RATE", "7", "LIVEML_LOG_SAMPLE_RATE"),
        ("SAGEMAKER_BATCH_STRATEGY", "ALL_AT_ONCE", "SAGEMAKER_BATCH_STRATEGY"),
        ("LIVEML_SERVER_LOOP", "tokio", "LIVEML_SERVER_LOOP"),
    ],
)
def test_a_bad_setting_names_the_variable_and_the_value(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, names: str
) -> None:
    monkeypatch.setenv(variable, value)
    result = cli("models")
    assert result.code == 2
    assert names in result.err and repr(value) in result.err and "docs/settings.md" in result.err
    assert "Traceback" not in result.err and "validation error" not in result.err


@pytest.mark.parametrize(
    ("value", "loop"), [("auto", "asyncio"), ("asyncio", "asyncio"), ("uvloop", "uvloop")]
)
def test_the_server_loop_setting_picks_uvicorns_loop(
    monkeypatch: pytest.MonkeyPatch, value: str, loop: str
) -> None:
    from liveml.cli.serve import _loop
    from liveml.settings import Settings

    monkeypatch.setenv("LIVEML_SERVER_LOOP", value)
    assert _loop(Settings()) == loop
