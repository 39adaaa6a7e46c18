"""``jupyter sched``: one-off runs, jobs, runs and events; the deployment's processes and
upkeep (workers, the service, the standalone ticker, the database) are in
:mod:`jupyter_sched.cliops`.

Every command reads the deployment from ``JUPYTER_SCHED_*`` environment variables (see
:mod:`jupyter_sched.config`), so it talks to the same database and queue as the server.
People get tables and progress (:mod:`jupyter_sched.display`); scripts get ``--json`` and
the exit codes of :class:`~jupyter_sched.terminal.ExitCode`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click

from . import __version__, cliops, terminal
from .cliops import open_database, open_deployment
from .config import Settings, default_owner, set_process_role
from .errors import SchedError
from .hubcli import hub_client, hub_mode
from .joboptions import job_fields, job_options, parse_value

if TYPE_CHECKING:
    # The commands import what they use: `--help` and the listings must not pay for the
    # worker's execution stack (papermill, nbformat) nor for the service's storage.
    from .client import SchedulerAPI
    from .schemas import Run
    from .service import Service
    from .worker import Worker

STATUS_COLOURS = terminal.STATUS_COLOURS


def _owner() -> str:
    return default_owner()


def _service(ctx: click.Context) -> SchedulerAPI:
    """What the user commands call: the hub's scheduler service with the user's hub token
    in a user's terminal on a hub, else the deployment itself."""
    return hub_client(ctx) or open_deployment(ctx)


@click.group(
    cls=terminal.SchedGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog=terminal.EXIT_CODES_HELP,
)
@click.version_option(__version__, prog_name="jupyter sched")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Artifacts and embedded DB.")
@click.option("--db-url", help="SQLAlchemy URL of the history database.")
@click.option("--redis-url", help="Redis URL of the queue (default: embedded SQLite queue).")
@click.option(
    "--root-dir", type=click.Path(path_type=Path), help="Notebook paths are relative to this."
)
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
@click.pass_context
def main(
    ctx: click.Context,
    data_dir: Path | None,
    db_url: str | None,
    redis_url: str | None,
    root_dir: Path | None,
    verbose: int,
) -> None:
    """Schedule and run Jupyter notebooks.

    Every command works on the scheduler of this machine's Jupyter data directory (the one
    `jupyter lab` uses), or on the deployment that the JUPYTER_SCHED_* environment
    variables or the options below name.
    """
    import logging  # not for `--help`, which exits before this runs

    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx.ensure_object(dict)
    ctx.obj["settings"] = Settings.from_env(
        data_dir=data_dir, db_url=db_url, redis_url=redis_url, root_dir=root_dir
    )
    set_process_role(ctx.invoked_subcommand or "cli")
    hub_mode(ctx, root_dir)


@main.command()
@click.argument("notebook", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-p", "--parameter", "parameters", nargs=2, multiple=True, metavar="NAME VALUE",
              help="A parameter; VALUE is JSON when it parses, else a string.")  # fmt: skip
@click.option("-k", "--kernel", help="Kernel to use (default: the notebook's).")
@click.option("--timeout", type=float, help="Seconds before the run is stopped.")
@click.option("--html", is_flag=True, help="Also render the output as HTML.")
@click.option("--local", is_flag=True, help="Execute in this process instead of on a worker.")
@click.pass_context
def run(
    ctx: click.Context,
    notebook: Path,
    parameters: list[tuple[str, str]],
    kernel: str | None,
    timeout: float | None,
    html: bool,
    local: bool,
) -> None:
    """Run NOTEBOOK once, now, and wait for it; exits non-zero unless it succeeded."""
    from .worker import Worker

    settings: Settings = ctx.obj["settings"]
    root = settings.root_dir.resolve()
    try:
        relative = str(notebook.resolve().relative_to(root))
    except ValueError:
        raise click.UsageError(f"{notebook} is outside the root directory {root}") from None
    service = _service(ctx)
    values = {name: parse_value(value) for name, value in parameters}
    if not local and not service.workers():
        raise terminal.Unavailable(
            "no worker is running: start one with `jupyter sched worker`, or use --local"
        )
    created = service.run_notebook(
        _owner(), relative, values, kernel=kernel, timeout_seconds=timeout,
        output_formats=["html"] if html else None, dispatch=not local,
    )  # fmt: skip
    click.echo(f"run {created.id}: {relative}")
    local_worker = None
    if local:
        # One run and the process ends: a kernel pre-started for a next run would only be
        # killed half-started at exit. (Only the deployment itself runs a notebook here.)
        single = dataclasses.replace(settings, prestart_kernels=False)
        local_worker = Worker(single, cast("Service", service).db, concurrency=1)
    final = _follow(service, created.id, local_worker)
    _print_run(service, final)
    ctx.exit(terminal.ExitCode.OK if final.status == "succeeded" else terminal.ExitCode.RUN_FAILED)


def _follow(service: SchedulerAPI, run_id: str, local_worker: Worker | None = None) -> Run:
    """Wait for run ``run_id`` to end, showing its progress on standard error; with
    ``local_worker``, execute it in this process meanwhile."""
    from .statuses import FINAL_STATUSES

    owner = _owner()
    failure: list[BaseException] = []
    executing = None
    if local_worker is not None:

        def execute() -> None:
            try:
                local_worker.execute(run_id)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
                failure.append(exc)

        executing = threading.Thread(target=execute, name="jupyter-sched-local-run")
    with terminal.Progress() as progress:
        while True:
            run = service.get_run(owner, run_id)
            done, total = run.progress.done, run.progress.total
            # A local run's progress is in this process; the database has it at the end.
            active = local_worker.active.get(run_id) if local_worker is not None else None
            if active is not None:
                done, total = active.progress
            progress.show(run.status, done, total)
            if executing is not None and executing.ident is None:
                # Started once the queued state is shown, so the progress always begins there.
                executing.start()
            ended = executing is None or not executing.is_alive()
            if run.status in FINAL_STATUSES and ended:
                return run
            if failure:
                raise failure[0]
            time.sleep(0.1)


def _print_run(service: SchedulerAPI, run: Run) -> None:
    files: dict[str, Path] = {}
    for what, fmt in (("output", "ipynb"), ("html", "html")):
        with contextlib.suppress(SchedError):
            files[what] = service.run_output(_owner(), run.id, fmt)
    with contextlib.suppress(SchedError):
        if (log_file := service.run_log_file(_owner(), run.id)) is not None:
            files["log"] = log_file
    terminal.run_details(run, files, terminal.failing_cell(run, files.get("output")))


@main.group()
def jobs() -> None:
    """List and manage your jobs."""


@jobs.command("list")
@click.option("--status", type=click.Choice(["active", "paused", "error"]))
@click.option("--tag")
@terminal.json_option
@click.pass_context
def jobs_list(ctx: click.Context, status: str | None, tag: str | None, as_json: bool) -> None:
    """List jobs, newest first."""
    if not as_json and not ctx.obj.get("hub_url"):
        # The table's columns only: no ORM rows nor API models to build (jupyter_sched.listing).
        from .listing import job_lines

        terminal.jobs_table(job_lines(open_database(ctx), _owner(), status=status, tag=tag))
        return
    service = _service(ctx)
    page = service.list_jobs(_owner(), status=status, tag=tag, limit=200)
    found = list(page.jobs)
    while page.next_cursor:
        page = service.list_jobs(
            _owner(), status=status, tag=tag, limit=200, cursor=page.next_cursor
        )
        found += page.jobs
    if as_json:
        terminal.echo_json(page.model_copy(update={"jobs": found}))
    else:
        terminal.jobs_table([terminal.JobLine.of(job) for job in found])


@jobs.command("show")
@click.argument("job_id")
@terminal.json_option
@click.pass_context
def jobs_show(ctx: click.Context, job_id: str, as_json: bool) -> None:
    """Show a job: its notebook, trigger, next fire, options and last run."""

    job = _service(ctx).get_job(_owner(), job_id)
    if as_json:
        terminal.echo_json(job)
    else:
        terminal.job_details(job)


def _job_action(name: str, help_text: str) -> None:
    @jobs.command(name, help=help_text)
    @click.argument("job_id")
    @click.pass_context
    def action(ctx: click.Context, job_id: str) -> None:
        service = _service(ctx)
        if name == "pause":
            job = service.pause_job(_owner(), job_id)
            click.echo(f"job {job.id} ({job.name}): paused; it fires again after `jobs resume`")
        elif name == "resume":
            job = service.resume_job(_owner(), job_id)
            click.echo(
                f"job {job.id} ({job.name}): active; next fire {terminal.moment(job.next_fire_at)}"
            )
        elif name == "run":
            click.echo(service.run_job(_owner(), job_id).id)


for _name, _help in (
    ("pause", "Stop firing a job's schedule."),
    ("resume", "Fire a job's schedule again."),
    ("run", "Run a job now; prints the run id."),
):
    _job_action(_name, _help)


def _print_job_summary(service: SchedulerAPI, job_id: str) -> None:

    job = service.get_job(_owner(), job_id)
    click.echo(f"job {job.id}: {job.name} ({job.notebook})")
    click.echo(f"trigger: {job.trigger_description}")
    if job.next_fire_at:
        click.echo(f"next:    {job.next_fire_at.isoformat(timespec='seconds')}")


@jobs.command("create")
@click.argument("notebook", required=False)
@job_options
@click.pass_context
def jobs_create(ctx: click.Context, /, notebook: str | None, **options: Any) -> None:
    """Create a job of NOTEBOOK (a path relative to the root). Without a trigger option it
    runs only when asked (`jupyter sched jobs run`)."""
    fields = job_fields(options)
    if notebook:
        fields["notebook"] = notebook
    if "notebook" not in fields:
        raise click.UsageError("give the NOTEBOOK (or a --json with a notebook field)")
    fields.setdefault("name", Path(fields["notebook"]).stem)
    fields.setdefault("trigger", {"kind": "manual"})
    service = _service(ctx)
    job = service.create_job(_owner(), fields)
    _print_job_summary(service, job.id)


@jobs.command("update")
@click.argument("job_id")
@job_options
@click.option("--manual", is_flag=True, help="Stop firing on a schedule: run only when asked.")
@click.pass_context
def jobs_update(ctx: click.Context, /, job_id: str, manual: bool, **options: Any) -> None:
    """Change the given fields of job JOB_ID; the others stay as they are (in a --json
    file, null sets a field back to its default)."""
    fields = job_fields(options)
    if manual:
        if "trigger" in fields:
            raise click.UsageError("choose one trigger, not --manual and another")
        fields["trigger"] = {"kind": "manual"}
    if not fields:
        raise click.UsageError("nothing to change: give at least one option")
    service = _service(ctx)
    service.update_job(_owner(), job_id, fields)
    _print_job_summary(service, job_id)


@jobs.command("delete")
@click.argument("job_id")
@click.option("--force", is_flag=True, help="Also when other jobs run after this one.")
@click.pass_context
def jobs_delete(ctx: click.Context, job_id: str, force: bool) -> None:
    """Delete a job with its runs and their files."""
    _service(ctx).delete_job(_owner(), job_id, force=force)
    click.echo(f"deleted {job_id}")


@jobs.command("backfill")
@click.argument("job_id")
@click.option("--start", required=True, metavar="ISO-TIME", help="First instant, with offset.")
@click.option("--end", required=True, metavar="ISO-TIME", help="Last instant, with offset.")
@click.option("--max-parallel", type=int, help="Runs of the backfill at once.")
@click.option("--preview", is_flag=True, help="Only say what the range holds.")
@click.option("--wait", is_flag=True, help="Show the batch's progress until it is done.")
@click.pass_context
def jobs_backfill(
    ctx: click.Context, job_id: str, start: str, end: str, max_parallel: int | None,
    preview: bool, wait: bool,
) -> None:  # fmt: skip
    """Run the job once per fire of its schedule between START and END (each run with its
    fire as scheduled_for), as one batch; prints the batch id."""
    service = _service(ctx)
    request = {"start": start, "end": end, "max_parallel": max_parallel}
    shown = service.backfill_preview(_owner(), job_id, request)
    click.echo(
        f"{shown.count} fires ({shown.runs} runs) from {terminal.moment(shown.first)} "
        f"to {terminal.moment(shown.last)}"
    )
    if preview:
        return
    batch = service.backfill(_owner(), job_id, request)
    click.echo(f"batch {batch.id}: {batch.total} runs")
    while wait:
        batch = service.get_batch(_owner(), batch.id)
        done = batch.progress.done == batch.total
        failed = f", {batch.progress.failed} failed" if batch.progress.failed else ""
        click.echo(f"{batch.progress.done}/{batch.total} done{failed}", err=not done)
        if done:
            break
        time.sleep(1.0)


@jobs.command("summary")
@click.argument("job_id")
@click.option("--batch", help="One batch's runs (default: the job's newest runs).")
@click.option("--limit", type=int, default=50, show_default=True, help="Without --batch.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV instead of JSON.")
@click.pass_context
def jobs_summary(
    ctx: click.Context, job_id: str, batch: str | None, limit: int, as_csv: bool
) -> None:
    """A table of runs: parameters, scheduled_for, status, duration and recorded values."""
    service = _service(ctx)
    if as_csv:
        click.echo(service.summary_csv(_owner(), job_id, batch=batch, limit=limit), nl=False)
    else:
        terminal.echo_json(service.summary(_owner(), job_id, batch=batch, limit=limit))


@jobs.command("webhook")
@click.argument("job_id")
@click.option("--off", is_flag=True, help="Turn the job's webhook off instead.")
@click.pass_context
def jobs_webhook(ctx: click.Context, job_id: str, off: bool) -> None:
    """Give a job a new webhook token (printed once; the previous one stops working)."""
    service = _service(ctx)
    if off:
        service.delete_webhook(_owner(), job_id)
        click.echo(f"webhook of {job_id} is off")
        return
    token = service.create_webhook(_owner(), job_id)
    click.echo(f"token: {token}")
    click.echo(f"POST {{server}}/sched/api/webhooks/{job_id} with 'Authorization: Bearer <token>'")


@main.group()
def events() -> None:
    """Events that jobs wait for."""


@events.command("fire")
@click.argument("name")
@click.option("--payload", help="A JSON object handed to notebooks declaring event_payload.")
@click.pass_context
def events_fire(ctx: click.Context, name: str, payload: str | None) -> None:
    """Run every active job of yours that waits for event NAME; prints the run ids."""
    try:
        data = json.loads(payload) if payload else None
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--payload") from None
    if data is not None and not isinstance(data, dict):
        raise click.BadParameter("must be a JSON object", param_hint="--payload")
    started = _service(ctx).fire_event(_owner(), name, data)
    for run in started:
        click.echo(f"{run.id}  job {run.job_id}")
    click.echo(f"{len(started)} run(s) started")


@main.group()
def runs() -> None:
    """List and manage your runs."""


@runs.command("list")
@click.option("--job", "job_id")
@click.option("--status")
@click.option("-n", "--limit", default=20, show_default=True, type=click.IntRange(1, 200))
@terminal.json_option
@click.pass_context
def runs_list(
    ctx: click.Context, job_id: str | None, status: str | None, limit: int, as_json: bool
) -> None:
    """List runs, newest first."""
    if not as_json and not ctx.obj.get("hub_url"):
        from .listing import run_lines  # the table's columns only, as for `jobs list`

        lines = run_lines(open_database(ctx), _owner(), job_id=job_id, status=status, limit=limit)
        terminal.runs_table(lines)
        return
    page = _service(ctx).list_runs(_owner(), job_id=job_id, status=status, limit=limit)
    if as_json:
        terminal.echo_json(page)
    else:
        terminal.runs_table([terminal.RunLine.of(run) for run in page.runs])


@runs.command("show")
@click.argument("run_id")
@terminal.json_option
@click.pass_context
def runs_show(ctx: click.Context, run_id: str, as_json: bool) -> None:
    """Show a run and where its files are."""
    service = _service(ctx)
    run = service.get_run(_owner(), run_id)
    if as_json:
        terminal.echo_json(run)
        return
    terminal.run_facts(run)
    _print_run(service, run)


@runs.command("diff")
@click.argument("run_a")
@click.argument("run_b")
@terminal.json_option
@click.pass_context
def runs_diff(ctx: click.Context, run_a: str, run_b: str, as_json: bool) -> None:
    """What changed from run A to run B: parameters, cells and outputs (nbdime's diff)."""
    diff = _service(ctx).compare_runs(_owner(), run_a, run_b)
    if as_json:
        terminal.echo_json(diff)
    else:
        terminal.comparison(diff)


@runs.command("cancel")
@click.argument("run_id")
@click.pass_context
def runs_cancel(ctx: click.Context, run_id: str) -> None:
    """Cancel a queued or running run."""
    run = _service(ctx).cancel_run(_owner(), run_id)
    click.echo(f"{run.id}: {run.status}")


for command in (
    cliops.worker,
    cliops.service,
    cliops.scheduler,
    cliops.db,
    cliops.prune,
    cliops.demo,
):
    main.add_command(command)

if __name__ == "__main__":
    main()
