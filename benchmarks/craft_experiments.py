"""The craft-of-training experiments of the README, from real ``kerasdl train`` runs on mnist5k.

    python benchmarks/craft_experiments.py                 # all four (about 20 minutes on 2 CPU cores)
    python benchmarks/craft_experiments.py dropout init    # only these
    python benchmarks/craft_experiments.py --plots docs    # also write the depth-profile PNG there

1. ``dropout``  -- an over-parameterised MLP (2 x 1024 ReLU, 1.9M weights) on 1,000 digits,
   without and with dropout (0.5 hidden, 0.2 input; Srivastava et al. 2014): test error and the
   train/test gap (train error measured afterwards in inference mode, ``kerasdl evaluate --split
   train``).
2. ``augment``  -- LeNet-5 on 200 digits (20 per class), without and with augmentation
   (translate + rotate, the ``light`` policy).
3. ``init``     -- a 10-layer ReLU MLP initialised with zeros (every unit of a layer computes the
   same function and gets the same gradient: symmetry is never broken) versus He et al. 2015.
4. ``depth``    -- sigmoid versus ReLU MLPs of depth 2 / 5 / 10 / 20 (Glorot init for both, as in
   Glorot & Bengio 2010): test accuracy and the gradient norms of the first and last hidden
   layers after the first epoch (``--diagnostics``): the sigmoid's vanishing gradients.

Every run is a subprocess with ``--seed`` stated in the table; runs go to a temporary directory.
Each table is printed as Markdown as soon as its runs finish.
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

from _cli import kerasdl  # benchmarks/_cli.py (the script's folder is on sys.path)

SEEDS = (0, 1)


def train(workdir: str, name: str, args: list[str], seed: int) -> dict:
    kerasdl(["train", "--dataset", "mnist5k", "--name", name, "--seed", str(seed), "--patience", "0",
             "--output-dir", "runs", *args], workdir)
    with open(os.path.join(workdir, "runs", name, "metrics.json"), encoding="utf-8") as f:
        return json.load(f)


def train_accuracy(workdir: str, name: str) -> float:
    """Accuracy on the run's own training examples, in inference mode (no dropout/augmentation)."""
    out = kerasdl(["evaluate", os.path.join("runs", name), "--split", "train"], workdir)
    with open(os.path.join(workdir, "runs", name, "metrics.json"), encoding="utf-8") as f:
        metrics = json.load(f)
    split = metrics.get("evaluation", {}).get("train")
    if split is None:
        raise SystemExit(f"no train evaluation recorded for {name}:\n{out[-2000:]}")
    return float(split["accuracy"])


def mean_sd(values: list[float]) -> str:
    pct = [100 * v for v in values]
    if len(pct) == 1:
        return f"{pct[0]:.1f}"
    return f"{statistics.mean(pct):.1f} ± {statistics.stdev(pct):.1f}"


def dropout_experiment(workdir: str) -> None:
    common = ["--model", "mlp", "--model-opt", "width=1024", "--model-opt", "depth=2", "--train-per-class", "100",
              "--epochs", "60", "--augment", "none"]
    arms = {"none": [], "dropout 0.5 (input 0.2)": ["--model-opt", "dropout=0.5", "--model-opt", "input_dropout=0.2"]}
    print("\n### Dropout on an over-parameterised MLP\n")
    print("| arm | seeds | train error % | test error % | gap (test - train) % |\n|---|---|---|---|---|")
    for arm, extra in arms.items():
        train_err, test_err = [], []
        for seed in SEEDS:
            name = f"dropout-{len(extra)}-{seed}"
            metrics = train(workdir, name, common + extra, seed)
            test_err.append(1 - metrics["test"]["accuracy"])
            train_err.append(1 - train_accuracy(workdir, name))
        gaps = [t - r for t, r in zip(test_err, train_err)]
        print(f"| {arm} | {', '.join(map(str, SEEDS))} | {mean_sd(train_err)} | {mean_sd(test_err)} | "
              f"{mean_sd(gaps)} |", flush=True)


def augment_experiment(workdir: str) -> None:
    common = ["--model", "lenet5", "--train-per-class", "20", "--epochs", "60"]
    print("\n### Augmentation with 200 training digits (LeNet-5)\n")
    print("| augmentation | seeds | train error % | test error % |\n|---|---|---|---|")
    for arm in ("none", "light"):
        train_err, test_err = [], []
        for seed in SEEDS:
            name = f"augment-{arm}-{seed}"
            metrics = train(workdir, name, common + ["--augment", arm], seed)
            test_err.append(1 - metrics["test"]["accuracy"])
            train_err.append(1 - train_accuracy(workdir, name))
        label = "none" if arm == "none" else "light (translate 8% + rotate 15°)"
        print(f"| {label} | {', '.join(map(str, SEEDS))} | {mean_sd(train_err)} | {mean_sd(test_err)} |",
              flush=True)


def first_epoch_grad_norms(workdir: str, name: str) -> list[tuple[str, float]]:
    """(kernel, gradient norm) after epoch 1, input to output, from the run's diagnostics.csv."""
    with open(os.path.join(workdir, "runs", name, "diagnostics.csv"), newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["epoch"] == "1" and r["quantity"] == "grad_norm"]
    return [(r["layer"], float(r["value"])) for r in rows]


def init_experiment(workdir: str) -> None:
    common = ["--model", "mlp", "--model-opt", "depth=10", "--model-opt", "width=256", "--epochs", "10",
              "--augment", "none", "--diagnostics"]
    print("\n### Zeros versus He initialisation (10 x 256 ReLU MLP)\n")
    print("| init | seed | test accuracy % | gradient norm, first hidden layer (epoch 1) | "
          "distinct first-layer units |\n|---|---|---|---|---|")
    for init in ("zeros", "he"):
        name = f"init-{init}"
        metrics = train(workdir, name, common + ["--init", init], 0)
        norms = first_epoch_grad_norms(workdir, name)
        units = distinct_units(workdir, name)
        print(f"| {init} | 0 | {100 * metrics['test']['accuracy']:.1f} | {norms[0][1]:.2e} | {units} |", flush=True)


def distinct_units(workdir: str, name: str) -> int:
    """How many different weight columns the first hidden layer has after training (1 = symmetric)."""
    code = ("import keras, numpy as np; m = keras.saving.load_model(r'%s'); "
            "w = np.asarray(m.get_layer('dense1_linear').kernel); "
            "print(len(np.unique(np.round(w.T, 6), axis=0)))" % os.path.join(workdir, "runs", name, "model.keras"))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def depth_experiment(workdir: str, plots: str | None) -> None:
    print("\n### Sigmoid versus ReLU with depth (width 128, Glorot init, Adam 1e-3, 10 epochs)\n")
    print("| activation | depth | seed | test accuracy % | grad norm first hidden | grad norm last hidden | "
          "last / first |\n|---|---|---|---|---|---|---|")
    profiles = {}
    for activation in ("sigmoid", "relu"):
        for depth in (2, 5, 10, 20):
            name = f"depth-{activation}-{depth}"
            metrics = train(workdir, name, ["--model", "mlp", "--model-opt", f"depth={depth}", "--model-opt",
                                            f"activation={activation}", "--epochs", "10", "--augment", "none",
                                            "--diagnostics"], 0)
            norms = first_epoch_grad_norms(workdir, name)
            hidden = [n for layer, n in norms if not layer.startswith("head")]
            first, last = hidden[0], hidden[-1]
            print(f"| {activation} | {depth} | 0 | {100 * metrics['test']['accuracy']:.1f} | {first:.2e} | "
                  f"{last:.2e} | {last / first:.3g} |", flush=True)
            if depth == 20:
                profiles[activation] = dict(norms)
    if plots:
        from kerasdl.engine.diagnostics import plot_depth_profile

        path = plot_depth_profile(profiles, os.path.join(plots, "depth_gradient_norms.png"),
                                  "gradient norm per layer after epoch 1, 20-layer MLPs on mnist5k")
        print(f"\nplot: {path}")


EXPERIMENTS = ("dropout", "augment", "init", "depth")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("only", nargs="*", help=f"experiments to run: {', '.join(EXPERIMENTS)} (default: all)")
    parser.add_argument("--plots", help="folder for the depth-profile PNG")
    args = parser.parse_args()
    unknown = sorted(set(args.only) - set(EXPERIMENTS))
    if unknown:
        parser.error(f"unknown experiment(s) {', '.join(unknown)}; choose from {', '.join(EXPERIMENTS)}")
    chosen = args.only or list(EXPERIMENTS)
    with tempfile.TemporaryDirectory() as workdir:
        if "dropout" in chosen:
            dropout_experiment(workdir)
        if "augment" in chosen:
            augment_experiment(workdir)
        if "init" in chosen:
            init_experiment(workdir)
        if "depth" in chosen:
            depth_experiment(workdir, os.path.abspath(args.plots) if args.plots else None)


if __name__ == "__main__":
    main()
