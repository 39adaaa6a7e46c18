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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    from jupyter_core.paths import jupyter_data_dir  # `--help` does not need it

    return Path(jupyter_data_dir()) / "sched"


def setting(
    default: Any = None,
    help: str = "",
    *,
    factory: Callable[[], Any] | None = None,
    default_text: str = "",
    minimum: float | None = None,
    credential: bool = False,
    configurable: bool = True,
) -> Any:
    """A field of :class:`Settings`, declared once with everything derived from it.

    ``help`` is its documentation: the server's traitlet (``c.SchedApp.<name>``) and the
    configuration reference take it from here, and its environment variable is
    ``JUPYTER_SCHED_<NAME>``. ``minimum`` is the smallest value a server's configuration
    accepts; a ``credential`` is never printed (``repr``); a setting that is not
    ``configurable`` comes from the server itself (its root, its contents manager).
    ``default_text`` says what a ``factory`` computes.
    """
    metadata = {
        "help": help,
        "minimum": minimum,
        "configurable": configurable,
        "default_text": default_text,
    }
    if factory is not None:
        return field(default_factory=factory, repr=not credential, metadata=metadata)
    return field(default=default, repr=not credential, metadata=metadata)


@dataclass(frozen=True)
class Settings:
    """Everything that varies between deployments, declared once: each field has its type,
    default, help text and environment variable here. Durations are in seconds."""

    # -- where things are ----------------------------------------------------------------
    data_dir: Path = setting(
        factory=default_data_dir,
        default_text="`<jupyter data dir>/sched`",
        help="Folder of run artifacts, and of the embedded SQLite history and queue.",
    )
    db_url: str | None = setting(
        None,
        "SQLAlchemy URL of the history database (e.g. `postgresql+psycopg://...`). "
        "Unset: a SQLite file in `data_dir`.",
        credential=True,  # may hold a password
    )
    redis_url: str | None = setting(
        None,
        "Redis URL of the run queue, for workers on other machines. Unset: an embedded "
        "SQLite queue in `data_dir`.",
        credential=True,
    )
    secret: str | None = setting(
        None,
        "Key that signs queue messages on Redis. Unset: a random key kept in `data_dir/secret`.",
        credential=True,
    )
    root_dir: Path = setting(
        factory=Path.cwd,
        default_text="the current folder",
        help="Notebook paths are relative to this folder and may not leave it (a server: "
        "its own root).",
        configurable=False,
    )
    allow_hidden: bool = setting(
        False,
        "Whether notebooks in hidden files or folders (a path component starting with `.`) "
        "may be scheduled (a server: its contents manager's `allow_hidden`).",
        configurable=False,
    )
    default_queue: str = setting("default", "Queue of jobs that name none.")
    # -- the ticker and the workers ------------------------------------------------------
    tick_seconds: float = setting(
        1.0, "Ticker period; it also wakes at once when a job changes.", minimum=0.01
    )
    misfire_grace_seconds: float = setting(
        30.0, "A fire later than this is a misfire and follows the job's misfire policy.",
        minimum=0.0,
    )  # fmt: skip
    heartbeat_seconds: float = setting(
        2.0, "How often a worker records that its runs are alive.", minimum=0.05
    )
    lease_seconds: float = setting(
        30.0,
        "A running run whose worker has not heartbeated for this long is `lost`; several "
        "times `heartbeat_seconds`.",
        minimum=0.1,
    )
    watch_seconds: float = setting(
        0.5, "How often a worker looks for cancel requests and deadlines of its runs.",
        minimum=0.01,
    )  # fmt: skip
    kill_grace_seconds: float = setting(
        1.0, "After an interrupt, how long a kernel gets before its process group is killed.",
        minimum=0.0,
    )  # fmt: skip
    max_retry_delay_seconds: float = setting(
        3600.0, "Upper bound of a retry delay, whatever a job's backoff says.", minimum=0.0
    )
    reconcile_seconds: float = setting(
        10.0,
        "How often the ticker looks for queued runs whose queue message was lost, and how "
        "long a handed-over run may wait unclaimed before its message counts as lost.",
        minimum=0.1,
    )
    poll_max_seconds: float = setting(
        0.1, "Longest an embedded-queue worker sleeps between polls of an empty queue.",
        minimum=0.01,
    )  # fmt: skip
    prestart_kernels: bool = setting(
        True, "Keep one started Python kernel ready per worker thread (used once, then discarded)."
    )
    chromium_path: str | None = setting(
        None,
        "Chromium (or Chrome) executable that prints PDF outputs (`output_formats: pdf`), "
        "e.g. `/usr/bin/chromium`. Unset: the first of `chromium`, `chromium-browser`, "
        "`google-chrome` on `PATH`. A job asking for PDF is refused while there is none.",
    )
    run_as_owner: bool = setting(
        False,
        "Workers start each run's kernel as the run's owner Unix user (uid, gid, groups, the "
        "user's environment, a run folder of the owner's alone). For hubs, where workers run "
        "as root; a run whose owner has no account on the worker's machine fails.",
    )
    user_root_dir: str | None = setting(
        None,
        "On a hub's scheduler service: the folder each user's notebook paths are relative "
        "to, `{owner}` standing for the hub user name (`~{owner}`: their home, like the "
        "spawner's `notebook_dir = \"~\"`). Unset: the server's root.",
    )
    # -- history -------------------------------------------------------------------------
    retention_days: float | None = setting(
        None, "Delete finished runs older than this many days (a job may set its own). "
        "Unset: keep them.", minimum=0.0,
    )  # fmt: skip
    retention_runs: int | None = setting(
        None, "Keep only this many newest finished runs per job (a job may set its own). "
        "Unset: keep them all.", minimum=0,
    )  # fmt: skip
    retention_sweep_seconds: float = setting(
        3600.0, "How often the ticker deletes runs past retention.", minimum=1.0
    )
    # -- report builders -----------------------------------------------------------------
    max_backfill_fires: int = setting(
        1000,
        "Most runs one backfill may make (its fires times the job's sweep sets); a larger "
        "range is refused with its count.",
        minimum=1,
    )
    max_sweep_sets: int = setting(
        500, "Most parameter sets a job's sweep may hold (a grid counts its product).", minimum=1
    )
    # -- webhooks and notifications ------------------------------------------------------
    webhook_rate_per_minute: float = setting(
        30.0, "Webhook calls one job's token may make per minute (429 beyond).", minimum=0.0
    )
    public_url: str | None = setting(
        None, "Base URL of the Jupyter server as people reach it, for links in notifications."
    )
    smtp_host: str | None = setting(
        None, "SMTP server that sends notification emails (unset: email targets fail)."
    )
    smtp_port: int = setting(25, "Its port.", minimum=1)
    smtp_from: str = setting("jupyter-sched@localhost", "Sender of notification emails.")
    smtp_user: str | None = setting(None, "SMTP login, if it needs one.")
    smtp_password: str | None = setting(None, "SMTP password.", credential=True)
    smtp_starttls: bool = setting(False, "Upgrade the SMTP connection with STARTTLS.")
    report_max_bytes: int = setting(
        10_000_000,
        "Largest email report (body, images and attachments) sent whole; above it, a "
        "summary with links.",
        minimum=1,
    )
    notify_max_attempts: int = setting(
        5, "Delivery attempts of one notification before it is given up (and logged).",
        minimum=1,
    )  # fmt: skip
    notify_retry_seconds: float = setting(
        10.0, "Delay before a notification's second attempt; doubles with each further one.",
        minimum=0.0,
    )  # fmt: skip

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``JUPYTER_SCHED_<NAME>`` variables (of ``environ``, default this
        process's environment), then explicit overrides (non-None).

        Every setting has a variable (``JUPYTER_SCHED_LEASE_SECONDS``, ...); the documented
        ones are the database, Redis, data dir, secret and root dir.
        """
        unknown = set(overrides) - {spec.name for spec in dataclasses.fields(cls)}
        if unknown:
            raise TypeError(f"unknown settings: {', '.join(sorted(unknown))}")
        source = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for spec in dataclasses.fields(cls):
            raw = source.get(_env_name(spec.name))
            if raw:
                values[spec.name] = _convert(spec.type, raw, spec.name)
            given = overrides.get(spec.name)
            if given is not None:
                values[spec.name] = (
                    _convert(spec.type, given, spec.name) if isinstance(given, str) else given
                )
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
            import secrets  # only the first process of a deployment makes one

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


def setting_help(spec: dataclasses.Field[Any]) -> str:
    """The help text of a setting, then where its value comes from when a server's
    configuration leaves it unset: its environment variable, else its default."""
    if spec.default_factory is not dataclasses.MISSING:
        default = spec.metadata["default_text"] or "computed"
    elif spec.default is None:
        default = "none"
    else:
        default = repr(spec.default)
    return f"{spec.metadata['help']} When unset: ${_env_name(spec.name)}, else {default}."


def _convert(kind: Any, raw: str, name: str) -> Any:
    kind = str(kind)
    try:
        if "Path" in kind:
            return Path(raw).expanduser()
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
