"""Batch jobs over HTTP, like SageMaker batch transform or an async task API: submit, follow, cancel.

``POST /v1/jobs`` records the job and starts its runner as a separate process (it never runs inside the
server's workers), answering 202 with the job and a ``Location``; ``GET /v1/jobs/{id}`` reports status
and progress; ``POST /v1/jobs/{id}/cancel`` stops it."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from liveml.api.codecs import parse_json, read_body
from liveml.api.context import ApiContext, endpoint
from liveml.api.responses import json_response
from liveml.errors import Invalid
from liveml.jobs.launch import spawn_runner
from liveml.jobs.runner import check_spec
from liveml.jobs.spec import Job, JobSpec
from liveml.jobs.store import JobStore

MAX_LIMIT = 1000


def job_body(job: Job) -> dict[str, Any]:
    body = job.model_dump(mode="json")
    body["status"] = job.display_status
    body["progress"] = round(job.rows_done / job.total_rows, 4) if job.total_rows else None
    body["rows_per_s"] = job.rows_per_s
    body["url"] = f"/v1/jobs/{job.id}"
    return body


def _job_id(request: Request) -> int:
    text = request.path_params["job_id"]
    if not text.isdigit():
        raise Invalid(f"job id {text!r} is not a number; `GET /v1/jobs` lists the jobs")
    return int(text)


def routes(ctx: ApiContext) -> list[BaseRoute]:
    registry = ctx.host.registry
    store = JobStore(registry)

    @endpoint(ctx, "/v1/jobs")
    async def submit(request: Request) -> Response:
        payload = parse_json(await read_body(request, ctx.max_body_bytes))
        if not isinstance(payload, dict):
            raise Invalid(
                'the body must be a JSON object, e.g. {"model": "churn@production", "input": "in.parquet", '
                '"output": "out.parquet"}'
            )
        spec = JobSpec.parse(payload)

        def create() -> Job:
            check_spec(spec)
            job = store.create(spec)
            spawn_runner(job.id, registry.settings)
            return job

        job = await run_in_threadpool(create)
        return json_response(job_body(job), status=202, headers={"Location": f"/v1/jobs/{job.id}"})

    @endpoint(ctx, "/v1/jobs")
    async def list_jobs(request: Request) -> Response:
        query = request.query_params
        limit_text = query.get("limit", "50")
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIMIT:
            raise Invalid(f"limit must be a whole number from 1 to {MAX_LIMIT}, not {limit_text!r}")
        jobs = await run_in_threadpool(
            store.list, limit=int(limit_text), status=query.get("status"), model=query.get("model")
        )
        return json_response({"jobs": [job_body(j) for j in jobs]})

    @endpoint(ctx, "/v1/jobs/{job_id}")
    async def get_job(request: Request) -> Response:
        return json_response(job_body(await run_in_threadpool(store.get, _job_id(request))))

    @endpoint(ctx, "/v1/jobs/{job_id}/cancel")
    async def cancel_job(request: Request) -> Response:
        return json_response(job_body(await run_in_threadpool(store.cancel, _job_id(request))))

    async def jobs(request: Request) -> Response:
        return await (submit if request.method == "POST" else list_jobs)(request)

    return [
        Route("/v1/jobs", jobs, methods=["GET", "POST"]),
        Route("/v1/jobs/{job_id}", get_job, methods=["GET"]),
        Route("/v1/jobs/{job_id}/cancel", cancel_job, methods=["POST"]),
    ]
