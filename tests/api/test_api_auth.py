"""The auth matrix: every route refuses requests without credentials, honours the
server's authorizer, needs XSRF on cookie-authenticated changes, and keeps users apart."""

from __future__ import annotations

import re
from http.cookies import SimpleCookie
from typing import Any

import pytest
from jupyter_server.auth.authorizer import Authorizer
from jupyter_server.auth.identity import IdentityProvider, User
from tornado import web

from jupyter_sched.apihandler import AUTH_RESOURCE
from jupyter_sched.handlers import ROUTES

from .conftest import Api

METHODS = ("get", "post", "patch", "delete", "put")


def route_calls(job_id: str, run_id: str, batch_id: str | None = None) -> list[tuple[str, str]]:
    """(method, path) of every operation of every route, with real ids filled in."""
    calls = []
    for template, handler in ROUTES:
        path = template.lstrip("/").format(
            job_id=job_id, run_id=run_id, other_id=run_id, batch_id=batch_id or run_id,
            name="sales.loaded",
        )  # fmt: skip
        for method in METHODS:
            if getattr(handler, method) is not getattr(web.RequestHandler, method):
                calls.append((method.upper(), path))
    return calls


async def make_job_and_run(api: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    job = await api.json("POST", "jobs", {"name": "mine", "notebook": "trivial.ipynb"}, status=201)
    run = await api.json("POST", f"jobs/{job['id']}/run", status=201)
    return job, run


async def test_every_route_needs_credentials(api: Api) -> None:
    job, run = await make_job_and_run(api)
    calls = route_calls(job["id"], run["id"])
    assert len(calls) == 32
    anonymous = api.as_user({})
    for method, path in calls:
        body = b"{}" if method in ("POST", "PATCH") else None
        response = await anonymous.request(method, path, raw=body)
        assert response.code == 403, (method, path, response.code)
    # Nothing changed.
    assert (await api.json("GET", f"jobs/{job['id']}"))["version"] == job["version"]
    assert len((await api.json("GET", "runs"))["runs"]) == 1


class RecordingAuthorizer(Authorizer):
    """Allows what ``allowed`` lists and records what it was asked."""

    allowed: frozenset[str] = frozenset()
    asked: list[tuple[str, str]] = []

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        type(self).asked.append((action, resource))
        return action in self.allowed


class DenyAll(RecordingAuthorizer):
    allowed = frozenset()


class ReadOnly(RecordingAuthorizer):
    allowed = frozenset({"read"})


class TestDenyAllAuthorizer:
    @pytest.fixture
    def server_config(self) -> dict[str, Any]:
        return {"authorizer_class": DenyAll}

    async def test_every_route_is_refused(self, api: Api, sched_app: Any) -> None:
        calls = route_calls("01ARZ3NDEKTSV4RRFFQ69G5FAV", "01ARZ3NDEKTSV4RRFFQ69G5FAV")
        DenyAll.asked.clear()
        for method, path in calls:
            body = b"{}" if method in ("POST", "PATCH") else None
            response = await api.request(method, path, raw=body)
            assert response.code == 403, (method, path, response.code)
        assert {resource for _, resource in DenyAll.asked} == {AUTH_RESOURCE}
        assert len(DenyAll.asked) == len(calls)
        assert sched_app.service.load().active_jobs == 0


class TestReadOnlyAuthorizer:
    @pytest.fixture
    def server_config(self) -> dict[str, Any]:
        return {"authorizer_class": ReadOnly}

    async def test_reads_pass_and_writes_are_refused(self, api: Api) -> None:
        for method, path in route_calls("01ARZ3NDEKTSV4RRFFQ69G5FAV", "01ARZ3NDEKTSV4RRFFQ69G5FAV"):
            body = b"{}" if method in ("POST", "PATCH") else None
            response = await api.request(method, path, raw=body)
            if method == "GET":
                assert response.code != 403, (method, path)
            else:
                assert response.code == 403, (method, path, response.code)


async def test_cookie_authenticated_changes_need_xsrf(
    api: Api, jp_auth_header: dict[str, str]
) -> None:
    token = jp_auth_header["Authorization"].split()[1]
    response = await api.as_user({}).request("GET", f"health?token={token}")
    assert response.code == 200
    cookies = SimpleCookie()
    for header in response.headers.get_list("Set-Cookie"):
        cookies.load(header)
    login = "; ".join(f"{k}={v.value}" for k, v in cookies.items() if k.startswith("username"))
    assert login
    browser = api.as_user({"Cookie": login})

    assert (await browser.json("GET", "jobs"))["jobs"] == []  # GETs need no XSRF
    body = {"name": "csrf", "notebook": "trivial.ipynb"}
    response = await browser.request("POST", "jobs", body)
    assert response.code == 403
    assert (await api.json("GET", "jobs"))["jobs"] == []

    with_xsrf = api.as_user({"Cookie": f"{login}; _xsrf=xsrf-value", "X-XSRFToken": "xsrf-value"})
    created = await with_xsrf.json("POST", "jobs", body, status=201)
    mismatched = api.as_user({"Cookie": f"{login}; _xsrf=xsrf-value", "X-XSRFToken": "other"})
    response = await mismatched.request("DELETE", f"jobs/{created['id']}")
    assert response.code == 403
    await api.json("GET", f"jobs/{created['id']}")


class TokenPerUser(IdentityProvider):
    """Test identity: ``Authorization: token <name>-secret`` is user ``<name>``."""

    def get_user(self, handler: web.RequestHandler) -> User | None:
        match = re.fullmatch(
            r"token (\w+)-secret", handler.request.headers.get("Authorization", "")
        )
        if match is None:
            return None
        handler._token_authenticated = True  # type: ignore[attr-defined]
        return User(match.group(1))


class TestUsersAreKeptApart:
    @pytest.fixture
    def server_config(self) -> dict[str, Any]:
        return {"identity_provider_class": TokenPerUser}

    @pytest.fixture
    def sched_config(self, sched_config: dict[str, Any]) -> dict[str, Any]:
        return {**sched_config, "embedded_workers": True}

    @pytest.mark.slow
    async def test_second_user_gets_404(self, api: Api) -> None:
        alice = api.as_user({"Authorization": "token alice-secret"})
        bob = api.as_user({"Authorization": "token bob-secret"})
        job, run = await make_job_and_run(alice)
        assert job["owner"] == "alice"
        sweep = {"name": "sets", "notebook": "trivial.ipynb", "sweep": [{}, {}]}
        swept = await alice.json("POST", "jobs", sweep, status=201)
        batch_id = (await alice.json("POST", f"jobs/{swept['id']}/run", status=201))["batch_id"]
        assert (await alice.wait_run(run["id"]))["status"] == "succeeded"
        assert (await alice.request("GET", f"runs/{run['id']}/output")).code == 200
        assert (await alice.request("GET", f"runs/{run['id']}/log")).body

        theirs = [
            (method, path)
            for method, path in route_calls(job["id"], run["id"], batch_id)
            if job["id"] in path or run["id"] in path or batch_id in path
        ]
        assert len(theirs) == 20
        for method, path in theirs:
            body = b"{}" if method in ("POST", "PATCH") else None
            if "/backfill" in path:  # a valid range: the job, not the body, is refused
                body = b'{"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"}'
            error = await bob.error(method, path, raw=body, status=404)
            assert error["reason"] == "not_found", (method, path)
        assert (await bob.json("GET", "jobs"))["jobs"] == []
        assert (await bob.json("GET", "runs"))["runs"] == []
        assert (await bob.json("GET", "batches"))["batches"] == []
        assert (await bob.json("GET", "runs", params={"job_id": job["id"]}))["runs"] == []
        assert (await alice.json("GET", f"jobs/{job['id']}"))["version"] == job["version"]

        nobody = api.as_user({"Authorization": "token mallory"})
        assert (await nobody.request("GET", "jobs")).code == 403
