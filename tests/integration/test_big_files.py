"""Big files are streamed, never held in memory: peak RSS of a real child process stays far below their size.

The files are sparse (a truncate, plus a few real bytes), so they cost no disk and little time to create.
Peak memory is the child's own ``VmHWM`` (Linux, /proc/self/status), written when it exits: unlike
``ru_maxrss`` (of RUSAGE_CHILDREN or of ``wait4``), it does not include the memory of the large pytest
process the child was forked from, nor that of other children of this test process.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from liveml import Invalid, Registry, Settings
from tests.conftest import Cli, checked

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="peak memory is read from /proc"),
]

MiB = 1024**2
GiB = 1024**3

# Prepended to every child: on exit, write the process's peak resident memory (bytes) to $PEAK_FILE.
REPORT_PEAK = """
import atexit, os
def _peak():
    return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:"))
atexit.register(lambda: open(os.environ["PEAK_FILE"], "w").write(str(_peak())))
"""


@dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: str
    stderr: str
    peak_rss: int  # bytes


def run_measured(code: str, args: list[str], cwd: Path, env: dict[str, str] | None = None) -> Finished:
    """Run ``python -c code args...`` to completion; its own peak resident memory comes back with it."""
    peak_file = cwd / f"peak-{os.urandom(4).hex()}"
    result = subprocess.run(
        [sys.executable, "-c", REPORT_PEAK + code, *args],
        cwd=cwd,
        env={**(env or os.environ), "PEAK_FILE": str(peak_file)},
        capture_output=True,
        text=True,
        timeout=240,
    )
    return Finished(result.returncode, result.stdout, result.stderr, int(peak_file.read_text()))


def sparse_file(path: Path, size: int, *, stamps: int = 0) -> Path:
    """A ``size``-byte sparse file; ``stamps`` random MiB blocks spread over it make its hash depend on all of it."""
    with path.open("wb") as fh:
        fh.truncate(size)
        for i in range(stamps):
            fh.seek((size - MiB) * i // max(stamps - 1, 1))
            fh.write(os.urandom(MiB))
    return path


def streamed_sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def cli_env(home: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LIVEML_")}
    return {**clean, "LIVEML_HOME": str(home)}


# The `liveml` console script, exactly: its entry point is liveml.cli.main:main.
LIVEML_CLI = "import sys\nfrom liveml.cli.main import main\nmain(sys.argv[1:])\n"


def stored_files(home: Path) -> list[Path]:
    """What the data home holds besides the database (and the admin key `liveml init` saves)."""
    kept = ("registry.db", "credentials")
    return [p for p in home.rglob("*") if p.is_file() and p.name not in kept and "registry.db-" not in p.name]


def test_two_gigabyte_non_model_is_refused_listing_formats(
    tmp_path: Path, model_files: dict[str, Path]
) -> None:
    big = sparse_file(tmp_path / "big.bin", 2 * GiB)
    settings = Settings(home=tmp_path / "home", user="tester")
    with Registry.init(settings) as reg:
        reg.push("small", model_files["logistic"])
        before = ([m.name for m in reg.models()], stored_files(settings.home_path))
        with pytest.raises(Invalid) as caught:
            reg.push("big", big)
        message = str(caught.value)
        assert "is not a model file liveml can load; supported formats:" in message
        for label in ("joblib", "onnx"):
            assert label in message.lower()
        assert ([m.name for m in reg.models()], stored_files(settings.home_path)) == before


@pytest.mark.parametrize(
    ("head", "says"),
    [
        (b"", "supported formats"),  # all zeros: no format recognises it
        (b"\x80\x04\x95", "could not be unpickled"),  # looks like a pickle, so joblib really opens it
    ],
    ids=["unknown", "pickle-header"],
)
def test_cli_push_of_two_gigabytes_stays_small_in_memory(
    tmp_path: Path, head: bytes, says: str, cli: Cli
) -> None:
    big = sparse_file(tmp_path / "big.joblib", 2 * GiB)
    with big.open("r+b") as fh:
        fh.write(head)
    home = tmp_path / "home"  # the cli fixture's data home too
    checked(cli, "init")  # in-process: only the push's own memory is measured

    pushed = run_measured(LIVEML_CLI, ["push", "big", str(big)], cwd=tmp_path, env=cli_env(home))
    assert pushed.returncode == 2, (pushed.stdout, pushed.stderr)  # Invalid is bad input: exit code 2
    lines = pushed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], pushed.stderr
    assert "Traceback" not in pushed.stderr
    assert pushed.peak_rss < 400 * MiB, f"peak RSS {pushed.peak_rss / MiB:.0f} MiB for a 2 GiB file"
    assert stored_files(home) == []


HASH_AND_STORE = r"""
import json, sys
from pathlib import Path
from liveml.registry.store import ArtifactStore, hash_file

imported = _peak()  # liveml's imports alone: the baseline the streaming must not grow much beyond
source, root = Path(sys.argv[1]), Path(sys.argv[2])
sha256, size = hash_file(source)
store = ArtifactStore(str(root / "artifacts"), cache_dir=root / "cache")
created = store.put(source, sha256)
again = store.put(source, sha256)
fetched = store.fetch(sha256, label="big:1")
print(json.dumps({"sha256": sha256, "size": size, "created": created, "again": again, "fetched": str(fetched),
                  "imported": imported}))
"""


def test_hash_put_and_fetch_stream_a_256_mib_file(tmp_path: Path) -> None:
    size = 256 * MiB
    source = sparse_file(tmp_path / "model.bin", size, stamps=5)
    root = tmp_path / "store"
    done = run_measured(HASH_AND_STORE, [str(source), str(root)], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])

    expected = streamed_sha256(source)
    assert result["sha256"] == expected and result["size"] == size
    assert (result["created"], result["again"]) == (True, False)
    stored = Path(result["fetched"])
    assert stored == root / "artifacts" / "sha256" / expected[:2] / expected
    assert stored.stat().st_size == size and streamed_sha256(stored) == expected
    assert [p.name for p in stored.parent.iterdir()] == [expected], "a temporary file was left behind"
    grown = done.peak_rss - result["imported"]
    assert grown < 32 * MiB, f"peak RSS grew by {grown / MiB:.0f} MiB while streaming {size // MiB} MiB"
    assert done.peak_rss < size, f"peak RSS {done.peak_rss / MiB:.0f} MiB while streaming {size // MiB} MiB"
