"""Training speed of kerasdl's GAN step against the same DCGAN written in PyTorch, side by side.

    python benchmarks/gan_speed.py              # about 2 minutes on 2 CPU cores
    python benchmarks/gan_speed.py --steps 60 --rounds 3

Both sides train the same networks -- kerasdl's ``dcgan_generator`` / ``dcgan_discriminator`` for
28x28x1 at their defaults (z of 64, a 7x7x128 projection with batch norm, 5x5 stride-2 transposed
convolutions; a 5x5 stride-2 conv discriminator with batch norm on its second layer; 608,577 and
213,249 parameters as Keras counts them) -- with the non-saturating loss, Adam(2e-4, beta_1 0.5)
on both networks, batch 64, one discriminator and one generator step per batch, on the same
random [-1, 1] "images" (speed only). kerasdl's side is the real :class:`kerasdl.tasks.gan.GAN`
(its own ``train_step``, traced by ``model.fit``); PyTorch's is the usual eager loop (as in the
PyTorch DCGAN tutorial), with 2 intra-op threads like TensorFlow's on this machine. The rounds
alternate between the two; each figure is the median of the rounds' examples per second after a
warm-up. PyTorch is a benchmark-only dependency.
"""

from __future__ import annotations

import argparse
import statistics
import time

BATCH, LATENT = 64, 64


def kerasdl_rate(steps: int, x) -> float:
    import keras
    import tensorflow as tf

    from kerasdl.models import build_model
    from kerasdl.tasks.gan import GAN

    g = build_model("dcgan_generator", latent_dim=LATENT, output_shape=(28, 28, 1), name="generator")
    d = build_model("dcgan_discriminator", input_shape=(28, 28, 1), name="discriminator")
    gan = GAN(g, d, latent_dim=LATENT, loss="nonsaturating")
    gan.compile(optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5), d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5))
    ds = tf.data.Dataset.from_tensor_slices((x, tf.zeros(len(x), tf.int32))).batch(BATCH, drop_remainder=True)
    ds = ds.repeat().prefetch(2)
    gan.fit(ds, steps_per_epoch=5, epochs=1, verbose=0)  # trace and warm up

    def run() -> float:
        t0 = time.perf_counter()
        gan.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
        return steps * BATCH / (time.perf_counter() - t0)

    return run


def torch_rate(steps: int, x):
    import numpy as np
    import torch
    from torch import nn

    torch.set_num_threads(2)
    torch.manual_seed(0)
    g = nn.Sequential(
        nn.Linear(LATENT, 7 * 7 * 128, bias=False), nn.Unflatten(1, (128, 7, 7)), nn.BatchNorm2d(128), nn.ReLU(),
        nn.ConvTranspose2d(128, 64, 5, stride=2, padding=2, output_padding=1, bias=False), nn.BatchNorm2d(64),
        nn.ReLU(), nn.ConvTranspose2d(64, 1, 5, stride=2, padding=2, output_padding=1), nn.Tanh())
    d = nn.Sequential(
        nn.Conv2d(1, 64, 5, stride=2, padding=2), nn.LeakyReLU(0.2),
        nn.Conv2d(64, 128, 5, stride=2, padding=2, bias=False), nn.BatchNorm2d(128), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(7 * 7 * 128, 1))
    opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    softplus = nn.functional.softplus
    data = torch.from_numpy(np.transpose(x, (0, 3, 1, 2)).copy())
    n = len(data) // BATCH

    def step(i: int) -> None:
        real = data[(i % n) * BATCH:(i % n + 1) * BATCH]
        fake = g(torch.randn(BATCH, LATENT))
        d_loss = (softplus(-d(real)) + softplus(d(fake.detach()))).mean()
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        g_loss = softplus(-d(g(torch.randn(BATCH, LATENT)))).mean()
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()

    for i in range(5):
        step(i)

    def run() -> float:
        t0 = time.perf_counter()
        for i in range(steps):
            step(i)
        return steps * BATCH / (time.perf_counter() - t0)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    import numpy as np

    x = np.random.default_rng(0).uniform(-1, 1, size=(BATCH * 20, 28, 28, 1)).astype(np.float32)
    runs = {"kerasdl (TF)": kerasdl_rate(args.steps, x), "PyTorch": torch_rate(args.steps, x)}
    rates = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, run in runs.items():
            rates[name].append(run())
    med = {name: statistics.median(v) for name, v in rates.items()}
    for name, v in rates.items():
        print(f"{name:14s} {med[name]:8.0f} examples/s  (rounds: {', '.join(f'{r:.0f}' for r in v)})")
    print(f"ratio kerasdl / PyTorch: {med['kerasdl (TF)'] / med['PyTorch']:.2f}")


if __name__ == "__main__":
    main()
