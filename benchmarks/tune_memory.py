"""Memory across a long search: does ``kerasdl tune`` leak from trial to trial?

    python benchmarks/tune_memory.py                 # 30 random-search trials of an MLP on digits
    python benchmarks/tune_memory.py --trials 50 --model lenet5 --dataset mnist5k --epochs 2

Runs the search in this process (as ``kerasdl tune`` does) and reads the process's resident set
size (VmRSS, and the peak VmHWM, from /proc/self/status) after every trial. Prints a Markdown
table for benchmarks/RESULTS.md: RSS after trials 1, 5, 10, ... and the least-squares slope of
RSS over the second half of the trials (MiB per trial; ~0 means flat).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time


def status_mib(field: str) -> float:
    with open("/proc/self/status", encoding="utf-8") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--model", default="mlp")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("KERASDL_OFFLINE", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    from kerasdl.config import RunConfig
    from kerasdl.data import dataset_info
    from kerasdl.tuning import TuneSettings, default_space, tune

    base = {k: v for k, v in RunConfig(model=args.model, dataset=args.dataset, epochs=args.epochs, patience=0)
            .to_dict().items() if k not in ("name", "output_dir")}
    settings = TuneSettings(base=base, tuner="random", max_trials=args.trials, seed=0,
                            space=default_space(args.model, dataset_info(args.dataset).task),
                            max_consecutive_failed_trials=args.trials)
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
    half = rss[n // 2:]
    xs = list(range(n // 2, n))
    mx, my = sum(xs) / len(xs), sum(half) / len(half)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, half)) / max(sum((x - mx) ** 2 for x in xs), 1e-12)
    done = sum(1 for r in result.rows if r["status"] == "completed")
    print(f"\n{n} trials ({done} completed) of {args.model} on {args.dataset}, {args.epochs} epochs each, "
          f"random search, {seconds:.0f} s\n")
    marks = sorted({1, *range(5, n + 1, 5), n})
    print("| after trial | " + " | ".join(str(m) for m in marks) + " |")
    print("|---|" + "---|" * len(marks))
    print("| RSS MiB | " + " | ".join(f"{rss[m - 1]:.0f}" for m in marks) + " |")
    print(f"\npeak RSS (VmHWM) {status_mib('VmHWM'):.0f} MiB; slope over trials {n // 2 + 1}-{n}: "
          f"{slope:+.2f} MiB/trial; first -> last {rss[0]:.0f} -> {rss[-1]:.0f} MiB")


if __name__ == "__main__":
    main()
