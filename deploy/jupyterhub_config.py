"""Base JupyterHub configuration of a shared hub with jupyter-sched (JupyterHub 6.1).

What it sets up: people log in with their Unix account (PAM); each person's single-user
server (JupyterLab with the jupyter-sched extension) runs as that person's Unix user, from
the same Python environment as the hub; the proxy (configurable-http-proxy) is started and
stopped by the hub and is the only way in.

Use it as is, from a virtualenv that holds ``jupyterhub``, ``jupyterlab`` and
``jupyter-sched`` in a folder every user can read and execute (for example ``/opt/jupyterhub``,
mode 0755), run by root (PAM checks passwords and the spawner switches to each user)::

    python3 -m venv /opt/jupyterhub
    /opt/jupyterhub/bin/pip install jupyterhub jupyterlab 'jupyter-sched[postgres]'
    npm install -g configurable-http-proxy@5
    mkdir -m 0700 -p /srv/jupyterhub
    groupadd jupyterhub-users && usermod -aG jupyterhub-users alice   # who may log in
    groupadd jupyterhub-admins && usermod -aG jupyterhub-admins carol  # who administers
    /opt/jupyterhub/bin/jupyterhub -f /path/to/deploy/jupyterhub_config.py

Users' home folders should be private (mode 0700: Debian's ``adduser`` makes them so,
``useradd -m`` makes them 0755 unless ``-K HOME_MODE=0700``), as each person's notebooks and
run outputs live there.

or load it from your own configuration and change what your site needs after it::

    load_subconfig("/path/to/deploy/jupyterhub_config.py")
    c.JupyterHub.bind_url = "https://hub.example.org"

The names of the two Unix groups can be changed with the environment variables
``JUPYTERHUB_USERS_GROUP`` and ``JUPYTERHUB_ADMINS_GROUP`` of the hub process.

The scheduler (see docs/admin/hub.md): the hub starts the scheduler service
(`jupyter sched service`, as root, the only process beside the workers that holds the
scheduler's credentials, read from the root-only file ``/etc/jupyter-sched/sched.env``, or
``$JUPYTER_SCHED_ENV_FILE`` of the hub process); users' servers forward the panel's API to it
with their own hub token and hold no credential; workers (`deploy/jupyter-sched-worker@.service`)
run each notebook as its owner.
"""

import grp
import os
import pwd
import sysconfig

c = get_config()  # noqa: F821 - provided by JupyterHub when it loads this file

# --- Where the hub keeps its state ---------------------------------------------------------
# The hub's own database (users, tokens, running servers), the secret that signs its cookies
# and the proxy's pid file. The folder must exist and be readable by root only: the database
# holds every user's API tokens.
STATE_DIR = "/srv/jupyterhub"
c.JupyterHub.db_url = f"sqlite:///{STATE_DIR}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = f"{STATE_DIR}/jupyterhub_cookie_secret"

# --- The proxy --------------------------------------------------------------------------
# configurable-http-proxy (npm package `configurable-http-proxy@5`, found on the hub's PATH)
# is started and stopped by the hub. People reach the hub and every single-user server
# through its public address; the hub programs its routes through the API address, which
# must stay on the loopback interface (the hub generates the API's token at each start).
# Put TLS in front of the public address (c.JupyterHub.ssl_cert/ssl_key or a reverse proxy).
c.JupyterHub.bind_url = "http://:8000"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:8001"
c.ConfigurableHTTPProxy.pid_file = f"{STATE_DIR}/jupyterhub-proxy.pid"

# --- Who logs in --------------------------------------------------------------------------
# Unix accounts, checked with PAM. Only members of the users group (or the admins group)
# may log in; everyone else with an account on the machine is refused. Members of the admins
# group are the hub's administrators (checked again at each login, see also the roles below).
USERS_GROUP = os.environ.get("JUPYTERHUB_USERS_GROUP", "jupyterhub-users")
ADMINS_GROUP = os.environ.get("JUPYTERHUB_ADMINS_GROUP", "jupyterhub-admins")
c.JupyterHub.authenticator_class = "pam"
c.LocalAuthenticator.allowed_groups = {USERS_GROUP, ADMINS_GROUP}
c.PAMAuthenticator.admin_groups = {ADMINS_GROUP}


def unix_group_members(name: str) -> list[str]:
    """The accounts in Unix group ``name`` (listed members and those whose primary group it
    is), or none when the group does not exist."""
    try:
        group = grp.getgrnam(name)
    except KeyError:
        return []
    primary = [user.pw_name for user in pwd.getpwall() if user.pw_gid == group.gr_gid]
    return sorted({*group.gr_mem, *primary})


# --- Roles ------------------------------------------------------------------------------
# JupyterHub's built-in `admin` role (every permission on every user, server and token) goes
# to the members of the admins group, read when the hub starts: the list is authoritative,
# so someone removed from the group loses the role at the next restart. A service's role
# goes in this list too, with only the scopes the service needs.
c.JupyterHub.load_roles = [
    {"name": "admin", "users": unix_group_members(ADMINS_GROUP)},
]

# --- The scheduler service ----------------------------------------------------------------
# One process holds the scheduler's credentials: the service, started and stopped by the hub
# (as root: it reads users' notebooks with their own rights to check parameters). Its
# settings, credentials included, come from a root-only file in systemd's EnvironmentFile
# format, which the workers' units read too (docs/admin/hub.md):
#   JUPYTER_SCHED_DB_URL=postgresql+psycopg://sched:PASSWORD@db-host/sched
#   JUPYTER_SCHED_REDIS_URL=redis://:PASSWORD@redis-host:6379/0
#   JUPYTER_SCHED_SECRET=<64 random hex digits>
#   JUPYTER_SCHED_DATA_DIR=/var/lib/jupyter-sched
#   JUPYTER_SCHED_RUN_AS_OWNER=true
#   JUPYTER_SCHED_USER_ROOT_DIR=~{owner}
SCHED_SERVICE = "sched"
SCHED_ENV_FILE = os.environ.get("JUPYTER_SCHED_ENV_FILE", "/etc/jupyter-sched/sched.env")
#: Where the service listens (the hub's proxy routes /services/sched/ to it; users'
#: servers reach it there directly).
SCHED_SERVICE_URL = os.environ.get("JUPYTER_SCHED_SERVICE_URL", "http://127.0.0.1:10101")
#: The hub scope of scheduler admins: they see and manage every user's jobs and runs.
SCHED_ADMIN_SCOPE = "custom:sched:admin"
#: The hub scope that reads the service's /metrics (the whole deployment's figures): the
#: scheduler's admins hold it; give it to your monitoring's token (docs/admin/hub.md).
SCHED_METRICS_SCOPE = "custom:sched:metrics"


def environment_file(path: str) -> dict[str, str]:
    """``KEY=VALUE`` lines of a systemd EnvironmentFile (comments and blank lines skipped);
    none when the file does not exist."""
    values: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return values
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip().strip('"')
    return values


c.JupyterHub.services = [
    {
        "name": SCHED_SERVICE,
        "url": SCHED_SERVICE_URL,
        "command": [os.path.join(sysconfig.get_path("scripts"), "jupyter-sched"), "service"],
        # The file's name too, so that the service can say which file lacks a setting.
        "environment": {
            "JUPYTER_SCHED_ENV_FILE": SCHED_ENV_FILE,
            **environment_file(SCHED_ENV_FILE),
        },
        "display": False,
    }
]
c.JupyterHub.custom_scopes = {
    SCHED_ADMIN_SCOPE: {"description": "See and manage every user's scheduled jobs and runs."},
    SCHED_METRICS_SCOPE: {"description": "Read the scheduler's metrics (every user's runs)."},
}
c.JupyterHub.load_roles += [
    # Everyone may use the scheduler service (and, as before, everything of their own).
    {"name": "user", "scopes": ["self", f"access:services!service={SCHED_SERVICE}"]},
    # Members of the admins group administer the scheduler.
    {
        "name": "sched-admin",
        "scopes": [
            SCHED_ADMIN_SCOPE,
            SCHED_METRICS_SCOPE,
            f"access:services!service={SCHED_SERVICE}",
        ],
        "users": unix_group_members(ADMINS_GROUP),
    },
]

# --- The single-user servers ------------------------------------------------------------
# Each person's server is a local process started as their Unix user (uid, gid, groups),
# in their home directory, by `jupyterhub-singleuser` of the environment the hub runs from,
# so users run exactly the JupyterLab and jupyter-sched the admin installed. The server gets
# a fresh environment: JupyterHub passes it only its own JUPYTERHUB_* variables and the few
# that `Spawner.env_keep` names (PATH, LANG, ...), never the hub's other variables. Do not
# add a scheduler credential (database or Redis URL, signing secret, SMTP password) to
# `Spawner.environment`: everything a user's server or kernel can read, the user can read.
c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [os.path.join(sysconfig.get_path("scripts"), "jupyterhub-singleuser")]
c.Spawner.notebook_dir = "~"
c.Spawner.default_url = "/lab"
# The scheduler's API in each user's server is forwarded to the service with the server's
# own token, which may therefore reach the service (and carries the admin scope for those
# who hold it). Notebook paths are relative to the user's home on both sides.
c.Spawner.args = [f"--SchedApp.service_url={SCHED_SERVICE_URL}/services/{SCHED_SERVICE}/"]
# The same address for `jupyter sched` in users' terminals: its user commands (jobs, runs,
# run, events) go to the service with the server's hub token. An address, not a credential.
c.Spawner.environment = {
    "JUPYTER_SCHED_SERVICE_URL": f"{SCHED_SERVICE_URL}/services/{SCHED_SERVICE}/",
}
c.Spawner.server_token_scopes = [
    "users:activity!user",
    "access:servers!server",
    f"access:services!service={SCHED_SERVICE}",
    SCHED_ADMIN_SCOPE,
]
# A busy shared machine can take longer than JupyterHub's defaults (60 s to start the
# process, 30 s for it to answer) to bring up JupyterLab; give up only after two minutes.
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
