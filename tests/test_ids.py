"""Run and job ids are ULIDs that python-ulid reads, unique, in creation order."""

from __future__ import annotations

import time

from ulid import ULID

from jupyter_sched.models import new_id


def test_ids_are_ulids_of_their_creation_time() -> None:
    before = time.time_ns() // 1_000_000
    made = new_id()
    after = time.time_ns() // 1_000_000
    parsed = ULID.from_str(made)
    assert str(parsed) == made and len(made) == 26
    assert before <= parsed.milliseconds <= after


def test_ids_are_unique_and_sort_in_creation_order() -> None:
    # many in each millisecond: those are monotonic too (a pass's runs sort as made)
    made = [new_id() for _ in range(20_000)]
    assert len(set(made)) == len(made)
    assert made == sorted(made)
    stamps = [ULID.from_str(one).milliseconds for one in made]
    assert len(set(stamps)) > 1


def test_each_millisecond_starts_from_new_random_bits() -> None:
    firsts = []
    for _ in range(64):
        time.sleep(0.002)
        firsts.append(new_id())
    assert firsts == sorted(firsts)
    assert len({one[10] for one in firsts}) > 8  # the highest random bits vary
    assert {one[0] for one in firsts} == {"0"}  # the time's top bits, until year 10889
