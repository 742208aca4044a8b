"""The Dask engine on a real dask.distributed cluster of processes on 127.0.0.1: same output as local."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from liveml import Registry, Settings
from liveml.errors import Unavailable
from liveml.jobs.runner import run_job
from liveml.jobs.spec import JobSpec
from liveml.jobs.store import JobStore

distributed = pytest.importorskip("distributed")
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("dask")]


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A scheduler and two single-threaded worker processes, as `dask scheduler` / `dask worker` give."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0"
    ) as local:
        yield local.scheduler_address


@pytest.fixture
def churn(tmp_path: Path, model_files: dict[str, Path]) -> Iterator[Registry]:
    registry = Registry.init(Settings(home=tmp_path / "home", user="tester"))
    registry.push("churn", model_files["forest"], aliases=["production"])
    yield registry
    registry.close()


def _run(registry: Registry, **fields: object) -> pd.DataFrame:
    spec = JobSpec.parse({"model": "churn", "keep": ["id"], "proba": True, "chunk_rows": 128, **fields})
    job = run_job(registry, JobStore(registry).create(spec).id)
    assert job.status == "succeeded" and job.rows_out == 1000
    return pd.read_parquet(spec.output).drop(columns="prediction_id")


def test_a_cluster_gives_the_local_engines_output(
    churn: Registry, cluster: str, tmp_path: Path, iris_frame: pd.DataFrame
) -> None:
    rng = np.random.default_rng(11)
    frame = (
        iris_frame.drop(columns=["target"]).sample(1000, replace=True, random_state=1).reset_index(drop=True)
    )
    frame += rng.normal(scale=0.05, size=frame.shape)
    frame.insert(0, "id", range(1000))
    frame.to_csv(tmp_path / "in.csv", index=False)
    local = _run(churn, input=str(tmp_path / "in.csv"), output=str(tmp_path / "local.parquet"))
    remote = _run(
        churn,
        input=str(tmp_path / "in.csv"),
        output=str(tmp_path / "dask.parquet"),
        engine="dask",
        scheduler=cluster,
    )
    pd.testing.assert_frame_equal(local, remote)
    # without --scheduler the engine starts (and stops) a local cluster of --workers processes (one is
    # enough here: the order of answers from several workers is checked on the cluster above)
    own = _run(
        churn, input=str(tmp_path / "in.csv"), output=str(tmp_path / "own.parquet"), engine="dask", workers=1
    )
    pd.testing.assert_frame_equal(local, own)
    # Parquet at a URL: the workers read their runs of chunks themselves (row groups of 300, chunks of 128)
    frame.to_parquet(tmp_path / "in.parquet", row_group_size=300)
    read_there = _run(
        churn,
        input=f"file://{tmp_path}/in.parquet",
        output=str(tmp_path / "read.parquet"),
        engine="dask",
        scheduler=cluster,
    )
    pd.testing.assert_frame_equal(local, read_there)


def test_an_unreachable_scheduler_is_a_clear_error(
    churn: Registry, tmp_path: Path, iris_frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("liveml.jobs.engines.CONNECT_TIMEOUT_S", 1)
    iris_frame.to_parquet(tmp_path / "in.parquet")
    spec = JobSpec.parse(
        {
            "model": "churn",
            "input": str(tmp_path / "in.parquet"),
            "output": str(tmp_path / "o.parquet"),
            "engine": "dask",
            "scheduler": "tcp://127.0.0.1:9",
        }
    )
    job_id = JobStore(churn).create(spec).id
    with pytest.raises(Unavailable, match=r"cannot reach the Dask scheduler 'tcp://127.0.0.1:9'"):
        run_job(churn, job_id)
    assert JobStore(churn).get(job_id).status == "failed"


def test_the_jobs_process_checks_the_pickle_policy_without_loading_the_model(
    churn: Registry, tmp_path: Path, iris_frame: pd.DataFrame
) -> None:
    """A Dask job's own process does not load the model (its workers do), but it still refuses what the
    safe-loading policy refuses, before anything is scored, and stops the cluster it began starting."""
    from liveml.security.pickles import PickleRefused

    iris_frame.to_parquet(tmp_path / "in.parquet")
    strict = Registry(churn.settings.model_copy(update={"pickle_policy": "strict"}))
    try:
        spec = JobSpec.parse(
            {
                "model": "churn",
                "input": str(tmp_path / "in.parquet"),
                "output": str(tmp_path / "o.parquet"),
                "engine": "dask",
                "workers": 1,
            }
        )
        job_id = JobStore(strict).create(spec).id
        with pytest.raises(PickleRefused):
            run_job(strict, job_id)
        assert JobStore(strict).get(job_id).status == "failed"
        assert not (tmp_path / "o.parquet").exists()
    finally:
        strict.close()


def test_runs_alternate_over_the_workers_each_with_its_next_run_waiting(
    churn: Registry, cluster: str, iris_frame: pd.DataFrame
) -> None:
    """Dask gives a task to a worker when it is submitted; the engine gives each run to the worker with the
    fewest runs in flight (two each: one running, one waiting), so the workers take turns and neither
    waits for the job's process to submit its next. The pin is loose: Dask may still move a waiting run
    to a worker that is idle."""
    from liveml.jobs.engines import DaskEngine
    from liveml.jobs.scoring import ChunkOptions
    from liveml.jobs.sources import Chunk
    from liveml.registry.loading import load_version

    model = load_version(churn, churn.get("churn"))
    rows = iris_frame.drop(columns=["target"]).assign(id=range(len(iris_frame)))
    runs = [
        [Chunk(i, i * 15, rows.iloc[i * 15 : (i + 1) * 15].reset_index(drop=True), 15)] for i in range(10)
    ]
    engine = DaskEngine(
        churn.settings,
        model,
        ChunkOptions(uid="0123456789abcdef", keep=("id",), proba=False),
        scheduler=cluster,
        workers=2,
    )
    asked: list[tuple[int, list[str] | None, bool]] = []
    submit = engine.client.submit

    def recorded(function: object, *args: object, **kwargs: object) -> object:
        run = args[3]
        asked.append((run[0].index, kwargs.get("workers"), kwargs.get("allow_other_workers")))
        return submit(function, *args, **kwargs)

    engine.client.submit = recorded
    try:
        addresses = sorted(engine.connection.slots())
        scored = list(engine.map(iter(runs)))
    finally:
        engine.close()
    assert [chunk.index for chunk in scored] == list(range(10))
    assert [chunk.output.column("id").to_pylist() for chunk in scored] == [
        list(range(i * 15, (i + 1) * 15)) for i in range(10)
    ]
    assert [index for index, _, _ in asked] == list(range(10))
    placed = [workers[0] for _, workers, _ in asked if workers]
    assert len(placed) == 10 and sorted(set(placed)) == addresses
    assert all(placed[i] != placed[i + 1] for i in range(9))  # they take turns
    assert all(loose for _, _, loose in asked)


@pytest.mark.parametrize(
    ("problem", "succeeds"),
    [(OSError("no room for another process"), True), (RuntimeError("processes cannot start here"), False)],
    ids=["os-error-workers-spawn", "other-error-fails-the-job"],
)
def test_a_fork_server_that_cannot_start(
    churn: Registry,
    tmp_path: Path,
    iris_frame: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
    problem: BaseException,
    succeeds: bool,
) -> None:
    """Without a fork server a local cluster's workers start on their own; an error multiprocessing raises
    instead (e.g. a script without the ``__main__`` guard) is the job's error, named, and the job is
    recorded as failed with nothing written."""

    def refuse(version: object) -> bool:
        raise problem

    monkeypatch.setattr("liveml.jobs.engines._start_fork_server", refuse)
    iris_frame.drop(columns=["target"]).to_parquet(tmp_path / "in.parquet")
    spec = JobSpec.parse(
        {
            "model": "churn",
            "input": str(tmp_path / "in.parquet"),
            "output": str(tmp_path / "o.parquet"),
            "engine": "dask",
            "workers": 1,
        }
    )
    job_id = JobStore(churn).create(spec).id
    if succeeds:
        assert run_job(churn, job_id).status == "succeeded"
        assert len(pd.read_parquet(tmp_path / "o.parquet")) == len(iris_frame)
    else:
        with pytest.raises(RuntimeError, match="processes cannot start here"):
            run_job(churn, job_id)
        assert JobStore(churn).get(job_id).status == "failed"
        assert "processes cannot start here" in (JobStore(churn).get(job_id).message or "")
        assert not (tmp_path / "o.parquet").exists()
