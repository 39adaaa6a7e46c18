"""``GET whoami``: who the API takes the caller for, and whether they see every user's jobs
(the panel shows its "all users" switch and owner column from it)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from jupyter_server.auth.identity import IdentityProvider, User
from tornado import web

from jupyter_sched.config import default_owner
from jupyter_sched.hubservice import SchedUser

from .conftest import Api


class TokenPerHubUser(IdentityProvider):
    """Test identity: ``token <name>-secret`` is hub user ``<name>``; carol is a scheduler
    admin (as the hub's ``custom:sched:admin`` scope makes someone)."""

    def get_user(self, handler: web.RequestHandler) -> User | None:
        header = handler.request.headers.get("Authorization", "")
        match = re.fullmatch(r"token (\w+)-secret", header)
        if match is None:
            return None
        handler._token_authenticated = True  # type: ignore[attr-defined]
        name = match.group(1)
        return SchedUser(username=name, name=name, sched_admin=name == "carol")


async def test_a_single_user_server_says_who_without_admin(api: Api) -> None:
    assert await api.json("GET", "whoami") == {"name": default_owner(), "admin": False}


class TestHubIdentities:
    @pytest.fixture
    def server_config(self) -> dict[str, Any]:
        return {"identity_provider_class": TokenPerHubUser}

    async def test_admins_are_told_so_and_list_everyones(self, api: Api) -> None:
        alice = api.as_user({"Authorization": "token alice-secret"})
        carol = api.as_user({"Authorization": "token carol-secret"})
        assert await alice.json("GET", "whoami") == {"name": "alice", "admin": False}
        assert await carol.json("GET", "whoami") == {"name": "carol", "admin": True}
        job = await alice.json("POST", "jobs", {"name": "a", "notebook": "trivial.ipynb"},
                               status=201)  # fmt: skip
        everyone = (await carol.json("GET", "jobs"))["jobs"]
        assert [(j["id"], j["owner"]) for j in everyone] == [(job["id"], "alice")]
        assert (await carol.json("GET", "jobs", params={"owner": "carol"}))["jobs"] == []
        assert (await alice.json("GET", "jobs", params={"owner": "carol"}))["jobs"] == []
        assert (await api.as_user({}).request("GET", "whoami")).code == 403
