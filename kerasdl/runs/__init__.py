"""Run directories: their layout and atomic JSON (:mod:`.layout`, re-exported here), reading a
run back (:func:`load_run`, :mod:`.load`) and listing runs (:mod:`.listing`).

    from kerasdl import runs
    runs.write_json(runs.path(run_dir, runs.METRICS), record)
    run = runs.load_run(run_dir)   # imports Keras on first use
"""

from kerasdl.runs.layout import *  # noqa: F401,F403
from kerasdl.runs.layout import __all__ as _layout_all

__all__ = [*_layout_all, "LoadedRun", "load_run"]


def __getattr__(name: str):
    if name in ("LoadedRun", "load_run"):
        from kerasdl.runs import load

        return getattr(load, name)
    raise AttributeError(f"module 'kerasdl.runs' has no attribute {name!r}")
