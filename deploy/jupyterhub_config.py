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
# A busy shared machine can take longer than JupyterHub's defaults (60 s to start the
# process, 30 s for it to answer) to bring up JupyterLab; give up only after two minutes.
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
