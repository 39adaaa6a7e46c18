"""Fixtures of the multi-user tests: a real JupyterHub with real Unix users.

- ``hub_environment`` (once per test session, cached between sessions): the virtualenv and
  proxy that the hub and users' servers run from (:mod:`tests.hub.environment`);
- for this folder's tests (package scope: gone before the next folder's tests start):
  the Unix accounts ``alice``, ``bob``, the hub admin ``carol`` and ``eve``, who may not use
  the hub (:mod:`tests.hub.accounts`); a JupyterHub on free loopback ports configured by the
  repository's ``deploy/jupyterhub_config.py`` with the session's groups (:mod:`tests.hub.hub`)
  and a client of it; the deployment's PostgreSQL and Redis, which, unlike the other tests'
  servers, take no connection without their password: on a hub, any user's code can reach
  loopback ports.

The tests create Unix users and switch to them, so they need root; elsewhere they skip.
"""

from __future__ import annotations

import functools
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import (
    HOST,
    PostgresServer,
    RedisServer,
    find_free_port,
    postgres_server,
    redis_server,
)

from .accounts import HubTestSession, close_session, open_session
from .environment import HubEnvironment, ensure_hub_environment
from .hub import Hub, HubClient, start_hub
from .units import DEPLOY, read_unit, unit_launch

REPO = Path(__file__).resolve().parents[2]
DEPLOY_CONFIG = REPO / "deploy" / "jupyterhub_config.py"
#: Session fixtures build an environment and start a hub: far more than the suite's
#: per-test timeout on a cold cache and a loaded machine.
HUB_TEST_TIMEOUT = 1200
#: The people who use the hub (eve only has a Unix account).
HUB_PEOPLE = ("alice", "bob", "carol")


@dataclass(frozen=True)
class SchedDeployment:
    """The scheduler of the test hub: its root-only settings file, the service's address,
    and the settings (by variable) that the file holds."""

    env_file: Path
    service_url: str
    settings: dict[str, str]
    data_dir: Path


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test of this folder ``hub`` and give it the hub's generous timeout."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.hub)
            item.add_marker(pytest.mark.timeout(HUB_TEST_TIMEOUT))


def _require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip(
            "hub tests need root: they create Unix users and start servers as them "
            "(CI runs them as root)"
        )


@pytest.fixture(scope="session")
def hub_environment() -> HubEnvironment:
    """The virtualenv (hub, JupyterLab, this project) and the proxy, usable by every user."""
    _require_root()
    return ensure_hub_environment(REPO)


@pytest.fixture(scope="package")
def hub_session() -> Iterator[HubTestSession]:
    """This session's Unix accounts and passwords (by role), groups and folder."""
    _require_root()
    session = open_session()
    try:
        yield session
    finally:
        close_session(session)


@pytest.fixture(scope="package")
def sched_deployment(
    hub_session: HubTestSession, hub_postgres: PostgresServer, hub_redis: RedisServer
) -> Iterator[SchedDeployment]:
    """The scheduler's settings file of the deployment (root only, as an admin writes
    ``/etc/jupyter-sched/sched.env``): database, Redis, secret, artifacts folder, runs as
    their owner, notebook paths relative to each user's home."""
    # Where an admin puts it (/var/lib/jupyter-sched): a folder users may enter (each run
    # folder is its owner's alone, mode 0700) but not list.
    data_dir = Path(tempfile.mkdtemp(prefix=f"jsched-data-{hub_session.id}-", dir="/var/tmp"))
    data_dir.chmod(0o711)
    settings = {
        "JUPYTER_SCHED_DB_URL": hub_postgres.create_database("sched_hub"),
        "JUPYTER_SCHED_REDIS_URL": hub_redis.url,
        "JUPYTER_SCHED_SECRET": secrets.token_hex(32),
        "JUPYTER_SCHED_DATA_DIR": str(data_dir),
        "JUPYTER_SCHED_RUN_AS_OWNER": "true",
        "JUPYTER_SCHED_USER_ROOT_DIR": "~{owner}",
        "JUPYTER_SCHED_TICK_SECONDS": "0.5",
        # Notifications by email: no test sends one, so no server listens there; the
        # password is one more credential no user's code may find.
        "JUPYTER_SCHED_SMTP_HOST": HOST,
        "JUPYTER_SCHED_SMTP_PORT": str(find_free_port()),
        "JUPYTER_SCHED_SMTP_USER": "sched-mailer",
        "JUPYTER_SCHED_SMTP_PASSWORD": secrets.token_hex(16),
    }
    env_file = hub_session.directory / "sched.env"
    env_file.touch(mode=0o600)
    env_file.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
    try:
        yield SchedDeployment(env_file, f"http://{HOST}:{find_free_port()}", settings, data_dir)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="package")
def hub(
    hub_environment: HubEnvironment,
    hub_session: HubTestSession,
    sched_deployment: SchedDeployment,
) -> Iterator[Hub]:
    """A running JupyterHub configured by ``deploy/jupyterhub_config.py``: alice and bob may
    log in (users group), carol administers it (admins group), eve may not log in; the
    hub runs the scheduler service on the deployment's database and Redis."""
    hub = start_hub(
        hub_environment,
        hub_session.directory,
        DEPLOY_CONFIG,
        extra_env={
            "JUPYTERHUB_USERS_GROUP": hub_session.users_group,
            "JUPYTERHUB_ADMINS_GROUP": hub_session.admins_group,
            "JUPYTER_SCHED_ENV_FILE": str(sched_deployment.env_file),
            "JUPYTER_SCHED_SERVICE_URL": sched_deployment.service_url,
        },
    )
    try:
        yield hub
    finally:
        hub.stop()


@pytest.fixture(scope="package")
def hub_client(hub: Hub, hub_session: HubTestSession) -> HubClient:
    """The hub's REST API as the tests' admin service, and users' servers through the proxy.

    The hub knows alice, bob and carol (as if they had logged in once), not eve.
    """
    client = HubClient(hub)
    client.create_users([hub_session.accounts[role] for role in HUB_PEOPLE])
    return client


@pytest.fixture(scope="package")
def accounts(hub_session: HubTestSession) -> dict[str, str]:
    """The Unix (and hub) name of each person: ``accounts["alice"]`` may be ``alice-1f2e3d``."""
    return hub_session.accounts


@pytest.fixture(scope="package")
def user_tokens(hub_client: HubClient, accounts: dict[str, str]) -> dict[str, str]:
    """An API token of alice, bob and carol (by role), with that person's own permissions."""
    return {role: hub_client.user_token(accounts[role]) for role in HUB_PEOPLE}


@pytest.fixture(scope="package")
def hub_postgres() -> Iterator[PostgresServer]:
    """The deployment's PostgreSQL: over TCP, only with its password (in ``url``)."""
    _require_root()
    with postgres_server(password=secrets.token_hex(16)) as server:
        yield server


@pytest.fixture(scope="package")
def hub_redis() -> Iterator[RedisServer]:
    """The deployment's Redis: no command without its password (in ``url``)."""
    _require_root()
    with redis_server(password=secrets.token_hex(16)) as server:
        yield server


@pytest.fixture(scope="module")
def workers(
    hub: Hub, hub_environment: HubEnvironment, sched_deployment: SchedDeployment
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Two workers started as systemd starts ``deploy/jupyter-sched-worker@.service``
    (its ``ExecStart``, ``User=``, ``Environment=``, ``EnvironmentFile=``,
    ``WorkingDirectory=`` and ``UMask=``), only the installation's paths being the test's:
    the unit an admin copies is the one tested. Their output goes to the session folder
    (systemd's journal)."""
    unit = read_unit(DEPLOY / "jupyter-sched-worker@.service")
    paths = {
        "/opt/jupyterhub": str(hub_environment.venv),
        "/etc/jupyter-sched/sched.env": str(sched_deployment.env_file),
        "/var/lib/jupyter-sched": str(sched_deployment.data_dir),
    }
    procs = []
    for instance in ("1", "2"):
        launch = unit_launch(unit, paths, instance)
        assert launch.user == "root" == pwd.getpwuid(os.geteuid()).pw_name
        with open(hub.directory / f"worker-{instance}.log", "ab") as log:
            procs.append(
                subprocess.Popen(
                    launch.argv,
                    env=launch.env,
                    cwd=launch.cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=functools.partial(os.umask, launch.umask),
                )
            )
    yield procs
    for proc in procs:  # KillMode=mixed: SIGTERM to the main process first
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
