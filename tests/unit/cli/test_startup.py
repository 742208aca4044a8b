"""The ``liveml`` process starts without the garbage collector and turns it back on (with what start-up made
frozen) once a command is ready for its work; ``import liveml`` imports nothing heavy until asked. Each
case runs in its own interpreter: the collector's state is the whole process's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.unit.cli.conftest import Cli


def _python(script: str, home: Path | None = None) -> dict:
    env = dict(os.environ)
    if home is not None:
        env["LIVEML_HOME"] = str(home)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=180, env=env
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_liveml_is_light_and_every_public_name_still_there() -> None:
    seen = _python(
        """
        import json, sys
        import liveml
        heavy = sorted(m for m in ("sqlalchemy", "pandas", "pydantic", "liveml.registry") if m in sys.modules)
        from liveml import Registry, load_model, Settings, Signature, Prediction, LoadedModel, ModelVersion
        names = {n: type(getattr(liveml, n)).__name__ for n in liveml.__all__}
        try:
            liveml.no_such_name
            missing = None
        except AttributeError as exc:
            missing = str(exc)
        print(json.dumps({"heavy": heavy, "names": names, "missing": missing, "dir": "Registry" in dir(liveml)}))
        """
    )
    assert seen["heavy"] == []
    assert seen["names"]["Registry"] == "type"
    assert seen["names"]["load_model"] == "function"
    assert seen["names"]["Client"] == "type"
    assert "no_such_name" in seen["missing"]
    assert seen["dir"]


def _home_with_model(cli: Cli, model_files: dict[str, Path], tmp_path: Path) -> Path:
    assert cli("init").code == 0
    assert cli("push", "iris", model_files["logistic"]).code == 0
    return tmp_path / "home"


#: wraps run_job to see the collector while the job loads its model and once it reports progress
_WATCH = """
    import gc, json, sys
    import liveml.cli.jobs as jobs

    seen = {"before": gc.isenabled(), "progress": []}
    real = jobs.run_job

    def run_job(registry, job_id, progress=None):
        seen["loading"] = gc.isenabled()

        def watched(rows, total):
            progress(rows, total)
            seen["progress"].append(gc.isenabled())

        return real(registry, job_id, progress=watched)

    jobs.run_job = run_job
    from liveml.cli.main import main
"""


def _watched_batch_run(home: Path, rows: Path, out: Path, *, as_process: bool) -> dict:
    """``liveml batch run`` in a fresh interpreter, as the ``liveml`` process (``main()`` reading
    ``sys.argv``) or as a function call (``main([...])``), with the collector watched."""
    argv = ["batch", "run", "iris", "--input", str(rows), "--output", str(out)]
    call = f"sys.argv = {['liveml', *argv]!r}; main()" if as_process else f"main({argv!r})"
    return _python(
        _WATCH
        + f"""
    try:
        {call}
    except SystemExit as exit:
        seen["code"] = exit.code
    seen["after"] = gc.isenabled()
    seen["frozen"] = gc.get_freeze_count()
    print(json.dumps(seen))
    """,
        home,
    )


@pytest.mark.parametrize("as_process", [True, False], ids=["liveml-process", "main-as-a-function"])
def test_the_collector_while_a_batch_run_starts(
    cli: Cli, model_files: dict[str, Path], tmp_path: Path, as_process: bool
) -> None:
    """The ``liveml`` process holds the collector off while the job loads the model, and has it back on
    from the first progress report, with the start-up's objects frozen; called as a function, the CLI
    leaves the caller's collector as it was."""
    home = _home_with_model(cli, model_files, tmp_path)
    out = tmp_path / "scores.parquet"
    seen = _watched_batch_run(home, model_files["rows"], out, as_process=as_process)
    assert seen["code"] == 0 and out.exists()
    assert seen["before"] is True
    assert seen["loading"] is not as_process
    assert seen["progress"] and all(seen["progress"])
    assert seen["after"] is True
    if as_process:
        assert seen["frozen"] > 10_000  # out of the collector's way
    else:
        assert seen["frozen"] == 0


def test_the_collector_is_back_on_for_other_commands_and_after_a_failed_start(
    cli: Cli, model_files: dict[str, Path], tmp_path: Path
) -> None:
    home = _home_with_model(cli, model_files, tmp_path)
    stored = [
        p for p in home.rglob("*") if p.is_file() and p.read_bytes() == model_files["logistic"].read_bytes()
    ]
    assert stored
    for path in stored:  # the artifact no longer matches its sha256: the job fails while loading it
        path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    out = tmp_path / "scores.parquet"
    seen = _python(
        _WATCH
        + f"""
    for name, argv in {{
        "jobs": ["liveml", "jobs", "--json"],
        "run": ["liveml", "batch", "run", "iris", "--input", {str(model_files["rows"])!r}, "--output", {str(out)!r}],
    }}.items():
        sys.argv = argv
        try:
            main()
        except SystemExit as exit:
            seen[name] = [exit.code, gc.isenabled()]
    print(json.dumps(seen))
    """,
        home,
    )
    assert seen["jobs"] == [0, True]
    assert seen["loading"] is False and seen["progress"] == []  # it failed while loading
    assert seen["run"][0] != 0 and seen["run"][1] is True
    assert not out.exists()
