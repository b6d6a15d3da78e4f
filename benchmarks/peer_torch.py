"""Keras/TF (``kerasdl train`` and a plain ``model.fit`` script) against an idiomatic PyTorch loop.

    python benchmarks/peer_torch.py --part lenet          # LeNet-5 on mnist5k: images/s + time to 97%
    python benchmarks/peer_torch.py --part resnet         # ResNet-20 on mnist5k padded to 32x32x3
    python benchmarks/peer_torch.py --part gap            # where Keras/TF's time goes (LeNet-5)
    python benchmarks/peer_torch.py --part gap-resnet     # the same levers on ResNet-20
    python benchmarks/peer_torch.py --part micro          # one step piece by piece (forward, backward, update)
    python benchmarks/peer_torch.py --part lenet --no-plain --seeded --baseline /tmp/old  # before/after, interleaved

``--baseline DIR`` runs the same ``kerasdl train`` from another copy of the package (through
PYTHONPATH) in the same interleaved rounds, so a change is measured against what it replaces
under the same load. Make DIR from a commit with
``git archive C kerasdl cli models | tar -x -C src`` and then ``DIR/kerasdl`` = ``src/kerasdl``
with ``src/cli`` and ``src/models`` copied in as ``DIR/kerasdl/cli`` and ``DIR/kerasdl/models``.

Issue #6. Every contender is a fresh subprocess; contenders alternate order each repetition and
the table gives medians (definitions in ``benchmarks/_timing.py``). Same network (parameter
counts printed), same data and splits, batch 64, Adam lr 1e-3 (eps 1e-7 on both sides), no
augmentation, validation pass at the end of every epoch, same initialisation scheme (Keras'
glorot-uniform / he-normal kernels and zero biases reproduced in torch).

Torch: the whole split as one float32 NCHW tensor, a fresh ``randperm`` every epoch and index
batches (the fast idiomatic form for data that fits in memory; ``--torch-loader dataloader``
uses ``DataLoader(TensorDataset)``), ``model.train()``, ``zero_grad / backward / step``,
default thread count (2 here).

The 32x32x3 set: mnist5k's own train/validation/test split (3,500 / 500 / 1,000), each digit
zero-padded by 2 pixels to 32x32 (the LeNet paper's input size, no interpolation) and its gray
channel repeated 3 times, written to ``$KERASDL_BENCH_DIR/mnist32x3.npz`` (x_train, y_train,
x_val, y_val, x_test, y_test; uint8), which ``kerasdl train --dataset`` and torch both read.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _timing as T  # noqa: E402

SCRIPT = os.path.abspath(__file__)


# ----------------------------------------------------------------------------- torch worker

def torch_models():
    import torch
    from torch import nn
    import torch.nn.functional as F

    class LeNet5(nn.Module):
        """kerasdl's lenet5: conv 6@5x5 'same' -> ReLU -> max-pool, conv 16@5x5 valid -> ReLU ->
        max-pool, 120 -> 84 -> 10 (61,706 parameters on 28x28x1)."""

        def __init__(self, channels=1, side=28, classes=10):
            super().__init__()
            self.conv1 = nn.Conv2d(channels, 6, 5, padding=2)
            self.conv2 = nn.Conv2d(6, 16, 5)
            flat = 16 * ((side // 2 - 4) // 2) ** 2
            self.fc1, self.fc2, self.fc3 = nn.Linear(flat, 120), nn.Linear(120, 84), nn.Linear(84, classes)
            for m in self.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    nn.init.xavier_uniform_(m.weight)  # keras glorot_uniform
                    nn.init.zeros_(m.bias)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv1(x)), 2)
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)
            x = torch.flatten(x, 1)
            return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))

    def he_normal_(w):  # keras HeNormal: truncated normal, std sqrt(2 / fan_in) / .8796
        fan_in = w.shape[1] * w.shape[2] * w.shape[3]
        std = math.sqrt(2.0 / fan_in) / 0.87962566103423978
        nn.init.trunc_normal_(w, std=std, a=-2 * std, b=2 * std)

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1)  # = keras momentum 0.9
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1)
            self.stride, self.extra = stride, cout - cin

        def forward(self, x):
            y = F.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            if self.stride != 1 or self.extra:  # option A: subsample, zero-pad new channels after
                x = F.pad(x[:, :, :: self.stride, :: self.stride], (0, 0, 0, 0, 0, self.extra))
            return F.relu(y + x)

    class ResNet20(nn.Module):
        """He et al. 2016 CIFAR ResNet-20 (n=3, option A), as kerasdl's resnet20."""

        def __init__(self, channels=3, classes=10, n=3):
            super().__init__()
            self.stem = nn.Conv2d(channels, 16, 3, 1, 1, bias=False)
            self.bn = nn.BatchNorm2d(16, eps=1e-5, momentum=0.1)
            blocks, cin = [], 16
            for stage, f in enumerate((16, 32, 64)):
                for b in range(n):
                    blocks.append(Block(cin, f, 2 if stage and not b else 1))
                    cin = f
            self.blocks = nn.Sequential(*blocks)
            self.fc = nn.Linear(64, classes)
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    he_normal_(m.weight)
            nn.init.xavier_uniform_(self.fc.weight)
            nn.init.zeros_(self.fc.bias)

        def forward(self, x):
            x = self.blocks(F.relu(self.bn(self.stem(x))))
            return self.fc(x.mean((2, 3)))

    return {"lenet5": LeNet5, "resnet20": ResNet20}


def torch_worker(a) -> None:
    import numpy as np
    import torch
    import torch.nn.functional as F

    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    d = T.load_npz(a.data)

    def tensor(x):
        t = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).float().div_(255.0)
        return t.contiguous(memory_format=torch.channels_last) if a.channels_last else t

    xtr, ytr = tensor(d["x_train"]), torch.from_numpy(d["y_train"].astype(np.int64))
    xva, yva = tensor(d["x_val"]), torch.from_numpy(d["y_val"].astype(np.int64))
    c, side = xtr.shape[1], xtr.shape[2]
    model = torch_models()[a.model](channels=c, **({"side": side} if a.model == "lenet5" else {}))
    if a.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if a.compile:
        model = torch.compile(model)
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr, eps=1e-7)
    n, bs = len(xtr), a.batch
    g = torch.Generator().manual_seed(a.seed)
    if a.loader == "dataloader":
        from torch.utils.data import DataLoader, TensorDataset

        loader = DataLoader(TensorDataset(xtr, ytr), batch_size=bs, shuffle=True, generator=g)

        def batches():
            yield from loader
    else:
        def batches():
            perm = torch.randperm(n, generator=g)
            for i in range(0, n, bs):
                idx = perm[i: i + bs]
                yield xtr[idx], ytr[idx]

    times, ends, val_acc = [], [], []
    t_start = time.perf_counter()
    for _epoch in range(a.epochs):
        t0 = time.perf_counter()
        model.train()
        loss_sum, correct = torch.zeros(()), torch.zeros((), dtype=torch.int64)
        for xb, yb in batches():
            opt.zero_grad(set_to_none=True)
            out = model(xb)
            loss = F.cross_entropy(out, yb)
            loss.backward()
            opt.step()
            loss_sum += loss.detach() * len(yb)  # running metrics, as keras keeps loss/accuracy
            correct += (out.detach().argmax(1) == yb).sum()
        model.eval()
        right = 0
        with torch.no_grad():
            for i in range(0, len(xva), bs):
                right += int((model(xva[i: i + bs]).argmax(1) == yva[i: i + bs]).sum())
        now = time.perf_counter()
        times.append(now - t0)
        ends.append(now - t_start)
        val_acc.append(right / len(xva))
    T.emit({"n_train": n, "epoch_times": times, "fit_s": time.perf_counter() - t_start, "val_acc": val_acc,
            "epoch_ends": ends, "params": params, "threads": torch.get_num_threads()})


def torch_argv(data, **kw):
    argv = [SCRIPT, "--worker", "torch", "--data", data]
    for k, v in kw.items():
        argv += [f"--{k.replace('_', '-')}", str(v)]
    return argv


# ----------------------------------------------------------------------------- micro: one step, piece by piece

def micro_worker(a) -> None:
    """ms per step on one fixed batch, in pieces: forward, forward + backward, + optimizer step,
    and (Keras) the same step through ``model.fit``'s machinery (``train_on_batch``)."""
    import numpy as np

    d = T.load_npz(a.data)
    x = d["x_train"][: a.batch].astype("float32") / 255.0
    y = d["y_train"][: a.batch].astype("int64")
    out = {}

    def clock(fn, n):
        fn()
        fn()
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - t0) / n * 1e3

    if a.lib == "torch":
        import torch
        import torch.nn.functional as F

        model = torch_models()[a.model](channels=x.shape[-1], **({"side": x.shape[1]} if a.model == "lenet5" else {}))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
        xt, yt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))), torch.from_numpy(y)
        model.train()

        def fwd():
            with torch.no_grad():
                model(xt)

        def fwd_bwd():
            model.zero_grad(set_to_none=True)
            F.cross_entropy(model(xt), yt).backward()

        def step():
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(xt), yt).backward()
            opt.step()

        for k, fn in (("forward", fwd), ("forward+backward", fwd_bwd), ("train step", step)):
            out[k] = clock(fn, a.iters)
    else:
        import tensorflow as tf
        import keras

        if a.determinism:
            tf.config.experimental.enable_op_determinism()
        from kerasdl.models import build_model

        model = build_model(a.model, input_shape=x.shape[1:], num_classes=10)
        opt = keras.optimizers.Adam(1e-3)
        lossf = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        xt, yt = tf.constant(x), tf.constant(y.astype("int32"))
        jit = bool(a.jit)

        @tf.function(jit_compile=jit)
        def fwd():
            return model(xt, training=True)

        @tf.function(jit_compile=jit)
        def fwd_bwd():
            with tf.GradientTape() as tape:
                loss = lossf(yt, model(xt, training=True))
            return tape.gradient(loss, model.trainable_variables)

        @tf.function(jit_compile=jit)
        def step():
            with tf.GradientTape() as tape:
                loss = lossf(yt, model(xt, training=True))
            opt.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
            return loss

        for k, fn in (("forward", fwd), ("forward+backward", fwd_bwd), ("train step", step)):
            out[k] = clock(fn, a.iters)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=lossf, metrics=["accuracy"], jit_compile=jit)
        out["keras train_on_batch"] = clock(lambda: model.train_on_batch(xt, yt), a.iters)
    T.emit(out)


def part_micro(args, model, data):
    rows = {}
    on = {"TF_ENABLE_ONEDNN_OPTS": "1"}
    libs = [("torch", {"lib": "torch"}, {}), ("TF (tf.function)", {"lib": "tf"}, {}),
            ("TF + op determinism", {"lib": "tf", "determinism": 1}, {}),
            ("TF XLA (jit_compile)", {"lib": "tf", "jit": 1}, {}),
            ("TF, TF_ENABLE_ONEDNN_OPTS=1", {"lib": "tf"}, on),
            ("TF, oneDNN on + op determinism", {"lib": "tf", "determinism": 1}, on)]
    for i in range(args.repeats):
        for name, o, env in T.interleave(i, libs):
            argv = [SCRIPT, "--worker", "micro", "--data", data, "--model", model, "--batch", str(args.batch),
                    "--iters", str(args.iters)]
            for k, v in o.items():
                argv += [f"--{k}", str(v)]
            rows.setdefault(name, []).append(T.run_worker(argv, env))
    keys = ["forward", "forward+backward", "train step", "keras train_on_batch"]
    print(f"\n| {model}, batch {args.batch}: ms per step (median of {args.repeats} processes, {args.iters} steps each) | "
          + " | ".join(keys) + " |")
    print("|---|" + "---|" * len(keys))
    for name, rs in rows.items():
        print(f"| {name} | " + " | ".join(T.fmt(T.median([r.get(k) for r in rs]), ".2f") for k in keys) + " |")


# ----------------------------------------------------------------------------- driver

def contest(contenders: dict, repeats: int, target: float) -> dict:
    """Run each contender ``repeats`` times, interleaved; print one line per run."""
    results = {k: [] for k in contenders}
    for i in range(repeats):
        for name in T.interleave(i, list(contenders)):
            fn = contenders[name]
            r = fn(i)
            results[name].append(r)
            tta, ep = T.time_to_accuracy(r, target)
            print(f"  rep {i + 1} {name}: {T.steady_ips(r):,.0f} images/s steady, {T.inclusive_ips(r):,.0f} "
                  f"inclusive, time to {target:.0%}: {T.fmt(tta, '.1f')} s (epoch {ep}), "
                  + (f"whole process {r['process_s']:.1f} s, " if "process_s" in r else "")
                  + f"val acc {r['val_acc'][-1]:.4f}; epoch s {' '.join(f'{t:.2f}' for t in r['epoch_times'])}", flush=True)
    return results


def table(results: dict, target: float, ref: str, what: str = "contender") -> None:
    med = {k: T.median([T.steady_ips(r) for r in v]) for k, v in results.items()}
    print(f"\n| {what} | steady images/s (runs) | median | vs {ref} | inclusive images/s | "
          f"time to {target:.0%} val acc, s (epoch) | vs {ref} | final val acc |")
    print("|---|---|---|---|---|---|---|---|")
    tta_ref = T.median([T.time_to_accuracy(r, target)[0] for r in results[ref]])
    for k, v in results.items():
        ips = [T.steady_ips(r) for r in v]
        tta = [T.time_to_accuracy(r, target) for r in v]
        tta_med = T.median([t for t, _ in tta])
        eps = sorted({e for _, e in tta if e})
        reached = sum(1 for t, _ in tta if t is not None)
        tta_s = f"{T.fmt(tta_med, '.1f')} (ep {','.join(map(str, eps)) or '–'}; {reached}/{len(v)} reached)"
        ratio = "" if tta_med is None or tta_ref is None else f"{tta_ref / tta_med:.2f}x"
        print(f"| {k} | {', '.join(f'{x:,.0f}' for x in ips)} | **{med[k]:,.0f}** | {med[k] / med[ref]:.2f} | "
              f"{T.median([T.inclusive_ips(r) for r in v]):,.0f} | {tta_s} | {ratio} | "
              f"{T.median([r['val_acc'][-1] for r in v]):.4f} |")
    print(f"\n(\"vs {ref}\": images/s ratio = contender / {ref}; time-to-accuracy ratio = {ref}'s time / "
          "contender's time, so > 1 is faster in both.)", flush=True)


def kerasdl_contender(dataset, model, epochs, extra=(), env=None, seeded=False, tag=""):
    """``seeded``: repetition i runs with ``--seed i``, as the torch loop and the plain script do
    (a fixed ``--seed 0`` in every repetition measures one initialisation three times)."""
    def run(i):
        seed = ["--seed", str(i)] if seeded else []
        return T.kerasdl_train(["--model", model, "--dataset", dataset, "--epochs", str(epochs), "--augment",
                                "none", *seed, *extra], f"peer-{model}{tag}-{abs(hash(tuple(extra))) % 10**6}-{i}", env)
    return run


def part_peer(args, model, data, dataset_arg, epochs, target):
    kw = dict(model=model, epochs=epochs)
    contenders = {"torch (eager loop)": lambda i: T.run_worker(torch_argv(data, **kw, seed=i))}
    if not args.no_plain:
        contenders["plain keras fit (tf.data)"] = lambda i: T.run_worker(T.keras_argv(SCRIPT, data, **kw, seed=i))
    if args.seeded:
        contenders["kerasdl train (defaults, --augment none, --seed i)"] = kerasdl_contender(
            dataset_arg, model, epochs, seeded=True)
    else:
        contenders["kerasdl train (defaults, --augment none)"] = kerasdl_contender(dataset_arg, model, epochs,
                                                                                   ["--seed", "0"])
    if args.baseline:  # the same command run by another copy of kerasdl (e.g. `git archive` of an older commit)
        contenders[f"baseline kerasdl ({args.baseline_label})"] = kerasdl_contender(
            dataset_arg, model, epochs, [] if args.seeded else ["--seed", "0"], {"PYTHONPATH": args.baseline},
            seeded=args.seeded, tag="-baseline")
    if args.best:  # kerasdl with the options that close the gap
        best = args.best.split()
        contenders[f"kerasdl train {' '.join(best)}"] = kerasdl_contender(dataset_arg, model, epochs, best)
    if args.best and args.plain_best:
        contenders["plain keras fit, jit + spe 32"] = lambda i: T.run_worker(
            T.keras_argv(SCRIPT, data, **kw, seed=i, jit=1, spe=32))
    if args.onednn:  # kerasdl with oneDNN switched on (off by default on this CPU)
        opts = args.onednn.split()
        contenders[f"TF_ENABLE_ONEDNN_OPTS=1 kerasdl train {' '.join(opts)}"] = kerasdl_contender(
            dataset_arg, model, epochs, opts, {"TF_ENABLE_ONEDNN_OPTS": "1"})
    res = contest(contenders, args.repeats, target)
    if "plain keras fit (tf.data)" in res:
        print(f"\nparameters: torch {res['torch (eager loop)'][0]['params']:,} trainable, keras "
              f"{res['plain keras fit (tf.data)'][0]['params']:,} (count_params, incl. BN moving stats)")
    table(res, target, "torch (eager loop)")


GAP_VARIANTS = {
    # name: (keras worker options, extra env)
    "plain fit, tf.data (reference)": ({}, {}),
    "+ op determinism (kerasdl's set_seed)": ({"determinism": 1}, {}),
    "+ per-batch float(loss) callback (NanGuard)": ({"batch_callback": 1}, {}),
    "numpy arrays instead of tf.data": ({"input": "numpy"}, {}),
    "steps_per_execution 8": ({"spe": 8}, {}),
    "steps_per_execution 32": ({"spe": 32}, {}),
    "jit_compile (XLA)": ({"jit": 1}, {}),
    "jit_compile + op determinism": ({"jit": 1, "determinism": 1}, {}),
    "jit_compile + steps_per_execution 32": ({"jit": 1, "spe": 32}, {}),
    "intra 2 / inter 1 threads": ({"intra": 2, "inter": 1}, {}),
    "intra 1 / inter 1 threads": ({"intra": 1, "inter": 1}, {}),
    "TF_ENABLE_ONEDNN_OPTS=0 (= this machine's default)": ({}, {"TF_ENABLE_ONEDNN_OPTS": "0"}),
    "TF_ENABLE_ONEDNN_OPTS=1 (oneDNN on)": ({}, {"TF_ENABLE_ONEDNN_OPTS": "1"}),
    "oneDNN on + steps_per_execution 32": ({"spe": 32}, {"TF_ENABLE_ONEDNN_OPTS": "1"}),
    "oneDNN on + jit_compile + steps_per_execution 32": ({"jit": 1, "spe": 32}, {"TF_ENABLE_ONEDNN_OPTS": "1"}),
    "batch 128": ({"batch": 128}, {}),
    "batch 256": ({"batch": 256}, {}),
}
TORCH_GAP = {
    "torch (reference)": {},
    "torch, DataLoader(TensorDataset)": {"loader": "dataloader"},
    "torch, 1 thread": {"threads": 1},
    "torch, batch 128": {"batch": 128},
    "torch, batch 256": {"batch": 256},
    "torch, channels_last": {"channels_last": 1},
}


def part_gap(args, model, data, epochs):
    """Each lever alone on the plain Keras script, interleaved with the torch loop."""
    names = args.variants or list(GAP_VARIANTS)
    tnames = args.torch_variants if args.torch_variants is not None else ["torch (reference)"]
    contenders = {}
    for name in tnames:
        contenders[name] = (lambda o: lambda i: T.run_worker(torch_argv(data, model=model, epochs=epochs, **o)))(
            TORCH_GAP[name])
    for name in names:
        opts, env = GAP_VARIANTS[name]
        contenders[name] = (lambda o, e: lambda i: T.run_worker(
            T.keras_argv(SCRIPT, data, model=model, epochs=epochs, **o), e))(opts, env)
    res = contest(contenders, args.repeats, args.target or 0.97)
    ref_t = T.median([T.steady_ips(r) for r in res[tnames[0]]]) if tnames else None
    ref_k = T.median([T.steady_ips(r) for r in res[names[0]]])
    print(f"\n| {model}: variant | steady images/s (runs) | median | vs plain fit | vs torch |")
    print("|---|---|---|---|---|")
    for k, v in res.items():
        ips = [T.steady_ips(r) for r in v]
        m = T.median(ips)
        jit = "" if "jit_resolved" not in v[0] else ("" if v[0]["jit_resolved"] == ("jit" in k) else
                                                    f" (jit resolved to {v[0]['jit_resolved']})")
        print(f"| {k}{jit} | {', '.join(f'{x:,.0f}' for x in ips)} | **{m:,.0f}** | {m / ref_k:.2f} | "
              f"{'' if ref_t is None else f'{m / ref_t:.2f}'} |", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--worker", choices=("torch", "keras", "micro"))
    p.add_argument("--lib", default="tf")
    p.add_argument("--iters", type=int, default=100)
    p.add_argument("--part", choices=("lenet", "resnet", "gap", "gap-resnet", "micro", "micro-resnet"), default="lenet")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--target", type=float)
    p.add_argument("--peer-epochs", type=int)
    p.add_argument("--best", help="kerasdl train options of the best setting, one string: "
                   "--best='--jit --steps-per-execution 32'")
    p.add_argument("--plain-best", action="store_true", help="add plain fit with jit + steps_per_execution 32")
    p.add_argument("--onednn", help="kerasdl train options for a row run with TF_ENABLE_ONEDNN_OPTS=1, e.g. "
                   "'--steps-per-execution 32'")
    p.add_argument("--no-plain", action="store_true", help="leave out the plain keras fit script")
    p.add_argument("--seeded", action="store_true", help="kerasdl repetition i uses --seed i (as torch and "
                   "the plain script do) instead of --seed 0 every time")
    p.add_argument("--baseline", metavar="DIR", help="also run kerasdl from DIR (a folder holding an older "
                   "kerasdl package, with cli/ and models/ copied in as kerasdl/cli and kerasdl/models), "
                   "through PYTHONPATH, interleaved with the current one: before/after under the same load")
    p.add_argument("--baseline-label", default="baseline", help="its name in the table, e.g. a commit")
    p.add_argument("--variants", nargs="*", help=f"subset of {list(GAP_VARIANTS)}")
    p.add_argument("--torch-variants", nargs="*", help=f"subset of {list(TORCH_GAP)}")
    T.add_keras_args(p)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--loader", default="tensor", choices=("tensor", "dataloader"))
    p.add_argument("--channels-last", type=int, default=0)
    p.add_argument("--compile", type=int, default=0)
    args = p.parse_args()
    if args.worker == "torch":
        return torch_worker(args)
    if args.worker == "keras":
        return T.keras_worker(args)
    if args.worker == "micro":
        return micro_worker(args)

    mnist = T.prepare_npz(os.path.join(T.WORKDIR, "mnist5k.npz"))
    mnist32 = T.prepare_npz(os.path.join(T.WORKDIR, "mnist32x3.npz"), size32=True)
    if args.part == "lenet":
        target = args.target or 0.97
        T.header(f"Peer: LeNet-5 on mnist5k, Keras/TF vs PyTorch (target {target:.0%})")
        part_peer(args, "lenet5", mnist, "mnist5k", args.peer_epochs or 10, target)
    elif args.part == "resnet":
        target = args.target or 0.97
        T.header(f"Peer: ResNet-20 on mnist5k padded to 32x32x3, Keras/TF vs PyTorch (target {target:.0%})")
        part_peer(args, "resnet20", mnist32, mnist32, args.peer_epochs or 4, target)
    elif args.part == "gap":
        T.header("Where Keras/TF's time goes: LeNet-5 on mnist5k, one lever at a time (plain fit script)")
        part_gap(args, "lenet5", mnist, args.peer_epochs or 8)
    elif args.part == "micro":
        T.header("One training step of LeNet-5 piece by piece, TF vs torch")
        part_micro(args, "lenet5", mnist)
    elif args.part == "micro-resnet":
        T.header("One training step of ResNet-20 piece by piece, TF vs torch")
        part_micro(args, "resnet20", mnist32)
    else:
        T.header("Where Keras/TF's time goes: ResNet-20 on 32x32x3, one lever at a time (plain fit script)")
        part_gap(args, "resnet20", mnist32, args.peer_epochs or 3)


if __name__ == "__main__":
    main()
