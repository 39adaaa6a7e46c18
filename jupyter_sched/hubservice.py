"""The scheduler service of a shared JupyterHub (``jupyter sched service``).

On a hub, one process holds the scheduler's credentials (database URL, Redis URL, signing
secret, SMTP password): this service. It is a jupyter_server ``ServerApp`` running only
this package's extension, registered with the hub as a service (the hub starts it, or it
runs on its own), serving the same REST API under the service's prefix,
``/services/<name>/sched/api/...``, and ticking, reaping, notifying, sweeping and migrating
like the embedded scheduler does. Jobs fire with every user server stopped.

- Who calls: :class:`HubIdentityProvider` asks the hub who owns each request's token (a
  user's API token, or the token of a user's server acting for that user); the token must
  carry the service's access scope (``access:services!service=<name>``). The owner of jobs
  and runs is the hub user name. A token that also carries the admin scope
  (``custom:sched:admin`` by default) sees and manages every user's jobs and runs.
- What they reach: :class:`SchedOnlyAuthorizer` allows the scheduler's API and nothing
  else of a Jupyter server (no kernels, terminals, contents, sessions): 403 for those,
  whoever asks.
- Users' servers hold no credential: their extension forwards ``sched/api/*`` here with
  their own hub token (:mod:`jupyter_sched.forward`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import prometheus_client
from jupyter_server.auth.authorizer import Authorizer
from jupyter_server.auth.identity import IdentityProvider, User
from jupyter_server.base.handlers import JupyterHandler
from tornado import web
from traitlets import Any as AnyTrait
from traitlets import Unicode, default

from .apihandler import AUTH_RESOURCE
from .config import ENV_DB_URL
from .errors import CannotStart
from .owners import hide_process

__all__ = [
    "HubIdentityProvider",
    "MetricsHandler",
    "SchedOnlyAuthorizer",
    "SchedUser",
    "check_credentials",
    "launch",
]

#: The custom scope that makes a hub user a scheduler admin, unless configured otherwise.
DEFAULT_ADMIN_SCOPE = "custom:sched:admin"
#: The custom scope that lets its holder (a monitoring service) read ``/metrics``.
DEFAULT_METRICS_SCOPE = "custom:sched:metrics"
#: Names the root-only settings file the hub read for the service (in messages only).
ENV_FILE_VARIABLE = "JUPYTER_SCHED_ENV_FILE"
#: Where the service listens when the hub does not say (an external service).
DEFAULT_URL = "http://127.0.0.1:10101"
#: Resources of a Jupyter server a scheduler service answers for: its API and metrics.
ALLOWED_RESOURCES = frozenset({AUTH_RESOURCE})
#: Server extensions commonly installed beside this one, kept off in the service.
OTHER_EXTENSIONS = (
    "jupyterlab",
    "jupyter_lsp",
    "jupyter_server_terminals",
    "notebook",
    "notebook_shim",
    "nbclassic",
    "voila",
    "jupyterhub",
)


@dataclass
class SchedUser(User):
    """A hub user (or service), and whether their token carries the scheduler's admin
    scope, or the scope that reads the deployment's metrics."""

    sched_admin: bool = False
    sched_metrics: bool = False


class HubIdentityProvider(IdentityProvider):
    """Identifies each request by its hub token (``Authorization: token ...``).

    No cookie, no login page: browsers reach the API through their own server's forwarder,
    and the CLI and scripts send a token.
    """

    admin_scope = Unicode(
        DEFAULT_ADMIN_SCOPE,
        config=True,
        help="The hub scope whose holders see and manage every user's jobs and runs.",
    )
    metrics_scope = Unicode(
        DEFAULT_METRICS_SCOPE,
        config=True,
        help="""The hub scope whose holders (and the scheduler's admins) may read /metrics,
        the whole deployment's figures: give it to the token of your monitoring.""",
    )
    hub_auth = AnyTrait(help="The jupyterhub.services.auth.HubAuth that checks tokens.")

    @default("hub_auth")
    def _default_hub_auth(self) -> Any:
        from jupyterhub.services.auth import HubAuth

        return HubAuth(cache_max_age=60)

    @default("token")
    def _default_token(self) -> str:
        return ""  # no token of the server's own: only hub tokens

    @property
    def auth_enabled(self) -> bool:
        return True

    @property
    def login_available(self) -> bool:
        return False

    async def get_user(self, handler: web.RequestHandler) -> User | None:
        token = self.hub_auth.get_token(handler, in_cookie=False)
        if not token:
            return None
        model = await self.hub_auth.user_for_token(token, session_id="", sync=False)
        if not model:
            return None
        scopes = set(model.get("scopes", []))
        required = self.hub_auth.access_scopes
        if required and not self.hub_auth.check_scopes(required, model):
            return None
        admin = self.admin_scope in scopes
        metrics = admin or self.metrics_scope in scopes
        # A hub service (a Prometheus token) may read the metrics, nothing else.
        service = model.get("kind", "user") != "user"
        if service and not (metrics and isinstance(handler, MetricsHandler)):
            return None
        # Authenticated by a token in the header: no XSRF check, like jupyter_server's own.
        handler._token_authenticated = True  # type: ignore[attr-defined]
        name = str(model["name"])
        return SchedUser(username=name, name=name, sched_admin=admin, sched_metrics=metrics)

    def validate_security(self, app: Any, ssl_options: dict[str, Any] | None = None) -> None:
        """Nothing to warn about: every request is checked with the hub."""


class SchedOnlyAuthorizer(Authorizer):
    """Allows the scheduler's API and nothing else of the server, to anyone."""

    def is_authorized(
        self, handler: web.RequestHandler, user: User, action: str, resource: str
    ) -> bool:
        return resource in ALLOWED_RESOURCES


class MetricsHandler(JupyterHandler):
    """The deployment's ``/metrics``, for the scheduler's admins and holders of the metrics
    scope only: 403 for every other hub user (it counts every user's runs)."""

    auth_resource = AUTH_RESOURCE

    @web.authenticated
    def get(self) -> None:
        if not getattr(self.current_user, "sched_metrics", False):
            raise web.HTTPError(403, "reading the scheduler's metrics needs its metrics scope")
        self.set_header("Content-Type", prometheus_client.CONTENT_TYPE_LATEST)
        self.finish(prometheus_client.generate_latest(prometheus_client.REGISTRY))


def metrics_handlers() -> list[tuple[str, type[JupyterHandler]]]:
    """The service's ``/metrics`` (taking precedence over jupyter_server's own)."""
    return [(r"/metrics", MetricsHandler)]


def check_credentials(environ: Mapping[str, str], extra: list[str]) -> None:
    """Refuse to start the service without its history database: falling back to an
    embedded SQLite file would schedule into a history no worker or admin shares."""
    if environ.get(ENV_DB_URL) or any(a.startswith("--SchedApp.db_url") for a in extra):
        return
    source = environ.get(ENV_FILE_VARIABLE)
    where = f" (its settings file {source} is missing or does not set it)" if source else ""
    raise CannotStart(
        f"the scheduler service has no history database: {ENV_DB_URL} is not set{where}; "
        "see docs/admin/hub.md"
    )


def service_argv(extra: list[str]) -> list[str]:
    """The ``ServerApp`` command line of the service: where the hub says it lives (or
    ``DEFAULT_URL``), the hub identity, the lockdown, this extension alone, then ``extra``."""
    url = urlparse(os.environ.get("JUPYTERHUB_SERVICE_URL") or DEFAULT_URL)
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX") or "/"
    argv = [
        f"--ServerApp.ip={url.hostname or '127.0.0.1'}",
        f"--ServerApp.port={url.port or 80}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.base_url={prefix}",
        "--ServerApp.open_browser=False",
        # Run by root by design: it reads users' notebooks with their rights (a process
        # switched to the owner), which only root can start.
        "--ServerApp.allow_root=True",
        f"--ServerApp.identity_provider_class={HubIdentityProvider.__module__}."
        f"{HubIdentityProvider.__name__}",
        f"--ServerApp.authorizer_class={SchedOnlyAuthorizer.__module__}."
        f"{SchedOnlyAuthorizer.__name__}",
        "--ServerApp.authenticate_prometheus=True",
        "--ServerApp.terminals_enabled=False",
        "--ServerApp.jpserver_extensions=jupyter_sched=True",
        # The service starts no kernel and its workers run elsewhere.
        "--SchedApp.embedded_workers=False",
    ]
    for name in OTHER_EXTENSIONS:
        argv.append(f"--ServerApp.jpserver_extensions={name}=False")
    return argv + extra


def launch(extra: list[str]) -> None:
    """Run the scheduler service until stopped."""
    from jupyter_server.serverapp import ServerApp

    check_credentials(os.environ, extra)
    # Kernels never run here, but nothing else of this uid should read its environment.
    hide_process()
    ServerApp.launch_instance(argv=service_argv(extra))
