"""Dependency checks on long ``after`` chains, on SQLite and PostgreSQL.

A PATCH on the first job of a 10,000-job chain used to walk the chain one query per job
inside the write transaction, holding SQLite's write lock for minutes. These tests count
statements (never time): the checks cost the same few queries whatever the chain's length,
the write transaction stays a handful of statements, and cycles are still refused with the
cycle named.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, insert, select

from jupyter_sched.errors import DependencyCycle
from jupyter_sched.models import Dependency, Job, new_id
from jupyter_sched.service import Service

from .conftest import OWNER

HELLO = "notebooks/hello.ipynb"
LONG = 10_000
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def after(*jobs: str) -> dict[str, Any]:
    return {"trigger": {"kind": "after", "jobs": list(jobs), "condition": "success"}}


def insert_chain(service: Service, length: int, name: str = "chain") -> list[str]:
    """``length`` jobs of OWNER, each after the previous one (inserted directly: creating
    10,000 jobs through the service would check 10,000 notebooks)."""
    rows = []
    for i in range(length):
        created = T0 + timedelta(seconds=i)
        rows.append({
            "id": new_id(), "name": f"{name} {i}", "owner": OWNER,
            "notebook": HELLO, "parameters": {}, "trigger": {"kind": "manual"},
            "trigger_kind": "manual", "fire_count": 0, "status": "active",
            "misfire": "run_once", "overlap": "allow", "retries": 0,
            "retry_delay_seconds": 60.0, "retry_backoff": 2.0, "priority": 0,
            "queue": "default", "tags": [], "output_formats": ["ipynb"],
            "notifications": [], "created_at": created, "updated_at": created, "version": 1,
        })  # fmt: skip
    edges = []
    for previous, row in itertools.pairwise(rows):
        row.update(after(previous["id"]), trigger_kind="after")
        edges.append(
            {"downstream_id": row["id"], "upstream_id": previous["id"], "condition": "success"}
        )
    with service.db.engine.begin() as conn:
        for i in range(0, length, 2000):
            conn.execute(insert(Job), rows[i : i + 2000])
        for i in range(0, len(edges), 2000):
            conn.execute(insert(Dependency), edges[i : i + 2000])
        if service.db.engine.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE")
    return [row["id"] for row in rows]


@dataclass
class Transactions:
    """The statements of each transaction on an engine, in order."""

    done: list[list[str]] = field(default_factory=list)
    current: dict[int, list[str]] = field(default_factory=dict)

    @property
    def writes(self) -> list[list[str]]:
        """Transactions that changed something."""
        verbs = ("INSERT", "UPDATE", "DELETE")
        return [t for t in self.done if any(s.lstrip().upper().startswith(verbs) for s in t)]


@contextmanager
def recorded(service: Service) -> Iterator[Transactions]:
    """Record the statements of every transaction ``service`` runs meanwhile."""
    record = Transactions()

    def begin(conn: Any) -> None:
        record.current[id(conn)] = []

    def execute(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("BEGIN", "PRAGMA")):
            return
        record.current.setdefault(id(conn), []).append(statement)

    def end(conn: Any) -> None:
        record.done.append(record.current.pop(id(conn), []))

    engine = service.db.engine
    listeners = [("begin", begin), ("before_cursor_execute", execute), ("commit", end),
                 ("rollback", end)]  # fmt: skip
    for name, fn in listeners:
        event.listen(engine, name, fn)
    try:
        yield record
    finally:
        for name, fn in listeners:
            event.remove(engine, name, fn)


def test_patch_costs_the_same_queries_on_a_short_and_a_long_chain(service: Service) -> None:
    other = service.create_job(OWNER, {"name": "other", "notebook": HELLO}).id
    counts = []
    for length in (5, LONG):
        chain = insert_chain(service, length, name=f"c{length}")
        with recorded(service) as record:
            patched = service.update_job(OWNER, chain[0], after(other))
        assert patched.trigger.kind == "after" and patched.trigger.jobs == [other]
        (write,) = record.writes
        counts.append((sum(len(t) for t in record.done), len(write)))
    # Not one query per job of the chain: the same statements for 5 jobs and 10,000.
    assert counts[0] == counts[1], counts
    assert counts[1][1] <= 12, counts  # the write transaction: a few short statements
    with service.db.read() as session:
        upstreams = session.scalars(
            select(Dependency.upstream_id).where(Dependency.downstream_id == chain[0])
        ).all()
    assert upstreams == [other]


def test_a_cycle_through_a_long_chain_is_refused_and_named(service: Service) -> None:
    chain = insert_chain(service, LONG)
    with recorded(service) as record, pytest.raises(DependencyCycle) as refused:
        service.update_job(OWNER, chain[0], after(chain[-1]))
    assert refused.value.field == "trigger.jobs" and refused.value.status_code == 400
    named = [f"chain {i} ({chain[i]})" for i in range(LONG)]
    # Both ends of the cycle by name, the middle counted, and back to where it started.
    assert refused.value.message == (
        "trigger.jobs: this would make a cycle: "
        + " → ".join([*named[:4], f"… {LONG + 1 - 8} more jobs …", *named[-3:], named[0]])
    )
    assert record.writes == []  # refused before any write transaction
    assert service.get_job(OWNER, chain[0]).trigger.kind == "manual"


def test_a_short_cycle_is_named_in_full(service: Service) -> None:
    chain = insert_chain(service, 4)
    with pytest.raises(DependencyCycle) as refused:
        service.update_job(OWNER, chain[0], after(chain[3]))
    names = [f"chain {i} ({chain[i]})" for i in (0, 1, 2, 3, 0)]
    assert refused.value.message.endswith(" → ".join(names))


def test_a_long_chain_can_be_extended_cut_and_rejoined(service: Service) -> None:
    chain = insert_chain(service, LONG)
    tail = service.create_job(OWNER, {"name": "tail", "notebook": HELLO, **after(chain[-1])})
    assert tail.trigger.jobs == [chain[-1]]
    middle = chain[LONG // 2]
    service.delete_job(OWNER, middle, force=True)
    # The job after the deleted one has no upstream left and became manual: the chain is
    # cut in two, and its head may now run after the tail.
    second_half = chain[LONG // 2 + 1]
    assert service.get_job(OWNER, second_half).trigger.kind == "manual"
    joined = service.update_job(OWNER, chain[0], after(tail.id))
    assert joined.trigger.jobs == [tail.id]
    # Now second half → tail → first half: rejoining the halves would close a long cycle,
    with pytest.raises(DependencyCycle, match=r"… 9993 more jobs …"):
        service.update_job(OWNER, second_half, after(chain[LONG // 2 - 1]))
    # ... and the last job after the first a short one.
    with pytest.raises(DependencyCycle, match=rf"chain 9999 \({chain[-1]}\) → tail"):
        service.update_job(OWNER, chain[-1], after(chain[0]))


def test_concurrent_changes_never_close_a_cycle(service: Service) -> None:
    """Two jobs made to run after each other at the same moment: one of the two changes
    is refused, whatever the interleaving (the write transaction checks again, under a
    lock of the owner's graph)."""
    for _ in range(5):
        (a,), (b,) = insert_chain(service, 1, name="a"), insert_chain(service, 1, name="b")
        barrier = threading.Barrier(2)
        outcomes: list[str] = []

        def make(job: str, upstream: str, barrier: threading.Barrier = barrier,
                 outcomes: list[str] = outcomes) -> None:  # fmt: skip
            barrier.wait()
            try:
                service.update_job(OWNER, job, after(upstream))
                outcomes.append("changed")
            except DependencyCycle:
                outcomes.append("refused")

        threads = [threading.Thread(target=make, args=pair) for pair in ((a, b), (b, a))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(outcomes) == ["changed", "refused"]
