"""The calibration and uncertainty figures of the README, from real ``kerasdl`` runs on mnist5k.

    python benchmarks/calibration_experiments.py                      # about 15 minutes on 2 CPU cores
    python benchmarks/calibration_experiments.py --plots docs/img     # also copy the reliability diagram

1. ``overconfident`` -- a deep wide MLP (4 x 1024 ReLU, no dropout) on 1,000 training digits, 100
   epochs at a constant learning rate, with the checkpoint chosen by the *training* loss, so the
   kept model has zero training error: the over-confident network of Guo et al. 2017. Test
   accuracy, NLL and ECE (15 bins) before and after temperature scaling fitted on the 500
   validation digits, seeds 0 and 1; the training error is measured afterwards in inference mode
   (``kerasdl evaluate --split train``).
2. ``uncertainty`` -- the same MLP with dropout 0.3, also trained to the end: the plain network,
   temperature-scaled, MC dropout (50 passes, ``kerasdl evaluate --mc-samples 50``) and a deep
   ensemble of 5 (``kerasdl train --ensemble 5``, seeds 0-4), each with accuracy, NLL, ECE and
   Brier on the 1,000 test digits; and split-conformal sets at alpha = 0.1 (LAC and randomized APS,
   calibrated on validation): test coverage and mean set size.

Every run is a subprocess with its seed stated; runs go to a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile

from _cli import kerasdl  # benchmarks/_cli.py (the script's folder is on sys.path)

SEEDS = (0, 1)
# A deep, wide MLP on 1,000 digits, constant learning rate, the checkpoint of the *last* epoch
# (best training loss): it fits the training set exactly and its logits keep growing.
OVERCONFIDENT = ["--dataset", "mnist5k", "--model", "mlp", "--model-opt", "width=1024", "--model-opt", "depth=4",
                 "--train-per-class", "100", "--epochs", "100", "--schedule", "constant", "--augment", "none",
                 "--patience", "0", "--monitor", "loss"]
COMMON = ["--dataset", "mnist5k", "--model", "mlp", "--model-opt", "width=1024", "--model-opt", "depth=2",
          "--epochs", "30", "--augment", "none", "--patience", "0", "--monitor", "loss", "--schedule", "cosine"]


def read(workdir: str, name: str, file: str) -> dict:
    with open(os.path.join(workdir, "runs", name, file), encoding="utf-8") as f:
        return json.load(f)


def row(name: str, m: dict) -> str:
    return (f"| {name} | {100 * m['accuracy']:.1f} | {m['nll']:.3f} | {100 * m['ece']:.2f} | "
            f"{m['brier']:.4f} |")


def overconfident(workdir: str, plots: str | None) -> None:
    print("\n### Over-confidence and temperature scaling (4 x 1024 MLP, no dropout, 1,000 training digits)\n")
    print("| seed | train error % | T | accuracy % before / after | NLL before / after | "
          "ECE % before / after | ECE ratio |\n|---|---|---|---|---|---|---|")
    for seed in SEEDS:
        name = f"wide-{seed}"
        kerasdl(["train", *OVERCONFIDENT, "--name", name, "--seed", str(seed)], workdir)
        kerasdl(["evaluate", os.path.join("runs", name), "--split", "train"], workdir)
        train_acc = read(workdir, name, "metrics.json")["evaluation"]["train"]["accuracy"]
        cal = read(workdir, name, "calibration.json")
        b, a = cal["test_before"], cal["test_after"]
        print(f"| {seed} | {100 * (1 - train_acc):.2f} | {cal['temperature']:.2f} | {100 * b['accuracy']:.1f} / "
              f"{100 * a['accuracy']:.1f} | {b['nll']:.3f} / {a['nll']:.3f} | {100 * b['ece']:.2f} / "
              f"{100 * a['ece']:.2f} | {b['ece'] / max(a['ece'], 1e-12):.1f}x |")
        if plots and seed == SEEDS[0]:
            copy(cal["plots"][0], workdir, plots, "reliability_overconfident_mlp.png")


def copy(src: str, workdir: str, plots: str, name: str) -> None:
    os.makedirs(plots, exist_ok=True)
    shutil.copyfile(src if os.path.isabs(src) else os.path.join(workdir, src), os.path.join(plots, name))
    print(f"\nplot: {os.path.join(plots, name)}\n")


def uncertainty(workdir: str, plots: str | None) -> None:
    dropout = ["--model-opt", "dropout=0.3", "--conformal-alpha", "0.1"]
    kerasdl(["train", *COMMON, *dropout, "--name", "single", "--seed", "0"], workdir)
    kerasdl(["evaluate", os.path.join("runs", "single"), "--mc-samples", "50"], workdir)
    kerasdl(["train", *COMMON, *dropout, "--name", "ens5", "--seed", "0", "--ensemble", "5"], workdir)
    cal = read(workdir, "single", "calibration.json")
    mc = read(workdir, "single", "metrics.json")["evaluation"]["test"]["mc_dropout"]
    ens = read(workdir, "ens5", "calibration.json")
    print("\n### Calibration and uncertainty (2 x 1024 MLP, dropout 0.3, mnist5k test)\n")
    print("| method | accuracy % | NLL | ECE % (15 bins) | Brier |\n|---|---|---|---|---|")
    print(row("plain (seed 0)", cal["test_before"]))
    print(row(f"temperature-scaled (T = {cal['temperature']:.2f})", cal["test_after"]))
    print(row("MC dropout (50 passes)", mc))
    print(row("deep ensemble (5, seeds 0-4)", ens["test_before"]))
    print(row(f"deep ensemble + temperature (T = {ens['temperature']:.2f})", ens["test_after"]))
    c = cal["conformal"]
    print(f"\n### Split-conformal sets, alpha = {c['alpha']} (calibrated on {c['calibration_examples']} "
          "validation digits, temperature-scaled probabilities)\n")
    print("| score | test coverage % | mean set size | empty sets % | singletons % |\n|---|---|---|---|---|")
    for score, label in (("lac", "LAC (1 - p_y)"), ("aps", "APS (randomized)")):
        s = c[score]
        print(f"| {label} | {100 * s['coverage']:.1f} | {s['mean_set_size']:.3f} | {100 * s['empty_sets']:.1f} | "
              f"{100 * s['singletons']:.1f} |")
    if plots:
        copy(cal["plots"][0], workdir, plots, "reliability_mlp_dropout.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiments", nargs="*", metavar="EXPERIMENT",
                        help="overconfident and/or uncertainty (default: both)")
    parser.add_argument("--plots", help="copy the reliability diagrams into this folder")
    parser.add_argument("--keep", help="keep the runs in this folder instead of a temporary one")
    args = parser.parse_args()
    args.experiments = args.experiments or ["overconfident", "uncertainty"]
    unknown = set(args.experiments) - {"overconfident", "uncertainty"}
    if unknown:
        parser.error(f"unknown experiments: {', '.join(sorted(unknown))} (choose overconfident, uncertainty)")
    plots = os.path.abspath(args.plots) if args.plots else None
    workdir = os.path.abspath(args.keep) if args.keep else tempfile.mkdtemp(prefix="kerasdl-calibration-")
    os.makedirs(workdir, exist_ok=True)
    try:
        if "overconfident" in args.experiments:
            overconfident(workdir, plots)
        if "uncertainty" in args.experiments:
            uncertainty(workdir, plots)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
