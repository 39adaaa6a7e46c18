"""The ticker: fires, misfires, windows, overlap, races between tickers, reaping."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from jupyter_sched.config import Settings
from jupyter_sched.dispatch import dispatch
from jupyter_sched.lifecycle import claim
from jupyter_sched.models import Job, Run
from jupyter_sched.service import Service
from jupyter_sched.ticker import Ticker, fire_due_jobs, reap_lost_runs
from jupyter_sched.worker import Worker

from .conftest import OWNER, wait_for_run, wait_until

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
HELLO = "notebooks/hello.ipynb"


def interval_job(service: Service, every: float = 60, **fields: object) -> str:
    body = {
        "name": "tick",
        "notebook": HELLO,
        "trigger": {"kind": "interval", "every_seconds": every},
    }
    return service.create_job(OWNER, {**body, **fields}, now=T0).id


def runs_of(service: Service, job_id: str) -> list[Run]:
    with service.db.read() as session:
        return list(
            session.scalars(select(Run).where(Run.job_id == job_id).order_by(Run.scheduled_for))
        )


def next_fire_at(service: Service, job_id: str) -> datetime | None:
    with service.db.read() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job.next_fire_at


def test_two_tickers_racing_make_exactly_one_run_per_fire(service: Service) -> None:
    settings = service.settings.replace(misfire_grace_seconds=10_000)
    job_id = interval_job(service, every=1)
    fires = 200

    def ticker(step: float) -> None:
        elapsed = 0.0
        while elapsed <= fires + 1:
            elapsed += step
            fire_due_jobs(service.db, settings, T0 + timedelta(seconds=min(elapsed, fires)))

    threads = [threading.Thread(target=ticker, args=(step,)) for step in (1.0, 0.7)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    runs = runs_of(service, job_id)
    scheduled = [run.scheduled_for for run in runs]
    assert len(runs) == fires
    assert scheduled == [T0 + timedelta(seconds=k) for k in range(1, fires + 1)]
    assert next_fire_at(service, job_id) == T0 + timedelta(seconds=fires + 1)


@pytest.mark.parametrize(("policy", "expected"), [("run_once", 1), ("skip", 0)])
def test_misfire_after_three_missed_fires(service: Service, policy: str, expected: int) -> None:
    settings = service.settings.replace(misfire_grace_seconds=30)
    job_id = interval_job(service, every=60, misfire=policy)
    fire_due_jobs(service.db, settings, T0 + timedelta(seconds=61))
    assert [r.scheduled_for for r in runs_of(service, job_id)] == [T0 + timedelta(seconds=60)]
    # down while the fires at +120, +180 and +240 were due; back 35 s after the last one
    fire_due_jobs(service.db, settings, T0 + timedelta(seconds=275))
    later = runs_of(service, job_id)[1:]
    caught_up = [r.scheduled_for for r in later if r.status == "queued"]
    assert caught_up == [T0 + timedelta(seconds=240)] * expected
    assert next_fire_at(service, job_id) == T0 + timedelta(seconds=300)
    # The history says what was missed: one skipped run at the latest fire not run.
    (skipped,) = [r for r in later if r.status == "skipped"]
    not_run = 3 - expected
    assert skipped.scheduled_for == T0 + timedelta(seconds=120 + 60 * (not_run - 1))
    assert skipped.error_ename == "Missed" and skipped.finished_at is not None
    assert f"{not_run} fires from " in (skipped.error_evalue or "")


def test_start_end_window_and_max_runs(service: Service) -> None:
    settings = service.settings.replace(misfire_grace_seconds=10_000)
    windowed = interval_job(
        service,
        every=60,
        start_at=(T0 + timedelta(seconds=90)).isoformat(),
        end_at=(T0 + timedelta(seconds=300)).isoformat(),
    )
    limited = interval_job(service, every=60, max_runs=2)
    for minute in range(1, 10):
        fire_due_jobs(service.db, settings, T0 + timedelta(minutes=minute))
    # interval fires count from start_at: +90, +150, +210, +270, then +330 is past end_at
    assert [r.scheduled_for for r in runs_of(service, windowed)] == [
        T0 + timedelta(seconds=s) for s in (90, 150, 210, 270)
    ]
    assert next_fire_at(service, windowed) is None
    assert len(runs_of(service, limited)) == 2
    assert next_fire_at(service, limited) is None


def test_once_fires_once(service: Service) -> None:
    at = T0 + timedelta(minutes=5)
    job = service.create_job(
        OWNER,
        {"name": "once", "notebook": HELLO, "trigger": {"kind": "once", "at": at.isoformat()}},
        now=T0,
    )
    assert job.next_fire_at == at
    for minute in range(4, 9):
        fire_due_jobs(service.db, service.settings, T0 + timedelta(minutes=minute))
    assert [r.scheduled_for for r in runs_of(service, job.id)] == [at]
    assert next_fire_at(service, job.id) is None


def test_paused_jobs_do_not_fire(service: Service) -> None:
    job_id = interval_job(service, every=60)
    service.pause_job(OWNER, job_id, now=T0)
    fire_due_jobs(service.db, service.settings, T0 + timedelta(minutes=10))
    assert runs_of(service, job_id) == []


def test_overlap_skip_records_a_skipped_run(service: Service) -> None:
    job_id = interval_job(service, every=60, overlap="skip")
    fire_due_jobs(service.db, service.settings, T0 + timedelta(seconds=60))
    fire_due_jobs(service.db, service.settings, T0 + timedelta(seconds=120))
    first, second = runs_of(service, job_id)
    assert first.status == "queued"
    assert second.status == "skipped" and second.error_evalue and first.id in second.error_evalue


def test_overlap_queue_dispatches_one_at_a_time(service: Service) -> None:
    job_id = interval_job(service, every=60, overlap="queue")
    fire_due_jobs(service.db, service.settings, T0 + timedelta(seconds=121))
    first, second = runs_of(service, job_id)
    assert dispatch(service.db, service.queues, T0 + timedelta(seconds=121)) == [first.id]
    assert dispatch(service.db, service.queues, T0 + timedelta(seconds=122)) == []
    assert claim(service.db, first.id, "w1", T0 + timedelta(seconds=122))
    assert dispatch(service.db, service.queues, T0 + timedelta(seconds=123)) == []
    with service.db.write() as session:
        session.execute(update(Run).where(Run.id == first.id).values(status="succeeded"))
    assert dispatch(service.db, service.queues, T0 + timedelta(seconds=124)) == [second.id]


def test_reaper_marks_silent_runs_lost_and_retries_them(service: Service) -> None:
    job_id = interval_job(service, every=3600, retries=1, retry_delay_seconds=5)
    heartbeating = service.run_job(OWNER, job_id, now=T0).id
    silent = service.run_job(OWNER, job_id, now=T0).id
    never_beat = service.run_job(OWNER, job_id, now=T0).id
    for run_id in (heartbeating, silent, never_beat):
        assert claim(service.db, run_id, "w1", T0)
    lease = service.settings.lease_seconds
    with service.db.write() as session:
        session.execute(update(Run).where(Run.id == silent).values(heartbeat_at=T0))
        session.execute(
            update(Run)
            .where(Run.id == heartbeating)
            .values(heartbeat_at=T0 + timedelta(seconds=lease))
        )
    now = T0 + timedelta(seconds=lease + 1)
    assert sorted(reap_lost_runs(service.db, service.settings, now)) == sorted([silent, never_beat])
    assert reap_lost_runs(service.db, service.settings, now) == []
    by_id = {r.id: r for r in runs_of(service, job_id)}
    assert by_id[heartbeating].status == "running"
    for run_id in (silent, never_beat):
        assert by_id[run_id].status == "lost"
        retry = next(r for r in by_id.values() if r.retry_of == run_id)
        assert (retry.attempt, retry.trigger, retry.status) == (2, "retry", "queued")
        assert retry.not_before == now + timedelta(seconds=5)


def test_a_cancelled_run_whose_worker_died_ends_cancelled_not_retried(service: Service) -> None:
    job_id = interval_job(service, every=3600, retries=2, retry_delay_seconds=1)
    run_id = service.run_job(OWNER, job_id, now=T0).id
    assert claim(service.db, run_id, "w1", T0)
    with service.db.write() as session:
        session.execute(update(Run).where(Run.id == run_id).values(heartbeat_at=T0))
    # The request is recorded, but the worker that should act on it is gone.
    assert service.cancel_run(OWNER, run_id, now=T0 + timedelta(seconds=1)).status == "running"
    now = T0 + timedelta(seconds=service.settings.lease_seconds + 1)
    assert reap_lost_runs(service.db, service.settings, now) == [run_id]
    runs = runs_of(service, job_id)
    assert [(r.id, r.status, r.error_ename) for r in runs] == [(run_id, "cancelled", "Cancelled")]


@pytest.mark.slow
def test_cron_with_seconds_fires_every_fire_once(service: Service, worker: Worker) -> None:
    """Every 2 s with one worker: one run per fire, none missed, each executed.

    How late fires are is a figure of bench/, not a test: this holds on a loaded machine.
    """
    created = datetime.now(UTC)
    job = service.create_job(
        OWNER,
        {"name": "2s", "notebook": HELLO, "trigger": {"kind": "cron", "cron": "* * * * * */2"}},
    )
    wait_until(lambda: len(runs_of(service, job.id)) >= 5, 120, "five fires")
    service.pause_job(OWNER, job.id)
    runs = runs_of(service, job.id)
    scheduled = [r.scheduled_for for r in runs]
    assert all(s is not None and s.second % 2 == 0 and s.microsecond == 0 for s in scheduled)
    first = created.replace(microsecond=0) + timedelta(seconds=2 - created.second % 2)
    assert scheduled == [first + timedelta(seconds=2 * k) for k in range(len(runs))]
    finished = [wait_for_run(service, r.id, timeout=120) for r in runs]
    assert all(r.status == "succeeded" for r in finished), [r.error for r in finished]
    assert all(r.started_at is not None and r.scheduled_for is not None for r in finished)


def test_ticker_thread_wakes_on_change(service: Service, settings: Settings) -> None:
    # A period far longer than any deadline below: a tick after the change is the wake.
    ticker = Ticker(service.db, service.queues, settings.replace(tick_seconds=3600))
    service.on_change = ticker.wake
    ticker.start()
    try:
        wait_until(lambda: ticker.ticks >= 1, 30, "the first tick, at start")
        before = ticker.ticks
        interval_job(service, every=60)
        wait_until(lambda: ticker.ticks > before, 30, "a tick on the change")
    finally:
        ticker.stop()
