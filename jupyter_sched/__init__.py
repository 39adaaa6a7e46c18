"""jupyter-sched: a Jupyter-native notebook scheduler.

Jobs (a notebook, its parameters and a trigger) live in a SQL database; a ticker turns
their schedules into runs; huey carries run ids to workers that execute the notebook with
papermill on a fresh kernel and record the output, log, timings and outcome.
"""

__version__ = "0.1.0"
