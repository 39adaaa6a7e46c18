"""Hostile and broken input: notebook paths that leave the root, bodies that are not what
the contract says. Each is refused with a 4xx that names the field, and nothing is stored
or read outside the root."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import Api

LEAK = "leaked_secret_parameter"


@pytest.fixture
def outside(jp_root_dir: Path) -> Path:
    """Notebooks outside the root: next to it, in a sibling whose name extends the root's
    (``root2``), and a symlink and a symlinked folder inside the root pointing out."""
    parent = jp_root_dir.parent
    source = (jp_root_dir / "trivial.ipynb").read_text().replace("x = 1", f"{LEAK} = 1")
    (parent / "x.ipynb").write_text(source)
    sibling = parent / f"{jp_root_dir.name}2"
    sibling.mkdir()
    (sibling / "x.ipynb").write_text(source)
    (jp_root_dir / "evil.ipynb").symlink_to(parent / "x.ipynb")
    (jp_root_dir / "evil_dir").symlink_to(sibling, target_is_directory=True)
    return parent


async def test_paths_outside_the_root_are_refused(
    api: Api, jp_root_dir: Path, outside: Path
) -> None:
    root_name = jp_root_dir.name
    cases = {
        "parent": "../x.ipynb",
        "sibling prefix": f"../{root_name}2/x.ipynb",
        "absolute": str(outside / "x.ipynb"),
        "absolute inside": str(jp_root_dir / "trivial.ipynb"),
        "home": "~/x.ipynb",
        "percent-encoded dots": "%2e%2e/x.ipynb",
        "nested parent": "reports/../../x.ipynb",
        "nul byte": "trivial.ipynb\x00.txt",
        "symlink out": "evil.ipynb",
        "symlinked dir": "evil_dir/x.ipynb",
        "not a notebook": "reports/../trivial.py",
    }
    for case, path in cases.items():
        body = {"name": case, "notebook": path}
        response = await api.request("POST", "jobs", body)
        error = json.loads(response.body)
        assert 400 <= response.code < 500, (case, response.code, error)
        assert error["field"] == "notebook" and error["message"], (case, error)
        assert LEAK not in response.body.decode()

        response = await api.request("GET", "notebooks/parameters", params={"path": path})
        error = json.loads(response.body)
        assert 400 <= response.code < 500, (case, response.code, error)
        assert error["field"] == "path", (case, error)
        assert LEAK not in response.body.decode()

    # A literal %2e%2e in the query string decodes to "..": refused as outside the root.
    for raw in ("%2e%2e/x.ipynb", "%2E%2E%2Fx.ipynb", f"..%2F{root_name}2%2Fx.ipynb", "x%00.ipynb"):
        error = await api.error("GET", f"notebooks/parameters?path={raw}", status=400)
        assert error["field"] == "path" and error["reason"] == "path_outside_root", raw

    assert (await api.json("GET", "jobs"))["jobs"] == []

    # Moving a job onto such a path later is refused the same way.
    job = await api.json("POST", "jobs", {"name": "ok", "notebook": "trivial.ipynb"}, status=201)
    error = await api.error("PATCH", f"jobs/{job['id']}", {"notebook": "../x.ipynb"}, status=400)
    assert error["field"] == "notebook"
    assert (await api.json("GET", f"jobs/{job['id']}"))["notebook"] == "trivial.ipynb"


BAD_BODIES: dict[str, tuple[Any, int, str]] = {
    "invalid cron": (
        {"trigger": {"kind": "cron", "cron": "61 * * * *"}},
        422,
        "trigger.cron",
    ),
    "cron with too many fields": (
        {"trigger": {"kind": "cron", "cron": "* * * * * * * *"}},
        422,
        "trigger.cron",
    ),
    "unknown timezone": (
        {"trigger": {"kind": "cron", "cron": "0 6 * * *", "timezone": "Mars/Olympus_Mons"}},
        422,
        "trigger.timezone",
    ),
    "unknown trigger kind": ({"trigger": {"kind": "hourly"}}, 422, "trigger"),
    "unknown trigger field": (
        {"trigger": {"kind": "interval", "every_seconds": 60, "jitter": 5}},
        422,
        "trigger.jitter",
    ),
    "unknown field": ({"colour": "red"}, 422, "colour"),
    "wrong parameter type": ({"parameters": {"x": "two"}}, 422, "parameters.x"),
    "undeclared parameter": ({"parameters": {"y": 2}}, 422, "parameters.y"),
    "parameters not an object": ({"parameters": [1, 2]}, 422, "parameters"),
    "number for a date": ({"start_at": 1700000000}, 422, "start_at"),
    "naive date": ({"trigger": {"kind": "once", "at": "2030-01-01T00:00:00"}}, 422, "trigger.at"),
    "once in the past": (
        {"trigger": {"kind": "once", "at": "2001-01-01T00:00:00Z"}},
        422,
        "trigger.at",
    ),
    "string for an integer": ({"retries": "2"}, 422, "retries"),
    "bool for an integer": ({"priority": True}, 422, "priority"),
    "negative retries": ({"retries": -1}, 422, "retries"),
    "unknown overlap": ({"overlap": "sometimes"}, 422, "overlap"),
    "unknown output format": ({"output_formats": ["docx"]}, 422, "output_formats.0"),
    "unknown kernel": ({"kernel": "no-such-kernel"}, 422, "kernel"),
    "slow notification without a threshold": (
        {"notifications": [{"kind": "webhook", "url": "https://hooks.example/x", "on": ["slow"]}]},
        422,
        "notifications.0.slower_than_seconds",
    ),
    "bad email address": (
        {"notifications": [{"kind": "email", "to": ["nobody"]}]},
        422,
        "notifications.0.to.0",
    ),
    "another user's personal queue": ({"queue": "user-mallory"}, 422, "queue"),
    "empty name": ({"name": ""}, 422, "name"),
    "missing name": ({"name": None}, 422, "name"),
}


async def test_bad_bodies_name_the_field_and_store_nothing(api: Api) -> None:
    for case, (change, status, field) in BAD_BODIES.items():
        body = {"name": case, "notebook": "trivial.ipynb", **change}
        if change.get("name", "") is None:
            del body["name"]
        error = await api.error("POST", "jobs", body, status=status)
        assert error["field"] == field, (case, error)
        assert error["reason"] == "invalid", (case, error)

    for case, raw in {
        "not JSON": b"{name: 'x'",
        "JSON array": b"[1, 2]",
        "JSON string": b'"job"',
        "not UTF-8": b'{"name": "\xff"}',
        "deeply nested": b"[" * 10_000 + b"]" * 10_000,
        "empty": b"",
        # JSON Python reads but the validator's parser refuses: still "not JSON", a 400
        "lone surrogate": b'{"name": "\\ud800", "notebook": "trivial.ipynb"}',
        "nested in an object": b'{"name": "x", "notebook": "trivial.ipynb", "parameters": '
        + b'{"x": '
        + b"[" * 500
        + b"]" * 500
        + b"}}",
    }.items():
        error = await api.error("POST", "jobs", raw=raw, status=400)
        assert error["field"] == "body" and error["reason"] == "bad_request", (case, error)

    big = {"name": "big", "notebook": "trivial.ipynb", "parameters": {"x": 1}, "pad": "x" * 70_000}
    error = await api.error("POST", "jobs", big, status=413)
    assert error["field"] == "body" and error["reason"] == "too_large"
    assert "limit" in error["message"]

    assert (await api.json("GET", "jobs"))["jobs"] == []
    assert (await api.json("GET", "runs"))["runs"] == []


async def test_bad_bodies_on_other_routes(api: Api) -> None:
    job = await api.json("POST", "jobs", {"name": "ok", "notebook": "trivial.ipynb"}, status=201)
    cases = [
        (
            "PATCH",
            f"jobs/{job['id']}",
            {"trigger": {"kind": "cron", "cron": "nope"}},
            "trigger.cron",
        ),
        ("PATCH", f"jobs/{job['id']}", {"parameters": {"x": 1.5}}, "parameters.x"),
        ("PATCH", f"jobs/{job['id']}", {"owner": "mallory"}, "owner"),
        ("POST", f"jobs/{job['id']}/run", {"parameters": {"x": "1"}}, "parameters.x"),
        (
            "POST",
            "preview",
            {"trigger": {"kind": "interval", "every_seconds": -1}},
            "trigger.every_seconds",
        ),
        (
            "POST",
            "preview",
            {"trigger": {"kind": "cron", "cron": "0 6 * * *"}, "count": 500},
            "count",
        ),
        (
            "POST",
            "preview",
            {"trigger": {"kind": "once", "at": "9999-12-31T23:59:59Z"}},
            "trigger.at",
        ),
        ("POST", "preview", {}, "trigger"),
    ]
    for method, path, body, field in cases:
        error = await api.error(method, path, body, status=422)
        assert error["field"] == field, (method, path, body, error)
    error = await api.error("PATCH", f"jobs/{job['id']}", raw=b"nope", status=400)
    assert error["field"] == "body"
    unchanged = await api.json("GET", f"jobs/{job['id']}")
    assert unchanged["version"] == job["version"] and unchanged["trigger"] == job["trigger"]
    assert (await api.json("GET", "runs"))["runs"] == []


async def test_parameter_names_are_identifiers_everywhere(api: Api, tmp_path: Path) -> None:
    # no_params.ipynb has no parameters cell: any name would be pasted into code as is.
    marker = tmp_path / "owned"
    evil = f"a=1;__import__('pathlib').Path({str(marker)!r}).touch();b"
    job = await api.json(
        "POST", "jobs", {"name": "plain", "notebook": "no_params.ipynb"}, status=201
    )
    token = (await api.json("POST", f"jobs/{job['id']}/webhook", status=201))["token"]
    job = await api.json("GET", f"jobs/{job['id']}")
    for name in (evil, "class", "None", "1x", "a b", "x-y", ""):
        body = {"name": "n", "notebook": "no_params.ipynb", "parameters": {name: 1}}
        error = await api.error("POST", "jobs", body, status=422)
        assert error["field"] == f"parameters.{name}", error
        assert "identifier" in error["message"]
        patch = {"parameters": {name: 1}}
        error = await api.error("PATCH", f"jobs/{job['id']}", patch, status=422)
        assert error["field"] == f"parameters.{name}", error
        error = await api.error("POST", f"jobs/{job['id']}/run", patch, status=422)
        assert error["field"] == f"parameters.{name}", error
    assert (await api.json("GET", f"jobs/{job['id']}"))["version"] == job["version"]
    assert (await api.json("GET", "runs"))["runs"] == []
    assert not marker.exists()

    # Identifiers pass, soft keywords and non-ASCII letters included.
    names = {"été": 1, "match": 2, "_private": 3, "x1": 4}
    patched = await api.json("PATCH", f"jobs/{job['id']}", {"parameters": names})
    assert patched["parameters"] == names
    run = await api.json("POST", f"jobs/{job['id']}/run", {"parameters": {"y": 1}}, status=201)
    assert run["parameters"] == {**names, "y": 1}
    # The event payload arrives under one fixed name, and a webhook call's too.
    hook = await api.request(
        "POST", f"webhooks/{job['id']}", {"a b": 1},
        headers={"Authorization": f"Bearer {token}"},
    )  # fmt: skip
    assert hook.code == 201, hook.body


async def test_numbers_must_be_finite(api: Api) -> None:
    event = {"kind": "event", "event": "loaded"}
    job = await api.json(
        "POST", "jobs", {"name": "e", "notebook": "no_params.ipynb", "trigger": event},
        status=201,
    )  # fmt: skip
    token = (await api.json("POST", f"jobs/{job['id']}/webhook", status=201))["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    # NaN and Infinity are not JSON, but Python writes them: refused by field like 1e400
    numbers = ("1e400", "-1e400", '[1, {"k": 1e999}]', "NaN", "-Infinity", '{"k": [Infinity]}')
    for number in numbers:
        parameters = '{"x": ' + number + "}"
        body = '{"parameters": ' + parameters + "}"
        cases = [
            ("POST", "jobs", '{"name": "n", "notebook": "no_params.ipynb", ' + body[1:],
             "parameters.x", {}),
            ("PATCH", f"jobs/{job['id']}", body, "parameters.x", {}),
            ("POST", f"jobs/{job['id']}/run", body, "parameters.x", {}),
            ("POST", "events/loaded", parameters, "x", {}),
            ("POST", f"webhooks/{job['id']}", parameters, "x", bearer),
        ]  # fmt: skip
        for method, path, raw, expected, headers in cases:
            error = await api.error(method, path, raw=raw, headers=headers, status=422)
            assert error["field"] == expected, (method, path, error)
            assert "finite" in error["message"]
    # and in a field that is a number, not any JSON value
    for field, number in (("retry_backoff", "NaN"), ("timeout_seconds", "Infinity")):
        raw = '{"name": "n", "notebook": "no_params.ipynb", "' + field + '": ' + number + "}"
        error = await api.error("POST", "jobs", raw=raw, status=422)
        assert error["field"] == field and "finite" in error["message"], error
        error = await api.error("PATCH", f"jobs/{job['id']}", raw=raw, status=422)
        assert error["field"] == field and "finite" in error["message"], error
    assert (await api.json("GET", "runs"))["runs"] == []
    assert len((await api.json("GET", "jobs"))["jobs"]) == 1
    # Large finite numbers are fine.
    run = await api.json(
        "POST", f"jobs/{job['id']}/run", raw='{"parameters": {"x": 1e300}}', status=201
    )
    assert run["parameters"] == {"x": 1e300}
