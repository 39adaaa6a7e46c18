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
import dataclasses
import functools
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from jupyter_server.auth.identity import (
    IdentityProvider,
    LegacyIdentityProvider,
    PasswordIdentityProvider,
    User,
)
from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Float, Integer, List, Unicode, default
from traitlets.config import Configurable

from . import __version__
from .access import AdminName
from .clock import utcnow
from .config import ENV_USER, Settings, default_owner, redact_url, setting_help
from .db import retry_while_unavailable
from .dispatch import work_expected
from .errors import CannotStart, Unavailable
from .forward import forward_handlers
from .handlers import handlers, unavailable_handlers
from .restmodels import Health
from .service import Service
from .supervisor import WorkerProcess, worker_env
from .ticker import Ticker

T = TypeVar("T")

#: jupyter_server's own identity providers: one shared token or password, no user names
#: (each token request is a new random "anonymous" user).
SHARED_IDENTITY_PROVIDERS = (IdentityProvider, PasswordIdentityProvider, LegacyIdentityProvider)


def _setting_traits() -> dict[str, Any]:
    """For each configurable field of :class:`Settings`: a traitlet with the field's help
    text whose default is the environment variable, else the field's default; and that
    default's generator."""
    kinds = {"bool": Bool, "float": Float, "int": Integer}
    namespace: dict[str, Any] = {}
    for spec in dataclasses.fields(Settings):
        if not spec.metadata.get("configurable", True):
            continue
        kind = kinds.get(str(spec.type).split("|")[0].strip(), Unicode)
        limits = {} if spec.metadata["minimum"] is None else {"min": spec.metadata["minimum"]}
        namespace[spec.name] = kind(
            None, allow_none=True, config=True, help=setting_help(spec), **limits
        )
        namespace[f"_default_{spec.name}"] = default(spec.name)(_from_environment(spec.name))
    return namespace


def _from_environment(name: str) -> Callable[[Any], Any]:
    def environment_or_default(app: Any) -> Any:
        value = getattr(Settings.from_env(), name)
        return str(value) if isinstance(value, Path) else value

    return environment_or_default


_SETTINGS_NAMESPACE = _setting_traits()
#: The names of the configurable settings, each a traitlet of the server extension.
SETTING_TRAITS = tuple(name for name in _SETTINGS_NAMESPACE if not name.startswith("_"))

if TYPE_CHECKING:
    from .metrics import RunObserver

    class SettingTraits:
        """The traitlets of the settings (their names are in ``SETTING_TRAITS``)."""

else:
    #: A base of SchedApp that holds the traitlets of the settings (``c.SchedApp.<name>``).
    SettingTraits = type("SettingTraits", (Configurable,), _SETTINGS_NAMESPACE)


# First among the bases: the data_dir setting overrides JupyterApp's own (not configurable).
class SchedApp(SettingTraits, ExtensionApp):
    """Schedule notebooks from Jupyter: REST API under ``{base_url}sched/api/``."""

    name = "jupyter_sched"
    description = __doc__

    # Every field of config.Settings that a server may set is a traitlet of this class
    # too (SettingTraits, below): declared once, in config.py.

    owner = Unicode(
        None,
        allow_none=True,
        config=True,
        help=f"""Owner of every job and run made through this server. Default: the
        authenticated user's name; on a server using jupyter_server's own token or password
        (which cannot tell users apart), ${ENV_USER} or the login name of the server's user,
        like the `jupyter sched` CLI.""",
    )
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
    worker_idle_exit_seconds = Float(
        60.0,
        min=0.0,
        config=True,
        help="""With the embedded queue, the embedded worker exits after this long with no
        run and no job due within two minutes, and the server starts it again when work
        comes (a run enqueued or a job due soon; the first run after such a pause pays
        the worker's start, about a second). 0: it runs as long as the server.""",
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

    @default("embedded_workers")
    def _default_embedded_workers(self) -> bool:
        return not getattr(self, "redis_url")  # noqa: B009 - a traitlet made from Settings

    @default("worker_queues")
    def _default_worker_queues(self) -> list[str]:
        return [getattr(self, "default_queue")]  # noqa: B009 - a traitlet made from Settings

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

    def setting_values(self) -> dict[str, Any]:
        """The settings of this server: its configuration, else the environment variables,
        else the defaults (the traitlets' values)."""
        return {
            name: value for name in SETTING_TRAITS if (value := getattr(self, name)) is not None
        }

    def sched_settings(self) -> Settings:
        """The deployment this server belongs to."""
        assert self.serverapp is not None
        return Settings.from_env(
            **self.setting_values(),
            root_dir=Path(self.serverapp.root_dir),
            allow_hidden=self._allow_hidden(),
        )

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
            self.service.join(migrate_in_child=True)
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
            retry_while_unavailable(
                functools.partial(self.service.join, migrate_in_child=True),
                give_up=self._stopping,
                max_delay=10,
            )
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
                    **self._idle_exit(settings),
                )
                self.worker.start()
                # Also when the server exits without stopping its extensions (a start-up error).
                atexit.register(self.stop_scheduler)
            if self.metrics_seconds > 0:
                # Imported here: importing registers the scheduler's series with
                # jupyter_server's /metrics, which only a server that runs the scheduler
                # should show (a hub user's server would show a deployment of zeros).
                from .metrics import RunObserver

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

    def _idles(self) -> bool:
        """Whether the embedded worker exits when idle: on the embedded queue, whose
        wake-ups reach this server (a Redis queue may be fed from anywhere)."""
        return self.worker_idle_exit_seconds > 0 and not getattr(self, "redis_url")  # noqa: B009

    def _idle_exit(self, settings: Settings) -> dict[str, Any]:
        """The supervisor's means to start an idle-exited worker again."""
        if not self._idles():
            return {}
        db = self.service.db
        return {"demand": lambda: work_expected(db, utcnow()), "wake_data_dir": settings.data_dir}

    def worker_argv(self) -> list[str]:
        """The command of the embedded worker."""
        argv = [sys.executable, "-m", "jupyter_sched.cli", "worker", "--exit-with-parent"]
        argv += ["--parent-pid", str(os.getpid()), "--settings-from-stdin"]
        argv += ["-c", str(self.worker_concurrency)]
        argv += ["--grace", str(self.worker_stop_grace_seconds)]
        if self._idles():
            argv += ["--exit-when-idle", str(self.worker_idle_exit_seconds)]
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
        ok = load is not None and ticker != "stopped" and worker in ("running", "idle", "disabled")
        return Health(
            status="ok" if ok else "degraded",
            version=__version__,
            database="ok" if load is not None else "unavailable",
            ticker=ticker,
            embedded_worker=worker,
            embedded_worker_restarts=self.worker.restarts if self.worker else 0,
            load=load,
        )
