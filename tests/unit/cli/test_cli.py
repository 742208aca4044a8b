"""The CLI as a user types it: the tour from the README, --json for scripts, one-line errors, exit codes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.unit.cli.conftest import Cli


def test_the_tour(cli: Cli, model_files: dict[str, Path], tmp_path: Path) -> None:
    assert cli("init").code == 0
    pushed = cli(
        "push",
        "churn",
        model_files["logistic"],
        "--alias",
        "production",
        "--reference",
        model_files["reference"],
        "--description",
        "logistic, iris",
        "--tag",
        "team=risk",
        "--metric",
        "auc=0.91",
    )
    assert pushed.code == 0, pushed.err
    assert "pushed churn:1" in pushed.out and "aliases: production" in pushed.out
    assert cli("push", "churn", model_files["forest"]).code == 0
    assert cli("push", "churn", model_files["forest"]).code == 0

    listed = cli("models")
    assert "churn" in listed.out and "production→1" in listed.out
    assert cli("models", "--json").json() == [
        {
            "name": "churn",
            "latest_version": 3,
            "versions": 3,
            "aliases": {"production": 1},
            "format": "sklearn",
            "updated_at": cli("models", "--json").json()[0]["updated_at"],
        }
    ]
    versions = cli("versions", "churn", "--json").json()
    assert [v["version"] for v in versions] == [1, 2, 3]
    assert versions[0]["aliases"] == ["production"] and versions[0]["lineage"]["pushed_by"] == "tester"

    shown = cli("show", "churn@production")
    for text in (
        "churn",
        "version 1",
        "sepal_length",
        "reference profile (150 rows)",
        "team=risk",
        "auc=0.91",
    ):
        assert text in shown.out
    data = cli("show", "churn@production", "--json").json()
    assert (data["name"], data["version"], data["aliases"], data["format"]) == (
        "churn",
        1,
        ["production"],
        "sklearn",
    )
    assert len(data["sha256"]) == 64 and data["signature"]["inputs"][0]["name"] == "sepal_length"
    assert data["reference_profile"]["rows"] == 150

    assert "churn@staging → version 3" in cli("alias", "set", "churn", "staging", "3").out
    assert cli("alias", "set", "churn", "production", "2").code == 0
    rolled = cli("rollback", "churn", "production")
    assert rolled.code == 0 and "version 1" in rolled.out
    history = cli("alias", "history", "churn", "--json").json()
    assert [(h["alias"], h["action"], h["from_version"], h["to_version"]) for h in history] == [
        ("production", "set", None, 1),
        ("staging", "set", None, 3),
        ("production", "set", 1, 2),
        ("production", "rollback", 2, 1),
    ]
    assert "rollback" in cli("alias", "history", "churn").out

    out = tmp_path / "preds.parquet"
    predicted = cli("predict", "churn@production", "--input", model_files["rows"], "--output", out, "--proba")
    assert predicted.code == 0, predicted.err
    preds = pd.read_parquet(out)
    assert list(preds.columns) == ["prediction", "proba_0", "proba_1", "proba_2"] and len(preds) == 20
    to_stdout = cli("predict", "churn:2", "-i", model_files["rows"])
    assert to_stdout.out.splitlines()[0] == "prediction" and len(to_stdout.out.splitlines()) == 21


def test_errors_are_one_line_with_exit_codes(cli: Cli, model_files: dict[str, Path], tmp_path: Path) -> None:
    not_init = cli("models")
    assert not_init.code == 1 and "liveml init" in not_init.err and "Traceback" not in not_init.err
    cli("init")
    cli("push", "churn", model_files["logistic"], "--alias", "production", "--alias", "staging")
    missing_alias = cli("show", "churn@prod")
    assert missing_alias.code == 1
    assert (
        missing_alias.err.strip() == "error: model 'churn' has no alias 'prod'; aliases: production, staging"
    )
    bad_name = cli("push", "../evil", model_files["logistic"])
    assert bad_name.code == 2 and "invalid model name" in bad_name.err
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00\x01 not a model" * 100)
    not_model = cli("push", "churn", junk)
    assert not_model.code == 2 and "supported formats" in not_model.err
    assert cli("push", "churn", tmp_path / "nope.joblib").code == 1
    assert cli("push", "churn", model_files["logistic"], "--tag", "novalue").code == 2
    assert cli("delete", "churn:1").code == 1  # an alias points at it
    assert cli("delete", "churn").code == 2  # which version?
    assert cli("versions", "churn", "--json").json()[0]["version"] == 1
    assert cli("predict", "churn", "-i", model_files["rows"], "-o", tmp_path / "out.xlsx").code == 2
    usage = cli("alias", "set", "churn")
    assert usage.code == 2
    for result in (missing_alias, bad_name, not_model):
        assert "Traceback" not in result.err and len(result.err.strip().splitlines()) == 1


def test_delete_and_formats(cli: Cli, model_files: dict[str, Path]) -> None:
    cli("init")
    cli("push", "m", model_files["logistic"], "--alias", "production")
    forced = cli("delete", "m:1", "--force")
    assert forced.code == 0 and "removed aliases: production" in forced.out
    assert cli("models", "--json").json() == []
    formats = cli("formats", "--json").json()
    assert {"sklearn", "skops", "onnx", "torchscript", "torch_export", "xgboost", "lightgbm", "custom"} <= {
        f["format"] for f in formats
    }


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["push", "--help"],
        ["alias", "--help"],
        ["alias", "history", "--help"],
        ["predict", "--help"],
    ],
)
def test_help_everywhere(cli: Cli, args: list[str]) -> None:
    result = cli(*args)
    assert result.code == 0 and "Usage" in result.out


def test_version(cli: Cli) -> None:
    assert cli("--version").out.startswith("liveml ")
