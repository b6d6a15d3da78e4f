"""The physics-informed figures of the README (issue #16), from real ``kerasdl train`` runs.

    python benchmarks/pinn.py burgers            # Raissi's Burgers setup, forward (~15 min on 2 cores)
    python benchmarks/pinn.py problems           # heat, Poisson, Helmholtz
    python benchmarks/pinn.py rar --jobs 2       # RAR vs uniform sampling, Burgers, 3 seeds each
    python benchmarks/pinn.py inverse            # Burgers' viscosity from 2,000 observations with 1% noise
    python benchmarks/pinn.py all --keep /tmp/pinn --plots docs/img

Every run is a ``kerasdl train --task pinn`` subprocess, offline; figures are read back from the
run's ``metrics.json`` (relative L2 on the reference grid, residuals, timing) and ``history.csv``
(when the validation error first fell below 1e-3). Run one suite at a time on an idle machine:
the Burgers figure is a time limit (15 minutes on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import tempfile
import time

from _cli import kerasdl  # benchmarks/_cli.py (the script's folder is on sys.path)

# The defaults are Raissi's setup (9 x 20 tanh, N_u 100, N_f 10,000; Adam 2,000 + L-BFGS 11,000, XLA):
# the command of the issue, as written.
BURGERS = ["--task-opt", "problem=burgers"]
SMALL = ["--model-opt", "depth=4", "--model-opt", "width=32", "--task-opt", "n_collocation=2000",
         "--task-opt", "n_conditions=400", "--task-opt", "adam_steps=1000", "--task-opt", "lbfgs_steps=3000"]
PROBLEMS = {
    "heat": ["--task-opt", "problem=heat", *SMALL],
    "poisson": ["--task-opt", "problem=poisson", *SMALL],
    # The stiff one (Wang, Teng & Perdikaris 2021): sin(pi x) sin(4 pi y); the boundary imposed exactly
    # (hard=true), which removes the boundary/residual imbalance behind that paper's gradient pathology.
    "helmholtz": ["--task-opt", "problem=helmholtz", "--model-opt", "depth=4", "--model-opt", "width=50",
                  "--task-opt", "hard=true", "--task-opt", "n_collocation=4000", "--task-opt", "adam_steps=1000",
                  "--task-opt", "lbfgs_steps=4000"],
}
# RAR vs uniform at the same final number of points, each run trained to (near) convergence: few points, so
# that uniform sampling under-resolves the shock at x = 0 -- the failure RAR is for (Lu et al. 2021 start
# Burgers from 2,500 points and refine between converged runs; here the rounds also run into the L-BFGS
# phase, rar_until, whose memory each round clears).
RAR_POINTS, RAR_ADDED = 1000, 500
RAR_BASE = ["--task-opt", "problem=burgers", "--task-opt", f"n_collocation={RAR_POINTS}", "--task-opt",
            "adam_steps=2000", "--task-opt", "lbfgs_steps=10000"]
RAR = ["--task-opt", "rar=true", "--task-opt", f"rar_points={RAR_ADDED}", "--task-opt", "rar_rounds=10",
       "--task-opt", "rar_candidates=50000", "--task-opt", "rar_until=0.5"]
# Raissi's inverse setup: 2,000 observations (also the collocation count), 1% noise, no conditions.
INVERSE = ["--task-opt", "problem=burgers", "--task-opt", "inverse=true", "--task-opt", "n_data=2000",
           "--task-opt", "noise=0.01", "--task-opt", "n_collocation=2000", "--task-opt", "adam_steps=3000",
           "--task-opt", "lbfgs_steps=6000"]
COMMON = ["--task", "pinn", "--seed", "0"]


def train(workdir: str, name: str, args: list[str]) -> tuple[dict, list[dict], float]:
    """One run: (metrics.json, history rows, wall seconds)."""
    cmd = ["train", *COMMON, *args, "--name", name, "--overwrite"]
    print(f"$ kerasdl {' '.join(cmd)}", flush=True)
    start = time.perf_counter()
    kerasdl(cmd, workdir)
    wall = time.perf_counter() - start
    run = os.path.join(workdir, "runs", name)
    with open(os.path.join(run, "metrics.json"), encoding="utf-8") as f:
        metrics = json.load(f)
    with open(os.path.join(run, "history.csv"), newline="", encoding="utf-8") as f:
        rows = [{k: float(v) for k, v in r.items() if v != ""} for r in csv.DictReader(f)]
    return metrics, rows, wall


def time_to(rows: list[dict], target: float = 1e-3) -> str:
    """Training seconds (and iterations) until val_rel_l2 first fell to ``target``."""
    seconds = 0.0
    for r in rows:
        seconds += r.get("epoch_time_s", 0.0)
        if r.get("val_rel_l2", 1.0) <= target:
            return f"{seconds / 60:.1f} min ({int(r['iteration'])} it.)"
    return "not reached"


def _row(label: str, m: dict, rows: list[dict], wall: float) -> str:
    t, p = m["test"], m["pinn"]
    return (f"| {label} | {t['rel_l2']:.2e} | {t['residual_mean']:.1e} / {t['residual_max']:.1e} | "
            f"{p['adam_iterations']} + {p['lbfgs_iterations']} | {p['lbfgs_line_search_failures']} | "
            f"{p['train_seconds'] / 60:.1f} min | {wall / 60:.1f} min | {time_to(rows)} |")


HEADER = ["| run | relative L2 | mean / max abs residual | Adam + L-BFGS iterations | line-search failures "
          "| train time | wall (incl. start, report) | time to 1e-3 |", "|---|---:|---:|---:|---:|---:|---:|---:|"]


def suite(workdir: str, runs: dict[str, tuple[list[str], str]], plots: str | None) -> tuple[list[str], dict]:
    lines, results = list(HEADER), {}
    for name, (args, label) in runs.items():
        metrics, rows, wall = train(workdir, name, args)
        lines.append(_row(label, metrics, rows, wall))
        print(lines[-1], flush=True)
        results[name] = {"label": label, "test": metrics["test"], "pinn": metrics["pinn"], "wall_seconds": wall}
        if plots:
            os.makedirs(plots, exist_ok=True)
            for fig in ("solution", "loss_terms", "coefficients"):
                src = os.path.join(workdir, "runs", name, "plots", f"{fig}.png")
                if os.path.exists(src):
                    shutil.copyfile(src, os.path.join(plots, f"pinn_{name}_{fig}.png"))
    return lines, results


def rar(workdir: str, jobs: int = 1) -> tuple[list[str], dict]:
    """Uniform against RAR, seeds 0-2; ``jobs`` runs at a time (accuracy only: timing is not compared)."""
    from concurrent.futures import ThreadPoolExecutor

    lines = [f"| seed | uniform ({RAR_POINTS:,} points) | RAR ({RAR_POINTS - RAR_ADDED:,} + {RAR_ADDED:,} points) "
             "| RAR better |", "|---|---:|---:|:--:|"]
    runs = {(kind, seed): RAR_BASE + (RAR if kind == "rar" else []) + ["--seed", str(seed)]
            for seed in (0, 1, 2) for kind in ("uniform", "rar")}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        done = {key: pool.submit(train, workdir, f"{key[0]}_s{key[1]}", args) for key, args in runs.items()}
        errors = {key: future.result()[0]["test"]["rel_l2"] for key, future in done.items()}
    results = {}
    for seed in (0, 1, 2):
        a, b = errors["uniform", seed], errors["rar", seed]
        results[seed] = {"uniform": a, "rar": b}
        lines.append(f"| {seed} | {a:.2e} | {b:.2e} | {'yes' if b < a else 'no'} |")
        print(lines[-1], flush=True)
    return lines, results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("suite", choices=("burgers", "problems", "rar", "inverse", "all"))
    parser.add_argument("--keep", help="work in this folder and keep the runs (default: a temporary folder)")
    parser.add_argument("--plots", help="copy the figures here (e.g. docs/img)")
    parser.add_argument("--json", help="write the figures to this JSON file")
    parser.add_argument("--jobs", type=int, default=1, help="rar suite: runs at a time (default 1)")
    parser.add_argument("--only", help="problems suite: only these (comma-separated: heat,poisson,helmholtz)")
    args = parser.parse_args(argv)
    workdir = args.keep or tempfile.mkdtemp(prefix="kerasdl-pinn-")
    os.makedirs(workdir, exist_ok=True)
    out, figures = [], {}
    todo = ("burgers", "problems", "rar", "inverse") if args.suite == "all" else (args.suite,)
    try:
        for name in todo:
            if name == "burgers":
                lines, res = suite(workdir, {"burgers": (BURGERS, "Burgers, Raissi's setup (9 x 20 tanh, "
                                                                  "N_u 100, N_f 10,000)")}, args.plots)
            elif name == "problems":
                only = args.only.split(",") if args.only else list(PROBLEMS)
                lines, res = suite(workdir, {k: (v, k) for k, v in PROBLEMS.items() if k in only}, args.plots)
            elif name == "inverse":
                lines, res = suite(workdir, {"inverse": (INVERSE, "inverse Burgers, 2,000 points, 1% noise")},
                                   args.plots)
                coef = res["inverse"]["test"]["coefficients"]["nu"]
                lines.append(f"\nviscosity: fitted {coef['fitted']:.6g}, true {coef['true']:.6g}, "
                             f"relative error {coef['rel_error']:.3%}")
                print(lines[-1], flush=True)
            else:
                lines, res = rar(workdir, args.jobs)
            out += [f"\n{name}:", *lines]
            figures[name] = res
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print("\n".join(out))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(figures, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
