"""jupyter-sched: a Jupyter-native notebook scheduler.

Jobs (a notebook, its parameters and a trigger) live in a SQL database; a ticker turns
their schedules into runs; huey carries run ids to workers that execute the notebook with
papermill on a fresh kernel and record the output, log, timings and outcome.
"""

from importlib.metadata import version

from .values import record

#: The version of the installed package (its one place is package.json).
__version__ = version("jupyter-sched")

__all__ = ["__version__", "record"]


def _jupyter_server_extension_points() -> list[dict[str, object]]:
    """The server extension (``jupyter_server`` finds it through this function)."""
    from .app import SchedApp

    return [{"module": "jupyter_sched.app", "app": SchedApp}]
