"""Acceptance of the shared-hub scheduler, with real parts only: a JupyterHub configured by
``deploy/jupyterhub_config.py`` runs the scheduler service (the one holder of the database,
Redis and signing credentials); two workers run as root; alice, bob and the admin carol are
real Unix users whose servers forward the scheduler's API to the service.

One hub for the module; the tests run in order and build on each other (alice's job is
created once, then observed with every server stopped).
"""

from __future__ import annotations

import asyncio
import grp
import json
import os
import pwd
import re
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import nbformat
import psutil
import pytest
import requests
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from .accounts import HubTestSession
from .conftest import HUB_PEOPLE, SchedDeployment
from .environment import HubEnvironment
from .hub import Hub, HubClient
from .units import DEPLOY, exec_start, read_unit

SERVICE = "sched"
#: Runs alice's job must make while no user server runs.
RUNS_WITHOUT_SERVERS = 3
RUN_DEADLINE = 600.0
POLL = 0.5
FACTS = "FACTS "
PROBE = "PROBE "

REPORT_CELLS = [
    ("label = 'hub'", ["parameters"]),
    (
        "import json, os\n"
        "print('FACTS ' + json.dumps({'uid': os.getuid(), 'gid': os.getgid(),\n"
        "    'home': os.environ.get('HOME'),\n"
        "    'cwd': os.getcwd(), 'data': open('data.txt').read().strip(),\n"
        "    'groups': sorted(os.getgroups())}))",
        [],
    ),
]

#: Looks everywhere a user's code can look for the scheduler's credentials: its environment,
#: every /proc/*/environ and cmdline it can read, every file it can read under the given
#: folders; reports every URL with a password and every long hex string it saw (the test
#: checks none is a credential), and which of another user's run files it could open.
PROBE_SOURCE = r"""
import glob, json, os, re
CANDIDATE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"]*:[^\s'\"@]*@|[0-9a-fA-F]{24,}")
candidates, readable = set(), 0
def scan(text):
    candidates.update(CANDIDATE.findall(text))
scan("\n".join(f"{k}={v}" for k, v in os.environ.items()))
for path in glob.glob("/proc/[0-9]*/environ") + glob.glob("/proc/[0-9]*/cmdline"):
    try:
        with open(path, "rb") as f:
            scan(f.read().decode(errors="replace").replace("\0", "\n"))
        readable += 1
    except OSError:
        pass
files_read = {}
def read(path):
    try:
        with open(path, "rb") as f:
            scan(f.read(1 << 20).decode(errors="replace"))
        return 1
    except OSError:
        return 0
for top in search_dirs:
    files_read[top] = 0 if os.path.isdir(top) else read(top)
    for folder, _, names in os.walk(top):
        files_read[top] += sum(read(os.path.join(folder, name)) for name in names)
readable += sum(files_read.values())
opened = []
for name in ("", "output.ipynb", "run.log", "input.ipynb"):
    path = os.path.join(other_run_dir, name) if other_run_dir else ""
    try:
        if not path:
            continue
        if name:
            open(path, "rb").close()
        else:
            os.listdir(path)
        opened.append(name or "listing")
    except OSError:
        pass
print("PROBE " + json.dumps({"candidates": sorted(candidates), "readable": readable,
                             "files_read": files_read, "opened": opened, "uid": os.getuid()}))
"""


# -- helpers ------------------------------------------------------------------------------


def _credentials(deployment: SchedDeployment, postgres: Any, redis: Any) -> list[str]:
    """Every secret of the deployment: PostgreSQL's and Redis's passwords, the signing
    secret, the SMTP password."""
    return [
        postgres.password,
        redis.password,
        deployment.settings["JUPYTER_SCHED_SECRET"],
        deployment.settings["JUPYTER_SCHED_SMTP_PASSWORD"],
    ]


def _search_roots(deployment: SchedDeployment, hub: Hub, environment: HubEnvironment) -> list[str]:
    """Where an admin's configuration and the scheduler's files live, for the probe to
    walk: the data folder (the workers' working directory), the settings file, the hub's
    state folder (its database, cookie secret, configuration, the workers' logs), the
    installation's and the system's Jupyter configuration, root's Jupyter folders, and the
    places ``deploy/`` and docs/admin/hub.md name (``/etc/jupyter-sched``,
    ``/var/lib/jupyter-sched``, ``/srv/jupyterhub``) should this machine have them."""
    return [
        str(deployment.data_dir),
        str(deployment.env_file),
        str(hub.directory),
        str(environment.venv / "etc" / "jupyter"),
        str(environment.venv / "share" / "jupyter"),
        "/etc/jupyter-sched",
        "/var/lib/jupyter-sched",
        "/srv/jupyterhub",
        "/etc/jupyter",
        "/usr/local/etc/jupyter",
        "/root/.jupyter",
        "/root/.local/share/jupyter",
    ]


def _notebook(cells: list[tuple[str, list[str]]]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nb.metadata["kernelspec"]["language"] = "python"
    nb.cells = [nbformat.v4.new_code_cell(src, metadata={"tags": tags}) for src, tags in cells]
    return nb


def _write_as(account: Any, path: Path, text: str) -> None:
    """Write ``text`` at ``path`` in a user's home, owned by that user (mode 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chown(path.parent, account.pw_uid, account.pw_gid)
    path.write_text(text)
    os.chown(path, account.pw_uid, account.pw_gid)
    path.chmod(0o600)


def _printed(notebook: dict[str, Any], marker: str) -> dict[str, Any]:
    """The JSON a cell printed after ``marker``."""
    for cell in notebook["cells"]:
        for output in cell.get("outputs", []):
            text = output.get("text", "")
            text = "".join(text) if isinstance(text, list) else text
            for line in text.splitlines():
                if line.startswith(marker):
                    return json.loads(line[len(marker) :])  # type: ignore[no-any-return]
    raise AssertionError(f"no {marker.strip()} line in the notebook's outputs")


class ServiceClient:
    """The scheduler service's API through the hub's proxy, with one person's token."""

    def __init__(self, hub: Hub, token: str) -> None:
        self.base = f"{hub.url}/services/{SERVICE}/sched/api"
        self.token = token

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", 60)
        headers = {"Authorization": f"token {self.token}"}
        return requests.request(method, f"{self.base}/{path}", headers=headers, **kwargs)

    def json(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        assert response.status_code == status, (method, path, response.status_code, response.text)
        return response.json() if response.content else None

    def wait_run(self, run_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + RUN_DEADLINE
        while True:
            run = self.json("GET", f"runs/{run_id}")
            if run["finished_at"] is not None:
                return run  # type: ignore[no-any-return]
            assert time.monotonic() < deadline, run
            time.sleep(POLL)


# -- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clients(hub: Hub, user_tokens: dict[str, str]) -> dict[str, ServiceClient]:
    return {role: ServiceClient(hub, user_tokens[role]) for role in HUB_PEOPLE}


@pytest.fixture(scope="module")
def report(hub_session: HubTestSession) -> str:
    """alice's notebook, with a data file beside it, in her home."""
    alice = hub_session.account("alice")
    folder = Path(alice.pw_dir) / "reports"
    _write_as(alice, folder / "report.ipynb", nbformat.writes(_notebook(REPORT_CELLS)))
    _write_as(alice, folder / "data.txt", "alice's data\n")
    return "reports/report.ipynb"


@pytest.fixture(scope="module")
def probe(hub_session: HubTestSession) -> str:
    """bob's notebook that hunts for credentials and for alice's files."""
    bob = hub_session.account("bob")
    cells = [
        ("search_dirs = []\nother_run_dir = ''", ["parameters"]),
        (PROBE_SOURCE, []),
    ]
    _write_as(bob, Path(bob.pw_dir) / "probe.ipynb", nbformat.writes(_notebook(cells)))
    return "probe.ipynb"


@pytest.fixture(scope="module")
def alice_job(
    hub_client: HubClient,
    accounts: dict[str, str],
    user_tokens: dict[str, str],
    workers: list[subprocess.Popen[bytes]],
    report: str,
) -> dict[str, Any]:
    """alice's interval job, created through her own server's sched/api (the panel's path);
    every user server is stopped before the tests that follow look at its runs."""
    name = accounts["alice"]
    hub_client.start_server(name)
    body = {
        "name": "alice report",
        "notebook": report,
        "parameters": {"label": "every few seconds"},
        "trigger": {"kind": "interval", "every_seconds": 4},
        "overlap": "skip",
    }
    response = hub_client.server_request(
        name, "sched/api/jobs", user_tokens["alice"], method="POST", json=body
    )
    assert response.status_code == 201, response.text
    job = response.json()
    assert job["owner"] == name
    return job


def test_alices_lab_panel_lists_her_job(
    hub: Hub, hub_session: HubTestSession, alice_job: dict[str, Any]
) -> None:
    result = subprocess.run(
        ["node", str(Path(__file__).with_name("panel_lists_job.mjs"))],
        env={
            **os.environ,
            "HUB_URL": hub.url,
            "HUB_USER": hub_session.accounts["alice"],
            "HUB_PASSWORD": hub_session.passwords["alice"],
            "JOB_NAME": alice_job["name"],
        },
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "listed" in result.stdout


# -- the story ----------------------------------------------------------------------------


def test_users_server_holds_no_database_connection_and_forwards(
    hub_client: HubClient,
    accounts: dict[str, str],
    user_tokens: dict[str, str],
    alice_job: dict[str, Any],
    hub_postgres: Any,
) -> None:
    name = accounts["alice"]
    pid = hub_client.user_model(name)["servers"][""]["state"]["pid"]
    server = psutil.Process(pid)
    for process in [server, *server.children(recursive=True)]:
        ports = {c.raddr.port for c in process.net_connections(kind="tcp") if c.raddr}
        assert hub_postgres.port not in ports, process.cmdline()
    environ = server.environ()
    # the service's address for the CLI in her terminals, and no credential
    assert [key for key in environ if key.startswith("JUPYTER_SCHED_")] == [
        "JUPYTER_SCHED_SERVICE_URL"
    ]
    # The deployment's metrics are the service's (/services/sched/metrics): her server's
    # /metrics has jupyter_server's own and none of the scheduler's, not even zeros.
    metrics = hub_client.server_request(name, "metrics", user_tokens["alice"])
    assert metrics.status_code == 200, metrics.text
    assert "http_request_duration_seconds" in metrics.text
    assert "jupyter_sched_" not in metrics.text
    listed = hub_client.server_request(name, "sched/api/jobs", user_tokens["alice"])
    assert listed.status_code == 200, listed.text
    assert [job["id"] for job in listed.json()["jobs"]] == [alice_job["id"]]


def test_jobs_fire_as_their_owner_with_every_server_stopped(
    hub_client: HubClient,
    accounts: dict[str, str],
    hub_session: HubTestSession,
    clients: dict[str, ServiceClient],
    alice_job: dict[str, Any],
    sched_deployment: SchedDeployment,
) -> None:
    names = [accounts[role] for role in HUB_PEOPLE]
    hub_client.stop_servers([n for n in names if hub_client.server_running(n)])
    stopped_at = time.monotonic()
    alice = hub_session.account("alice")
    client = clients["alice"]
    deadline = time.monotonic() + RUN_DEADLINE
    seen: list[dict[str, Any]] = []
    while len(seen) < RUNS_WITHOUT_SERVERS:
        assert time.monotonic() < deadline, seen
        assert not any(hub_client.server_running(n) for n in names)
        runs = client.json("GET", f"runs?job_id={alice_job['id']}&limit=50")["runs"]
        seen = [
            r
            for r in runs
            if r["status"] == "succeeded"
            and r["trigger"] == "schedule"
            and r["id"] not in {s["id"] for s in seen}
            and _queued_after(r, stopped_at)
        ] + seen
        time.sleep(POLL)
    for run in seen[:RUNS_WITHOUT_SERVERS]:
        assert run["owner"] == accounts["alice"]
        output = client.request("GET", f"runs/{run['id']}/output")
        assert output.status_code == 200, output.text
        facts = _printed(output.json(), FACTS)
        assert facts["uid"] == alice.pw_uid
        assert facts["gid"] == alice.pw_gid
        # her supplementary groups too (the hub's users group among them), not root's
        assert facts["groups"] == sorted(set(os.getgrouplist(alice.pw_name, alice.pw_gid)))
        assert grp.getgrnam(hub_session.users_group).gr_gid in facts["groups"]
        assert facts["home"] == alice.pw_dir
        assert facts["cwd"] == os.path.join(alice.pw_dir, "reports")
        assert facts["data"] == "alice's data"
        folder = sched_deployment.data_dir / "runs" / run["id"]
        assert folder.stat().st_uid == alice.pw_uid
        assert folder.stat().st_mode & 0o077 == 0


def test_the_hub_runs_the_service_as_its_systemd_unit_would(
    hub: Hub, hub_environment: HubEnvironment, sched_deployment: SchedDeployment
) -> None:
    """``deploy/jupyter-sched-service.service`` (the service run by systemd, as an external
    hub service) starts the command the hub starts, and its comment names the variables
    (``service.env``) that the hub gives a service it runs, beside ``sched.env``'s."""
    unit_path = DEPLOY / "jupyter-sched-service.service"
    unit = read_unit(unit_path)
    expected = exec_start(unit, {"/opt/jupyterhub": str(hub_environment.venv)})
    children = psutil.Process(hub.process.pid).children(recursive=True)
    running = [p for p in children if _cmdline(p)[1:] == expected]
    assert len(running) == 1, (expected, [_cmdline(p) for p in children])
    environ = running[0].environ()
    named = set(re.findall(r"^#\s+(JUPYTERHUB_[A-Z_]+)=", unit_path.read_text(), re.MULTILINE))
    assert named == {
        "JUPYTERHUB_SERVICE_NAME",
        "JUPYTERHUB_API_TOKEN",
        "JUPYTERHUB_API_URL",
        "JUPYTERHUB_SERVICE_URL",
        "JUPYTERHUB_SERVICE_PREFIX",
    }
    assert named <= set(environ)
    assert environ["JUPYTERHUB_SERVICE_NAME"] == SERVICE
    assert unit["Service"]["User"] == ["root"] and running[0].uids().real == 0
    assert unit["Service"]["EnvironmentFile"][0] == "/etc/jupyter-sched/sched.env"
    assert {k: environ.get(k) for k in sched_deployment.settings} == sched_deployment.settings


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()  # type: ignore[no-any-return]
    except psutil.Error:  # gone meanwhile (a kernel of a run that ended)
        return []


def _queued_after(run: dict[str, Any], monotonic_mark: float) -> bool:
    """Whether ``run`` was queued after the moment ``monotonic_mark`` (a monotonic time)."""
    from datetime import datetime

    queued = datetime.fromisoformat(run["queued_at"]).timestamp()
    return queued >= time.time() - (time.monotonic() - monotonic_mark)


def test_bob_sees_nothing_of_alices_and_carol_sees_everyone(
    clients: dict[str, ServiceClient],
    accounts: dict[str, str],
    alice_job: dict[str, Any],
    probe: str,
    sched_deployment: SchedDeployment,
    hub: Hub,
    hub_environment: HubEnvironment,
) -> None:
    alice_runs = clients["alice"].json("GET", f"runs?job_id={alice_job['id']}")["runs"]
    run_id = alice_runs[0]["id"]
    bob = clients["bob"]
    for path in (
        f"jobs/{alice_job['id']}",
        f"runs/{run_id}",
        f"runs/{run_id}/output",
        f"runs/{run_id}/log",
        f"jobs/{alice_job['id']}/stats",
    ):
        assert bob.request("GET", path).status_code == 404, path
    assert bob.request("POST", f"jobs/{alice_job['id']}/run").status_code == 404
    assert bob.json("GET", f"runs?owner={accounts['alice']}")["runs"] == []
    # bob's notebook, run as bob, tries to open alice's run folder on disk
    probe_job = bob.json(
        "POST",
        "jobs",
        201,
        json={
            "name": "probe",
            "notebook": probe,
            "trigger": {"kind": "manual"},
            "parameters": {
                "other_run_dir": str(sched_deployment.data_dir / "runs" / run_id),
                "search_dirs": _search_roots(sched_deployment, hub, hub_environment),
            },
        },
    )
    done = bob.wait_run(bob.json("POST", f"jobs/{probe_job['id']}/run", 201)["id"])
    assert done["status"] == "succeeded", done
    found = _printed(bob.json("GET", f"runs/{done['id']}/output"), PROBE)
    assert found["opened"] == []
    # carol, a scheduler admin, sees both users' jobs with their owners
    owners = {job["owner"] for job in clients["carol"].json("GET", "jobs")["jobs"]}
    assert owners == {accounts["alice"], accounts["bob"]}
    only_alice = clients["carol"].json("GET", f"jobs?owner={accounts['alice']}")["jobs"]
    assert [job["id"] for job in only_alice] == [alice_job["id"]]
    assert clients["carol"].request("GET", f"runs/{run_id}/log").status_code == 200


def test_no_credential_is_in_reach_of_a_users_notebook(
    clients: dict[str, ServiceClient],
    probe: str,
    sched_deployment: SchedDeployment,
    hub_environment: HubEnvironment,
    hub_redis: Any,
    hub_postgres: Any,
) -> None:
    bob = clients["bob"]
    jobs = bob.json("GET", "jobs")["jobs"]
    probe_job = next(job for job in jobs if job["name"] == "probe")
    runs = bob.json("GET", f"runs?job_id={probe_job['id']}")["runs"]
    output = bob.json("GET", f"runs/{runs[0]['id']}/output")
    found = _printed(output, PROBE)
    assert found["readable"] > 10  # it did read other processes' /proc entries
    _walked(found, hub_environment)
    credentials = _credentials(sched_deployment, hub_postgres, hub_redis)
    leaks = [c for c in found["candidates"] for secret in credentials if secret in c]
    assert leaks == []
    assert not any(secret in json.dumps(output) for secret in credentials)


def _walked(found: dict[str, Any], environment: HubEnvironment) -> None:
    """The probe walked its folders: it read the world-readable Jupyter files of the
    installation (and, the other tests show, no credential anywhere it read)."""
    print("files the probe could read, by folder:", json.dumps(found["files_read"], indent=1))
    assert found["files_read"][str(environment.venv / "share" / "jupyter")] > 0


def test_lockdown_of_the_service(clients: dict[str, ServiceClient], hub: Hub) -> None:
    for who in ("alice", "carol"):
        token = clients[who].token
        for path in ("api/kernels", "api/contents", "api/terminals", "api/sessions"):
            response = requests.get(
                f"{hub.url}/services/{SERVICE}/{path}",
                headers={"Authorization": f"token {token}"},
                timeout=60,
            )
            assert response.status_code in (403, 404), (who, path, response.status_code)
    assert requests.get(f"{hub.url}/services/{SERVICE}/sched/api/jobs", timeout=60).status_code in (
        401,
        403,
    )


def test_the_services_metrics_count_each_run_once(
    clients: dict[str, ServiceClient], hub: Hub, alice_job: dict[str, Any]
) -> None:
    carol = clients["carol"]
    # carol, an admin, pauses alice's job; once nothing runs, the history stands still
    assert carol.json("POST", f"jobs/{alice_job['id']}/pause")["status"] == "paused"
    deadline = time.monotonic() + RUN_DEADLINE
    while True:
        finished = _statuses(carol)
        if not {"queued", "running"} & set(finished):
            break
        assert time.monotonic() < deadline, finished
        time.sleep(POLL)
    # Every run finished while the service watched: its counter holds each exactly once
    # (the metrics refresh every few seconds).
    deadline = time.monotonic() + 120
    while True:
        response = requests.get(
            f"{hub.url}/services/{SERVICE}/metrics",
            headers={"Authorization": f"token {carol.token}"},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        counted = {
            status: _metric(response.text, f'jupyter_sched_runs_total{{status="{status}"}}')
            for status in finished
        }
        if counted == finished or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert counted == finished


def _statuses(client: ServiceClient) -> dict[str, int]:
    """How many runs of the deployment are in each status (as an admin sees them)."""
    counts: dict[str, int] = {}
    cursor = ""
    while True:
        page = client.json("GET", f"runs?limit=200{cursor}")
        for run in page["runs"]:
            counts[run["status"]] = counts.get(run["status"], 0) + 1
        if not page["next_cursor"]:
            return counts
        cursor = f"&cursor={page['next_cursor']}"


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def test_bobs_interactive_kernel_finds_no_credential_either(
    hub_client: HubClient,
    accounts: dict[str, str],
    user_tokens: dict[str, str],
    sched_deployment: SchedDeployment,
    hub_environment: HubEnvironment,
    hub_redis: Any,
    hub_postgres: Any,
) -> None:
    name = accounts["bob"]
    hub_client.start_server(name)
    token = user_tokens["bob"]
    kernel = hub_client.server_request(name, "api/kernels", token, method="POST", json={})
    assert kernel.status_code == 201, kernel.text
    roots = _search_roots(sched_deployment, hub_client.hub, hub_environment)
    setup = f"search_dirs = {roots!r}\nother_run_dir = ''\n"
    url = f"{hub_client.url}/user/{name}/api/kernels/{kernel.json()['id']}/channels"
    printed = asyncio.run(_execute(url.replace("http", "ws", 1), token, setup + PROBE_SOURCE))
    found = json.loads(printed[len(PROBE) :])
    assert found["uid"] == pwd.getpwnam(name).pw_uid
    assert found["readable"] > 10
    _walked(found, hub_environment)
    credentials = _credentials(sched_deployment, hub_postgres, hub_redis)
    assert [c for c in found["candidates"] for secret in credentials if secret in c] == []
    hub_client.server_request(name, f"api/kernels/{kernel.json()['id']}", token, method="DELETE")
    hub_client.stop_server(name)


async def _execute(url: str, token: str, code: str) -> str:
    """Run ``code`` in a kernel of a user's Lab (its websocket) and return the line it
    printed that starts with ``PROBE``."""
    request = HTTPRequest(url, headers={"Authorization": f"token {token}"})
    connection = await websocket_connect(request)
    msg_id = uuid.uuid4().hex
    connection.write_message(
        json.dumps(
            {
                "header": {
                    "msg_id": msg_id,
                    "username": "test",
                    "session": uuid.uuid4().hex,
                    "msg_type": "execute_request",
                    "version": "5.3",
                },
                "parent_header": {},
                "metadata": {},
                "channel": "shell",
                "buffers": [],
                "content": {
                    "code": code,
                    "silent": False,
                    "store_history": False,
                    "user_expressions": {},
                    "allow_stdin": False,
                    "stop_on_error": True,
                },
            }
        )
    )
    text = ""
    deadline = time.monotonic() + RUN_DEADLINE
    try:
        while time.monotonic() < deadline:
            raw = await asyncio.wait_for(connection.read_message(), timeout=RUN_DEADLINE)
            assert raw is not None, "the kernel's websocket closed"
            reply = json.loads(raw)
            if reply.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if reply["msg_type"] == "stream":
                text += reply["content"]["text"]
            if reply["msg_type"] == "error":
                raise AssertionError(reply["content"])
            if reply["msg_type"] == "status" and reply["content"]["execution_state"] == "idle":
                break
    finally:
        connection.close()
    lines = [line for line in text.splitlines() if line.startswith(PROBE)]
    assert lines, text
    return lines[-1]
