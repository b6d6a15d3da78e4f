"""Memory across a long search: does ``kerasdl tune`` leak from trial to trial?

    python benchmarks/tune_memory.py                 # 30 random-search trials of an MLP on digits
    python benchmarks/tune_memory.py --trial-process shared   # every trial in the search process
    python benchmarks/tune_memory.py --trials 50 --model lenet5 --dataset mnist5k --epochs 2

Runs the search in this process (as ``kerasdl tune`` does) and reads this process's resident set
size (VmRSS, and the peak VmHWM, from /proc/self/status) after every trial. With the default
``--trial-process fresh`` every trial trains in its own child process, which reports its own peak
RSS (``peak_rss_mib`` in tune_results.csv; cross-checked with getrusage(RUSAGE_CHILDREN), the
largest peak of any finished child) and its start-up time (spawn to TensorFlow and kerasdl
imported). Prints Markdown tables for benchmarks/RESULTS.md: the search process's RSS after trials
1, 5, 10, ... and the least-squares slope of it over the second half of the trials (MiB per trial;
~0 means flat), then the children's peaks and start-up times.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import tempfile
import time


def status_mib(field: str) -> float:
    """A memory field of /proc/self/status (VmRSS, VmHWM, ...) in MiB."""
    with open("/proc/self/status", encoding="utf-8") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def slope(values: list[float], first_index: int) -> float:
    """Least-squares slope of ``values`` (taken at first_index, first_index + 1, ...) per step."""
    xs = range(first_index, first_index + len(values))
    mx, my = statistics.fmean(xs), statistics.fmean(values)
    return sum((x - mx) * (y - my) for x, y in zip(xs, values)) / max(sum((x - mx) ** 2 for x in xs), 1e-12)


def row_line(label: str, marks: list[int], values: list[float], fmt: str = "{:.0f}") -> str:
    """One Markdown table row: ``values`` at the 1-based trial numbers ``marks``."""
    return f"| {label} | " + " | ".join(fmt.format(values[m - 1]) for m in marks) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--model", default="mlp")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--trial-process", choices=("fresh", "shared"), default="fresh")
    args = parser.parse_args()
    os.environ.setdefault("KERASDL_OFFLINE", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    from kerasdl.config import RunConfig
    from kerasdl.data import dataset_info
    from kerasdl.tuning.search import TuneSettings, default_space, tune

    base = {k: v for k, v in RunConfig(model=args.model, dataset=args.dataset, epochs=args.epochs, patience=0)
            .to_dict().items() if k not in ("name", "output_dir")}
    settings = TuneSettings(base=base, tuner="random", max_trials=args.trials, seed=0,
                            space=default_space(args.model, dataset_info(args.dataset).task),
                            max_consecutive_failed_trials=args.trials, trial_process=args.trial_process)
    rss = []

    def echo(line: str) -> None:
        if line.startswith("trial ") and (line.endswith("s)") or " failed: " in line):
            rss.append(status_mib("VmRSS"))

    tune_dir = tempfile.mkdtemp(prefix="kerasdl-tune-memory-")
    t0 = time.perf_counter()
    try:
        result = tune(settings, os.path.join(tune_dir, "t"), echo=echo)
    finally:
        shutil.rmtree(tune_dir, ignore_errors=True)
    seconds = time.perf_counter() - t0
    n = len(rss)
    trials = sorted(result.rows, key=lambda r: r["trial"])  # in order of creation
    done = [r for r in trials if r["status"] == "completed"]
    trial_seconds = [r["trial_seconds"] for r in done]
    print(f"\n{n} trials ({len(done)} completed) of {args.model} on {args.dataset}, {args.epochs} epochs each, "
          f"random search, trial process {args.trial_process}, {seconds:.0f} s "
          f"(median trial {statistics.median(trial_seconds):.1f} s)\n")
    marks = sorted({1, *range(5, n + 1, 5), n})
    print("| after trial | " + " | ".join(str(m) for m in marks) + " |")
    print("|---|" + "---|" * len(marks))
    print(row_line("search process RSS MiB", marks, rss))
    if args.trial_process == "fresh" and len(done) == n:
        print(row_line("that trial's child, peak RSS MiB", marks, [r["peak_rss_mib"] for r in trials]))
    print(f"\nsearch process: peak RSS (VmHWM) {status_mib('VmHWM'):.0f} MiB; slope over trials {n // 2 + 1}-{n}: "
          f"{slope(rss[n // 2:], n // 2):+.2f} MiB/trial; first -> last {rss[0]:.0f} -> {rss[-1]:.0f} MiB")
    if args.trial_process == "fresh":
        peaks = [r["peak_rss_mib"] for r in done]
        startups = [r["startup_seconds"] for r in done]
        children_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"children ({len(done)}): peak RSS min / median / max {min(peaks):.0f} / {statistics.median(peaks):.0f} "
              f"/ {max(peaks):.0f} MiB (getrusage(RUSAGE_CHILDREN): {children_peak:.0f} MiB); slope of the "
              f"children's peaks over all trials {slope(peaks, 1):+.2f} MiB/trial")
        print(f"child start-up (spawn to TensorFlow and kerasdl imported): median {statistics.median(startups):.2f} s "
              f"(min {min(startups):.2f}, max {max(startups):.2f})")


if __name__ == "__main__":
    main()
