"""The OpenAPI document of the REST API, generated from the pydantic models.

:data:`OPERATIONS` says, for every route and method, which models are its query, body and
response; the JSON schemas all come from :mod:`jupyter_sched.schemas`. A test checks that
the document covers every route the server registers.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from . import __version__
from .compare import RunComparison
from .reportschemas import (
    BackfillPreview,
    BackfillRequest,
    Batch,
    BatchListQuery,
    BatchPage,
    Summary,
    SummaryQuery,
)
from .restmodels import (
    Caller,
    DeleteJobQuery,
    ErrorBody,
    Health,
    JobListQuery,
    LogQuery,
    OutputQuery,
    ParametersQuery,
    Query,
    RunListQuery,
    WorkerList,
)
from .schemas import (
    EventRuns,
    Job,
    JobCreate,
    JobPage,
    JobStats,
    JobUpdate,
    NotebookParameters,
    Payload,
    Preview,
    PreviewRequest,
    Run,
    RunNotebook,
    RunNow,
    RunPage,
    WebhookToken,
)

#: Where the API lives, below the server's base URL.
API_PREFIX = "sched/api"

#: Statuses every operation may answer with besides its success (503: the history
#: database is unavailable, with ``Retry-After``).
COMMON_ERRORS = (400, 403, 422, 503)


@dataclass(frozen=True)
class Operation:
    """One method of one route."""

    operation_id: str
    summary: str
    tag: str
    #: The JSON response model; ``None`` with ``content`` for other media types, or for 204.
    response: type[BaseModel] | None
    status: int = 200
    body: type[BaseModel] | None = None
    body_required: bool = True
    query: type[Query] | None = None
    #: Non-JSON response bodies: media type → JSON schema.
    content: tuple[tuple[str, dict[str, Any]], ...] = ()
    #: Response headers: name → (description, schema).
    headers: tuple[tuple[str, str, dict[str, Any]], ...] = ()
    errors: tuple[int, ...] = ()


_ID_ERRORS = (404,)
_BODY_ERRORS = (413,)

#: Every operation of the API, by (path template, method).
OPERATIONS: dict[tuple[str, str], Operation] = {
    ("/jobs", "get"): Operation(
        "listJobs", "List your jobs, newest first", "jobs", JobPage, query=JobListQuery
    ),
    ("/jobs", "post"): Operation(
        "createJob", "Create a job", "jobs", Job, status=201, body=JobCreate, errors=(404, 413)
    ),
    ("/jobs/{job_id}", "get"): Operation("getJob", "Get a job", "jobs", Job, errors=_ID_ERRORS),
    ("/jobs/{job_id}", "patch"): Operation(
        "updateJob",
        "Change a job: an absent field is unchanged, null clears it",
        "jobs",
        Job,
        body=JobUpdate,
        errors=(404, 409, 413),
    ),
    ("/jobs/{job_id}", "delete"): Operation(
        "deleteJob",
        "Delete a job with its runs and their files",
        "jobs",
        None,
        status=204,
        query=DeleteJobQuery,
        errors=(404, 409),
    ),
    ("/jobs/{job_id}/webhook", "post"): Operation(
        "createWebhook",
        "Give a job a new webhook token (shown once; the previous one stops working)",
        "workflows",
        WebhookToken,
        status=201,
        errors=_ID_ERRORS,
    ),
    ("/jobs/{job_id}/webhook", "delete"): Operation(
        "deleteWebhook", "Turn a job's webhook off", "workflows", None, status=204, errors=(404,)
    ),
    ("/events/{name}", "post"): Operation(
        "postEvent",
        "Run every active job of yours that waits for this event",
        "workflows",
        EventRuns,
        status=202,
        body=Payload,
        body_required=False,
        errors=_BODY_ERRORS,
    ),
    ("/webhooks/{job_id}", "post"): Operation(
        "callWebhook",
        "Run a job with its webhook token (Authorization: Bearer), without a Jupyter session",
        "workflows",
        Run,
        status=201,
        body=Payload,
        body_required=False,
        errors=(401, 404, 409, 413, 429),
    ),
    ("/jobs/{job_id}/pause", "post"): Operation(
        "pauseJob", "Stop firing a job's schedule", "jobs", Job, errors=_ID_ERRORS
    ),
    ("/jobs/{job_id}/resume", "post"): Operation(
        "resumeJob", "Fire a job's schedule again, from now on", "jobs", Job, errors=_ID_ERRORS
    ),
    ("/jobs/{job_id}/run", "post"): Operation(
        "runJob",
        "Run a job now, with optional parameter overrides",
        "jobs",
        Run,
        status=201,
        body=RunNow,
        body_required=False,
        errors=(404, 413),
    ),
    ("/jobs/{job_id}/stats", "get"): Operation(
        "getJobStats",
        "Outcome counts and duration percentiles of a job's runs",
        "jobs",
        JobStats,
        errors=_ID_ERRORS,
    ),
    ("/jobs/{job_id}/backfill", "post"): Operation(
        "backfillJob",
        "One run per fire of the job's schedule in a range, as one batch",
        "reports",
        Batch,
        status=201,
        body=BackfillRequest,
        errors=(404, 413),
    ),
    ("/jobs/{job_id}/backfill/preview", "post"): Operation(
        "previewBackfill",
        "How many fires and runs a backfill of the range makes, its first and last fire",
        "reports",
        BackfillPreview,
        body=BackfillRequest,
        errors=(404, 413),
    ),
    ("/jobs/{job_id}/summary", "get"): Operation(
        "getJobSummary",
        "A batch's runs (or the job's newest) as a table of parameters, dates and values",
        "reports",
        Summary,
        query=SummaryQuery,
        content=(("text/csv", {"type": "string"}),),
        errors=_ID_ERRORS,
    ),
    ("/batches", "get"): Operation(
        "listBatches",
        "Your batches (of one job), newest first",
        "reports",
        BatchPage,
        query=BatchListQuery,
    ),
    ("/batches/{batch_id}", "get"): Operation(
        "getBatch", "A batch with its progress", "reports", Batch, errors=_ID_ERRORS
    ),
    ("/runs", "get"): Operation(
        "listRuns", "List your runs, newest first", "runs", RunPage, query=RunListQuery
    ),
    ("/runs", "post"): Operation(
        "runNotebook",
        "Run a notebook once, now, without a job",
        "runs",
        Run,
        status=201,
        body=RunNotebook,
        errors=(404, 413),
    ),
    ("/runs/{run_id}", "get"): Operation("getRun", "Get a run", "runs", Run, errors=_ID_ERRORS),
    ("/runs/{run_id}/cancel", "post"): Operation(
        "cancelRun", "Cancel a queued or running run", "runs", Run, errors=(404, 409)
    ),
    ("/runs/{run_id}/rerun", "post"): Operation(
        "rerun",
        "Run the same notebook again with the same parameters",
        "runs",
        Run,
        status=201,
        errors=_ID_ERRORS,
    ),
    ("/runs/{run_id}/output", "get"): Operation(
        "getRunOutput",
        "The executed notebook, or its HTML or PDF rendering, as a sandboxed download",
        "runs",
        None,
        query=OutputQuery,
        content=(
            ("application/x-ipynb+json", {"type": "object"}),
            ("text/html", {"type": "string"}),
            ("application/pdf", {"type": "string", "format": "binary"}),
        ),
        headers=(
            (
                "Content-Disposition",
                "Always `attachment`: outputs are downloads, never pages of this origin.",
                {"type": "string"},
            ),
        ),
        errors=_ID_ERRORS,
    ),
    ("/runs/{run_id}/log", "get"): Operation(
        "getRunLog",
        "The run's log from byte `offset`",
        "runs",
        None,
        query=LogQuery,
        content=(("text/plain", {"type": "string"}),),
        headers=(
            (
                "X-Next-Offset",
                "The offset to ask for next, to follow the log.",
                {"type": "string", "pattern": "^[0-9]+$"},
            ),
        ),
        errors=_ID_ERRORS,
    ),
    ("/runs/{run_id}/thumbnail", "get"): Operation(
        "getRunThumbnail",
        "A small image (PNG, or a sanitised SVG) of the run's last image output",
        "runs",
        None,
        content=(("image/png", {"type": "string"}), ("image/svg+xml", {"type": "string"})),
        errors=_ID_ERRORS,
    ),
    ("/runs/{run_id}/compare/{other_id}", "get"): Operation(
        "compareRuns",
        "What changed from one run to another: parameters, and the nbdime diff of their "
        "executed notebooks with changed outputs side by side",
        "runs",
        RunComparison,
        errors=(404, 409),
    ),
    ("/preview", "post"): Operation(
        "previewTrigger",
        "The next fire times of a trigger and a plain-language description",
        "schedules",
        Preview,
        body=PreviewRequest,
        errors=_BODY_ERRORS,
    ),
    ("/notebooks/parameters", "get"): Operation(
        "getNotebookParameters",
        "The parameters a notebook declares, with types and defaults",
        "notebooks",
        NotebookParameters,
        query=ParametersQuery,
        errors=(404,),
    ),
    ("/workers", "get"): Operation("listWorkers", "Workers alive now", "server", WorkerList),
    ("/whoami", "get"): Operation(
        "whoAmI", "Who the API takes you for, and whether you see every user's", "server", Caller
    ),
    ("/health", "get"): Operation(
        "getHealth",
        "State of the scheduler in this server (503, with the same body, when degraded)",
        "server",
        Health,
    ),
    ("/openapi.json", "get"): Operation(
        "getOpenAPI",
        "This document",
        "server",
        None,
        content=(("application/json", {"type": "object"}),),
    ),
}

_PATH_PARAM = re.compile(r"\{(\w+)\}")
#: Path parameters whose values are more than an id.
_PATH_SCHEMAS: dict[str, dict[str, Any]] = {
    "name": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": r"^[\w.:-]+$"},
}


def url_pattern(template: str) -> str:
    """The tornado URL pattern of a path template: ``/jobs/{job_id}`` → a named group."""
    return API_PREFIX + _PATH_PARAM.sub(r"(?P<\1>[^/]+)", template)


def _pairs() -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    pairs: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {(ErrorBody, "serialization"): None}
    for op in OPERATIONS.values():
        if op.body is not None:
            pairs[(op.body, "validation")] = None
        if op.query is not None:
            pairs[(op.query, "validation")] = None
        if op.response is not None:
            pairs[(op.response, "serialization")] = None
    return list(pairs)


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter's schema: an optional field's ``null`` branch means "absent"."""
    options = schema.get("anyOf")
    if options is None:
        return schema
    rest = [option for option in options if option != {"type": "null"}]
    extra = {k: v for k, v in schema.items() if k not in ("anyOf", "default")}
    return {**(rest[0] if len(rest) == 1 else {"anyOf": rest}), **extra}


def _query_parameters(query: type[Query], schema: dict[str, Any]) -> list[dict[str, Any]]:
    properties = schema.get("properties", {})
    required = set(schema.get("required", ()))
    return [
        {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": _without_null(properties[name]),
        }
        for name in query.model_fields
    ]


def _error_response(status: int, body: dict[str, Any] | None = None) -> dict[str, Any]:
    from http.client import responses

    schema = body or {"$ref": "#/components/schemas/ErrorBody"}
    response: dict[str, Any] = {
        "description": responses.get(status, "Error"),
        "content": {"application/json": {"schema": schema}},
    }
    if status == 503:
        response["headers"] = {
            "Retry-After": {
                "description": "Seconds to wait before trying again.",
                "schema": {"type": "string", "pattern": "^[0-9]+$"},
            }
        }
    return response


def _links(created: type[BaseModel] | None) -> dict[str, Any]:
    """Links from a created job (or run) to the operations on it, for clients and
    stateful testing."""
    param = {Job: "job_id", Run: "run_id"}.get(created) if created else None
    return {
        op.operation_id[0].upper() + op.operation_id[1:]: {
            "operationId": op.operation_id,
            "parameters": {param: "$response.body#/id"},
        }
        for (template, _), op in OPERATIONS.items()
        if param and f"{{{param}}}" in template
    }


def _operation(
    template: str, op: Operation, refs: dict[Any, Any], components: dict[str, Any]
) -> dict[str, Any]:
    """One operation of the document: its parameters, body and responses."""
    operation: dict[str, Any] = {
        "summary": op.summary,
        "operationId": op.operation_id,
        "tags": [op.tag],
    }
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": _PATH_SCHEMAS.get(name, {"type": "string", "minLength": 1, "maxLength": 64}),
        }
        for name in _PATH_PARAM.findall(template)
    ]
    if op.query is not None:
        query_schema = components[refs[(op.query, "validation")]["$ref"].rsplit("/", 1)[1]]
        parameters += _query_parameters(op.query, query_schema)
    if parameters:
        operation["parameters"] = parameters
    if op.body is not None:
        operation["requestBody"] = {
            "required": op.body_required,
            "content": {"application/json": {"schema": refs[(op.body, "validation")]}},
        }
    success: dict[str, Any] = {"description": op.summary}
    if op.response is not None:
        success["content"] = {"application/json": {"schema": refs[(op.response, "serialization")]}}
    if op.content:  # other media types (besides JSON, for a summary's CSV)
        content = success.setdefault("content", {})
        content.update({media: {"schema": schema} for media, schema in op.content})
    if op.headers:
        success["headers"] = {
            name: {"description": text, "schema": schema, "required": True}
            for name, text, schema in op.headers
        }
    if op.status == 201:
        success["links"] = _links(op.response)
    responses: dict[str, Any] = {str(op.status): success}
    for status in sorted({*COMMON_ERRORS, *op.errors}):
        # A degraded health check answers 503 with the health itself.
        body = success.get("content", {}).get("application/json", {}).get("schema")
        responses[str(status)] = _error_response(
            status, body if status == 503 and op.response is Health else None
        )
    operation["responses"] = responses
    return operation


@functools.lru_cache(maxsize=8)
def document(base_url: str = "/") -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API served under ``base_url``."""
    refs, top = models_json_schema(_pairs(), ref_template="#/components/schemas/{model}")
    components = top.get("$defs", {})
    paths: dict[str, dict[str, Any]] = {}
    for (template, method), op in OPERATIONS.items():
        paths.setdefault(template, {})[method] = _operation(template, op, refs, components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "jupyter-sched",
            "version": __version__,
            "description": "Schedule Jupyter notebooks: jobs, runs, outputs and logs.",
        },
        "servers": [{"url": base_url.rstrip("/") + "/" + API_PREFIX}],
        "security": [{"token": []}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "token": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "`token <the server's token>`, or the Jupyter login cookie "
                    "(with an X-XSRFToken header on requests that change something).",
                }
            },
        },
    }
