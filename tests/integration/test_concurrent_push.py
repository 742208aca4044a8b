"""Real OS processes pushing the same model at the same moment, on SQLite and on PostgreSQL.

Workers are separate processes forked from a multiprocessing *forkserver* that has only imported liveml and
scikit-learn (so each starts in milliseconds, with no engine, connection or state shared with pytest); a
multiprocessing Barrier releases them together so their transactions really overlap. Nothing is mocked:
the registry, the store and the databases are real.
"""

from __future__ import annotations

import hashlib
import itertools
import multiprocessing
import queue
from pathlib import Path
from typing import Any

import pandas as pd

from liveml import AliasEvent, Registry, Settings, load_model

WORKERS = 4
PUSHES = 3
MOVES = 6

CONTEXT = multiprocessing.get_context("forkserver")
CONTEXT.set_forkserver_preload(
    ["liveml", "joblib", "sklearn.pipeline", "sklearn.linear_model", "sklearn.ensemble", __name__]
)


def _worker(cfg: dict[str, Any], barrier: Any, results: Any) -> None:
    """One process: open the registry, wait for all, push, wait again, then set an alias many times.

    Errors are reported, not raised, so no worker waits at the barrier for one that died.
    """
    out: dict[str, list[Any]] = {"pushed": [], "moved": [], "errors": []}

    def attempt(op: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return op(*args, **kwargs)
        except Exception as exc:
            first = str(exc).splitlines()[0][:300] if str(exc) else ""
            out["errors"].append(f"{type(exc).__module__}.{type(exc).__name__}: {first}")
            return None

    try:
        with Registry(Settings(**{**cfg["settings"], "user": f"writer-{cfg['idx']}"})) as reg:
            barrier.wait(timeout=60)
            for j, path in enumerate(cfg["files"]):
                tags = {"writer": str(cfg["idx"]), "push": str(j)}
                v = attempt(reg.push, cfg["name"], path, aliases=cfg["aliases"], tags=tags)
                out["pushed"].append(v.version if v else None)
            barrier.wait(timeout=60)
            for target in cfg["moves"]:
                ev = attempt(reg.set_alias, cfg["name"], cfg["alias"], target)
                if ev:
                    out["moved"].append([ev.from_version, ev.to_version])
    except BaseException as exc:
        barrier.abort()
        out["errors"].append(f"worker {cfg['idx']} stopped: {type(exc).__name__}: {exc}")
    results.put((cfg["idx"], out))


def run_workers(settings: Settings, configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Start one process per config at once; their results, in config order."""
    defaults = {"files": [], "aliases": [], "alias": "staging", "moves": []}
    barrier = CONTEXT.Barrier(len(configs))
    results = CONTEXT.Queue()
    procs = [
        CONTEXT.Process(
            target=_worker,
            args=({**defaults, **cfg, "idx": idx, "settings": settings.model_dump()}, barrier, results),
            daemon=True,
        )
        for idx, cfg in enumerate(configs)
    ]
    for proc in procs:
        proc.start()
    collected: dict[int, dict[str, Any]] = {}
    while len(collected) < len(procs):
        try:
            idx, out = results.get(timeout=0.5)
            collected[idx] = out
        except queue.Empty:
            if all(p.exitcode is not None for p in procs) and results.empty():
                break
    for proc in procs:
        proc.join(timeout=30)
    missing = {i: p.exitcode for i, p in enumerate(procs) if i not in collected}
    assert not missing, f"workers died without reporting (index: exit code): {missing}"
    errors = [e for idx in sorted(collected) for e in collected[idx]["errors"]]
    assert not errors, "concurrent operations failed:\n" + "\n".join(errors)
    return [collected[idx] for idx in range(len(procs))]


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_chain(events: list[AliasEvent]) -> None:
    """Each move starts where the one before it ended: no lost or interleaved update."""
    assert events, "no alias events recorded"
    assert events[0].from_version is None
    for before, after in itertools.pairwise(events):
        assert after.from_version == before.to_version, (
            f"alias history is inconsistent: event {after.action} {after.from_version}->{after.to_version} "
            f"follows {before.from_version}->{before.to_version}; full history: "
            f"{[(e.from_version, e.to_version, e.actor) for e in events]}"
        )


def test_concurrent_pushes_get_distinct_gapless_versions(
    settings: Settings, model_files: dict[str, Path], iris_frame: pd.DataFrame
) -> None:
    Registry.init(settings).close()
    files = [model_files["logistic"], model_files["forest"]]
    configs = [
        {"name": "race", "files": [str(files[(w + j) % 2]) for j in range(PUSHES)], "aliases": ["production"]}
        for w in range(WORKERS)
    ]
    results = run_workers(settings, configs)

    total = WORKERS * PUSHES
    pushed = [v for r in results for v in r["pushed"]]
    assert sorted(pushed) == list(range(1, total + 1)), f"versions handed out: {sorted(pushed)}"
    for r in results:
        assert r["pushed"] == sorted(r["pushed"]), "a worker's later push got a lower version"

    rows = iris_frame.drop(columns=["target"]).head(7)
    shas = {str(p): sha256_of(p) for p in files}
    with Registry(settings) as reg:
        versions = reg.versions("race")
        assert [v.version for v in versions] == list(range(1, total + 1))
        by_number = {v.version: v for v in versions}
        for w, r in enumerate(results):
            for j, number in enumerate(r["pushed"]):
                v = by_number[number]
                assert v.tags == {"writer": str(w), "push": str(j)}
                assert v.lineage.pushed_by == f"writer-{w}"
                assert v.sha256 == shas[configs[w]["files"][j]]
        for number in by_number:
            prediction = load_model(f"race:{number}", registry=reg).predict(rows)
            assert len(prediction.predictions) == len(rows)
            assert set(prediction.predictions) <= {0, 1, 2}

        production = reg.alias_history("race", "production")
        assert_chain(production)
        assert [e.to_version for e in production] == list(range(1, total + 1))
        assert reg.get("race@production").version == total


def test_concurrent_first_push_and_first_alias_create_rows_once(
    settings: Settings, model_files: dict[str, Path]
) -> None:
    """Nobody has created the model row (nor the alias row) yet, and four processes all try at once."""
    Registry.init(settings).close()
    configs = [
        {"name": "brand-new", "files": [str(model_files["logistic"])], "alias": "canary", "moves": [w + 1]}
        for w in range(WORKERS)
    ]
    results = run_workers(settings, configs)
    assert sorted(v for r in results for v in r["pushed"]) == list(range(1, WORKERS + 1))
    with Registry(settings) as reg:
        summaries = reg.models()
        assert [(s.name, s.versions, s.latest_version) for s in summaries] == [
            ("brand-new", WORKERS, WORKERS)
        ]
        assert {v.lineage.pushed_by for v in reg.versions("brand-new")} == {
            f"writer-{w}" for w in range(WORKERS)
        }
        canary = reg.alias_history("brand-new", "canary")
        assert len(canary) == WORKERS
        assert_chain(canary)
        assert reg.get("brand-new@canary").version == canary[-1].to_version


def test_concurrent_alias_moves_keep_history_consistent(
    settings: Settings, model_files: dict[str, Path]
) -> None:
    """Every recorded move must start where the previous one ended, or rollback goes to the wrong version."""
    with Registry.init(settings) as reg:
        for _ in range(4):
            reg.push("moves", model_files["forest"])
        reg.set_alias("moves", "staging", 1)
    configs = [
        {"name": "moves", "files": [], "alias": "staging", "moves": [(w + k) % 4 + 1 for k in range(MOVES)]}
        for w in range(WORKERS)
    ]
    results = run_workers(settings, configs)
    with Registry(settings) as reg:
        staging = reg.alias_history("moves", "staging")
        assert len(staging) == 1 + WORKERS * MOVES
        assert_chain(staging)
        assert reg.get("moves@staging").version == staging[-1].to_version
        returned = sorted((m[0], m[1]) for r in results for m in r["moved"])
        assert returned == sorted((e.from_version, e.to_version) for e in staging[1:]), (
            "the events returned to callers differ from the recorded history"
        )
        event = reg.rollback("moves", "staging")
        assert (event.from_version, event.to_version) == (staging[-1].to_version, staging[-1].from_version)
