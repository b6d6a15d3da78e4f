"""kerasdl's GCN against PyTorch Geometric's on Cora, side by side in one run.

    python benchmarks/peer_pyg.py                        # 200 epochs, seeds 0 1 2, 2 threads
    python benchmarks/peer_pyg.py --smoke                # 20 epochs, seed 0 (a minute)
    python benchmarks/peer_pyg.py --json /tmp/pyg.json

Issue #17, acceptance point 5. Both sides train Kipf & Welling's two-layer GCN (Kipf & Welling 2017,
"Semi-supervised classification with graph convolutional networks", ICLR; PyG: Fey & Lenssen 2019,
"Fast graph representation learning with PyTorch Geometric", ICLR workshop) on Cora with the
Planetoid split (Yang, Cohen & Salakhutdinov 2016): 2,708 nodes, 140 train / 500 validation /
1,000 test labels, with the same

* data: the standard ``ind.cora.*`` files from ``--data`` (default ``../shared/data/planetoid``
  beside the repository). kerasdl reads them itself (``--dataset <data>/cora``); PyG reads them
  with its own ``Planetoid(root, "Cora", transform=NormalizeFeatures())`` from a ``<work>/Cora/raw``
  folder of symlinks to the same files, so it never downloads. Features are row-normalised on
  both sides (as Kipf's code); each side reports the node count and split sizes it saw;
* model: dropout 0.5 -> GCNConv(1433 -> 16) -> ReLU -> dropout 0.5 -> GCNConv(16 -> 7), the
  symmetric normalisation with self loops. kerasdl: its ``gcn`` builder (the edge coefficients
  recomputed in every call); PyG: ``GCNConv`` as in its ``examples/gcn.py`` (``cached=True``: the
  normalised adjacency is computed once and kept; ``--pyg-uncached`` recomputes it, as kerasdl);
* optimisation: full batch, Adam at lr 0.01 for ``--epochs`` epochs, L2 on the first layer only.
  kerasdl: the ``node_classification`` task's defaults (its builder's ``L2(5e-4 / 2)`` on the first
  kernel, in the loss: gradient ``5e-4 W``; no early stopping: ``patience 0``). PyG:
  ``weight_decay=5e-4`` (coupled: gradient ``5e-4 W``) on the first convolution's parameter group,
  its bias included, 0 on the second (its example's param groups). Adam's eps: Keras 1e-7, torch
  1e-8 (the defaults);
* an epoch: one training step, then one evaluation pass in eval mode (no dropout): validation loss
  and accuracy, and on the PyG side the test accuracy from the same forward pass. kerasdl's epoch
  time is its history's ``epoch_time_s`` (step + validation); PyG's is ``time.perf_counter``
  around the same two passes.

Figures, per side, over ``--seeds`` seeds (each seed: a fresh process per side, the order of the
two alternating from seed to seed), and the ratio PyG / kerasdl (> 1: PyG takes longer):

* s per epoch, steady state: the median epoch time without the first 10 epochs (tracing, warm-up);
  the first epoch on its own too;
* time to best validation accuracy: cumulative epoch time from the first epoch to the end of
  the first epoch with the run's highest validation accuracy (and that epoch);
* test accuracy at the epoch of lowest validation loss (kerasdl: its metrics.json ``test``, from
  the best checkpoint on ``val_loss``) and with the last weights (PyG; kerasdl where its history
  logs a test accuracy);
* the whole training loop's wall time (kerasdl: ``train_seconds_this_session``, so checkpoint and
  backup writes between epochs are in) and the process, start-up included.

Timings: medians over the seeds, accuracies: mean +- std. ``--threads`` (default 2) sets torch's
intra- and inter-op threads and TensorFlow's intra- and inter-op parallelism alike. On a loaded
machine torch's OpenMP threads spin-wait for each other and lose the cores: ``--omp-passive``
runs both sides with ``OMP_WAIT_POLICY=PASSIVE`` (on this project's shared 2-core machine, PyG's
epoch at 2 threads took 776 ms spinning, 165 ms passive, 109 ms at 1 thread). Each side runs
in its own subprocess (PyG's never imports TensorFlow); run directories and PyG's processed copy
of the data go to ``$KERASDL_BENCH_DIR`` (default /tmp/benchwork). PyTorch Geometric (``pip install
torch_geometric``) is a benchmark-only dependency: kerasdl and its tests never import it.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _timing as T  # noqa: E402

SCRIPT = os.path.abspath(__file__)
DEFAULT_DATA = os.path.join(os.path.dirname(T.REPO), "shared", "data", "planetoid")
RAW = ("x", "y", "tx", "ty", "allx", "ally", "graph", "test.index")  # PyG's raw_file_names, lower-cased
WARMUP = 10  # epochs left out of the steady s per epoch
HIDDEN, DROPOUT, LR, DECAY = 16, 0.5, 0.01, 5e-4


# ----------------------------------------------------------------------------- PyG worker

def pyg_root(data: str) -> str:
    """``<work>/pyg_planetoid`` with ``Cora/raw/ind.cora.*`` symlinked to ``data``: PyG finds its raw
    files and so never downloads (it writes its processed copy beside them)."""
    root = os.path.join(T.WORKDIR, "pyg_planetoid")
    raw = os.path.join(root, "Cora", "raw")
    os.makedirs(raw, exist_ok=True)
    for part in RAW:
        name = f"ind.cora.{part}"
        src, dst = os.path.abspath(os.path.join(data, name)), os.path.join(raw, name)
        if not os.path.isfile(src):
            raise SystemExit(f"peer_pyg: {src} not found (give the Planetoid folder with --data)")
        if os.path.lexists(dst) and os.path.realpath(dst) != os.path.realpath(src):
            os.remove(dst)
        if not os.path.lexists(dst):
            os.symlink(src, dst)
    return root


def pyg_worker(a) -> None:
    import torch

    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(a.threads)
    import torch.nn.functional as F
    import torch_geometric
    import torch_geometric.transforms as Tr
    from torch_geometric.datasets import Planetoid
    from torch_geometric.nn import GCNConv

    torch_geometric.seed_everything(a.seed)
    dataset = Planetoid(pyg_root(a.data), "Cora", transform=Tr.NormalizeFeatures())  # split="public"
    data = dataset[0]

    class GCN(torch.nn.Module):
        def __init__(self, n_in: int, n_hidden: int, n_out: int):
            super().__init__()
            self.conv1 = GCNConv(n_in, n_hidden, cached=not a.pyg_uncached)
            self.conv2 = GCNConv(n_hidden, n_out, cached=not a.pyg_uncached)

        def forward(self, x, edge_index):
            x = F.dropout(x, p=DROPOUT, training=self.training)
            x = self.conv1(x, edge_index).relu()
            x = F.dropout(x, p=DROPOUT, training=self.training)
            return self.conv2(x, edge_index)

    model = GCN(dataset.num_features, HIDDEN, dataset.num_classes)
    optimizer = torch.optim.Adam([dict(params=model.conv1.parameters(), weight_decay=DECAY),
                                  dict(params=model.conv2.parameters(), weight_decay=0.0)], lr=LR)
    x, edge_index, y = data.x, data.edge_index, data.y
    masks = {"train": data.train_mask, "val": data.val_mask, "test": data.test_mask}

    def accuracy(logits, mask) -> float:
        return float((logits[mask].argmax(-1) == y[mask]).float().mean())

    rows = []
    t_loop = time.perf_counter()
    for epoch in range(1, a.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        optimizer.zero_grad()
        out = model(x, edge_index)
        loss = F.cross_entropy(out[masks["train"]], y[masks["train"]])
        loss.backward()
        optimizer.step()
        model.eval()
        with torch.no_grad():
            out = model(x, edge_index)
            val_loss = float(F.cross_entropy(out[masks["val"]], y[masks["val"]]))
            row = {"epoch": epoch, "loss": float(loss), "accuracy": accuracy(out, masks["train"]),
                   "val_loss": val_loss, "val_accuracy": accuracy(out, masks["val"]),
                   "test_accuracy": accuracy(out, masks["test"])}
        row["epoch_time_s"] = time.perf_counter() - t0
        rows.append(row)
    loop_s = time.perf_counter() - t_loop
    best = min(rows, key=lambda r: r["val_loss"])  # the first of equal losses
    T.emit({"version": torch_geometric.__version__, "torch": torch.__version__, "threads": torch.get_num_threads(),
            "nodes": int(data.num_nodes), "edges": int(data.num_edges),
            "split": [int(masks[k].sum()) for k in ("train", "val", "test")],
            "params": sum(p.numel() for p in model.parameters()), "rows": rows, "loop_s": loop_s,
            "test_accuracy_best_val_loss": best["test_accuracy"], "best_val_loss_epoch": best["epoch"],
            "test_accuracy_last": rows[-1]["test_accuracy"]})


# ----------------------------------------------------------------------------- kerasdl worker

def kerasdl_config(a, output_dir: str):
    from kerasdl.config import RunConfig

    # from_mapping, as the command line: the task's defaults (Adam lr 0.01, constant, no early stop) for
    # the fields not given.
    return RunConfig.from_mapping(dict(
        task="node_classification", model="gcn", dataset=os.path.join(os.path.abspath(a.data), "cora"),
        epochs=a.epochs, seed=a.seed, patience=0, output_dir=output_dir, calibrate=False,
        name=f"peer_pyg_seed{a.seed}_threads{a.threads}"))


def kerasdl_worker(a) -> None:
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(a.threads)
    tf.config.threading.set_inter_op_parallelism_threads(a.threads)
    from kerasdl.engine.fit import train

    out = os.path.join(T.WORKDIR, "runs")
    result = train(kerasdl_config(a, out), overwrite=True, progress=False, echo=lambda *_: None)
    run = result.run_dir
    with open(os.path.join(run, "history.csv"), newline="", encoding="utf-8") as f:
        raw = list(csv.DictReader(f))
    with open(os.path.join(run, "metrics.json"), encoding="utf-8") as f:
        metrics = json.load(f)
    rows = []
    for i, r in enumerate(raw):  # epochs counted from 1, whatever history.csv counts from
        rows.append({"epoch": i + 1, "epoch_time_s": float(r["epoch_time_s"]), "val_loss": _float(r.get("val_loss")),
                     "val_accuracy": _float(r.get("val_accuracy")), "loss": _float(r.get("loss")),
                     "accuracy": _float(r.get("accuracy")), "test_accuracy": _float(r.get("test_accuracy"))})
    test = metrics.get("test") or {}
    note = None
    split = nodes = None
    try:
        with open(os.path.join(run, "dataset.json"), encoding="utf-8") as f:
            info = json.load(f)
        s = info.get("splits") or {}
        split = [s.get(k) for k in ("train", "validation", "test")]
        nodes = info.get("nodes") or info.get("num_nodes") or (info.get("graph") or {}).get("nodes")
    except (OSError, ValueError, AttributeError):
        pass
    best = min((r for r in rows if r["val_loss"] is not None), key=lambda r: r["val_loss"], default=None)
    T.emit({"version": _kerasdl_version(), "tensorflow": tf.__version__,
            "threads": tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count(),
            "nodes": nodes, "split": split, "rows": rows,
            "loop_s": metrics.get("train_seconds_this_session"),
            "test_accuracy_best_val_loss": test.get("accuracy"),
            "best_val_loss_epoch": best["epoch"] if best else None,
            "test_accuracy_last": rows[-1]["test_accuracy"] if rows else None, "run_dir": run, "note": note})


def _float(v):
    return None if v in (None, "") else float(v)


def _kerasdl_version() -> str:
    try:
        from importlib.metadata import version

        return version("kerasdl")
    except Exception:  # noqa: BLE001 - an editable checkout without metadata
        return "checkout"


# ----------------------------------------------------------------------------- figures

def figures(r: dict) -> dict:
    """One seed's figures from one side's per-epoch rows."""
    rows = r["rows"]
    times = [row["epoch_time_s"] for row in rows]
    steady = times[WARMUP:] if len(times) > WARMUP else times
    val = [row["val_accuracy"] for row in rows]
    best_i = max(range(len(val)), key=lambda i: (val[i], -i))  # the first epoch at the highest
    return {"s_per_epoch": statistics.median(steady), "first_epoch_s": times[0],
            "time_to_best_val_s": sum(times[:best_i + 1]), "best_val_epoch": best_i + 1,
            "best_val_accuracy": val[best_i], "epochs_s": sum(times), "loop_s": r.get("loop_s"),
            "test_accuracy_best_val_loss": r.get("test_accuracy_best_val_loss"),
            "best_val_loss_epoch": r.get("best_val_loss_epoch"),
            "test_accuracy_last": r.get("test_accuracy_last"), "final_val_accuracy": val[-1],
            "process_s": r.get("process_s")}


def summary(per_seed: list[dict]) -> dict:
    """Medians of the timings, mean and std of the accuracies, over the seeds."""
    out = {}
    for key in per_seed[0]:
        values = [f[key] for f in per_seed if f[key] is not None]
        if not values:
            out[key] = None
        elif "accuracy" in key:
            out[key] = (statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0)
        else:
            out[key] = statistics.median(values)
    return out


def table(sk: dict, sp: dict, a) -> str:
    def ratio(key):
        k, p = sk[key], sp[key]
        return f"**{p / k:.2f}**" if k and p is not None else "–"

    def ms(v):
        return "–" if v is None else f"{v * 1e3:.2f}"

    def secs(v):
        return "–" if v is None else f"{v:.2f} s"

    def acc(v):
        return "–" if v is None else f"{v[0]:.3f} ± {v[1]:.3f}"

    def ep(v):
        return "–" if v is None else f"{v:g}"

    n = len(a.seeds)
    lines = [f"| figure ({n} seed{'s' if n > 1 else ''}) | kerasdl | PyG | PyG / kerasdl |", "|---|---:|---:|---:|",
             f"| ms per epoch, steady (median, epochs {WARMUP + 1}..{a.epochs}) | {ms(sk['s_per_epoch'])} "
             f"| {ms(sp['s_per_epoch'])} | {ratio('s_per_epoch')} |",
             f"| first epoch (tracing, warm-up) | {secs(sk['first_epoch_s'])} | {secs(sp['first_epoch_s'])} "
             f"| {ratio('first_epoch_s')} |",
             f"| time to best val accuracy | {secs(sk['time_to_best_val_s'])} | {secs(sp['time_to_best_val_s'])} "
             f"| {ratio('time_to_best_val_s')} |",
             f"| epoch of best val accuracy (median) | {ep(sk['best_val_epoch'])} | {ep(sp['best_val_epoch'])} | |",
             f"| all {a.epochs} epochs (sum of epoch times) | {secs(sk['epochs_s'])} | {secs(sp['epochs_s'])} "
             f"| {ratio('epochs_s')} |",
             f"| training loop wall time | {secs(sk['loop_s'])} | {secs(sp['loop_s'])} | {ratio('loop_s')} |",
             f"| process, start-up included | {secs(sk['process_s'])} | {secs(sp['process_s'])} "
             f"| {ratio('process_s')} |",
             f"| best val accuracy | {acc(sk['best_val_accuracy'])} | {acc(sp['best_val_accuracy'])} | |",
             f"| test accuracy, lowest-val-loss epoch | {acc(sk['test_accuracy_best_val_loss'])} "
             f"| {acc(sp['test_accuracy_best_val_loss'])} | |",
             f"| test accuracy, last epoch | {acc(sk['test_accuracy_last'])} | {acc(sp['test_accuracy_last'])} | |"]
    return "\n".join(lines)


def verdict(sk: dict, sp: dict) -> str:
    """The per-epoch and time-to-best ratios said both ways."""
    out = []
    for key, what in (("s_per_epoch", "per steady epoch"), ("time_to_best_val_s", "to its best val accuracy")):
        k, p = sk[key], sp[key]
        if k and p:
            faster, x = ("kerasdl", p / k) if p >= k else ("PyG", k / p)
            out.append(f"{what}: {faster} is {x:.2f}x faster "
                       f"(PyG / kerasdl = {p / k:.2f}, kerasdl / PyG = {k / p:.2f})")
    return "\n".join(out)


# ----------------------------------------------------------------------------- main

def worker_argv(kind: str, a, seed: int) -> list[str]:
    argv = [SCRIPT, "--worker", kind, "--data", a.data, "--epochs", str(a.epochs), "--seed", str(seed),
            "--threads", str(a.threads)]
    return argv + (["--pyg-uncached"] if a.pyg_uncached else [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=DEFAULT_DATA, help="folder with the ind.cora.* files "
                        "(default ../shared/data/planetoid beside the repository)")
    parser.add_argument("--epochs", type=int, default=200, help="epochs per run (default 200)")
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds, 0..N-1 (default 3)")
    parser.add_argument("--threads", type=int, default=2, help="torch and TensorFlow intra/inter-op threads "
                        "(default 2)")
    parser.add_argument("--pyg-uncached", action="store_true", help="PyG's GCNConv with cached=False: the "
                        "normalised adjacency recomputed every call, as kerasdl does")
    parser.add_argument("--omp-passive", action="store_true", help="OMP_WAIT_POLICY=PASSIVE for both sides "
                        "(OpenMP threads sleep instead of spinning: a loaded machine)")
    parser.add_argument("--smoke", action="store_true", help="a quick check: 20 epochs, 1 seed")
    parser.add_argument("--json", metavar="PATH", help="also write every figure and epoch as JSON")
    parser.add_argument("--worker", choices=("pyg", "kerasdl"), help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    a = parser.parse_args()
    a.data = os.path.abspath(a.data)
    if a.worker == "pyg":
        return pyg_worker(a)
    if a.worker == "kerasdl":
        return kerasdl_worker(a)
    if a.smoke:
        a.epochs, a.seeds = 20, 1
    if a.epochs < 1 or a.seeds < 1 or a.threads < 1:
        parser.error("--epochs, --seeds and --threads must be >= 1")
    if not os.path.isfile(os.path.join(a.data, "ind.cora.graph")):
        parser.error(f"no ind.cora.* files in {a.data} (give the Planetoid folder with --data)")
    a.seeds = list(range(a.seeds))
    os.environ.update(T.QUIET_ENV)
    T.header("kerasdl GCN vs PyTorch Geometric GCN, Cora (Planetoid split)")
    os.makedirs(T.WORKDIR, exist_ok=True)
    print(f"{a.epochs} epochs, seeds {', '.join(map(str, a.seeds))}, {a.threads} threads per side, "
          f"data {a.data}\n", flush=True)
    timeout = 600 + 5 * a.epochs
    raw = {"kerasdl": [], "pyg": []}
    for i, seed in enumerate(a.seeds):
        for kind in T.interleave(i, ["kerasdl", "pyg"]):
            t0 = time.perf_counter()
            r = T.run_worker(worker_argv(kind, a, seed), timeout=timeout,
                             extra_env={"OMP_WAIT_POLICY": "PASSIVE"} if a.omp_passive else None)
            r["process_s"] = time.perf_counter() - t0
            raw[kind].append(r)
            print(f"seed {seed} {kind}: done in {r['process_s']:.0f} s (process included), "
                  f"{len(r['rows'])} epochs", flush=True)
    rk, rp = raw["kerasdl"][0], raw["pyg"][0]
    fk = [figures(r) for r in raw["kerasdl"]]
    fp = [figures(r) for r in raw["pyg"]]
    sk, sp = summary(fk), summary(fp)
    print(f"\nkerasdl {rk['version']} (TensorFlow {rk['tensorflow']}, {rk['threads']} threads); PyG {rp['version']} "
          f"(torch {rp['torch']}, {rp['threads']} threads, GCNConv cached={not a.pyg_uncached}), float32, CPU"
          f"{', OMP_WAIT_POLICY=PASSIVE' if a.omp_passive else ''}")
    print(f"Cora as each side saw it: kerasdl {rk['nodes'] or '?'} nodes, split "
          f"{'/'.join(str(s) for s in rk['split']) if rk['split'] else '?'}; PyG {rp['nodes']} nodes, "
          f"{rp['edges']} directed edges, split {'/'.join(map(str, rp['split']))}, {rp['params']:,} parameters\n")
    for note in sorted({r.get("note") for r in raw["kerasdl"]} - {None}):
        print(f"Note: {note}.\n")
    print(table(sk, sp, a))
    print("\n" + verdict(sk, sp))
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f} (timings on a loaded machine are not comparable)")
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump({"args": {k: v for k, v in vars(a).items() if k not in ("worker", "seed")},
                       "kerasdl": {"summary": sk, "seeds": fk, "raw": raw["kerasdl"]},
                       "pyg": {"summary": sp, "seeds": fp, "raw": raw["pyg"]}}, f, indent=1)
        print(f"\nwrote {a.json}")


if __name__ == "__main__":
    main()
