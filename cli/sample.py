"""``kerasdl sample``: examples from a generative run (vae, gan, vqvae, diffusion)."""

from __future__ import annotations

import click

from kerasdl.tfquiet import import_tensorflow

from .options import run_dir_argument

EPILOG = """\b
Examples:
  kerasdl sample runs/vae-mnist5k-20261127-101500-3fa2c1                # 64 samples, seed 0
  kerasdl sample runs/<vae-run> --n 64 --seed 3 --out grid.png
  kerasdl sample runs/<vae-run> --n 16 --npz samples.npz              # + the arrays (images, z)
  kerasdl sample runs/<cgan-run> --class 3 --n 16                     # a conditional model: one class
  kerasdl sample runs/<ddpm-run> --steps 250 --seed 1                  # diffusion: DDIM steps

\b
The same --seed draws the same noise as the export's sample signature:
  tf.saved_model.load("saved_models/<run>/1").signatures["sample"](n=tf.constant(64), seed=tf.constant(3))
"""


@click.command("sample", epilog=EPILOG)
@run_dir_argument
@click.option("--n", "n", type=click.IntRange(min=1), default=64, show_default=True, help="How many samples.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the prior draw (same seed, same images).")
@click.option("--out", "-o", type=click.Path(dir_okay=False), default=None,
              help="The PNG grid (default: <run>/plots/samples_seed<SEED>.png).")
@click.option("--npz", type=click.Path(dir_okay=False), default=None,
              help="Also write the arrays here: images (in [0, 1]) and the codes z.")
@click.option("--cols", type=click.IntRange(min=1), default=8, show_default=True, help="Images per grid row.")
@click.option("--class", "label", type=int, default=None,
              help="The class a conditional model draws (default: the classes in turn).")
@click.option("--steps", type=int, default=None,
              help="Diffusion runs: DDIM sampling steps (default: the run's sample_steps).")
def sample_command(run_dir, n, seed, out, npz, cols, label, steps):
    """Draw N examples from a generative run (task vae, gan, vqvae or diffusion) into a PNG.

    RUN_DIR is a run directory of a generative task. A run of another task (a classifier, a plain
    autoencoder) is refused in one line before anything is loaded or written.
    """
    from kerasdl import api

    api.check_sample(run_dir, n, label=label, steps=steps)  # refused: before TensorFlow loads
    for path, suffix, flag in ((out, ".png", "--out"), (npz, ".npz", "--npz")):
        if path and not path.lower().endswith(suffix):
            raise click.BadParameter(f"must end in {suffix}. Received: {path}", param_hint=flag)
    import_tensorflow()  # quietly, before anything else loads it
    images, path = api.sample(run_dir, n=n, seed=seed, out=out, npz=npz, cols=cols, label=label, steps=steps)
    click.echo(f"wrote {len(images)} samples to {path}" + (f" and {npz}" if npz else ""))
