"""The OpenAPI document: generated from the pydantic models, covering every route the
server registers; and a property-based run of schemathesis against a live server."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_server.base.handlers import APIHandler
from tornado.routing import PathMatches, Rule

from jupyter_sched import openapi, statuses
from jupyter_sched.apihandler import SchedHandler
from tests.servers import jupyter_server

from .conftest import REPO, Api

METHODS = ("get", "post", "patch", "delete", "put", "head", "options")


def registered_operations(web_app: Any) -> set[tuple[str, str]]:
    """(URL regex, method) of every scheduler handler method the server routes to (not
    counting jupyter_server's CORS preflight ``OPTIONS``, common to all its API handlers)."""
    found = set()

    def walk(rules: list[Rule]) -> None:
        for rule in rules:
            target = rule.target
            if hasattr(target, "rules"):
                walk(target.rules)
            elif isinstance(target, type) and issubclass(target, SchedHandler):
                assert isinstance(rule.matcher, PathMatches)
                pattern = rule.matcher.regex.pattern.removesuffix("$")
                for method in METHODS:
                    if getattr(target, method) is not getattr(APIHandler, method):
                        found.add((pattern, method))

    walk(web_app.default_router.rules)
    return found


async def test_openapi_covers_every_registered_route(
    api: Api, jp_serverapp: Any, jp_base_url: str
) -> None:
    document = await api.json("GET", "openapi.json")
    assert document["openapi"].startswith("3.1")
    assert document["servers"] == [{"url": jp_base_url.rstrip("/") + "/sched/api"}]

    registered = registered_operations(jp_serverapp.web_app)
    assert len(registered) == len(openapi.OPERATIONS)
    documented = {
        (jp_base_url + openapi.url_pattern(path), method)
        for path, methods in document["paths"].items()
        for method in methods
    }
    assert documented == registered

    schemas = document["components"]["schemas"]
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            where = f"{method.upper()} {path}"
            assert operation["operationId"] and operation["summary"], where
            assert "403" in operation["responses"] and "422" in operation["responses"], where
            success = [code for code in operation["responses"] if code.startswith("2")]
            assert len(success) == 1, where
            body = operation["responses"][success[0]]
            if success[0] != "204":
                assert body["content"], where
            if method in ("post", "patch") and path not in (
                "/jobs/{job_id}/pause",
                "/jobs/{job_id}/resume",
                "/runs/{run_id}/cancel",
                "/runs/{run_id}/rerun",
                "/jobs/{job_id}/webhook",
            ):
                assert "requestBody" in operation, where
            for param in operation.get("parameters", []):
                assert param["in"] in ("path", "query") and param["schema"], where
    for ref in _refs(document):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    # The request models are the contract's: unknown fields are refused.
    assert schemas["JobCreate"]["additionalProperties"] is False
    assert set(schemas["JobCreate"]["required"]) == {"name", "notebook"}
    # A job always carries its trigger in words.
    assert "trigger_description" in schemas["Job"]["required"]
    assert set(schemas["Run"]["properties"]) >= {
        "id", "job_id", "status", "trigger", "attempt", "scheduled_for", "queued_at",
        "started_at", "finished_at", "duration_seconds", "parameters", "progress", "error",
        "values", "batch_id",
    }  # fmt: skip


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def test_status_enum_carries_the_status_sets() -> None:
    """Wherever the run-status enum appears, it carries the sets the panel reasons with,
    as declared in :mod:`jupyter_sched.statuses` (the panel's unit test compares to them)."""
    schemas = openapi.document("/")["components"]["schemas"]
    enums = [schemas["Run"]["properties"]["status"]]
    enums += schemas["RunListQuery"]["properties"]["status"]["anyOf"][:1]
    for enum in enums:
        assert enum["enum"] == list(statuses.RUN_STATUSES)
        assert set(enum["x-final"]) == statuses.FINAL_STATUSES
        assert set(enum["x-failure"]) == statuses.FAILURE_STATUSES
        assert set(enum["x-retryable"]) == statuses.RETRYABLE_STATUSES


async def test_responses_match_their_schemas(api: Api) -> None:
    """A few real responses validated against the document (schemathesis does many more)."""
    import jsonschema

    document = await api.json("GET", "openapi.json")
    components = {"components": document["components"]}

    def check(path: str, method: str, status: int, value: Any) -> None:
        content = document["paths"][path][method]["responses"][str(status)]["content"]
        schema = {**content["application/json"]["schema"], **components}
        jsonschema.validate(value, schema, cls=jsonschema.Draft202012Validator)

    job = await api.json("POST", "jobs", {"name": "a", "notebook": "trivial.ipynb"}, status=201)
    check("/jobs", "post", 201, job)
    run = await api.json("POST", f"jobs/{job['id']}/run", status=201)
    check("/jobs/{job_id}/run", "post", 201, run)
    check("/jobs", "get", 200, await api.json("GET", "jobs"))
    check("/runs", "get", 200, await api.json("GET", "runs"))
    check("/jobs/{job_id}/stats", "get", 200, await api.json("GET", f"jobs/{job['id']}/stats"))
    check("/health", "get", 200, await api.json("GET", "health"))
    error = await api.error("GET", "jobs/nope", status=404)
    check("/jobs/{job_id}", "get", 404, error)


async def test_patch_takes_null_where_the_document_says(api: Api) -> None:
    """Each ``JobUpdate`` field takes ``null`` on the server exactly when the document
    says it does; the others are refused naming the field."""
    import jsonschema

    document = await api.json("GET", "openapi.json")
    validator = jsonschema.Draft202012Validator(
        {"$ref": "#/components/schemas/JobUpdate", "components": document["components"]}
    )
    job = await api.json("POST", "jobs", {"name": "a", "notebook": "trivial.ipynb"}, status=201)
    refused = []
    for name in document["components"]["schemas"]["JobUpdate"]["properties"]:
        body = {name: None}
        response = await api.request("PATCH", f"jobs/{job['id']}", body)
        assert (response.code == 200) == validator.is_valid(body), (name, response.body)
        if response.code != 200:
            assert response.code == 422 and json.loads(response.body)["field"] == name, name
            refused.append(name)
    assert len(refused) == 14, refused


# -- schemathesis against a live `jupyter server` -----------------------------------------


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """A ``jupyter server`` subprocess with the extension; yields (base URL, token)."""
    root = tmp_path / "root"
    (root / "reports").mkdir(parents=True)
    shutil.copy(REPO / "notebooks" / "sales_report.ipynb", root / "reports" / "sales.ipynb")
    shutil.copy(REPO / "tests" / "notebooks" / "trivial.ipynb", root / "trivial.ipynb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
    env.update(
        HOME=str(tmp_path),
        JUPYTER_DATA_DIR=str(tmp_path / "jupyter-data"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
    )
    token = "schemathesis-token"
    args = ["--SchedApp.embedded_workers=False", f"--SchedApp.data_dir={tmp_path / 'data'}"]
    with jupyter_server(
        tmp_path, root_dir=root, token=token, args=args, env=env, only_sched=True
    ) as (port, _):
        yield f"http://127.0.0.1:{port}", token


@pytest.mark.slow
@pytest.mark.timeout(900)  # a bounded run, but slow on a loaded machine: a safety net only
def test_schemathesis_finds_no_server_error(live_server: tuple[str, str], tmp_path: Path) -> None:
    base, token = live_server
    schemathesis = Path(sys.executable).parent / "schemathesis"
    result = subprocess.run(
        [
            str(schemathesis), "run", f"{base}/sched/api/openapi.json",
            "--header", f"Authorization: token {token}",
            "--checks", ",".join((
                "not_a_server_error", "status_code_conformance", "content_type_conformance",
                "response_schema_conformance", "response_headers_conformance",
                "negative_data_rejection", "ignored_auth",
            )),
            "--max-examples", "15", "--workers", "1", "--request-timeout", "120",
            "--max-failures", "5",
            # Token-authenticated (not by the Jupyter token): tested in test_api_workflows.
            "--exclude-operation-id", "callWebhook",
        ],
        capture_output=True, text=True, timeout=840, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    # every operation schemathesis loaded but the excluded one
    counts = re.search(r"(\d+) selected / (\d+) total", result.stdout)
    assert counts, result.stdout
    assert int(counts[1]) == int(counts[2]) - 1, result.stdout
