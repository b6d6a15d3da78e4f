"""The autoencoder and VAE figures of the README, from real ``kerasdl train`` runs on mnist5k.

    python benchmarks/autoencoders.py                      # 4-5 minutes on 2 CPU cores
    python benchmarks/autoencoders.py --plots docs/img     # also copy the VAE grids into docs/img
    python benchmarks/autoencoders.py linear denoising     # some experiments only

Every run is a ``kerasdl train`` subprocess (``--seed 0``, ``--patience 0``: a fixed number of
epochs, the checkpoint of the best validation loss evaluated), offline, on mnist5k (3,500 train,
500 validation, 1,000 test digits, grey levels scaled to [0, 1]); figures are read back from
the run's ``metrics.json`` (test split). Runs go to a temporary folder (``--keep DIR`` keeps them).

1. ``linear`` -- linear autoencoder = PCA (Baldi & Hornik 1989): ``linear_encoder``, k = 16, MSE,
   Adam 1e-2 with a cosine schedule, 20 epochs (the recipe of tests/test_linear_ae_pca.py).
   Largest / mean principal angle between the decoder's column space and the top-16 principal
   subspace of the train split, and the test MSE over the PCA optimum's.
2. ``vae`` -- VAE (Kingma & Welling 2014), dense encoder/decoder, Bernoulli decoder on the [0, 1]
   grey levels, 16-D and 2-D codes, 50 epochs (Adam 1e-3, cosine): test ELBO, its reconstruction
   and KL terms, and the importance-weighted NLL bound with K = 100 (Burda et al. 2016).
3. ``denoising`` -- plain against denoising autoencoder (Vincent et al. 2008): the same dense
   encoder/decoder, k = 16, Bernoulli (BCE) loss, 30 epochs; the denoising one trains on
   ``x + N(0, 0.3^2)`` (clipped to [0, 1]) against the clean ``x``. Both are judged on the same
   noisy test inputs (noise 0.3, ``eval_noise``): MSE of their output against the clean images.

The published anchor (../shared/REFERENCES.md): pythae's VAE on *binarised* full MNIST (60,000
training images), NLL 89.78 nats with 200 importance samples. Ours is grey-level mnist5k with a
Bernoulli likelihood on intensities, so the nats differ in kind, not just in data size.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time

from _cli import kerasdl  # benchmarks/_cli.py (the script's folder is on sys.path)

EXPERIMENTS = ("linear", "vae", "denoising")
COMMON = ["--dataset", "mnist5k", "--seed", "0", "--patience", "0"]
LINEAR = ["--task", "autoencoder", "--model", "linear_encoder", "--task-opt", "latent_dim=16",
          "--epochs", "20", "--lr", "0.01", "--batch-size", "64", "--schedule", "cosine"]
VAE_EPOCHS = "50"
AE_EPOCHS = "30"
# name in docs/img <- (run, plot inside the run's plots/)
PLOTS = {"vae16_reconstructions.png": ("vae16", "reconstructions.png"),
         "vae16_samples.png": ("vae16", "samples.png"),
         "vae2_latent_scatter.png": ("vae2", "latent_scatter.png")}


def train(workdir: str, name: str, args: list[str]) -> tuple[dict, dict]:
    """One ``kerasdl train`` run: (its test metrics, {"wall_s", "train_s", "epochs"})."""
    cmd = ["train", *COMMON, *args, "--name", name, "--overwrite"]
    print(f"$ kerasdl {' '.join(cmd)}", flush=True)
    start = time.perf_counter()
    kerasdl(cmd, workdir)
    wall = time.perf_counter() - start
    with open(os.path.join(workdir, "runs", name, "metrics.json"), encoding="utf-8") as f:
        metrics = json.load(f)
    return metrics["test"], {"wall_s": wall, "train_s": metrics.get("train_seconds_this_session", float("nan")),
                             "epochs": metrics.get("epochs_run")}


def linear(workdir: str) -> None:
    m, t = train(workdir, "linear16", LINEAR)
    print("\n### Linear autoencoder = PCA (k = 16, mnist5k test)\n")
    print("| largest principal angle (deg) | mean angle (deg) | AE test MSE | PCA test MSE | AE / PCA | "
          "epochs | train s | wall s |\n|---|---|---|---|---|---|---|---|")
    print(f"| {m['principal_angle_max_deg']:.2f} | {m['principal_angle_mean_deg']:.2f} | {m['mse']:.5f} | "
          f"{m['pca_mse']:.5f} | {m['mse_over_pca']:.4f} | {t['epochs']} | {t['train_s']:.0f} | {t['wall_s']:.0f} |")


def vae(workdir: str) -> None:
    rows = []
    for k in (16, 2):
        m, t = train(workdir, f"vae{k}", ["--task", "vae", "--task-opt", f"latent_dim={k}", "--epochs", VAE_EPOCHS])
        rows.append((k, m, t))
    print("\n### VAE (dense, Bernoulli decoder on grey levels, mnist5k test; nats per image)\n")
    print("| latent | ELBO | reconstruction | KL | IWAE NLL (K = 100) | epochs | train s | wall s |\n"
          "|---|---|---|---|---|---|---|---|")
    for k, m, t in rows:
        print(f"| {k}-D | {m['elbo']:.2f} | {m['reconstruction']:.2f} | {m['kl']:.2f} | {m['nll_iwae']:.2f} | "
              f"{t['epochs']} | {t['train_s']:.0f} | {t['wall_s']:.0f} |")
    print("| pythae VAE, binarised full MNIST (200 samples) | | | | 89.78 | | | |")
    print(f"\nThe Bernoulli likelihood of grey levels has a floor: no decoder can put the reconstruction "
          f"term below the pixels' own binary entropy, {grey_level_entropy():.2f} nats per mnist5k test image "
          "(a binarised image has 0).")


def grey_level_entropy() -> float:
    """Mean over mnist5k's test images of sum_pixels H(x), H(x) = -x ln x - (1 - x) ln(1 - x), x in [0, 1]:
    the smallest -log p(x | z) a Bernoulli decoder can reach on grey-level (not binarised) inputs."""
    import numpy as np

    os.environ.setdefault("KERASDL_OFFLINE", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from kerasdl.data import load_arrays

    x, _, _ = load_arrays("mnist5k", "test")
    p = x.reshape(len(x), -1).astype(np.float64) / 255.0
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -(np.where(p > 0, p * np.log(p), 0.0) + np.where(p < 1, (1 - p) * np.log1p(-p), 0.0))
    return float(h.sum(axis=1).mean())


def denoising(workdir: str) -> None:
    base = ["--task", "autoencoder", "--task-opt", "latent_dim=16", "--task-opt", "loss=bce",
            "--epochs", AE_EPOCHS]
    plain = train(workdir, "ae16_plain", [*base, "--task-opt", "eval_noise=0.3"])
    denoise = train(workdir, "ae16_denoising", [*base, "--task-opt", "noise=0.3"])
    print("\n### Plain against denoising autoencoder (k = 16, BCE, the same noisy test inputs, noise 0.3)\n")
    print("| model | trained on | clean test MSE | MSE vs clean, noisy inputs | noisy input's own MSE | "
          "train s | wall s |\n|---|---|---|---|---|---|---|")
    for label, trained, (m, t) in (("plain AE", "clean x", plain), ("denoising AE", "x + N(0, 0.3^2)", denoise)):
        assert m["eval_noise"] == 0.3, m["eval_noise"]
        print(f"| {label} | {trained} | {m['mse']:.4f} | {m['noisy_mse']:.4f} | {m['noisy_input_mse']:.4f} | "
              f"{t['train_s']:.0f} | {t['wall_s']:.0f} |")


def copy_plots(workdir: str, plots: str) -> None:
    os.makedirs(plots, exist_ok=True)
    for target, (run, name) in PLOTS.items():
        src = os.path.join(workdir, "runs", run, "plots", name)
        if not os.path.exists(src):
            continue
        dst = os.path.join(plots, target)
        shutil.copyfile(src, dst)
        print(f"plot: {dst} ({os.path.getsize(dst) // 1024} KiB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiments", nargs="*", metavar="EXPERIMENT",
                        help=f"{', '.join(EXPERIMENTS)} (default: all)")
    parser.add_argument("--plots", help="copy the VAE grids (reconstructions, samples, 2-D codes) into this folder")
    parser.add_argument("--keep", help="keep the runs in this folder instead of a temporary one")
    args = parser.parse_args()
    args.experiments = args.experiments or list(EXPERIMENTS)
    unknown = set(args.experiments) - set(EXPERIMENTS)
    if unknown:
        parser.error(f"unknown experiments: {', '.join(sorted(unknown))} (choose {', '.join(EXPERIMENTS)})")
    plots = os.path.abspath(args.plots) if args.plots else None
    workdir = os.path.abspath(args.keep) if args.keep else tempfile.mkdtemp(prefix="kerasdl-autoencoders-")
    os.makedirs(workdir, exist_ok=True)
    try:
        for name in EXPERIMENTS:
            if name in args.experiments:
                globals()[name](workdir)
        if plots:
            copy_plots(workdir, plots)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
