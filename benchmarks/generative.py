"""The generative-model figures of the README (issue #15), from real ``kerasdl train`` runs.

    python benchmarks/generative.py toys               # coin flip x 3 seeds, 8-Gaussian ring (~3 min)
    python benchmarks/generative.py mnist              # the mnist5k table (about an hour on 2 cores)
    python benchmarks/generative.py mnist --only dcgan,ddpm --keep /tmp/gen
    python benchmarks/generative.py mnist --plots docs/img   # also copy the sample grids

Every run is a ``kerasdl train`` subprocess, offline, ``--seed 0``; figures are read back from the
run's ``metrics.json`` (its test report) or, for the DDIM step sweep, from
``GenerativeTask.evaluate(model, test, steps=S)`` on the trained run. All quality figures use the
same pinned feature network (a CNN kerasdl trains on mnist5k's train split; its weights' sha256 is
printed) and the same sample count (``eval_samples``, 1,000 = the whole test split) so the rows,
the floor (real train vs real test) and the ceiling (uniform noise vs real test) compare.

Suites:

* ``toys`` -- the lecture's barebones GAN: a coin with P(heads) = 0.3 (``coinflip``), non-saturating
  loss with PacGAN packing (m = 8, Lin et al. 2018), three seeds, and once without packing:
  P(heads) of 2,000 generated flips (a flip is heads when nearer 1 than 0). The 8-Gaussian ring
  (``ring8``, Metz et al. 2017): non-saturating, packed and WGAN-GP, modes covered (a mode is
  covered when >= 1 % of the samples fall within 3 std of it).
* ``mnist`` -- DCGAN, conditional DCGAN, WGAN-GP, VQ-VAE, DDPM (conditional, classifier-free
  guidance; DDIM at 10 / 50 / 250 steps) and the VAE of issue #14, each trained within 15 minutes
  of CPU: FID, KID +- std, precision, recall, training time; for the conditional models, how often
  a sample is classified as the class it was asked for.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

from _cli import kerasdl  # benchmarks/_cli.py (the script's folder is on sys.path)

COMMON = ["--seed", "0", "--patience", "0", "--augment", "none"]

# name -> (kerasdl train arguments, label)
RING = ["--task", "gan", "--model", "mlp_generator", "--dataset", "ring8", "--batch-size", "64", "--lr", "1e-3",
        "--schedule", "constant", "--task-opt", "latent_dim=8", "--task-opt", "eval_samples=2000",
        "--task-opt", "sample_every=20"]
TOYS = {
    **{f"coin_seed{s}": (["--task", "gan", "--model", "mlp_generator", "--dataset", "coinflip", "--seed", str(s),
                          "--epochs", "60", "--batch-size", "64", "--lr", "1e-3", "--schedule", "constant",
                          "--task-opt", "latent_dim=4", "--task-opt", "pack=8", "--task-opt", "eval_samples=2000",
                          "--task-opt", "sample_every=0"], f"coin flip GAN (PacGAN, m = 8), seed {s}")
       for s in (0, 1, 2)},
    "coin_unpacked": (["--task", "gan", "--model", "mlp_generator", "--dataset", "coinflip", "--epochs", "60",
                       "--batch-size", "64", "--lr", "1e-3", "--schedule", "constant", "--task-opt", "latent_dim=4",
                       "--task-opt", "eval_samples=2000", "--task-opt", "sample_every=0"],
                      "coin flip GAN without packing, seed 0"),
    "ring_nonsaturating": (RING + ["--epochs", "100"], "ring, non-saturating GAN, 100 epochs"),
    "ring_latent2": (RING + ["--epochs", "100", "--task-opt", "latent_dim=2"], "ring, non-saturating GAN, z in 2-D, 100 epochs"),
    "ring_minimax": (RING + ["--epochs", "100", "--task-opt", "loss=minimax"], "ring, minimax (saturating) GAN, 100 epochs"),
    "ring_pack4": (RING + ["--epochs", "100", "--task-opt", "pack=4"], "ring, non-saturating PacGAN (m = 4), 100 epochs"),
    "ring_wgan_gp": (RING + ["--epochs", "100", "--lr", "1e-4", "--task-opt", "loss=wgan-gp", "--task-opt", "n_critic=5",
                             "--task-opt", "beta_2=0.9"], "ring, WGAN-GP (n_critic 5, lr 1e-4), 100 epochs"),
}

MNIST_COMMON = ["--dataset", "mnist5k", "--schedule", "constant"]  # every sampler scores 1,000 samples
GAN = ["--task", "gan", "--model", "dcgan_generator", "--batch-size", "64", "--lr", "2e-4",
       "--task-opt", "latent_dim=64", "--task-opt", "sample_every=5", "--task-opt", "eval_samples=1000"]
MNIST = {
    "dcgan": (GAN + ["--epochs", "20"], "DCGAN (non-saturating)"),
    "cgan": (GAN + ["--epochs", "20", "--task-opt", "conditional=true"], "conditional DCGAN"),
    "wgan_gp": (GAN + ["--epochs", "12", "--task-opt", "loss=wgan-gp", "--task-opt", "n_critic=5",
                       "--task-opt", "beta_1=0", "--task-opt", "beta_2=0.9", "--lr", "1e-4"], "WGAN-GP"),
    "vqvae": (["--task", "vqvae", "--model", "vq_encoder", "--epochs", "20", "--batch-size", "64", "--lr", "1e-3",
               "--task-opt", "sample_every=5", "--task-opt", "eval_samples=1000"], "VQ-VAE (positional categorical prior)"),
    "ddpm": (["--task", "diffusion", "--model", "diffusion_unet", "--model-opt", "base_filters=16", "--epochs", "20",
              "--batch-size", "64", "--lr", "2e-3", "--task-opt", "conditional=true", "--task-opt", "schedule=cosine",
              "--task-opt", "sample_steps=10", "--task-opt", "sample_every=0", "--task-opt", "eval_samples=1000",
              "--ema", "0.995"],
             "DDPM (U-Net 16, cosine, conditional, guidance 2)"),
    "vae": (["--task", "vae", "--model", "dense_encoder", "--epochs", "50", "--batch-size", "64", "--lr", "1e-3",
             "--schedule", "cosine", "--task-opt", "latent_dim=16"], "VAE (issue #14)"),
}
DDIM_STEPS = (10, 50, 250)
GUIDANCE, GUIDANCE_STEPS = (4.0, 6.0), 50  # the guidance sweep (the run trains and reports at its own, 2)
DDIM_SAMPLES = 500  # per step count: 250 guided steps of the U-Net take about 5 minutes per 500 images on a CPU


def train(workdir: str, name: str, args: list[str]) -> tuple[dict, float]:
    """One ``kerasdl train`` run: (its metrics.json, wall seconds)."""
    cmd = ["train", *COMMON, *args, "--name", name, "--overwrite"]
    print(f"$ kerasdl {' '.join(cmd)}", flush=True)
    start = time.perf_counter()
    kerasdl(cmd, workdir)
    wall = time.perf_counter() - start
    with open(os.path.join(workdir, "runs", name, "metrics.json"), encoding="utf-8") as f:
        return json.load(f), wall


def quality_of(run_dir: str, steps: int | None = None, samples: int | None = None,
               guidance: float | None = None) -> dict:
    """The test report of a trained run, optionally with another number of DDIM steps."""
    os.environ.setdefault("KERASDL_OFFLINE", "1")
    from kerasdl.data import load_splits
    from kerasdl.runs.load import load_run

    run = load_run(run_dir)
    test = load_splits(run.config, ("test",), shuffle_train=False)[0]["test"]
    kw = {k: v for k, v in (("steps", steps), ("samples", samples), ("guidance", guidance)) if v is not None}
    start = time.perf_counter()
    report = run.task.evaluate(run.model, test, **kw)
    report["eval_seconds"] = time.perf_counter() - start
    return report


def _row(label: str, r: dict, seconds: float | None = None) -> str:
    kid = f"{r['kid']:.3g} ± {r['kid_std']:.2g}"
    match = f"{r['class_match']:.1%}" if "class_match" in r else "–"
    covered = r.get("labels", {}).get("classes_covered", "–")
    time_s = f"{seconds / 60:.1f} min" if seconds else "–"
    below = f"{r['kid_below_ceiling_std']:.0f} std" if "kid_below_ceiling_std" in r else "–"
    return (f"| {label} | {r['fid']:.1f} | {kid} | {below} | {r['precision']:.3f} | {r['recall']:.3f} | {covered} | "
            f"{match} | {time_s} |")


def mnist(workdir: str, only: list[str], plots: str | None) -> list[str]:
    header = ["| model | FID | KID ± std | KID below ceiling | precision | recall | classes covered | class match "
              "| train time |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    rows, reference, results = [], None, {}
    for name, (args, label) in MNIST.items():
        if only and name not in only:
            continue
        metrics, wall = train(workdir, name, MNIST_COMMON + args)
        test = metrics["test"]
        reference = reference or test
        seconds = metrics.get("train_seconds_this_session", wall)
        results[name] = {"label": label, "test": test, "train_seconds": seconds, "wall_seconds": wall}
        if name == "ddpm":
            rows.append(_row(f"{label}, DDIM {test['ddim_steps']} steps", test, seconds))
            print(rows[-1], flush=True)
            for steps in DDIM_STEPS:
                report = quality_of(os.path.join(workdir, "runs", name), steps=steps, samples=DDIM_SAMPLES)
                results[name][f"ddim{steps}"] = report
                rows.append(_row(f"{label}, DDIM {steps} steps, {DDIM_SAMPLES} samples "
                                 f"(floor FID {report['floor']['fid']:.1f}, ceiling {report['ceiling']['fid']:.1f})",
                                 report, seconds))
                print(rows[-1], f"(sampling {report['eval_seconds']:.0f} s)", flush=True)
            for w in GUIDANCE:  # classifier-free guidance is a sampling choice: the same denoiser
                report = quality_of(os.path.join(workdir, "runs", name), steps=GUIDANCE_STEPS, samples=DDIM_SAMPLES,
                                    guidance=w)
                results[name][f"guidance{w:g}"] = report
                rows.append(_row(f"{label.replace('guidance 2', f'guidance {w:g}')}, DDIM {GUIDANCE_STEPS} steps, "
                                 f"{DDIM_SAMPLES} samples", report, seconds))
                print(rows[-1], f"(sampling {report['eval_seconds']:.0f} s)", flush=True)
        else:
            rows.append(_row(label, test, seconds))
            print(rows[-1], flush=True)
        if plots:
            src = os.path.join(workdir, "runs", name, "plots", "samples.png")
            if os.path.exists(src):
                os.makedirs(plots, exist_ok=True)
                shutil.copyfile(src, os.path.join(plots, f"{name}_samples.png"))
    if reference:
        rows.append(_row("floor: real train vs real test", reference["floor"]))
        rows.append(_row("ceiling: uniform noise vs real test", reference["ceiling"]))
        net = reference["feature_net"]
        rows.append("")
        rows.append(f"Features: `{net['name']}`, sha256 `{(net.get('sha256') or '')[:16]}…`, test accuracy "
                    f"{net.get('test_accuracy', float('nan')):.2%}; {reference['n_generated']} samples vs "
                    f"{reference['n_real']} test digits.")
    with open(os.path.join(workdir, "generative_mnist.json"), "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1, default=float)
    return header + rows


def toys(workdir: str, only: list[str], plots: str | None) -> list[str]:
    lines = []
    heads = []
    for name, (args, label) in TOYS.items():
        if only and name not in only:
            continue
        metrics, wall = train(workdir, name, args)
        test = metrics["test"]
        modes = test.get("modes", {})
        if name.startswith("coin"):
            names = modes.get("class_names", ["tails", "heads"])
            p = modes["fractions"][names.index("heads")]
            heads.append(p)
            lines.append(f"- {label}: P(heads) of {test['samples']} generated flips = {p:.3f} "
                         f"(data: {modes['train_fractions'][names.index('heads')]:.3f}), {wall:.0f} s")
        else:
            lines.append(f"- {label}: {modes['modes_covered']} of {modes['modes']} modes covered, "
                         f"{modes['high_quality']:.1%} of samples within 3 std of a mode, {wall:.0f} s")
        print(lines[-1], flush=True)
        if plots and name.startswith("ring"):
            src = os.path.join(workdir, "runs", name, "plots", "samples.png")
            os.makedirs(plots, exist_ok=True)
            shutil.copyfile(src, os.path.join(plots, f"{name}_samples.png"))
    if heads[:3]:
        lines.append(f"- coin flip, packed: |P(heads) - 0.3| at most {max(abs(h - 0.3) for h in heads[:3]):.3f} "
                     f"over {len(heads[:3])} seeds")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("suite", choices=("toys", "mnist"))
    parser.add_argument("--only", default="", help="comma-separated run names of the suite")
    parser.add_argument("--keep", default=None, help="keep the runs in this folder")
    parser.add_argument("--plots", default=None, help="copy the sample figures into this folder")
    args = parser.parse_args(argv)
    only = [s for s in args.only.split(",") if s]
    workdir = args.keep or tempfile.mkdtemp(prefix="kerasdl-generative-")
    os.makedirs(workdir, exist_ok=True)
    try:
        lines = (mnist if args.suite == "mnist" else toys)(workdir, only, args.plots)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
