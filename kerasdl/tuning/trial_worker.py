"""One ``kerasdl tune`` trial in a fresh process: ``python -m kerasdl.tuning.trial_worker REQUEST RESULT``.

The search process (the Keras Tuner oracle and tuner loop, :mod:`kerasdl.tuning.search`) writes the
trial's full :class:`~kerasdl.config.RunConfig` and objective into the JSON file ``REQUEST`` and
starts this module in a new Python process. It trains the trial (:func:`kerasdl.tuning.search.train_trial`),
measures it on the validation split and writes ``RESULT`` (JSON, atomically):

- ``{"status": "completed", "figures": {...}, "stop_reason": ...}`` for a finished trial;
- ``{"status": "failed", "reason": ...}`` for a trial kerasdl refused or that diverged.

Both also carry ``startup_seconds`` (from the parent's spawn to this process having imported
TensorFlow and kerasdl) and ``peak_rss_mib`` (this process's peak resident set size). Anything
else -- an unexpected exception, a crash, a kill -- leaves no RESULT file; the parent then records
the trial as failed from the exit status and the end of the log.

All of TensorFlow's and Keras's memory is returned to the operating system when the process
exits, so a long search does not grow from trial to trial. :func:`run_and_exit` ends the process
with ``os._exit`` once the result is written: TensorFlow's interpreter teardown (about 1.5 s on a
2-core machine) would only add to every trial's cost.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time


def peak_rss_mib() -> float:
    """This process's peak resident set size in MiB (Linux reports ru_maxrss in KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024, 1)


def write_result(path: str, result: dict) -> None:
    """Write ``result`` to ``path`` atomically: the parent sees either nothing or the whole file."""
    partial = f"{path}.partial"
    with open(partial, "w", encoding="utf-8") as f:
        json.dump(result, f)
    os.replace(partial, path)


def main(argv: list[str]) -> int:
    """Run the trial described by ``argv[0]`` and write its outcome to ``argv[1]``."""
    if len(argv) != 2:
        print("usage: python -m kerasdl.tuning.trial_worker REQUEST.json RESULT.json", file=sys.stderr)
        return 2
    request_path, result_path = argv
    with open(request_path, encoding="utf-8") as f:
        request = json.load(f)

    from kerasdl.tfquiet import import_tensorflow

    import_tensorflow().get_logger().setLevel("ERROR")
    from kerasdl.config import RunConfig
    from kerasdl.errors import KerasdlUsageError
    from kerasdl.engine.fit import TrainingFailed
    from kerasdl.tuning.search import train_trial

    startup_seconds = round(time.time() - float(request["spawned_at"]), 2)
    try:
        config = RunConfig.from_mapping(request["config"], source=request_path)
        figures, stop_reason = train_trial(config)
        result = {"status": "completed", "figures": figures, "stop_reason": stop_reason}
    except (TrainingFailed, KerasdlUsageError) as exc:
        result = {"status": "failed", "reason": str(exc)}
    result.update(startup_seconds=startup_seconds, peak_rss_mib=peak_rss_mib())
    write_result(result_path, result)
    return 0


def run_and_exit(argv: list[str]) -> None:
    """:func:`main`, then end the process at once (files are closed; nothing else is pending)."""
    code = main(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run_and_exit(sys.argv[1:])
