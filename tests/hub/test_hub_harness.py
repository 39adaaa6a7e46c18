"""The multi-user harness, proven with real parts: a JupyterHub configured by
``deploy/jupyterhub_config.py``, real Unix users, their servers started as themselves with
the scheduler extension loaded, and the hub keeping each user's server to its owner."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from tests.servers import HOST, PostgresServer, RedisServer, pid_alive

from .accounts import HubTestSession
from .conftest import HUB_PEOPLE
from .environment import HubEnvironment
from .hub import Hub, HubClient, HubError

STOP_DEADLINE = 60.0
#: Run as a test user: connect to the deployment's PostgreSQL and Redis without and with
#: their passwords (given on standard input), and say what each attempt got.
CONNECT_PROBE = """
import json, sys
import psycopg, redis
host, pg_port, redis_port, pg_password, redis_password = json.load(sys.stdin)
def attempt(connect):
    try:
        connect()
        return "ok"
    except (psycopg.Error, redis.RedisError) as exc:
        return f"{type(exc).__name__}: {exc}"
def pg(password):
    psycopg.connect(host=host, port=pg_port, user="postgres", dbname="postgres",
                    password=password, connect_timeout=20).close()
def rd(password):
    redis.Redis(host=host, port=redis_port, password=password, socket_timeout=20).ping()
print(json.dumps({
    "postgres": [attempt(lambda: pg(None)), attempt(lambda: pg(pg_password))],
    "redis": [attempt(lambda: rd(None)), attempt(lambda: rd(redis_password))],
}))
"""


@pytest.fixture(scope="module")
def servers(hub_client: HubClient, accounts: dict[str, str]) -> Iterator[dict[str, Any]]:
    """Everyone's server, started together (by user name); those still running after this
    module's tests are stopped."""
    names = [accounts[role] for role in HUB_PEOPLE]
    yield hub_client.start_servers(names)
    hub_client.stop_servers([name for name in names if hub_client.server_running(name)])


def _owner_facts(pid: int) -> tuple[str, tuple[int, ...], tuple[int, ...], str]:
    process = psutil.Process(pid)
    return process.username(), tuple(process.uids()), tuple(process.gids()), process.cwd()


def test_each_users_server_runs_as_that_unix_user(
    servers: dict[str, Any], hub_session: HubTestSession
) -> None:
    for role in ("alice", "bob"):
        account = hub_session.account(role)
        pid = servers[account.pw_name]["state"]["pid"]
        user, uids, gids, cwd = _owner_facts(pid)
        assert user == account.pw_name
        assert uids == (account.pw_uid,) * 3  # real, effective and saved: no way back to root
        assert gids == (account.pw_gid,) * 3
        assert cwd == account.pw_dir


def test_users_server_environment_holds_no_secret_of_the_hub(
    servers: dict[str, Any], hub: Hub, accounts: dict[str, str]
) -> None:
    name = accounts["alice"]
    environ = psutil.Process(servers[name]["state"]["pid"]).environ()
    assert environ["JUPYTERHUB_USER"] == name
    assert "CONFIGPROXY_AUTH_TOKEN" not in environ
    # The one scheduler variable is the service's address (for `jupyter sched` in the
    # user's terminals): an address without credentials, no setting of the deployment.
    sched_vars = {key: value for key, value in environ.items() if key.startswith("JUPYTER_SCHED_")}
    assert set(sched_vars) == {"JUPYTER_SCHED_SERVICE_URL"}, sched_vars
    assert "@" not in sched_vars["JUPYTER_SCHED_SERVICE_URL"]
    assert not [key for key, value in environ.items() if hub.admin_token in value], environ.keys()


def test_scheduler_extension_answers_in_each_users_server(
    servers: dict[str, Any],
    hub_client: HubClient,
    accounts: dict[str, str],
    user_tokens: dict[str, str],
) -> None:
    for role in ("alice", "bob"):
        response = hub_client.server_request(accounts[role], "sched/api/health", user_tokens[role])
        assert response.status_code == 200, response.text
        health = response.json()
        assert health["database"] == "ok"
        assert health["version"]


def test_a_users_token_does_not_open_another_users_server(
    servers: dict[str, Any],
    hub_client: HubClient,
    accounts: dict[str, str],
    user_tokens: dict[str, str],
) -> None:
    for intruder, owner in (("alice", "bob"), ("bob", "alice")):
        response = hub_client.server_request(
            accounts[owner], "sched/api/health", user_tokens[intruder]
        )
        assert response.status_code == 403, (intruder, owner, response.text)
        # and not even the server's contents listing
        response = hub_client.server_request(accounts[owner], "api/contents", user_tokens[intruder])
        assert response.status_code == 403, (intruder, owner, response.text)


def test_carol_administers_the_hub_through_the_admins_group(
    hub_client: HubClient, accounts: dict[str, str], user_tokens: dict[str, str]
) -> None:
    assert hub_client.user_model(accounts["carol"])["admin"] is True
    assert hub_client.user_model(accounts["alice"])["admin"] is False
    assert hub_client.api("GET", "users", token=user_tokens["carol"]).status_code == 200
    assert hub_client.api("GET", "users", token=user_tokens["alice"]).status_code == 403


def test_people_log_in_with_their_unix_password_if_the_deployment_lets_them(
    hub_client: HubClient, hub: Hub, hub_session: HubTestSession
) -> None:
    for role, admin in (("alice", False), ("carol", True)):
        name, password = hub_session.accounts[role], hub_session.passwords[role]
        browser = hub_client.login(name, password)
        response = browser.get(f"{hub.url}/hub/api/user", timeout=60)
        assert response.status_code == 200, response.text
        assert (response.json()["name"], response.json()["admin"]) == (name, admin)
    with pytest.raises(HubError, match=r"login of .*: 403"):
        hub_client.login(hub_session.accounts["bob"], hub_session.passwords["alice"])
    # eve's password is right, but she is in neither of the deployment's groups
    with pytest.raises(HubError, match=r"login of .*: 403"):
        hub_client.login(hub_session.accounts["eve"], hub_session.passwords["eve"])


def test_a_server_stops_through_the_hub_api(
    servers: dict[str, Any],
    hub_client: HubClient,
    accounts: dict[str, str],
    user_tokens: dict[str, str],
) -> None:
    name = accounts["carol"]
    pid = servers[name]["state"]["pid"]
    assert pid_alive(pid)
    hub_client.stop_server(name)
    deadline = time.monotonic() + STOP_DEADLINE
    while pid_alive(pid):
        assert time.monotonic() < deadline, f"{name}'s server process {pid} still runs"
        time.sleep(0.1)
    assert not hub_client.server_running(name)
    # The proxy no longer routes to it: the hub answers that the server is not running.
    response = hub_client.server_request(
        name, "sched/api/health", user_tokens["carol"], allow_redirects=True
    )
    assert response.status_code == 424, response.text


def test_deployment_database_and_queue_refuse_users_without_their_passwords(
    hub_postgres: PostgresServer,
    hub_redis: RedisServer,
    hub_environment: HubEnvironment,
    hub_session: HubTestSession,
) -> None:
    alice = hub_session.account("alice")
    secrets = [HOST, hub_postgres.port, hub_redis.port, hub_postgres.password, hub_redis.password]
    result = subprocess.run(
        [str(hub_environment.python), "-c", CONNECT_PROBE],
        input=json.dumps(secrets),
        user=alice.pw_uid,
        group=alice.pw_gid,
        extra_groups=[],
        capture_output=True,
        text=True,
        cwd=alice.pw_dir,
        env={"PATH": "/usr/bin:/bin", "HOME": alice.pw_dir, "LANG": "C.UTF-8"},
        timeout=300,
        check=True,
    )
    outcome = json.loads(result.stdout)
    without, with_password = outcome["postgres"]
    assert "password" in without, without
    assert with_password == "ok"
    without, with_password = outcome["redis"]
    assert "authenticat" in without.lower(), without  # NOAUTH, or HELLO refused
    assert with_password == "ok"
