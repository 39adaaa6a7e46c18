"""The worker: a huey consumer that executes runs and watches over them.

Each consumer thread takes a run id from the queue, claims the run in the database (a
second delivery of the same id does nothing), executes the notebook and records the
outcome. A watcher thread heartbeats the runs this process holds, writes their progress,
and aborts runs that were cancelled, that passed their deadline, or that the reaper gave
up on.

The history database may go away while runs execute: a run that ends meanwhile stays
held (and heartbeated) by its worker, which writes its outcome as soon as the database
answers again, so it is recorded once, as it happened, and never run again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import select, update

from .activerun import ActiveRun
from .artifacts import HTML, INPUT, LOG, OUTPUT, PDF, THUMBNAIL_PNG, THUMBNAIL_SVG, RunFolder
from .clock import utcnow
from .config import Settings
from .consumer import WakingConsumer
from .db import Database, retry_while_unavailable
from .dispatch import DUE_SOON_SECONDS, dispatch, earliest_fire
from .errors import SecretMismatch, Unavailable
from .kernels import KernelSupply
from .lifecycle import claim, finish
from .models import Job, Run
from .models import Worker as WorkerRow
from .preparation import prepare
from .queue import Queues, RunQueue, check_secret
from .statuses import Outcome
from .values import failed_check, read_values
from .wakeup import Doorbell

if TYPE_CHECKING:
    # Imported with the first run: papermill and nbformat (through jsonschema's format
    # checks) take seconds and tens of megabytes, which an idle worker does not need.
    pass

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The kernel kept started for the next run of each consumer thread.
PRESTART_KERNEL = "python3"
#: Longest sleep between polls of the embedded queue when wake-ups work (the fallback).
WOKEN_POLL_MAX_SECONDS = 5.0


class Worker:
    """Executes runs from one or more queues with ``concurrency`` threads per queue."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        queues: Iterable[str] = ("default",),
        concurrency: int = 1,
        worker_id: str | None = None,
        idle_exit_seconds: float | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.queue_names = list(queues)
        self.concurrency = concurrency
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"
        self.queues = Queues(settings, execute=self.execute, on_unreadable=self._on_unreadable)
        self.kernels = KernelSupply(
            PRESTART_KERNEL if settings.prestart_kernels else None, settings.artifacts_dir
        )
        #: Wake-ups of the consumer threads on the embedded queue (Redis blocks instead).
        self.doorbell = (
            None if settings.redis_url else Doorbell(settings.data_dir, self._on_prepare_hint)
        )
        #: Stop by itself after this long with no run, none expected (the embedded worker:
        #: its server starts it again when work comes); None: run until stopped.
        self.idle_exit_seconds = idle_exit_seconds
        self._busy_at = time.monotonic()
        #: Set when the worker has been idle for ``idle_exit_seconds``.
        self.went_idle = threading.Event()
        self.active: dict[str, ActiveRun] = {}
        self._active_lock = threading.Lock()
        self._stop = threading.Event()
        self._stopping = threading.Event()
        #: Set when stopping can wait no longer for the database to answer.
        self._give_up = threading.Event()
        self._watcher: threading.Thread | None = None
        self._consumers: list[WakingConsumer] = []
        #: Why this worker stopped consuming on its own (its secret is not the deployment's).
        self.refused: SecretMismatch | None = None

    # -- executing one run ------------------------------------------------------------

    def execute(self, run_id: str) -> None:
        """The huey task: claim run ``run_id`` and execute it; a no-op if not claimable."""
        attempts: list[datetime] = []  # a run claimed at one of them is claimed by us

        def take(_: bool) -> bool:
            now, earlier = utcnow(), list(attempts)
            attempts.append(now)
            return claim(self.db, run_id, self.id, now, earlier=earlier)

        try:
            claimed = self._until_answered(take)
        except Unavailable:
            return  # stopping: the run is still queued or, claimed, reaped and retried
        if not claimed:
            log.info("run %s is not queued any more; nothing to do", run_id)
            return
        self.kernels.expect()  # the next kernel boots while this run executes
        active = ActiveRun(run_id)
        with self._active_lock:
            self.active[run_id] = active  # heartbeated from now on
        try:
            refs: dict[str, Any] = {}
            try:
                outcome = self._execute_claimed(active, refs)
            except Unavailable:
                raise
            except Exception as exc:  # noqa: BLE001 - whatever went wrong is the run's error
                outcome = self._crashed(run_id, exc, refs)
            self._record(active, outcome, refs)
        except Unavailable:
            log.warning("run %s: stopped before its outcome could be written", run_id)
        finally:
            with self._active_lock:
                self.active.pop(run_id, None)
        if not self._stopping.is_set():
            self.kernels.expect()  # another run is likely within minutes
            self.kernels.tend()

    def _until_answered(self, action: Callable[[bool], T]) -> T:
        """``action(repeated)``, repeated while the database is unavailable, until stopping
        gives up; ``repeated`` is true from the second attempt on."""
        attempts = 0

        def attempt() -> T:
            nonlocal attempts
            attempts += 1
            return action(attempts > 1)

        return retry_while_unavailable(attempt, give_up=self._give_up)

    def _record(self, active: ActiveRun, outcome: Outcome, refs: dict[str, Any]) -> None:
        """Write the outcome (waiting for the database), then hand on what follows it."""
        run_id = active.run_id
        now = utcnow()  # when the run ended, however long the database takes to answer
        active.end()
        if outcome.status == "succeeded":
            refs["progress_done"] = refs["progress_total"] = active.progress[1]
        else:
            refs["progress_done"], refs["progress_total"] = active.progress
        max_delay = self.settings.max_retry_delay_seconds
        run = self._until_answered(
            lambda repeated: finish(
                self.db, run_id, outcome, now, max_retry_delay=max_delay, repeated=repeated, **refs
            )
        )
        try:
            if run is None and not self._exists(run_id):
                # Deleted with its job while it ran: what the run wrote since has no owner.
                RunFolder(self.settings.artifacts_dir, run_id).remove()
                log.info("run %s was deleted while it ran; its files are removed", run_id)
            elif run is None:
                log.warning("run %s was finished elsewhere before it completed here", run_id)
            else:
                log.info("run %s %s", run_id, outcome.status)
                if run.job_id is not None:
                    dispatch(self.db, self.queues, now, job_id=run.job_id)
        except Unavailable:
            pass  # the ticker dispatches what follows once the database answers

    def _exists(self, run_id: str) -> bool:
        with self.db.read() as session:
            return session.get(Run, run_id) is not None

    def _crashed(self, run_id: str, exc: Exception, refs: dict[str, Any]) -> Outcome:
        """The outcome of a run whose preparation raised: failed, with the error in its
        log and on its row (not left running until its lease runs out)."""
        log.exception("run %s failed before or around its execution", run_id)
        folder = RunFolder(self.settings.artifacts_dir, run_id)
        message = " ".join(str(exc).split())[:2000] or "the worker could not run the notebook"
        with contextlib.suppress(OSError):
            folder.path.mkdir(parents=True, exist_ok=True)
            with open(folder.file(LOG), "a", encoding="utf-8") as f:
                f.write(f"cannot run: {type(exc).__name__}: {message}\n")
            refs["log_ref"] = folder.ref(LOG)
        for name, key in ((INPUT, "input_ref"), (OUTPUT, "output_ref")):
            if folder.file(name).is_file():
                refs[key] = folder.ref(name)
        return Outcome("failed", type(exc).__name__, message)

    def _execute_claimed(self, active: ActiveRun, refs: dict[str, Any]) -> Outcome:
        """Prepare and execute a claimed run; ``refs`` collects the run's files."""
        from .executor import Execution, RunFiles

        run_id = active.run_id
        folder = RunFolder(self.settings.artifacts_dir, run_id)
        folder.create()
        folder.file(LOG).touch()
        refs.update(log_ref=folder.ref(LOG))
        run, job_trigger, checks = self._until_answered(
            lambda _: self._first_heartbeat(run_id, refs["log_ref"])
        )
        prepared = prepare(self.settings, run, job_trigger, folder, refs)
        if isinstance(prepared, Outcome):
            return prepared
        account = prepared.account
        html = folder.file(HTML) if "html" in run.output_formats else None
        pdf = folder.file(PDF) if "pdf" in run.output_formats else None
        files = RunFiles(
            input=prepared.source, output=folder.file(OUTPUT), log=folder.file(LOG),
            html=html, cwd=prepared.cwd, pdf=pdf,
        )  # fmt: skip
        execution = Execution(
            files,
            prepared.parameters,
            run.kernel,
            kernels=self.kernels,
            on_progress=lambda done, total: self._on_progress(run_id, done, total),
            timeout_seconds=run.timeout_seconds,
            kill_grace_seconds=self.settings.kill_grace_seconds,
            account=account,
            chromium_path=self.settings.chromium_path,
        )
        active.attach(
            execution, time.monotonic() + run.timeout_seconds if run.timeout_seconds else None
        )
        try:
            outcome = execution.run()
        finally:
            if account is not None:
                folder.give_to(account.uid, account.gid)
        if files.output.exists():
            refs["output_ref"] = folder.ref(OUTPUT)
            refs["values"] = read_values(files.output)
        failed = failed_check(refs.get("values", {}), checks) if checks else None
        if outcome.status == "succeeded" and failed is not None:
            outcome = Outcome("failed", "CheckFailed", failed)
        if html is not None and html.exists():
            refs["html_ref"] = folder.ref(HTML)
        if pdf is not None and pdf.exists():
            refs["pdf_ref"] = folder.ref(PDF)
        for name in (THUMBNAIL_PNG, THUMBNAIL_SVG):
            if folder.file(name).is_file():
                refs["thumbnail_ref"] = folder.ref(name)
        return outcome

    def _first_heartbeat(
        self, run_id: str, log_ref: str
    ) -> tuple[Run, dict[str, Any] | None, list[dict[str, Any]]]:
        """The claimed run's row, after writing its first heartbeat and where its log is
        (so that clients can follow it), with its job's trigger and checks."""
        with self.db.write() as session:
            session.execute(
                update(Run).where(Run.id == run_id).values(heartbeat_at=utcnow(), log_ref=log_ref)
            )
            run = session.get(Run, run_id)
            assert run is not None
            job = session.get(Job, run.job_id) if run.job_id else None
            if job is None:
                return run, None, []
            return run, dict(job.trigger), list(job.checks or [])

    def _on_progress(self, run_id: str, done: int, total: int) -> None:
        active = self.active.get(run_id)
        if active is not None:
            active.progress = (done, total)

    def _on_unreadable(self, queue: RunQueue, data: bytes) -> None:
        """A message failed verification: set it aside, or if this worker's secret is the
        wrong one, put it back and stop consuming. Never executed, never silently lost;
        the run it names stays queued in the database, where the reconciler finds it."""
        try:
            check_secret(self.db, self.settings)
        except SecretMismatch as exc:
            queue.put_back(data)
            if self.refused is None:
                self.refused = exc
                log.error("worker %s stops consuming: %s", self.id, exc.message)
            for consumer in self._consumers:
                consumer.stop_flag.set()
            return
        except Exception:
            # Without the database this worker cannot tell a forgery from its own wrong
            # secret: the message goes back, and the thread waits before the next one.
            queue.put_back(data)
            log.warning("queue %s: a message failed verification; put back", queue.name,
                        exc_info=True)  # fmt: skip
            time.sleep(self.settings.heartbeat_seconds)
            return
        queue.set_aside(data)
        log.error(
            "queue %s: a message not signed with this deployment's secret was set aside in "
            "Redis list %s, not executed; a run it names stays queued and is handed over again",
            queue.name, queue.set_aside_key,
        )  # fmt: skip

    # -- watching the runs ------------------------------------------------------------

    def watch_once(self, now: datetime, *, heartbeat: bool) -> None:
        """Write progress (and heartbeats), and abort runs that must stop.

        Raises :class:`~jupyter_sched.errors.Unavailable` while the database is away;
        deadlines are enforced all the same.
        """
        self._enforce_deadlines()
        with self._active_lock:
            active = list(self.active.values())
        if heartbeat:
            self._heartbeat_worker(now)
        if not active:
            return
        ids = [run.run_id for run in active]
        moved = [run for run in active if not run.ended and run.progress != run.progress_written]
        progress = {run.run_id: run.progress for run in moved}
        with self.db.write() as session:
            if heartbeat:
                session.execute(
                    update(Run)
                    .where(Run.id.in_(ids), Run.status == "running")
                    .values(heartbeat_at=now)
                )
            for run_id, (done, total) in progress.items():
                session.execute(
                    update(Run)
                    .where(Run.id == run_id, Run.status == "running")
                    .values(progress_done=done, progress_total=total)
                )
            rows = session.execute(
                select(Run.id, Run.status, Run.cancel_requested_at).where(Run.id.in_(ids))
            ).all()
        for run in moved:
            run.progress_written = progress[run.run_id]
        by_id = {run.run_id: run for run in active}
        for run_id in set(ids) - {row.id for row in rows}:
            # Its job was deleted: nobody can see the run any more, so it stops at once.
            by_id[run_id].abort("cancelled")
        for run_id, status, cancel_requested_at in rows:
            if cancel_requested_at is not None:
                by_id[run_id].abort("cancelled")
            elif status != "running":
                # The reaper declared the run lost: stop executing what nobody waits for.
                by_id[run_id].abort("lost")

    def _heartbeat_worker(self, now: datetime) -> None:
        with self.db.write() as session:
            row = session.get(WorkerRow, self.id)
            if row is None:
                session.add(
                    WorkerRow(
                        id=self.id,
                        host=socket.gethostname(),
                        pid=os.getpid(),
                        queues=self.queue_names,
                        concurrency=self.concurrency,
                        started_at=now,
                        heartbeat_at=now,
                    )
                )
            else:
                row.heartbeat_at = now

    def _watch_loop(self) -> None:
        last_heartbeat = retry_at = 0.0
        while not self._stop.wait(self.settings.watch_seconds):
            if time.monotonic() < retry_at:
                self._enforce_deadlines()  # the database is away: only deadlines, until then
                continue
            idle = not self.active
            pace = self.idle_heartbeat_seconds if idle else self.settings.heartbeat_seconds
            beat = time.monotonic() - last_heartbeat >= pace
            try:
                now = utcnow()
                self.watch_once(now, heartbeat=beat)
                if beat:
                    last_heartbeat = time.monotonic()
                    if idle and (self.kernels.prestart_name or self.idle_exit_seconds):
                        self._expect_due_jobs(now)
                self._note_idleness()
            except Unavailable:
                # Logged once by the database. Try again at the heartbeat's pace: often
                # enough to resume well within a lease once it answers.
                retry_at = time.monotonic() + self.settings.heartbeat_seconds
            except Exception:
                log.exception("worker watch failed; trying again")

    @property
    def idle_heartbeat_seconds(self) -> float:
        """How often an idle worker records that it is alive: a few times per lease, so
        that it stays listed among the live workers, and rarely enough to cost nothing."""
        return max(self.settings.heartbeat_seconds, self.settings.lease_seconds / 3)

    def _expect_due_jobs(self, now: datetime) -> None:
        """Prepare kernels when a job is due within :data:`DUE_SOON_SECONDS`."""
        due = earliest_fire(self.db)
        if due is None:
            return
        lead = (due - now).total_seconds()
        if lead <= DUE_SOON_SECONDS:
            self._busy_at = time.monotonic()  # a run is expected: no idle exit
            if not self.kernels.prestart_name:
                return
            self.kernels.expect(max(lead, 0.0) + self.kernels.expect_seconds)
            if self.doorbell is not None:
                self.doorbell.wake_all()  # the threads prepare their kernels now

    def _on_prepare_hint(self) -> None:
        """Someone is about to ask for a run (a user in the scheduling dialog)."""
        self._busy_at = time.monotonic()
        self.kernels.expect()

    def _note_idleness(self) -> None:
        """Record whether the worker holds a run; flag it idle after ``idle_exit_seconds``
        without one and without one expected (a job due soon, a run in the last minutes:
        the kernels it keeps ready are worth keeping then)."""
        if self.active or (self.kernels.prestart_name and self.kernels.expected):
            self._busy_at = time.monotonic()
        elif self.idle_exit_seconds and time.monotonic() - self._busy_at >= self.idle_exit_seconds:
            self.went_idle.set()

    def _on_idle(self) -> None:
        """A consumer thread has nothing to do: tend its prepared kernel."""
        try:
            self.kernels.tend()
        except Exception:
            log.warning("preparing a kernel failed", exc_info=True)

    def _enforce_deadlines(self) -> None:
        with self._active_lock:
            active = list(self.active.values())
        for run in active:
            if run.deadline is not None and time.monotonic() >= run.deadline:
                run.abort("timed_out")

    # -- life of the process ------------------------------------------------------------

    def start(self) -> None:
        """Register the worker and start consuming; returns at once.

        Raises :class:`~jupyter_sched.errors.SecretMismatch` (and registers nothing) when
        this process's secret is not the one that signs the deployment's queue messages.
        """
        check_secret(self.db, self.settings)
        self.settings.artifacts_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(Unavailable):  # the watcher registers it once it answers
            self._heartbeat_worker(utcnow())
        self._watcher = threading.Thread(target=self._watch_loop, name="sched-watch", daemon=True)
        self._watcher.start()
        woken = self.doorbell is not None and self.doorbell.open()
        poll_max = self.settings.poll_max_seconds
        for name in self.queue_names:
            consumer = WakingConsumer(
                self.queues[name].huey,
                wake=self.doorbell.event(name) if woken and self.doorbell else None,
                on_idle=self._on_idle,
                workers=self.concurrency,
                worker_type="thread",
                periodic=False,
                initial_delay=min(0.05, poll_max),
                backoff=1.5,
                # Woken on enqueue, a thread polls only as the fallback.
                max_delay=max(poll_max, WOKEN_POLL_MAX_SECONDS) if woken else poll_max,
                check_worker_health=True,
            )
            # Start the consumer's threads without its signal handlers: this class decides
            # how the process stops.
            consumer.scheduler.start()
            for _, thread in consumer.worker_threads:
                thread.start()
            self._consumers.append(consumer)
        log.info(
            "worker %s consuming %s with %d thread(s) each",
            self.id, ", ".join(self.queue_names), self.concurrency,
        )  # fmt: skip

    def stop(self, grace_seconds: float = 30.0) -> None:
        """Stop taking work, let running runs finish for up to ``grace_seconds``, then
        abort the rest as ``lost`` so that they are retried."""
        self._stopping.set()
        for consumer in self._consumers:
            consumer.stop_flag.set()
        if self.doorbell is not None:
            self.doorbell.close()  # also wakes the sleeping threads
        deadline = time.monotonic() + grace_seconds
        while self.active and time.monotonic() < deadline:
            time.sleep(0.1)
        # Outcomes still waiting for the database are given up: their runs are reaped and
        # retried once it answers.
        self._give_up.set()
        with self._active_lock:
            remaining = list(self.active.values())
        for run in remaining:
            run.abort("lost")  # also a run still preparing, as soon as it would start
        for consumer in self._consumers:
            for _, thread in consumer.worker_threads:
                thread.join(max(self.settings.kill_grace_seconds * 3, 5.0))
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(5)
        self.kernels.discard()
        self.kernels.reaper.join(10)  # no kernel outlives the worker
        try:
            with self.db.write() as session:
                row = session.get(WorkerRow, self.id)
                if row is not None:
                    row.stopped_at = utcnow()
        except Unavailable:
            pass  # its heartbeat stops: it drops out of the live workers after the lease
        log.info("worker %s stopped", self.id)

    def run_forever(
        self,
        grace_seconds: float = 30.0,
        *,
        exit_with_parent: bool = False,
        parent_pid: int | None = None,
    ) -> None:
        """Start, then stop gracefully on SIGTERM or SIGINT (a second signal hurries it).

        Raises :class:`~jupyter_sched.errors.SecretMismatch` when the worker refuses to
        start or stops consuming because its secret is not the deployment's.

        With ``exit_with_parent`` the worker also stops when the process that started it
        (``parent_pid``, default the parent process) dies, so a killed server never leaves
        a second set of workers behind, even if it died while the worker was starting.
        """
        stopping = threading.Event()

        def on_signal(signum: int, _frame: Any) -> None:
            if stopping.is_set():
                raise KeyboardInterrupt
            stopping.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        parent = parent_pid or os.getppid()
        if exit_with_parent and not _alive(parent):
            log.warning("parent process %d is gone; not starting", parent)
            return
        self.start()
        try:
            while not stopping.wait(1.0) and self.refused is None:
                if exit_with_parent and (os.getppid() != parent or not _alive(parent)):
                    log.warning("parent process died; stopping")
                    break
                if self.went_idle.is_set():
                    log.info("worker %s idle for %g s; exiting", self.id, self.idle_exit_seconds)
                    # A run taken meanwhile ends as it would have: nothing is aborted.
                    grace_seconds = float("inf")
                    break
                for consumer in self._consumers:
                    consumer.check_worker_health()
        finally:
            self.stop(grace_seconds)
        if self.refused is not None:
            raise self.refused


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
