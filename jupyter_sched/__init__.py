"""jupyter-sched: a Jupyter-native notebook scheduler.

Jobs (a notebook, its parameters and a trigger) live in a SQL database; a ticker turns
their schedules into runs; huey carries run ids to workers that execute the notebook with
papermill on a fresh kernel and record the output, log, timings and outcome.
"""

from typing import Any

try:
    # Written by the build (hatchling's version hook) from package.json, its one place.
    from ._version import __version__ as __version__
except ImportError:  # a checkout whose install predates the hook
    from importlib.metadata import version

    #: The version of the installed package.
    __version__ = version("jupyter-sched")

__all__ = ["__version__", "record"]


def record(name: str, value: Any) -> None:
    """Record ``value`` (any JSON value) under ``name`` for the scheduler: the run keeps it
    in its ``values`` (see :func:`jupyter_sched.values.record`)."""
    from .values import record as record_value  # the package imports nothing up front

    record_value(name, value)


def _jupyter_server_extension_points() -> list[dict[str, object]]:
    """The server extension (``jupyter_server`` finds it through this function)."""
    from .app import SchedApp

    return [{"module": "jupyter_sched.app", "app": SchedApp}]
