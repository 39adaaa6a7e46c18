"""The deployment's own ``jupyter sched`` commands: its processes (``worker``, ``service``,
``scheduler``, ``demo``) and its upkeep (``db``, ``prune``).

They open the deployment itself (database, queue, secret), so on a hub they are refused in
a user's terminal (:func:`~jupyter_sched.hubcli.refuse_on_a_hub`); the people's commands
(jobs, runs, events) are in :mod:`jupyter_sched.cli`, which adds these to its group.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING

import click

from .clock import utcnow
from .config import Settings, default_owner, redact_url
from .hubcli import refuse_on_a_hub
from .terminal import STATUS_COLOURS

if TYPE_CHECKING:
    from .db import Database
    from .service import Service


def open_deployment(ctx: click.Context, settings: Settings | None = None) -> Service:
    from .service import Service

    refuse_on_a_hub(ctx)

    # A CannotStart (a newer schema, another secret, a missing extra) becomes one line
    # and its exit code in terminal.SchedGroup, like every scheduler error.
    return Service.open(settings or ctx.obj["settings"])


def open_database(ctx: click.Context) -> Database:
    """The deployment's history database alone, at the newest schema, for a command that
    only reads it (a listing): neither the service nor the queue is opened."""
    from .db import Database

    refuse_on_a_hub(ctx)
    settings: Settings = ctx.obj["settings"]
    db = Database(settings.database_url)
    try:
        db.upgrade()
    except Exception:
        db.dispose()
        raise
    return db


def waiting_deployment(ctx: click.Context) -> Service:
    """The service of a long-running command: it waits for an unreachable history
    database (logging that once) instead of exiting."""
    from .db import retry_while_unavailable
    from .service import Service

    refuse_on_a_hub(ctx)
    settings: Settings = ctx.obj["settings"]
    service = Service.open(settings, join=False)
    retry_while_unavailable(service.join, max_delay=10)
    return service


@click.command()
@click.option("-c", "--concurrency", default=2, show_default=True, help="Runs at once per queue.")
@click.option(
    "-q",
    "--queue",
    "queues",
    multiple=True,
    help="Queue to take runs from (repeatable; default: the deployment's default queue).",
)
@click.option(
    "--grace", default=30.0, show_default=True, help="Seconds runs get to finish on stop."
)
@click.option("--exit-with-parent", is_flag=True, help="Stop when the starting process dies.")
@click.option(
    "--parent-pid",
    type=int,
    help="With --exit-with-parent: the process to outlive no longer than (default: the parent).",
)
@click.option(
    "--exit-when-idle",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Exit (code 0) after this long with no run and none due within two minutes: how "
    "a server's embedded worker leaves an idle scheduler light (the server starts it again "
    "when work comes).",
)
@click.option(
    "--settings-from-stdin",
    is_flag=True,
    help="Read the deployment's JUPYTER_SCHED_* settings as a JSON object on standard input "
    "(how a server hands them to its embedded worker: never in an environment a kernel "
    "could read).",
)
@click.pass_context
def worker(
    ctx: click.Context,
    concurrency: int,
    queues: list[str],
    grace: float,
    exit_with_parent: bool,
    parent_pid: int | None,
    exit_when_idle: float | None,
    settings_from_stdin: bool,
) -> None:
    """Execute runs from the queue until stopped (SIGTERM/SIGINT stop gracefully)."""
    from .owners import hide_process
    from .worker import Worker

    # Before anything reads a credential: kernels of this uid must not read this process.
    hide_process()
    if settings_from_stdin:
        given = json.loads(sys.stdin.read() or "{}")
        ctx.obj["settings"] = Settings.from_env({**os.environ, **given})
    service = waiting_deployment(ctx)
    queues = list(queues) or [service.settings.default_queue]
    Worker(
        service.settings, service.db, queues, concurrency, idle_exit_seconds=exit_when_idle
    ).run_forever(grace, exit_with_parent=exit_with_parent, parent_pid=parent_pid)


@click.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.pass_context
def service(ctx: click.Context) -> None:
    """Run the scheduler service of a JupyterHub (API, ticker, metrics; see docs/admin/hub).

    Listens where $JUPYTERHUB_SERVICE_URL says, under $JUPYTERHUB_SERVICE_PREFIX, and checks
    every request's token with the hub ($JUPYTERHUB_API_URL, $JUPYTERHUB_API_TOKEN). Further
    arguments go to the Jupyter server (e.g. --SchedApp.user_root_dir='~{owner}').
    """
    from .hubservice import launch

    refuse_on_a_hub(ctx)
    launch(list(ctx.args))


@click.command()
@click.pass_context
def scheduler(ctx: click.Context) -> None:
    """Run the ticker alone (fires schedules, dispatches and reaps runs) until stopped."""
    from .ticker import Ticker

    service = waiting_deployment(ctx)
    ticker = Ticker(service.db, service.queues, service.settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    ticker.start()
    stop.wait()
    ticker.stop()


@click.group()
def db() -> None:
    """The history database."""


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Create or migrate the database schema to the newest version."""
    settings: Settings = ctx.obj["settings"]
    open_deployment(ctx)
    click.echo(f"database at the newest schema: {redact_url(settings.database_url)}")


@db.command("forget-secret")
@click.pass_context
def db_forget_secret(ctx: click.Context) -> None:
    """Forget the queue signing secret the deployment recorded, after changing
    JUPYTER_SCHED_SECRET on purpose: the next process to start records its own."""
    from .queue import forget_secret

    settings: Settings = ctx.obj["settings"]
    service = open_deployment(
        ctx, settings.replace(redis_url=None)
    )  # no secret check: it may differ
    forgotten = forget_secret(service.db)
    click.echo("forgotten; restart every process with the new secret" if forgotten else
               "no secret recorded")  # fmt: skip


@click.command()
@click.option("--days", type=float, help="Delete finished runs older than this.")
@click.option("--keep", type=int, help="Keep this many newest finished runs per job.")
@click.option("--dry-run", is_flag=True, help="Only list what would be deleted.")
@click.pass_context
def prune(ctx: click.Context, days: float | None, keep: int | None, dry_run: bool) -> None:
    """Delete old finished runs and their files (never a queued or running run).

    Without options, applies the deployment's retention (JUPYTER_SCHED_RETENTION_DAYS,
    JUPYTER_SCHED_RETENTION_RUNS) and each job's own.
    """
    from . import retention

    settings: Settings = ctx.obj["settings"].replace(
        **{k: v for k, v in (("retention_days", days), ("retention_runs", keep)) if v is not None}
    )
    service = open_deployment(ctx, settings)
    report = retention.prune(service.db, settings, utcnow(), dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    if dry_run:
        for run_id in report.run_ids:
            click.echo(run_id)
    click.echo(f"{verb} {len(report.run_ids)} finished run(s)")


@click.command()
@click.option("--every", default=10.0, show_default=True, help="Seconds between runs.")
@click.option("--notebook", default="notebooks/sales_report.ipynb", show_default=True)
@click.pass_context
def demo(ctx: click.Context, every: float, notebook: str) -> None:
    """Schedule an example notebook every few seconds and show the runs as they land."""
    from .statuses import FINAL_STATUSES
    from .ticker import Ticker
    from .worker import Worker

    settings: Settings = ctx.obj["settings"]
    service = open_deployment(ctx)
    ticker = Ticker(service.db, service.queues, settings)
    service.on_change = ticker.wake
    worker = Worker(settings, service.db, concurrency=1)
    job = service.create_job(
        default_owner(),
        {
            "name": "demo: sales report",
            "notebook": notebook,
            "parameters": {"region": "EU", "days": 14},
            "trigger": {"kind": "interval", "every_seconds": every},
            "output_formats": ["ipynb", "html"],
        },
    )
    click.echo(f"job {job.id}: {notebook} every {every:g}s; data in {settings.data_dir}")
    click.echo("Ctrl-C to stop.\n")
    ticker.start()
    worker.start()
    seen: set[str] = set()
    try:
        while True:
            for r in reversed(service.list_runs(default_owner(), job_id=job.id, limit=20).runs):
                if r.status in FINAL_STATUSES and r.id not in seen:
                    seen.add(r.id)
                    stats = service.job_stats(default_owner(), job.id)
                    duration = f"{r.duration_seconds:.2f}s" if r.duration_seconds else "-"
                    colour = STATUS_COLOURS.get(r.status)
                    click.echo(
                        f"{r.finished_at:%H:%M:%S}  run {r.id}  {click.style(r.status, fg=colour)}"
                        f"  {duration}  ({stats.succeeded}/{stats.runs} succeeded,"
                        f" p50 {stats.duration_p50_seconds or 0:.2f}s)"
                    )
                    output = settings.artifacts_dir / r.id / "output.html"
                    click.echo(f"          {output}")
            time.sleep(0.5)
    except KeyboardInterrupt:
        click.echo("\nstopping")
    finally:
        service.pause_job(default_owner(), job.id)
        worker.stop(grace_seconds=5)
        ticker.stop()
