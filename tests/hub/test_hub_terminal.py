"""`jupyter sched` in a user's terminal on a real JupyterHub: the user commands go through
the scheduler service with the user's hub token, and nothing else is needed.

Each command runs as the person's Unix user, in their home, with exactly the environment
their single-user server has (what a terminal of their Lab inherits): the hub token of the
server and the service's address, no scheduler credential.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import nbformat
import psutil
import pytest
import requests

from tests.conftest import wait_until

from .accounts import HubTestSession
from .environment import HubEnvironment
from .hub import Hub, HubClient
from .test_hub_scheduler import SERVICE, _notebook, _printed, _write_as

DEADLINE = 600.0
HELLO_CELLS = [
    ("label = 'default'", ["parameters"]),
    ("import json, os\nprint('HELLO ' + json.dumps({'uid': os.getuid(), 'label': label}))", []),
]


class Terminal:
    """Runs ``jupyter sched`` as one person, with their server's environment."""

    def __init__(self, account: Any, environ: dict[str, str], command: Path) -> None:
        self.account = account
        self.environ = environ
        self.command = command

    def sched(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.command), *args],
            env=self.environ,
            cwd=self.account.pw_dir,
            user=self.account.pw_uid,
            group=self.account.pw_gid,
            extra_groups=os.getgrouplist(self.account.pw_name, self.account.pw_gid),
            capture_output=True,
            text=True,
            timeout=DEADLINE,
            check=False,
        )

    def ok(self, *args: str) -> str:
        done = self.sched(*args)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout


@pytest.fixture(scope="module")
def terminals(
    hub_client: HubClient,
    hub_session: HubTestSession,
    hub_environment: HubEnvironment,
    accounts: dict[str, str],
) -> dict[str, Terminal]:
    """alice's and bob's terminals: the environment of their running servers."""
    found = {}
    for role in ("alice", "bob"):
        name = accounts[role]
        if not hub_client.server_running(name):
            hub_client.start_server(name)
        pid = hub_client.user_model(name)["servers"][""]["state"]["pid"]
        environ = psutil.Process(pid).environ()
        command = hub_environment.bin / "jupyter-sched"
        found[role] = Terminal(hub_session.account(role), environ, command)
    return found


def _wait_for_workers(hub: Hub, token: str) -> None:
    url = f"{hub.url}/services/{SERVICE}/sched/api/workers"

    def registered() -> bool:
        response = requests.get(url, headers={"Authorization": f"token {token}"}, timeout=60)
        return response.status_code == 200 and bool(response.json()["workers"])

    wait_until(registered, timeout=DEADLINE, what="a worker registered with the service")


def test_a_users_terminal_works_through_the_service_with_her_token_alone(
    hub: Hub,
    hub_session: HubTestSession,
    terminals: dict[str, Terminal],
    user_tokens: dict[str, str],
    workers: list[Any],
    sched_deployment: Any,
) -> None:
    alice, bob = terminals["alice"], terminals["bob"]
    assert alice.environ["JUPYTER_SCHED_SERVICE_URL"].endswith(f"/services/{SERVICE}/")
    assert "JUPYTER_SCHED_DB_URL" not in alice.environ
    account = hub_session.account("alice")
    _write_as(account, Path(account.pw_dir) / "cli" / "hello.ipynb",
              nbformat.writes(_notebook(HELLO_CELLS)))  # fmt: skip

    created = alice.ok("jobs", "create", "cli/hello.ipynb", "--name", "from the terminal")
    job_id = created.split()[1].rstrip(":")
    listed = json.loads(alice.ok("jobs", "list", "--json"))["jobs"]
    assert job_id in [job["id"] for job in listed]
    assert {job["owner"] for job in listed} == {hub_session.accounts["alice"]}

    # A one-off run, followed to its end, its files downloaded into her cache.
    _wait_for_workers(hub, user_tokens["alice"])
    ran = alice.sched("run", "cli/hello.ipynb", "-p", "label", "terminal")
    assert ran.returncode == 0, (ran.stdout, ran.stderr)
    run_id = ran.stdout.split()[1].rstrip(":")
    assert "succeeded" in ran.stdout
    output = Path(account.pw_dir) / ".cache" / "jupyter-sched" / "runs" / run_id / "output.ipynb"
    assert str(output) in ran.stdout
    assert output.stat().st_uid == account.pw_uid
    facts = _printed(json.loads(output.read_text()), "HELLO ")
    assert facts == {"uid": account.pw_uid, "label": "terminal"}
    shown = json.loads(alice.ok("runs", "show", run_id, "--json"))
    assert (shown["status"], shown["owner"]) == ("succeeded", hub_session.accounts["alice"])
    started = alice.ok("jobs", "run", job_id).strip()
    assert json.loads(alice.ok("runs", "show", started, "--json"))["job_id"] == job_id

    # bob's terminal: alice's job and runs do not exist for him; one line each.
    for args in (("jobs", "show", job_id), ("runs", "show", run_id), ("jobs", "pause", job_id)):
        refused = bob.sched(*args)
        assert refused.returncode == 1, (args, refused.stdout, refused.stderr)
        assert "no job" in refused.stderr or "no run" in refused.stderr, refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    # What needs the scheduler's credentials is refused in a user's terminal, in one line.
    for args in (("worker",), ("db", "upgrade"), ("prune", "--dry-run")):
        refused = alice.sched(*args)
        assert refused.returncode == 1, (args, refused.stdout, refused.stderr)
        assert "credentials" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert not list(Path(account.pw_dir).glob(".local/share/jupyter/sched*"))
    assert not (sched_deployment.data_dir / "sched.db").exists()


def test_the_panel_gives_an_admin_every_users_jobs_with_their_owners(
    hub: Hub,
    hub_client: HubClient,
    hub_session: HubTestSession,
    terminals: dict[str, Terminal],
) -> None:
    for role in ("alice", "bob"):
        account = hub_session.account(role)
        _write_as(account, Path(account.pw_dir) / "cli" / "panel.ipynb",
                  nbformat.writes(_notebook(HELLO_CELLS)))  # fmt: skip
        terminals[role].ok("jobs", "create", "cli/panel.ipynb", "--name", f"{role}'s panel job")
    carol = hub_session.accounts["carol"]
    if not hub_client.server_running(carol):
        hub_client.start_server(carol)
    owners = ",".join(hub_session.accounts[role] for role in ("alice", "bob"))
    seen = _panel(hub, hub_session, "carol", EXPECT_SWITCH="yes", OWNERS=owners)
    assert seen.startswith("switch; owners: ")
    assert set(owners.split(",")) <= set(seen.split(": ", 1)[1].split(","))
    alice_sees = _panel(hub, hub_session, "alice", EXPECT_SWITCH="no", JOB_NAME="alice's panel job")
    assert alice_sees == "no switch"
    hub_client.stop_server(carol)


def _panel(hub: Hub, hub_session: HubTestSession, role: str, **env: str) -> str:
    """What tests/hub/panel_all_users.mjs saw in ``role``'s Lab (its last line)."""
    result = subprocess.run(
        ["node", str(Path(__file__).with_name("panel_all_users.mjs"))],
        env={
            **os.environ,
            "HUB_URL": hub.url,
            "HUB_USER": hub_session.accounts[role],
            "HUB_PASSWORD": hub_session.passwords[role],
            **env,
        },
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_only_the_schedulers_admins_read_the_services_metrics(
    hub: Hub, user_tokens: dict[str, str]
) -> None:
    url = f"{hub.url}/services/{SERVICE}/metrics"

    def status(token: str | None) -> int:
        headers = {"Authorization": f"token {token}"} if token else {}
        return requests.get(url, headers=headers, timeout=60).status_code

    assert status(user_tokens["bob"]) == 403
    assert status(user_tokens["alice"]) == 403
    assert status(None) in (401, 403, 404)  # no token: the service never answers it
    carol = requests.get(url, headers={"Authorization": f"token {user_tokens['carol']}"},
                         timeout=60)  # fmt: skip
    assert carol.status_code == 200, carol.text
    assert "jupyter_sched_runs_total" in carol.text


def test_database_connections_by_process_when_idle(
    hub_client: HubClient,
    accounts: dict[str, str],
    terminals: dict[str, Terminal],
    workers: list[subprocess.Popen[bytes]],
    hub_postgres: Any,
    sched_deployment: Any,
) -> None:
    """Who holds the history database's connections on an idle hub (docs/admin/hub.md,
    "Database connections"): the service and the workers, each naming itself; users'
    servers none."""
    import sqlalchemy

    database = sqlalchemy.engine.make_url(sched_deployment.settings["JUPYTER_SCHED_DB_URL"])
    engine = sqlalchemy.create_engine(hub_postgres.url, poolclass=sqlalchemy.pool.NullPool)
    worker_pids = {proc.pid for proc in workers}
    activity = sqlalchemy.text(
        "SELECT application_name, client_port, state_change >= :since "
        "FROM pg_stat_activity WHERE datname = :name AND pid <> pg_backend_pid()"
    )
    with engine.connect() as connection:
        since = connection.scalar(sqlalchemy.text("SELECT now()"))
        connection.rollback()
        seen: list[Any] = []

        def idle_while_everyone_used_its_connections() -> bool:
            """Idle, no request and no run, long enough for the service to have ticked and
            each worker to have heartbeated (every lease / 3) on the connections it keeps."""
            rows = connection.execute(activity, {"since": since, "name": database.database})
            seen[:] = rows.all()
            connection.rollback()  # the next look takes a new snapshot of the statistics
            used = [(app, port) for app, port, since_then in seen if since_then]
            if not any(app == "jupyter-sched service" for app, _ in used):
                return False
            owners = _processes_by_local_port()
            return worker_pids <= {owners.get(port) for app, port in used}

        wait_until(idle_while_everyone_used_its_connections, 60, "ticks and heartbeats")
    engine.dispose()
    rows = [(application, port) for application, port, _ in seen]
    owners = _processes_by_local_port()
    counts: dict[str, int] = {}
    for application, port in rows:
        pid = owners.get(port)
        counts[f"{application} (pid {pid})"] = counts.get(f"{application} (pid {pid})", 0) + 1
    print("connections to the history database, idle:", json.dumps(counts, indent=1))
    server_pids = set()
    for role in ("alice", "bob"):
        pid = hub_client.user_model(accounts[role])["servers"][""]["state"]["pid"]
        server = psutil.Process(pid)
        server_pids |= {p.pid for p in [server, *server.children(recursive=True)]}
    assert not [port for _, port in rows if owners.get(port) in server_pids]
    assert {application for application, _ in rows} <= {
        "jupyter-sched service",
        "jupyter-sched worker",
    }, rows
    assert {owners.get(port) for app, port in rows if app == "jupyter-sched worker"} <= worker_pids


def _processes_by_local_port() -> dict[int, int]:
    """Which process holds each local TCP port (as root: every process's sockets)."""
    return {
        c.laddr.port: c.pid
        for c in psutil.net_connections(kind="tcp")
        if c.laddr and c.pid is not None
    }
