"""Firing at scale keeps the per-run semantics: a rush of thousands of jobs with two
tickers racing, snapshots shared by content and fixed at fire time, dispatch of every
ready run in one pass, catch-up counted rather than walked."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import nbformat
import pytest
from sqlalchemy import func, insert, select
from ulid import ULID

from jupyter_sched.artifacts import INPUT_GRACE_SECONDS, InputStore
from jupyter_sched.config import Settings
from jupyter_sched.db import Database
from jupyter_sched.dispatch import dispatch
from jupyter_sched.models import Job, Run
from jupyter_sched.retention import sweep_inputs
from jupyter_sched.service import Service
from jupyter_sched.ticker import fire_due_jobs, tick
from jupyter_sched.worker import Worker

from .conftest import OWNER, wait_for_run

RUSH = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
HELLO = "notebooks/hello.ipynb"
CRON = {"kind": "cron", "cron": "0 6 * * *", "timezone": "UTC"}


def job_rows(count: int, trigger: dict[str, Any], due: datetime, **fields: Any) -> list[dict]:
    created = due - timedelta(days=2)
    return [
        {
            "id": str(ULID.from_datetime(created + timedelta(milliseconds=i))),
            "name": f"rush {i}",
            "owner": OWNER,
            "notebook": HELLO,
            "root_dir": None,
            "parameters": {"x": i},
            "kernel": None,
            "trigger": trigger,
            "trigger_kind": trigger["kind"],
            "start_at": None,
            "end_at": None,
            "max_runs": None,
            "fire_count": 0,
            "status": "active",
            "next_fire_at": due,
            "misfire": "run_once",
            "overlap": "allow",
            "retries": 0,
            "retry_delay_seconds": 60.0,
            "retry_backoff": 2.0,
            "retry_max_delay_seconds": None,
            "timeout_seconds": None,
            "priority": 0,
            "queue": "default",
            "tags": [],
            "output_formats": ["ipynb"],
            "created_at": created,
            "updated_at": created,
            "version": 1,
            **fields,
        }
        for i in range(count)
    ]


def add_jobs(db: Database, rows: list[dict]) -> list[str]:
    """Insert jobs in bulk (the API would check each notebook: too slow for thousands)."""
    with db.engine.begin() as conn:
        for start in range(0, len(rows), 2000):
            conn.execute(insert(Job), rows[start : start + 2000])
    return [row["id"] for row in rows]


def test_two_tickers_racing_over_a_rush_make_exactly_one_run_per_fire(
    service: Service, settings: Settings
) -> None:
    jobs = add_jobs(service.db, job_rows(10_000, CRON, RUSH))
    second = Database(settings.db_url)  # another ticker: its own connections
    errors: list[BaseException] = []

    def ticker(db: Database) -> None:
        try:
            for offset in (0, 1, 2):
                fire_due_jobs(db, settings, RUSH + timedelta(seconds=offset))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=ticker, args=(db,)) for db in (service.db, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    second.dispose()
    assert errors == []
    with service.db.read() as session:
        per_job = {
            job_id: count
            for job_id, count in session.execute(
                select(Run.job_id, func.count()).group_by(Run.job_id)
            )
        }
        fires = set(session.scalars(select(Run.scheduled_for).distinct()))
        advanced = set(session.execute(select(Job.next_fire_at, Job.fire_count).distinct()))
        chains = set(session.scalars(select(Run.chain_id).distinct()))
    assert per_job == dict.fromkeys(jobs, 1)
    assert fires == {RUSH}
    assert advanced == {(RUSH + timedelta(days=1), 1)}
    assert chains == {f"fire:{RUSH.isoformat()}"}  # one chain per fire, as before


def test_runs_of_a_rush_share_one_snapshot_of_the_notebook_as_it_was_at_fire_time(
    service: Service, settings: Settings, tmp_path: Any
) -> None:
    notebook = tmp_path / "report.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("print('version 1', x)")]  # fmt: skip
    nbformat.write(nb, notebook)
    rows = job_rows(300, CRON, RUSH, notebook="report.ipynb", root_dir=str(tmp_path))
    add_jobs(service.db, rows)
    report = fire_due_jobs(service.db, settings, RUSH)
    assert len(report.fired) == 300
    with service.db.read() as session:
        refs = set(session.scalars(select(Run.input_ref).distinct()))
    (ref,) = refs
    stored = settings.artifacts_dir / ref
    assert stored.read_bytes() == notebook.read_bytes()
    assert not (settings.artifacts_dir / report.fired[0]).exists()  # no copy per run
    # The notebook changes after the fire: the runs still execute the version they fired with.
    nb.cells[1].source = "print('version 2', x)"
    nbformat.write(nb, notebook)
    worker = Worker(settings, service.db)
    worker.start()
    try:
        dispatch(service.db, service.queues, RUSH, run_ids=report.fired[:1])
        run = wait_for_run(service, report.fired[0], timeout=120)
    finally:
        worker.stop(grace_seconds=0)
    assert run.status == "succeeded", run.error
    output = nbformat.read(settings.artifacts_dir / report.fired[0] / "output.ipynb", 4)
    assert "version 1" in output.cells[-1].outputs[0]["text"]
    # A later fire snapshots the new version; both stay while runs refer to them.
    with service.db.write() as session:
        session.execute(Job.__table__.update().values(next_fire_at=RUSH + timedelta(days=1)))
    later = fire_due_jobs(service.db, settings, RUSH + timedelta(days=1))
    with service.db.read() as session:
        new_refs = set(session.scalars(select(Run.input_ref).where(Run.id.in_(later.fired))))
    assert len(new_refs) == 1 and new_refs != refs
    far_future = datetime.now(UTC) + timedelta(seconds=INPUT_GRACE_SECONDS + 60)
    assert sweep_inputs(service.db, settings, far_future) == []
    with service.db.write() as session:  # the first fire's runs are pruned or deleted
        session.execute(Run.__table__.delete().where(Run.input_ref == ref))
    assert sweep_inputs(service.db, settings, far_future) == [ref]
    assert not stored.exists()
    assert {f"inputs/{p.name}" for p in InputStore(settings.artifacts_dir).path.iterdir()} == (
        new_refs
    )


def test_one_pass_dispatches_every_ready_run(service: Service, settings: Settings) -> None:
    add_jobs(service.db, job_rows(1_200, CRON, RUSH))
    fired = fire_due_jobs(service.db, settings, RUSH)  # no queue given: none handed over
    assert len(fired.fired) == 1_200
    sent = dispatch(service.db, service.queues, RUSH)
    assert sorted(sent) == sorted(fired.fired)
    assert service.queues["default"].pending_ids() == set(fired.fired)
    with service.db.read() as session:
        waiting = session.scalar(select(func.count()).where(Run.enqueued_at.is_(None)))
    assert waiting == 0


def test_a_tick_hands_every_fire_of_a_rush_to_the_queue(
    service: Service, settings: Settings
) -> None:
    add_jobs(service.db, job_rows(1_500, CRON, RUSH))
    report = tick(service.db, service.queues, settings, RUSH)
    assert len(report.fired) == 1_500
    assert sorted(report.dispatched) == sorted(report.fired)
    assert service.queues["default"].pending_ids() == set(report.fired)


@pytest.mark.parametrize(
    ("trigger", "step"),
    [
        ({"kind": "interval", "every_seconds": 60}, timedelta(minutes=1)),
        ({"kind": "cron", "cron": "* * * * *", "timezone": "UTC"}, timedelta(minutes=1)),
    ],
)
@pytest.mark.parametrize("policy", ["run_once", "skip"])
def test_catch_up_after_a_long_outage_counts_the_missed_fires(
    service: Service, settings: Settings, trigger: dict, step: timedelta, policy: str
) -> None:
    """Down for 5,000 fires (more than a pass walks): one run at most, one record
    saying how many fires were missed and from when to when."""
    behind = RUSH - 5000 * step
    rows = job_rows(3, trigger, behind, misfire=policy)
    for row in rows:
        row["created_at"] = behind - timedelta(days=1)
    jobs = add_jobs(service.db, rows)
    now = RUSH + timedelta(seconds=10)  # the fire at RUSH is within the grace period
    report = fire_due_jobs(service.db, settings.replace(misfire_grace_seconds=30), now)
    with service.db.read() as session:
        runs = list(session.scalars(select(Run).where(Run.job_id == jobs[0])))
        next_fires = set(session.scalars(select(Job.next_fire_at)))
    assert next_fires == {RUSH + step}
    ran = sorted(r.scheduled_for for r in runs if r.status == "queued")
    (missed,) = [r for r in runs if r.status == "skipped"]
    assert missed.error_ename == "Missed"
    if policy == "run_once":
        assert ran == [RUSH - step, RUSH]
        assert missed.scheduled_for == RUSH - 2 * step
        count = 4999
    else:
        assert ran == [RUSH]
        assert missed.scheduled_for == RUSH - step
        count = 5000
    evalue = missed.error_evalue or ""
    assert f"from {behind.isoformat()} to {missed.scheduled_for.isoformat()}" in evalue
    if trigger["kind"] == "interval":
        assert f"{count} fires from" in evalue  # counted exactly
    else:
        assert "fires from" in evalue and "at least" in evalue  # beyond one bounded walk
    assert len(report.skipped) == 3


def test_jobs_sharing_a_schedule_catch_up_within_their_own_window(
    service: Service, settings: Settings
) -> None:
    """Jobs on one cron schedule, due at the same instant, share the walk over their
    missed fires, but each keeps its own end and its own ``max_runs``."""
    every_minute = {"kind": "cron", "cron": "* * * * *", "timezone": "UTC"}
    behind = RUSH - timedelta(minutes=10)
    open_ended, ending, spent = add_jobs(
        service.db,
        [
            *job_rows(1, every_minute, behind),
            *job_rows(1, every_minute, behind, end_at=RUSH - timedelta(minutes=5)),
            *job_rows(1, every_minute, behind, max_runs=3, fire_count=3),
        ],
    )
    now = RUSH + timedelta(seconds=10)
    fire_due_jobs(service.db, settings.replace(misfire_grace_seconds=30), now)
    with service.db.read() as session:
        runs = {
            job_id: sorted(
                session.execute(
                    select(Run.status, Run.scheduled_for, Run.error_evalue).where(
                        Run.job_id == job_id
                    )
                ).all(),
                key=lambda run: run.scheduled_for,
            )
            for job_id in (open_ended, ending, spent)
        }
        next_fires = {
            job_id: at for job_id, at in session.execute(select(Job.id, Job.next_fire_at))
        }
    # 10 missed fires: the last runs (run_once), and the fire at RUSH is within the grace
    assert [(r.status, r.scheduled_for) for r in runs[open_ended]] == [
        ("skipped", RUSH - timedelta(minutes=2)),
        ("queued", RUSH - timedelta(minutes=1)),
        ("queued", RUSH),
    ]
    assert f"9 fires from {behind.isoformat()}" in (runs[open_ended][0].error_evalue or "")
    assert next_fires[open_ended] == RUSH + timedelta(minutes=1)
    # ended 5 minutes ago: 6 fires missed, the last of them runs, and no next fire
    assert [(r.status, r.scheduled_for) for r in runs[ending]] == [
        ("skipped", RUSH - timedelta(minutes=6)),
        ("queued", RUSH - timedelta(minutes=5)),
    ]
    assert f"5 fires from {behind.isoformat()}" in (runs[ending][0].error_evalue or "")
    assert next_fires[ending] is None
    # had made its runs: nothing more
    assert runs[spent] == []
    assert next_fires[spent] is None


def test_jobs_sharing_a_schedule_in_a_rush_keep_their_own_limits(
    service: Service, settings: Settings
) -> None:
    """Jobs on one schedule due at the same instant share their plan only where nothing
    else of theirs differs: a job at its last run or past its end stops after the fire."""
    plain, last_run, ending = add_jobs(
        service.db,
        [
            *job_rows(1, CRON, RUSH),
            *job_rows(1, CRON, RUSH, max_runs=2, fire_count=1),
            *job_rows(1, CRON, RUSH, end_at=RUSH + timedelta(hours=12)),
        ],
    )
    report = fire_due_jobs(service.db, settings, RUSH)
    assert len(report.fired) == 3
    with service.db.read() as session:
        fired = {
            job_id: at for job_id, at in session.execute(select(Run.job_id, Run.scheduled_for))
        }
        jobs = {
            job_id: (at, count)
            for job_id, at, count in session.execute(
                select(Job.id, Job.next_fire_at, Job.fire_count)
            )
        }
    assert fired == {plain: RUSH, last_run: RUSH, ending: RUSH}
    assert jobs == {
        plain: (RUSH + timedelta(days=1), 1),
        last_run: (None, 2),
        ending: (None, 1),
    }
