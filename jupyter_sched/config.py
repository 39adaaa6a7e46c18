"""Settings shared by the server extension, the workers and the CLI.

The server extension fills :class:`Settings` from its traitlets; workers and the CLI read
the same values from ``JUPYTER_SCHED_*`` environment variables, so a worker started with
the server's variables joins its deployment.
"""

from __future__ import annotations

import dataclasses
import getpass
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_data_dir

ENV_PREFIX = "JUPYTER_SCHED_"
ENV_DB_URL = "JUPYTER_SCHED_DB_URL"
ENV_REDIS_URL = "JUPYTER_SCHED_REDIS_URL"
ENV_SECRET = "JUPYTER_SCHED_SECRET"  # noqa: S105 - the variable name, not a secret


#: The owner of what a single-user server or the CLI does, when it cannot tell users apart.
ENV_USER = "JUPYTER_SCHED_USER"
#: Hub mode of the CLI: the base URL of the hub's scheduler service (under which
#: ``sched/api/`` lives), put in each single-user server's environment by the hub's
#: configuration. Not a credential: the CLI calls the service with the user's own hub token.
ENV_SERVICE_URL = "JUPYTER_SCHED_SERVICE_URL"
#: The hub token of a single-user server (and so of its terminals), acting for its owner.
ENV_HUB_TOKEN = "JUPYTERHUB_API_TOKEN"  # noqa: S105 - the variable name, not a secret


#: What this process is ("server" unless a `jupyter sched` command says otherwise): the
#: history database's list of connections names it (PostgreSQL's ``application_name``).
_process_role = {"role": "server"}


def set_process_role(role: str) -> None:
    """Name what this process is (``worker``, ``service``, ...) before it connects."""
    _process_role["role"] = role


def application_name() -> str:
    """How this process's database connections are named: ``jupyter-sched <role>``."""
    return f"jupyter-sched {_process_role['role']}"[:63]


def hub_service_url(environ: Mapping[str, str] | None = None) -> str | None:
    """The scheduler service the CLI's user commands go through: set on a hub, in a user's
    server and its terminals, where ``$JUPYTER_SCHED_SERVICE_URL`` and a hub token are both
    present; ``None`` elsewhere (the CLI then opens the deployment itself)."""
    source = os.environ if environ is None else environ
    url = source.get(ENV_SERVICE_URL, "").strip()
    return url if url and source.get(ENV_HUB_TOKEN) else None


def default_owner() -> str:
    """The owner of everything a single-user server (on jupyter_server's own token) or the
    ``jupyter sched`` CLI does: ``$JUPYTER_SCHED_USER``, else the login name."""
    return os.environ.get(ENV_USER) or getpass.getuser()


def default_data_dir() -> Path:
    """Where the embedded database, queue and run artifacts live by default."""
    return Path(jupyter_data_dir()) / "sched"


@dataclass(frozen=True)
class Settings:
    """Everything that varies between deployments. Durations are in seconds."""

    data_dir: Path = field(default_factory=default_data_dir)
    #: SQLAlchemy URL; ``None`` means a SQLite file in ``data_dir``.
    db_url: str | None = field(default=None, repr=False)  # may hold a password
    #: Redis URL for the queue; ``None`` means an embedded SqliteHuey file in ``data_dir``.
    redis_url: str | None = field(default=None, repr=False)
    #: Signs queue messages on Redis; ``None`` reads or creates ``data_dir/secret``.
    secret: str | None = field(default=None, repr=False)
    #: Notebook paths are relative to this directory and may not leave it.
    root_dir: Path = field(default_factory=Path.cwd)
    #: Whether notebooks in hidden files or folders (a path component starting with ``.``)
    #: may be scheduled; the server sets it from its ``ContentsManager.allow_hidden``.
    allow_hidden: bool = False
    #: Queue that jobs use unless they name one.
    default_queue: str = "default"
    #: Ticker period; it also wakes at once when a job changes in this process.
    tick_seconds: float = 1.0
    #: A fire later than this is a misfire and follows the job's misfire policy.
    misfire_grace_seconds: float = 30.0
    #: How often a worker records that its runs are alive.
    heartbeat_seconds: float = 2.0
    #: A running run whose heartbeat is older than this is lost.
    lease_seconds: float = 30.0
    #: How often a worker looks for cancel requests and deadlines of its runs.
    watch_seconds: float = 0.5
    #: After an interrupt, how long a kernel gets before its process group is killed.
    kill_grace_seconds: float = 1.0
    #: Upper bound of a retry delay, whatever the backoff says.
    max_retry_delay_seconds: float = 3600.0
    #: How often the ticker looks for queued runs whose queue message was lost, and how
    #: long a handed-over run may wait unclaimed before its message counts as lost.
    reconcile_seconds: float = 10.0
    #: Longest a SqliteHuey consumer sleeps between polls of an empty queue.
    poll_max_seconds: float = 0.1
    #: Keep one started python kernel ready per worker thread (used once, then discarded).
    prestart_kernels: bool = True
    #: Workers start each run's kernel as the run's owner Unix user (uid, gid, groups, the
    #: user's environment, a run folder of the owner's alone). For hubs, where workers run
    #: as root; a run whose owner has no account on the worker's machine fails.
    run_as_owner: bool = False
    #: On a hub's scheduler service: the folder each user's notebook paths are relative to,
    #: ``{owner}`` standing for the hub user name (``~{owner}``: their home, as the
    #: spawner's ``notebook_dir = "~"``). ``None``: the server's root.
    user_root_dir: str | None = None
    #: Delete finished runs older than this many days (``None``: keep them).
    retention_days: float | None = None
    #: Keep only this many newest finished runs per job (``None``: keep them all).
    retention_runs: int | None = None
    #: How often the ticker sweeps old runs away when a retention is set.
    retention_sweep_seconds: float = 3600.0
    #: Webhook calls a job's token may make per minute.
    webhook_rate_per_minute: float = 30.0
    #: Base URL of the Jupyter server, for links in notifications (e.g. https://hub/user/x/).
    public_url: str | None = None
    #: SMTP server that sends notification emails (``None``: email targets fail).
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "jupyter-sched@localhost"
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_starttls: bool = False
    #: Largest email report (body, images and attachments) sent; above it, a summary
    #: with links is sent instead.
    report_max_bytes: int = 10_000_000
    #: Delivery attempts of one notification before it is given up (and logged).
    notify_max_attempts: int = 5
    #: Delay before the second attempt; doubles with each further attempt.
    notify_retry_seconds: float = 10.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``JUPYTER_SCHED_<NAME>`` variables (of ``environ``, default this
        process's environment), then explicit overrides (non-None).

        Every setting has a variable (``JUPYTER_SCHED_LEASE_SECONDS``, ...); the documented
        ones are the database, Redis, data dir, secret and root dir.
        """
        source = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for spec in dataclasses.fields(cls):
            raw = source.get(_env_name(spec.name))
            if raw:
                values[spec.name] = _convert(spec.type, raw, spec.name)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        """A copy with some settings changed."""
        return dataclasses.replace(self, **changes)

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL of the history database."""
        return self.db_url or f"sqlite:///{self.data_dir / 'sched.db'}"

    @property
    def artifacts_dir(self) -> Path:
        """Input snapshots, output notebooks and logs, one folder per run."""
        return self.data_dir / "runs"

    def queue_secret(self) -> str:
        """The key that signs queue messages, created once per data dir when not configured."""
        if self.secret:
            return self.secret
        path = self.data_dir / "secret"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
        return path.read_text().strip()

    def worker_environ(self) -> dict[str, str]:
        """Environment that lets a worker subprocess join this deployment."""
        env = {}
        for spec in dataclasses.fields(self):
            value = getattr(self, spec.name)
            if value is not None:
                env[_env_name(spec.name)] = (
                    str(value).lower() if isinstance(value, bool) else str(value)
                )
        return env


def _env_name(setting: str) -> str:
    return ENV_PREFIX + setting.upper()


def _convert(kind: Any, raw: str, name: str) -> Any:
    kind = str(kind)
    try:
        if "Path" in kind:
            return Path(raw)
        if "bool" in kind:
            return raw.strip().lower() in ("1", "true", "yes", "on")
        if "float" in kind:
            return float(raw)
        if "int" in kind:
            return int(raw)
    except ValueError as exc:
        raise ValueError(f"{_env_name(name)}: {exc}") from None
    return raw


#: The password of a URL (``scheme://user:PASSWORD@host``), as SQLAlchemy and redis-py
#: read it: everything between the user's colon and the next ``@``.
_URL_PASSWORD = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:/@]*:)[^@]*@")
#: Query parameters that carry a credential (``?password=`` in libpq URLs).
_QUERY_SECRET = re.compile(r"(?i)([?&][^=&#]*(?:password|passwd|secret|token)[^=&#]*=)[^&#]*")


def redact_url(url: str) -> str:
    """``url`` with its password (and any password-like query value) replaced by ``***``.

    The one helper for every database or Redis URL that is printed or logged.
    """
    return _QUERY_SECRET.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", url, count=1))


#: Variables of a server's or worker's environment that hold a credential of Jupyter or of
#: the hub (the server's token, the hub's API token): never passed on to a kernel.
CREDENTIAL_VARIABLES = frozenset(
    {
        "JUPYTER_TOKEN",
        "JUPYTERHUB_API_TOKEN",
        "JPY_API_TOKEN",
        "JUPYTERHUB_OAUTH_CLIENT_SECRET",
        "CONFIGPROXY_AUTH_TOKEN",
    }
)


def kernel_environ() -> dict[str, str]:
    """This process's environment minus the scheduler's settings and the credentials of
    Jupyter and the hub, for notebook kernels.

    The database URL, Redis URL and signing secret are credentials: a notebook that could
    read them could forge runs for other users.
    """
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(ENV_PREFIX) and k not in CREDENTIAL_VARIABLES
    }
