"""Who sees whose jobs and runs: a scheduler admin's name, and the owner conditions of a
listing (kept apart from the API's parsing, so the CLI's light listing reads them too)."""

from __future__ import annotations

from typing import Any

__all__ = ["AdminName", "owned_by"]


class AdminName(str):
    """The name of a user who sees and manages every user's jobs and runs (a hub's
    scheduler admin). Jobs such a user creates are their own."""

    __slots__ = ()


def owned_by(column: Any, owner: str, only: str | None) -> list[Any]:
    """The conditions of a listing by ``owner`` asking for ``only``'s items: an admin's
    listing is everyone's (or ``only``'s); anyone else's is their own."""
    conditions = [] if isinstance(owner, AdminName) else [column == owner]
    if only is not None:
        conditions.append(column == only)
    return conditions
