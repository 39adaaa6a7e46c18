"""The one exception hierarchy of jupyter-sched.

Every error the service raises for a caller's mistake is a :class:`SchedError`. Each class
carries the HTTP status it maps to, so the REST layer translates them in one place; the CLI
prints ``message`` and exits non-zero.
"""

from __future__ import annotations


class SchedError(Exception):
    """Base of every error raised for a caller's request.

    ``field`` names the offending input (dotted for nested values, e.g. ``trigger.cron``)
    when one input is at fault.
    """

    status_code = 400
    reason = "bad_request"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_dict(self) -> dict[str, str | None]:
        """The JSON body of the error: message, reason and field."""
        return {"message": self.message, "reason": self.reason, "field": self.field}


class InvalidInput(SchedError):
    """A field has a value the scheduler cannot accept (bad cron, unknown timezone, ...)."""

    status_code = 422
    reason = "invalid"


class DependencyCycle(SchedError):
    """Jobs that would run after each other in a circle (a 400: the request is wrong as a
    whole, not one value)."""

    reason = "dependency_cycle"


class NotFound(SchedError):
    """The job, run or notebook does not exist, or belongs to another user."""

    status_code = 404
    reason = "not_found"


class Conflict(SchedError):
    """The request clashes with the current state (a finished run, a stale version, ...)."""

    status_code = 409
    reason = "conflict"


class Unauthorized(SchedError):
    """A call authenticated by a token (webhooks) whose token is missing or wrong."""

    status_code = 401
    reason = "unauthorized"


class RateLimited(SchedError):
    """Too many calls in too short a time."""

    status_code = 429
    reason = "rate_limited"


class PathOutsideRoot(SchedError):
    """A notebook path resolves outside the server root."""

    status_code = 400
    reason = "path_outside_root"


class TooLarge(SchedError):
    """A request body is larger than the configured limit."""

    status_code = 413
    reason = "too_large"


class CannotStart(SchedError):
    """This process cannot safely join its deployment and must not start.

    Raised at start-up by the server, the workers and the CLI; the CLI prints the message
    on one line, the server logs it on one line and its API answers 503 with it.
    """

    status_code = 503
    reason = "cannot_start"


class SchemaTooNew(CannotStart):
    """The history database was migrated by a newer jupyter-sched than this one."""

    reason = "schema_too_new"


class SecretMismatch(CannotStart):
    """This process signs queue messages with another secret than its deployment."""

    reason = "secret_mismatch"


class MigrationFailed(CannotStart):
    """Migrating the history database to this code's schema failed."""

    reason = "migration_failed"


class MissingExtra(CannotStart):
    """An optional Python package is not installed; the message names the extra that
    brings it (``pip install 'jupyter-sched[postgres]'``)."""

    reason = "missing_dependency"

    #: For each optional module: what needs it, and the install line that brings it.
    EXTRAS = {
        "psycopg": ("a PostgreSQL history database", "pip install 'jupyter-sched[postgres]'"),
        "psycopg2": (
            "a postgresql:// URL without a driver",
            "pip install 'jupyter-sched[postgres]' and write the URL as postgresql+psycopg://",
        ),
    }

    @classmethod
    def for_module(cls, module: str) -> MissingExtra | None:
        """The error for a missing ``module``; ``None`` if no extra brings it."""
        top = module.partition(".")[0]
        known = cls.EXTRAS.get(top)
        if known is None:
            return None
        needed_for, remedy = known
        return cls(f"{needed_for} needs the Python module {top!r}, which is missing: {remedy}")


class Unavailable(SchedError):
    """The history database cannot be reached (or is not ready yet): try again shortly.

    Every connection-level error of SQLAlchemy becomes this one error, in
    :mod:`jupyter_sched.db`; the REST layer answers it with 503 and ``Retry-After``.
    """

    status_code = 503
    reason = "unavailable"
    #: Seconds a client is told to wait before trying again.
    retry_after = 5

    def __init__(
        self,
        message: str = "the history database is unavailable; try again in a few seconds",
        *,
        field: str | None = None,
    ) -> None:
        super().__init__(message, field=field)


class ExecutionError(Exception):
    """Why a run ended unsuccessfully, as the worker saw it.

    Not a caller error: the worker records it on the run row (exception name, value, and the
    failing cell index when a cell raised).
    """

    def __init__(self, ename: str, evalue: str, cell_index: int | None = None) -> None:
        super().__init__(f"{ename}: {evalue}")
        self.ename = ename
        self.evalue = evalue
        self.cell_index = cell_index


class NoSuchOwner(SchedError):
    """A run's owner has no Unix account on the machine of the worker that should run it
    as that owner (runs as their owner, on a hub)."""

    status_code = 422
    reason = "no_such_owner"
