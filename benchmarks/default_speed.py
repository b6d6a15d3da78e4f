"""Images/second of ``kerasdl train`` with its defaults, this checkout against a baseline install.

    python benchmarks/default_speed.py                                  # this checkout only
    python benchmarks/default_speed.py --baseline /tmp/base_site        # and a baseline, interleaved

Checks that optional techniques cost nothing when they are off: the default run (lenet5 on
mnist5k, batch 64, Adam, cosine schedule, default augmentation) must train as fast as before.
A baseline is another kerasdl installed into its own folder, e.g.

    git worktree add /tmp/base <commit>
    pip install --no-deps --no-build-isolation --target /tmp/base_site /tmp/base

Each run is a real ``kerasdl train`` subprocess (``--epochs`` short, everything else default);
the figure is training images per second of epoch wall time (history.csv) over the epochs after
the first, so start-up, the first epoch's tracing and evaluation are not counted. Runs
alternate between the two installs so a busy machine slows both equally; the table shows each
run and the median.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile


def run_once(site: str | None, workdir: str, name: str, epochs: int) -> float:
    env = dict(os.environ, KERASDL_OFFLINE="1", TF_CPP_MIN_LOG_LEVEL="3")
    if site:
        env["PYTHONPATH"] = site + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "kerasdl", "train", "--epochs", str(epochs), "--name", name,
           "--output-dir", os.path.join(workdir, "runs"), "--patience", "0"]
    # cwd = workdir: the repository root must not shadow the installed package under test.
    subprocess.run(cmd, cwd=workdir, env=env, check=True, capture_output=True, text=True)
    run = os.path.join(workdir, "runs", name)
    with open(os.path.join(run, "dataset.json"), encoding="utf-8") as f:
        n_train = int(json.load(f)["splits"]["train"])
    with open(os.path.join(run, "history.csv"), newline="", encoding="utf-8") as f:
        times = [float(row["epoch_time_s"]) for row in csv.DictReader(f)]
    return n_train * (len(times) - 1) / sum(times[1:])  # steady state: the first epoch traces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", help="folder with a baseline kerasdl install (pip --target)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args()
    installs = [("this checkout", None)] + ([("baseline", args.baseline)] if args.baseline else [])
    figures: dict[str, list[float]] = {label: [] for label, _ in installs}
    with tempfile.TemporaryDirectory() as workdir:
        for i in range(args.repeats):
            for label, site in (installs if i % 2 == 0 else installs[::-1]):
                ips = run_once(site, workdir, f"{label.replace(' ', '_')}-{i}", args.epochs)
                figures[label].append(ips)
                print(f"run {i + 1} {label}: {ips:,.0f} images/s", flush=True)
    print("\n| install | runs (images/s) | median |\n|---|---|---|")
    for label, values in figures.items():
        print(f"| {label} | {', '.join(f'{v:,.0f}' for v in values)} | {statistics.median(values):,.0f} |")
    if args.baseline:
        ratio = statistics.median(figures["this checkout"]) / statistics.median(figures["baseline"])
        print(f"\nthis checkout / baseline = {ratio:.3f} ({(ratio - 1) * 100:+.1f}%)")


if __name__ == "__main__":
    main()
