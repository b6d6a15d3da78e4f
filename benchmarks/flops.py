"""Hardware utilisation: training FLOP/s of ``kerasdl train`` against the machine's matmul peak (issue #6).

    python benchmarks/flops.py                          # peak + LeNet-5 + ResNet-20
    python benchmarks/flops.py --only peak              # just the matmul peak
    python benchmarks/flops.py --kerasdl-extra --jit --steps-per-execution 32   # with other train options

* Peak: float32 ``tf.matmul`` of n x n matrices (n = 1024, 2048, 4096), 2 n^3 FLOPs per product,
  best of ``--matmul-reps`` timed products after a warm-up, in a fresh TF process (all cores, TF's
  default threads); the same with ``torch.mm`` in a fresh torch process for reference.
* Model FLOPs, counted analytically from the built Keras model (``kerasdl.models.build_model``):
  Conv2D 2·H_out·W_out·k_h·k_w·(C_in/groups)·C_out, Dense 2·in·out; bias adds, BatchNorm, ReLU,
  pooling, padding and adds are not counted (element-wise, under 2% here). Cross-checked with
  TF's graph profiler (``tf.compat.v1.profiler`` float_operation on the frozen forward graph,
  batch 1), and for LeNet-5 by hand in the output. Training FLOPs per example = 3 x forward
  (forward, gradient w.r.t. activations, gradient w.r.t. weights; this slightly over-counts the
  first layer, whose input gradient is not needed). An epoch does 3·F per training image and
  F per validation image.
* Achieved: from ``kerasdl train`` runs (``--augment none``, otherwise defaults + ``--kerasdl-extra``),
  steady epoch time (history.csv, epochs 2..N, each including its validation pass), median of
  ``--repeats``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _timing as T  # noqa: E402

SCRIPT = os.path.abspath(__file__)
SIZES = (1024, 2048, 4096)


def peak_worker(a) -> None:
    best = {}
    if a.lib == "tf":
        import tensorflow as tf

        for n in SIZES:
            x = tf.random.normal((n, n), dtype=tf.float32)
            y = tf.random.normal((n, n), dtype=tf.float32)
            tf.matmul(x, y).numpy()  # warm-up
            ts = []
            for _ in range(a.matmul_reps):
                t0 = time.perf_counter()
                z = tf.matmul(x, y)
                z = z[0, 0].numpy()  # eager CPU ops are synchronous; this makes sure
                ts.append(time.perf_counter() - t0)
            best[n] = 2 * n**3 / min(ts) / 1e9
    else:
        import torch

        for n in SIZES:
            x, y = torch.randn(n, n), torch.randn(n, n)
            torch.mm(x, y)
            ts = []
            for _ in range(a.matmul_reps):
                t0 = time.perf_counter()
                torch.mm(x, y)
                ts.append(time.perf_counter() - t0)
            best[n] = 2 * n**3 / min(ts) / 1e9
    T.emit({"gflops": best})


def layer_flops(model) -> tuple[int, list]:
    """Analytic forward FLOPs of one example: conv and dense layers only."""
    import keras

    total, rows = 0, []
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.Conv2D):
            _, h, w, cout = layer.output.shape
            kh, kw = layer.kernel_size
            cin = layer.input.shape[-1]
            f = 2 * h * w * kh * kw * (cin // layer.groups) * cout
        elif isinstance(layer, keras.layers.Dense):
            f = 2 * layer.input.shape[-1] * layer.units
        else:
            continue
        total += f
        rows.append((layer.name, f))
    return total, rows


def profiler_flops(model, shape) -> int:
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    fn = tf.function(lambda x: model(x, training=False)).get_concrete_function(tf.TensorSpec((1, *shape)))
    frozen = convert_variables_to_constants_v2(fn)
    opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    return int(tf.compat.v1.profiler.profile(graph=frozen.graph, options=opts).total_float_ops)


def count_worker(a) -> None:
    from kerasdl.models import build_model

    shape = tuple(int(s) for s in a.shape.split("x"))
    model = build_model(a.model, input_shape=shape, num_classes=10)
    total, rows = layer_flops(model)
    T.emit({"forward": total, "layers": rows, "profiler": profiler_flops(model, shape),
            "params": int(model.count_params())})


def lenet_by_hand() -> int:
    conv1 = 2 * 28 * 28 * 5 * 5 * 1 * 6  # 'same' 5x5, 6 maps of 28x28
    conv2 = 2 * 10 * 10 * 5 * 5 * 6 * 16  # 'valid' 5x5 on 14x14x6 -> 10x10x16
    dense = 2 * (400 * 120 + 120 * 84 + 84 * 10)
    return conv1 + conv2 + dense


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--worker", choices=("peak", "count"))
    p.add_argument("--lib", default="tf")
    p.add_argument("--model", default="lenet5")
    p.add_argument("--shape", default="28x28x1")
    p.add_argument("--matmul-reps", type=int, default=7)
    p.add_argument("--only", choices=("peak", "lenet5", "resnet20"))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--lenet-epochs", type=int, default=6)
    p.add_argument("--resnet-epochs", type=int, default=3)
    p.add_argument("--tuned", default="--steps-per-execution 32",
                   help="kerasdl train options of a second row, run with TF_ENABLE_ONEDNN_OPTS=1 ('' = none)")
    p.add_argument("--kerasdl-extra", nargs=argparse.REMAINDER, default=[])
    a = p.parse_args()
    if a.worker == "peak":
        return peak_worker(a)
    if a.worker == "count":
        return count_worker(a)

    T.header("Hardware utilisation: training FLOP/s vs float32 matmul peak")
    peak = T.run_worker([SCRIPT, "--worker", "peak", "--lib", "tf", "--matmul-reps", str(a.matmul_reps)])["gflops"]
    tpeak = T.run_worker([SCRIPT, "--worker", "peak", "--lib", "torch", "--matmul-reps", str(a.matmul_reps)])["gflops"]
    opeak = T.run_worker([SCRIPT, "--worker", "peak", "--lib", "tf", "--matmul-reps", str(a.matmul_reps)],
                         {"TF_ENABLE_ONEDNN_OPTS": "1"})["gflops"]
    print("| float32 matmul, n x n | " + " | ".join(SIZES.__class__(map(str, SIZES))) + " |")
    print("|---|" + "---|" * len(SIZES))
    print("| tf.matmul GFLOP/s (best of %d) | " % a.matmul_reps + " | ".join(f"{peak[str(n)]:.1f}" for n in SIZES) + " |")
    print("| tf.matmul, TF_ENABLE_ONEDNN_OPTS=1 | " + " | ".join(f"{opeak[str(n)]:.1f}" for n in SIZES) + " |")
    print("| torch.mm GFLOP/s (best of %d) | " % a.matmul_reps + " | ".join(f"{tpeak[str(n)]:.1f}" for n in SIZES) + " |")
    top = max(max(peak.values()), max(opeak.values()))
    print(f"\nmeasured peak (TF, best size and setting): **{top:.1f} GFLOP/s**\n", flush=True)
    if a.only == "peak":
        return

    data32 = T.prepare_npz(os.path.join(T.WORKDIR, "mnist32x3.npz"), size32=True)
    models = [("lenet5", "28x28x1", "mnist5k", a.lenet_epochs), ("resnet20", "32x32x3", data32, a.resnet_epochs)]
    if a.only:
        models = [m for m in models if m[0] == a.only]
    rows = []
    for model, shape, dataset, epochs in models:
        c = T.run_worker([SCRIPT, "--worker", "count", "--model", model, "--shape", shape])
        f = c["forward"]
        print(f"{model}: forward {f:,} FLOPs/example analytic ({', '.join(f'{n} {v:,}' for n, v in c['layers'])}); "
              f"TF profiler {c['profiler']:,} (incl. bias adds, BN, pooling: {c['profiler'] / f - 1:+.1%})")
        if model == "lenet5":
            print(f"  by hand: conv1 2·28·28·25·1·6 + conv2 2·10·10·25·6·16 + dense 2·(400·120 + 120·84 + 84·10) "
                  f"= {lenet_by_hand():,} FLOPs ({'matches' if lenet_by_hand() == f else 'DIFFERS'})")
        settings = [("defaults", a.kerasdl_extra, {})]
        if a.tuned:
            settings.append((f"TF_ENABLE_ONEDNN_OPTS=1, {a.tuned}", a.tuned.split(), {"TF_ENABLE_ONEDNN_OPTS": "1"}))
        ips = {k: [] for k, _, _ in settings}
        for i in range(a.repeats):
            for label, extra, env in T.interleave(i, settings):
                r = T.kerasdl_train(["--model", model, "--dataset", dataset, "--epochs", str(epochs), "--augment",
                                     "none", *extra], f"flops-{model}-{i}", env)
                ips[label].append(T.steady_ips(r))
                print(f"  run {i + 1} {label}: {ips[label][-1]:,.0f} images/s", flush=True)
        n_train, n_val = 3500, 500
        for label, _, _ in settings:
            m = T.median(ips[label])
            epoch_s = n_train / m
            achieved = (3 * f * n_train + f * n_val) / epoch_s / 1e9
            rows.append((f"{model}, {label}", f, m, achieved))
    print(f"\n| model, kerasdl train --augment none {' '.join(a.kerasdl_extra)} + | forward MFLOP/example | "
          "training MFLOP/example (3x) | steady images/s (median) | achieved GFLOP/s | peak GFLOP/s | utilisation |")
    print("|---|---|---|---|---|---|---|")
    for model, f, m, achieved in rows:
        print(f"| {model} | {f / 1e6:.3f} | {3 * f / 1e6:.3f} | {m:,.0f} | {achieved:.2f} | {top:.1f} | "
              f"**{achieved / top:.1%}** |")


if __name__ == "__main__":
    main()
