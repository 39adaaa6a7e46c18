"""The Jupyter server extension: configuration, the REST API, and the embedded scheduler.

By default (no Redis configured) starting ``jupyter lab`` or ``jupyter server`` gives a
working scheduler: the extension migrates the SQLite history, ticks in a thread, and runs
a ``jupyter sched worker`` subprocess that it restarts if it dies and stops with the
server. With a Redis URL the embedded worker is off by default: workers run elsewhere and
the server serves the API and ticks.

A server started while its history database is unreachable comes up all the same: the API
answers 503 until the database answers, then the extension migrates it and starts the
ticker, the embedded worker and the metrics as usual.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from jupyter_server.auth.identity import (
    IdentityProvider,
    LegacyIdentityProvider,
    PasswordIdentityProvider,
    User,
)
from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Float, Integer, List, Unicode, default

from . import __version__
from .config import (
    ENV_DB_URL,
    ENV_REDIS_URL,
    ENV_SECRET,
    ENV_USER,
    Settings,
    default_owner,
    redact_url,
)
from .db import retry_while_unavailable
from .errors import CannotStart, Unavailable
from .forward import forward_handlers
from .handlers import handlers, unavailable_handlers
from .metrics import RunObserver
from .parsing import AdminName
from .schemas import Health
from .service import Service
from .supervisor import WorkerProcess, worker_env
from .ticker import Ticker

T = TypeVar("T")

#: jupyter_server's own identity providers: one shared token or password, no user names
#: (each token request is a new random "anonymous" user).
SHARED_IDENTITY_PROVIDERS = (IdentityProvider, PasswordIdentityProvider, LegacyIdentityProvider)


class SchedApp(ExtensionApp):
    """Schedule notebooks from Jupyter: REST API under ``{base_url}sched/api/``."""

    name = "jupyter_sched"
    description = __doc__

    # -- where things are ----------------------------------------------------------------

    data_dir = Unicode(
        config=True,
        help="""Folder of run artifacts, and of the embedded SQLite history and queue.
        Default: $JUPYTER_SCHED_DATA_DIR, else `<jupyter data dir>/sched`.""",
    )
    db_url = Unicode(
        None,
        allow_none=True,
        config=True,
        help=f"""SQLAlchemy URL of the history database (e.g. postgresql+psycopg://...).
        Default: ${ENV_DB_URL}, else a SQLite file in `data_dir`.""",
    )
    redis_url = Unicode(
        None,
        allow_none=True,
        config=True,
        help=f"""Redis URL of the run queue, for workers on other machines.
        Default: ${ENV_REDIS_URL}, else an embedded SQLite queue in `data_dir`.""",
    )
    secret = Unicode(
        None,
        allow_none=True,
        config=True,
        help=f"""Key that signs queue messages on Redis. Default: ${ENV_SECRET}, else a
        random key kept in `data_dir/secret`.""",
    )
    owner = Unicode(
        None,
        allow_none=True,
        config=True,
        help=f"""Owner of every job and run made through this server. Default: the
        authenticated user's name; on a server using jupyter_server's own token or password
        (which cannot tell users apart), ${ENV_USER} or the login name of the server's user,
        like the `jupyter sched` CLI.""",
    )
    default_queue = Unicode(config=True, help="Queue of jobs that name none.")
    service_url = Unicode(
        None,
        allow_none=True,
        config=True,
        help="""Hub mode: the base URL of the hub's scheduler service as this server reaches
        it (e.g. http://127.0.0.1:10101/services/sched/). This server then holds no scheduler
        credential and runs no scheduler: it forwards `sched/api/*` to the service with its
        own hub token ($JUPYTERHUB_API_TOKEN). Set it in the spawner's arguments
        (`c.Spawner.args`); $JUPYTER_SCHED_SERVICE_URL, the same address in the server's
        environment, is for the `jupyter sched` CLI in its terminals. No other
        JUPYTER_SCHED_* variable (no credential) belongs in a user's server.""",
    )

    # -- the embedded scheduler ----------------------------------------------------------

    embedded_workers = Bool(
        config=True,
        help="""Run a `jupyter sched worker` subprocess with the server, restarted if it
        dies. Default: on, unless `redis_url` is set (workers then run elsewhere).""",
    )
    worker_concurrency = Integer(
        2, min=1, config=True, help="Runs the embedded worker executes at once, per queue."
    )
    worker_queues = List(
        Unicode(),
        config=True,
        help="Queues the embedded worker consumes. Default: `[default_queue]`.",
    )
    worker_stop_grace_seconds = Float(
        5.0,
        min=0.0,
        config=True,
        help="""On server stop, how long running runs get to finish before the embedded
        worker aborts them (they end `lost` and are retried when their job allows).""",
    )
    worker_restart_max_delay_seconds = Float(
        60.0,
        min=0.1,
        config=True,
        help="Longest wait before restarting an embedded worker that keeps dying.",
    )
    run_ticker = Bool(
        True,
        config=True,
        help="""Find due fires, dispatch and reap runs in this server (any number of
        tickers may share a database).""",
    )
    tick_seconds = Float(min=0.01, config=True, help="Ticker period, in seconds.")
    heartbeat_seconds = Float(
        min=0.05,
        config=True,
        help="How often the embedded worker records that its runs are alive.",
    )
    lease_seconds = Float(
        min=0.1,
        config=True,
        help="""A running run whose worker has not heartbeated for this long is `lost`;
        several times the workers' `heartbeat_seconds`.""",
    )
    misfire_grace_seconds = Float(
        min=0.0,
        config=True,
        help="A fire later than this is a misfire and follows the job's misfire policy.",
    )
    reconcile_seconds = Float(
        min=0.1,
        config=True,
        help="How often queued runs whose queue message was lost are dispatched again.",
    )
    max_retry_delay_seconds = Float(
        min=0.0,
        config=True,
        help="Upper bound of a retry delay, whatever a job's backoff says.",
    )

    # -- workflows -------------------------------------------------------------------------

    webhook_rate_per_minute = Float(
        None,
        allow_none=True,
        config=True,
        help="Webhook calls one job's token may make per minute (429 beyond). Default 30.",
    )
    retention_days = Float(
        None,
        allow_none=True,
        config=True,
        help="Delete finished runs older than this many days (a job may set its own).",
    )
    retention_runs = Integer(
        None,
        allow_none=True,
        config=True,
        help="Keep only this many newest finished runs per job (a job may set its own).",
    )
    public_url = Unicode(
        None,
        allow_none=True,
        config=True,
        help="Base URL of this server as people reach it, for links in notifications.",
    )
    smtp_host = Unicode(
        None, allow_none=True, config=True, help="SMTP server for notification emails."
    )
    smtp_port = Integer(None, allow_none=True, config=True, help="Its port. Default 25.")
    smtp_from = Unicode(
        None,
        allow_none=True,
        config=True,
        help="Sender of notification emails. Default jupyter-sched@localhost.",
    )
    report_max_bytes = Integer(
        None,
        allow_none=True,
        min=1,
        config=True,
        help="Largest email report sent whole; above it, the summary and links. Default 10 MB.",
    )
    smtp_user = Unicode(None, allow_none=True, config=True, help="SMTP login, if it needs one.")
    smtp_password = Unicode(None, allow_none=True, config=True, help="SMTP password.")
    smtp_starttls = Bool(
        None, allow_none=True, config=True, help="Upgrade the SMTP connection with STARTTLS."
    )
    notify_max_attempts = Integer(
        None,
        allow_none=True,
        min=1,
        config=True,
        help="Delivery attempts of one notification before it is given up. Default 5.",
    )
    notify_retry_seconds = Float(
        None,
        allow_none=True,
        min=0.0,
        config=True,
        help="Delay before a notification's second attempt; doubles after. Default 10.",
    )
    retention_sweep_seconds = Float(
        None,
        allow_none=True,
        min=1.0,
        config=True,
        help="How often the ticker deletes runs past retention. Default 3600.",
    )

    # -- the embedded worker's execution ---------------------------------------------------

    watch_seconds = Float(
        None,
        allow_none=True,
        min=0.01,
        config=True,
        help="How often workers look for cancel requests and deadlines. Default 0.5.",
    )
    kill_grace_seconds = Float(
        None,
        allow_none=True,
        min=0.0,
        config=True,
        help="After an interrupt, how long a kernel gets before it is killed. Default 1.",
    )
    poll_max_seconds = Float(
        None,
        allow_none=True,
        min=0.01,
        config=True,
        help="Longest an embedded-queue worker sleeps between polls. Default 0.1.",
    )
    prestart_kernels = Bool(
        None,
        allow_none=True,
        config=True,
        help="Keep a started Python kernel ready per worker thread (each serves one run). "
        "Default on.",
    )
    user_root_dir = Unicode(
        None,
        allow_none=True,
        config=True,
        help="""On a hub's scheduler service: the folder each user's notebook paths are
        relative to, `{owner}` standing for the hub user name, e.g. `~{owner}` (their home,
        like the spawner's `notebook_dir = "~"`). Default: the server's root.""",
    )
    run_as_owner = Bool(
        None,
        allow_none=True,
        config=True,
        help="""Workers start each run's kernel as the run's owner Unix user (uid, gid,
        groups, the user's own environment; the run's folder is the owner's alone). For hub
        workers run as root ($JUPYTER_SCHED_RUN_AS_OWNER). Default off.""",
    )

    # -- the API ---------------------------------------------------------------------------

    max_body_bytes = Integer(
        1 << 20, min=1, config=True, help="Request bodies larger than this are refused (413)."
    )
    api_threads = Integer(
        8, min=1, config=True, help="Threads that run the API's database and file calls."
    )
    metrics_seconds = Float(
        5.0,
        min=0.0,
        config=True,
        help="""How often the scheduler's Prometheus metrics are refreshed from the
        database (0 turns them off).""",
    )

    @default("data_dir")
    def _default_data_dir(self) -> str:
        return str(Settings.from_env().data_dir)

    @default("db_url")
    def _default_db_url(self) -> str | None:
        return Settings.from_env().db_url

    @default("redis_url")
    def _default_redis_url(self) -> str | None:
        return Settings.from_env().redis_url

    @default("secret")
    def _default_secret(self) -> str | None:
        return Settings.from_env().secret

    @default("default_queue")
    def _default_default_queue(self) -> str:
        return Settings.from_env().default_queue

    @default("tick_seconds")
    def _default_tick_seconds(self) -> float:
        return Settings.from_env().tick_seconds

    @default("heartbeat_seconds")
    def _default_heartbeat_seconds(self) -> float:
        return Settings.from_env().heartbeat_seconds

    @default("lease_seconds")
    def _default_lease_seconds(self) -> float:
        return Settings.from_env().lease_seconds

    @default("misfire_grace_seconds")
    def _default_misfire_grace_seconds(self) -> float:
        return Settings.from_env().misfire_grace_seconds

    @default("reconcile_seconds")
    def _default_reconcile_seconds(self) -> float:
        return Settings.from_env().reconcile_seconds

    @default("max_retry_delay_seconds")
    def _default_max_retry_delay_seconds(self) -> float:
        return Settings.from_env().max_retry_delay_seconds

    @default("embedded_workers")
    def _default_embedded_workers(self) -> bool:
        return not self.redis_url

    @default("worker_queues")
    def _default_worker_queues(self) -> list[str]:
        return [self.default_queue]

    # -- life --------------------------------------------------------------------------------

    service: Service
    #: Why the scheduler cannot start (a missing optional package, a newer schema, another
    #: queue secret); the API answers every request with it.
    unavailable: CannotStart | None = None
    ticker: Ticker | None = None
    worker: WorkerProcess | None = None
    observer: RunObserver | None = None
    _executor: ThreadPoolExecutor | None = None
    _connector: threading.Thread | None = None
    _stopped = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        #: Set once the history database is migrated: the API serves from then on.
        self.ready = threading.Event()
        self._stopping = threading.Event()
        self._life_lock = threading.Lock()

    def sched_settings(self) -> Settings:
        """The deployment this server belongs to, from the traitlets."""
        assert self.serverapp is not None
        return Settings.from_env().replace(
            data_dir=Path(self.data_dir).expanduser(),
            db_url=self.db_url or None,
            redis_url=self.redis_url or None,
            secret=self.secret or None,
            root_dir=Path(self.serverapp.root_dir),
            allow_hidden=self._allow_hidden(),
            default_queue=self.default_queue,
            tick_seconds=self.tick_seconds,
            heartbeat_seconds=self.heartbeat_seconds,
            misfire_grace_seconds=self.misfire_grace_seconds,
            lease_seconds=self.lease_seconds,
            reconcile_seconds=self.reconcile_seconds,
            max_retry_delay_seconds=self.max_retry_delay_seconds,
            **{
                name: value
                for name in (
                    "webhook_rate_per_minute", "retention_days", "retention_runs",
                    "public_url", "smtp_host", "smtp_port", "smtp_from", "smtp_user",
                    "smtp_password", "smtp_starttls", "notify_max_attempts",
                    "notify_retry_seconds", "retention_sweep_seconds", "watch_seconds",
                    "kill_grace_seconds", "poll_max_seconds", "prestart_kernels", "run_as_owner",
                    "user_root_dir", "report_max_bytes",
                )
                if (value := getattr(self, name)) is not None
            },
        )  # fmt: skip

    def _allow_hidden(self) -> bool:
        """The contents API's rule for hidden files, which holds for notebook paths too."""
        # not there yet when the app is built without a started server (tests)
        contents = getattr(self.serverapp, "contents_manager", None)
        return bool(getattr(contents, "allow_hidden", False))

    def initialize_settings(self) -> None:
        if self.service_url:
            self.log.info(
                "jupyter-sched %s: hub mode, forwarding sched/api to %s", __version__,
                self.service_url,
            )  # fmt: skip
            return
        settings = self.sched_settings()
        try:
            self.service = Service.open(settings, join=False)
        except CannotStart as exc:
            # One line that says what to install instead of a traceback; JupyterLab keeps
            # working, and the panel shows the same line from the API's 503.
            self.log.error("jupyter-sched is off: %s", exc.message)
            self.unavailable = exc
            return
        self._executor = ThreadPoolExecutor(self.api_threads, thread_name_prefix="sched-api")
        try:
            self.service.join()
        except CannotStart as exc:
            self.log.error("jupyter-sched is off: %s", exc.message)
            self.unavailable = exc
            return
        except Unavailable:
            self.log.info(
                "jupyter-sched: the API answers 503 until the history database %s answers; "
                "the scheduler starts then",
                redact_url(settings.database_url),
            )
            self._connector = threading.Thread(
                target=self._connect, name="jupyter-sched-connect", daemon=True
            )
            self._connector.start()
            return
        self._start_scheduler()

    def _connect(self) -> None:
        """Wait for the history database, migrate it, then start the scheduler."""
        try:
            retry_while_unavailable(self.service.join, give_up=self._stopping, max_delay=10)
        except Unavailable:
            return  # the server stops
        except CannotStart as exc:
            self.log.error("jupyter-sched is off: %s", exc.message)
            self.unavailable = exc
            return
        except Exception:
            self.log.exception("jupyter-sched: the history database cannot be migrated")
            return
        self._start_scheduler()

    def _start_scheduler(self) -> None:
        """Serve the API and start the ticker, the embedded worker and the metrics."""
        with self._life_lock:
            if self._stopped:
                return
            self.ready.set()
            settings = self.service.settings
            if self.run_ticker:
                self.ticker = Ticker(self.service.db, self.service.queues, settings)
                self.service.on_change = self.ticker.wake
                self.ticker.start()
            if self.embedded_workers:
                self.worker = WorkerProcess(
                    self.worker_argv(),
                    worker_env(settings),
                    self.log,
                    stop_timeout=self.worker_stop_grace_seconds + 20.0,
                    max_delay=self.worker_restart_max_delay_seconds,
                )
                self.worker.start()
                # Also when the server exits without stopping its extensions (a start-up error).
                atexit.register(self.stop_scheduler)
            if self.metrics_seconds > 0:
                self.observer = RunObserver(self.service, self.metrics_seconds)
                self.observer.start()
        self.log.info(
            "jupyter-sched %s: history %s, queue %s, ticker %s, embedded worker %s",
            __version__,
            redact_url(settings.database_url),
            redact_url(settings.redis_url) if settings.redis_url else "embedded",
            "on" if self.ticker else "off",
            f"on (pid {self.worker.pid})" if self.worker else "off",
        )

    def initialize_handlers(self) -> None:
        if self.service_url:
            self.handlers.extend(forward_handlers())
            return
        self.handlers.extend(unavailable_handlers() if self.unavailable else handlers())
        from .hubservice import HubIdentityProvider, metrics_handlers

        if isinstance(getattr(self.serverapp, "identity_provider", None), HubIdentityProvider):
            # The hub's scheduler service: its /metrics (the whole deployment's) for admins.
            self.handlers.extend(metrics_handlers())

    def worker_argv(self) -> list[str]:
        """The command of the embedded worker."""
        argv = [sys.executable, "-m", "jupyter_sched.cli", "worker", "--exit-with-parent"]
        argv += ["--parent-pid", str(os.getpid()), "--settings-from-stdin"]
        argv += ["-c", str(self.worker_concurrency)]
        argv += ["--grace", str(self.worker_stop_grace_seconds)]
        for queue in self.worker_queues:
            argv += ["-q", queue]
        return argv

    async def stop_extension(self) -> None:
        await asyncio.to_thread(self.stop_scheduler)

    def stop_scheduler(self) -> None:
        """Stop the embedded worker (no kernel left behind), the ticker and the metrics."""
        with self._life_lock:
            if self._stopped or not hasattr(self, "service"):
                return
            self._stopped = True
        self._stopping.set()
        if self._connector is not None:
            self._connector.join(15)
        if self.worker is not None:
            self.worker.stop()
        if self.ticker is not None:
            self.ticker.stop()
        if self.observer is not None:
            self.observer.stop()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
        self.service.db.dispose()

    # -- what handlers use -----------------------------------------------------------------

    async def run_blocking(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking call (database, files) on the API's threads."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def owner_of(self, user: User | None) -> str:
        """Whose jobs and runs a request by ``user`` sees and makes."""
        if self.owner:
            return self.owner
        assert self.serverapp is not None
        if type(self.serverapp.identity_provider) in SHARED_IDENTITY_PROVIDERS or user is None:
            return default_owner()
        if getattr(user, "sched_admin", False):  # a hub's scheduler admin (hubservice.py)
            return AdminName(user.username)
        return user.username

    def health(self) -> Health:
        """The state of the scheduler in this server."""
        load = None
        if self.ready.is_set():
            with contextlib.suppress(Unavailable):  # the database logs the outage once
                load = self.service.load()
        ticker_thread = getattr(self.ticker, "_thread", None)
        # Before the database first answers, what is configured has not started yet.
        ticker = (
            "disabled"
            if not self.run_ticker
            else "running"
            if ticker_thread is not None and ticker_thread.is_alive()
            else "stopped"
        )
        worker = (
            "disabled"
            if not self.embedded_workers
            else self.worker.status
            if self.worker is not None
            else "stopped"
        )
        ok = load is not None and ticker != "stopped" and worker in ("running", "disabled")
        return Health(
            status="ok" if ok else "degraded",
            version=__version__,
            database="ok" if load is not None else "unavailable",
            ticker=ticker,
            embedded_worker=worker,
            embedded_worker_restarts=self.worker.restarts if self.worker else 0,
            load=load,
        )
