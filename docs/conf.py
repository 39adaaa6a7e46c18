"""Sphinx configuration of the jupyter-sched documentation (``make docs``)."""

import sys
from pathlib import Path

import jupyter_sched

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "jupyter-sched"
author = "jupyter-sched developers"
copyright = "jupyter-sched developers"
release = version = jupyter_sched.__version__

extensions = ["myst_parser", "sphinx_click", "sched_reference"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
suppress_warnings = ["myst.header"]

html_theme = "pydata_sphinx_theme"
html_title = f"jupyter-sched {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_show_sourcelink = False
