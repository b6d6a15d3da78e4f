"""Run directories: their layout and atomic JSON (:mod:`.layout`, re-exported here), reading a
run back (:mod:`.load`: ``from kerasdl.runs.load import load_run``) and listing runs (:mod:`.listing`).

    from kerasdl import runs
    runs.write_json(runs.path(run_dir, runs.METRICS), record)
"""

from kerasdl.runs.layout import *  # noqa: F401,F403
from kerasdl.runs.layout import __all__ as _layout_all

__all__ = list(_layout_all)
