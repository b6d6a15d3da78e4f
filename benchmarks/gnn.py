"""The graph-network figures of the README (issue #17), from real kerasdl trainings.

    python benchmarks/gnn.py cora            # GCN and GAT on Cora, Planetoid split, 10 seeds each
    python benchmarks/gnn.py citeseer        # GCN on Citeseer, 10 seeds
    python benchmarks/gnn.py karate          # GCN on the karate club, one labelled node per faction, 10 seeds
    python benchmarks/gnn.py cycles          # GIN vs the readout-only DeepSets baseline, 3 seeds
    python benchmarks/gnn.py all --data ../shared/data/planetoid --json /tmp/gnn.json --plots docs/img

Every run is ``kerasdl.engine.fit.train`` in this process (the same code path as ``kerasdl train``;
one process, so TensorFlow's import is paid once) with the task's defaults: the papers' settings
(GCN: Adam lr 0.01, GAT: lr 0.005; 200 full-batch epochs, dropout and L2 as in the papers, no early
stop), and the test figure is the best-validation-loss checkpoint's, read back from the run's
metrics.json. Seeds 0..n-1. Cora/Citeseer read the Planetoid files from ``--data`` (the
restricted unpickler of kerasdl.data.graphs).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

# Published anchors (../shared/REFERENCES.md): paper, DGL reproduction.
ANCHORS = {
    ("cora", "gcn"): ("81.5 (Kipf & Welling 2017)", "0.810"),
    ("cora", "gat"): ("83.0 ± 0.7 (Velickovic et al. 2018)", "0.821"),
    ("citeseer", "gcn"): ("70.3 (Kipf & Welling 2017)", "0.707"),
}
TARGETS = {("cora", "gcn"): 0.810, ("cora", "gat"): 0.820, ("citeseer", "gcn"): 0.70}


def train(workdir: str, name: str, **fields) -> tuple[dict, list[dict], float]:
    """One run (in-process): (metrics.json, history rows, wall seconds)."""
    import keras

    from kerasdl.config import RunConfig
    from kerasdl.engine.callbacks import read_history
    from kerasdl.engine.fit import train as fit

    keras.backend.clear_session()
    config = RunConfig.from_mapping(dict(output_dir=workdir, name=name, **fields)).resolved()  # as the CLI
    start = time.perf_counter()
    result = fit(config, overwrite=True, progress=False, echo=lambda *a: None)
    wall = time.perf_counter() - start
    metrics = json.load(open(os.path.join(result.run_dir, "metrics.json")))
    return metrics, read_history(os.path.join(result.run_dir, "history.csv")), wall


def seeds_of(workdir: str, label: str, seeds: int, **fields) -> dict:
    """``seeds`` runs of one config: test accuracies, mean ± std, time per run."""
    accs, walls, epochs_s, eces = [], [], [], []
    for seed in range(seeds):
        metrics, rows, wall = train(workdir, f"{label}-s{seed}", seed=seed, **fields)
        accs.append(float(metrics["test"]["accuracy"]))
        eces.append(float(metrics["test"]["ece"]))
        walls.append(wall)
        epochs_s.append(statistics.median(r["epoch_time_s"] for r in rows[5:] or rows))
        print(f"  {label} seed {seed}: test accuracy {accs[-1]:.4f}  ({wall:.1f} s)", flush=True)
    return {"accuracies": accs, "mean": statistics.mean(accs), "std": statistics.pstdev(accs),
            "ece_mean": statistics.mean(eces), "wall_s_mean": statistics.mean(walls),
            "epoch_s_median": statistics.median(epochs_s)}


def planetoid(workdir: str, data: str, name: str, models: list[str], seeds: int) -> tuple[list[str], dict]:
    lines, out = [], {}
    for model in models:
        r = seeds_of(workdir, f"{name}-{model}", seeds, dataset=os.path.join(data, name), model=model)
        paper, dgl = ANCHORS[(name, model)]
        target = TARGETS[(name, model)]
        verdict = "meets" if r["mean"] >= target else "BELOW"
        lines.append(f"| {model.upper() if model != 'graphsage' else 'GraphSAGE'} | {name.capitalize()} | "
                     f"{r['mean']:.3f} ± {r['std']:.3f} ({seeds} seeds) | {paper} | {dgl} | >= {target} ({verdict}) | "
                     f"{r['wall_s_mean']:.1f} s |")
        out[f"{name}/{model}"] = r
    return lines, out


def karate(workdir: str, seeds: int, plots: str | None) -> tuple[list[str], dict]:
    r = seeds_of(workdir, "karate-gcn", seeds, dataset="karate", model="gcn")
    if plots:
        shutil.copy(os.path.join(workdir, "karate-gcn-s0", "plots", "embedding_test.png"),
                    os.path.join(plots, "gnn_karate_embedding.png"))
    return [f"| GCN | karate (1 labelled node per faction, 32 held out) | {r['mean']:.3f} ± {r['std']:.3f} "
            f"({seeds} seeds) | | | | {r['wall_s_mean']:.1f} s |"], {"karate/gcn": r}


def cycles(workdir: str, seeds: int) -> tuple[list[str], dict]:
    lines, out = [], {}
    for model in ("gin", "deepsets"):
        r = seeds_of(workdir, f"cycles-{model}", seeds, dataset="cycles", model=model)
        lines.append(f"| {'GIN-0' if model == 'gin' else 'DeepSets (readout only)'} | cycles (0 / 1 / 2 cycles, "
                     f"chance 1/3) | {r['mean']:.3f} ± {r['std']:.3f} ({seeds} seeds) | | | | {r['wall_s_mean']:.1f} s |")
        out[f"cycles/{model}"] = r
    return lines, out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("suite", choices=("cora", "citeseer", "karate", "cycles", "all"))
    parser.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data",
                                                       "planetoid"), help="folder of the Planetoid files")
    parser.add_argument("--seeds", type=int, default=0, help="seeds per config (default: 10; cycles 3)")
    parser.add_argument("--models", default="gcn,gat", help="cora suite: models (comma-separated)")
    parser.add_argument("--keep", help="work in this folder and keep the runs (default: a temporary folder)")
    parser.add_argument("--plots", help="copy the figures here (e.g. docs/img)")
    parser.add_argument("--json", help="write the figures to this JSON file")
    a = parser.parse_args(argv)
    os.environ.setdefault("KERASDL_OFFLINE", "1")
    workdir = a.keep or tempfile.mkdtemp(prefix="kerasdl-gnn-")
    os.makedirs(workdir, exist_ok=True)
    suites = ("cora", "citeseer", "karate", "cycles") if a.suite == "all" else (a.suite,)
    lines, figures = [], {}
    start = time.perf_counter()
    for s in suites:
        if s == "cora":
            got = planetoid(workdir, a.data, "cora", a.models.split(","), a.seeds or 10)
        elif s == "citeseer":
            got = planetoid(workdir, a.data, "citeseer", ["gcn"], a.seeds or 10)
        elif s == "karate":
            got = karate(workdir, a.seeds or 10, a.plots)
        else:
            got = cycles(workdir, a.seeds or 3)
        lines += got[0]
        figures.update(got[1])
    print("\n| model | data | test accuracy, ours | paper | DGL | target | s per run |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(lines))
    print(f"\n{time.perf_counter() - start:.0f} s in all; runs in {workdir}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(figures, f, indent=1)
    if not a.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
