"""kerasdl's PINN task against DeepXDE (PyTorch backend) on Raissi's Burgers problem, side by side.

    python benchmarks/peer_deepxde.py                    # Adam 5,000 + L-BFGS 10,000, N_f = 10,000
    python benchmarks/peer_deepxde.py --smoke            # Adam 100 + L-BFGS 50, N_f = 1,000 (a minute)
    python benchmarks/peer_deepxde.py --json /tmp/deepxde.json

Issue #16. Both sides solve ``u_t + u u_x - (0.01/pi) u_xx = 0`` on [-1, 1] x [0, 1] (Raissi,
Perdikaris & Karniadakis 2019, "Physics-informed neural networks", J. Comput. Phys. 378; DeepXDE:
Lu, Meng, Mao & Karniadakis 2021, "DeepXDE: a deep learning library for solving differential
equations", SIAM Review 63) with the same

* network: 2 -> 8 x 20 tanh -> 1, the inputs rescaled to [-1, 1] from the domain's box (kerasdl's
  ``pinn_mlp``; DeepXDE's ``FNN`` with ``apply_feature_transform``), Glorot-normal kernels and zero
  biases, float64. By default DeepXDE starts from kerasdl's very initial weights (copied in), so
  both runs start at the same point (``--own-init``: DeepXDE draws its own Glorot-normal weights);
* points: kerasdl's collocation points (Latin hypercube, from ``--seed``), given to DeepXDE as
  ``anchors`` with ``num_domain=0, num_boundary=0``, and kerasdl's 100 condition points (initial +
  boundary) as ONE ``PointSetBC``, so both losses are ``mean(residual^2) + mean(condition error^2)``;
* optimisation: full batch, Adam (lr 1e-3, constant) for ``--adam`` iterations, then L-BFGS for
  ``--lbfgs`` iterations. kerasdl: its own graph-mode L-BFGS (memory 50, Armijo backtracking, stops
  only when ||g|| <= 1e-12). DeepXDE: ``torch.optim.LBFGS`` through ``dde.optimizers.set_LBFGS_options
  (maxcor=50, gtol=1e-12, maxiter=L)`` (strong-Wolfe line search, ftol 0), run in chunks of 250
  iterations (DeepXDE's own default chunk is min(1000, L)), each ``train`` step of DeepXDE's loop;
  DeepXDE ends the phase itself when a chunk makes a single iteration (its "converged" test);
* bookkeeping: every 250 iterations each side computes its training loss (kerasdl: a history row;
  DeepXDE: ``display_every=250``) and the relative L2 error on the same 2,000 validation points of
  the reference grid. DeepXDE's validation (and the copy of its lowest-loss weights) is left out of
  its clock; kerasdl's clock is its history's ``epoch_time_s`` (validation on the 2,000 points
  included: a single forward pass). Adam's eps: Keras 1e-7, torch 1e-8 (the libraries' defaults).

Figures, per side and the ratio DeepXDE / kerasdl:

* s per Adam iteration, steady state: the first 250-iteration block (tracing, warm-up) left out;
* s per L-BFGS iteration (also steady: the first block left out when there are two or more) and
  loss evaluations per L-BFGS iteration (the line searches differ);
* time to reach val relative L2 <= 1e-3 (``--target``): cumulative training time, from the first
  Adam iteration to the end of the first 250-iteration block at or below the target;
* relative L2 on the full 256 x 101 reference grid with the weights of the lowest logged loss (what
  kerasdl keeps), and DeepXDE's last weights too;
* iterations each optimizer actually ran.

Each side runs in a fresh subprocess (DeepXDE's never imports TensorFlow); the points, the
validation and test grids and kerasdl's initial weights go through an ``.npz`` in
``$KERASDL_BENCH_DIR`` (default /tmp/benchwork). DeepXDE (``pip install deepxde``) is a
benchmark-only dependency; it runs with ``DDE_BACKEND=pytorch`` and ``--threads`` torch threads.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _timing as T  # noqa: E402

SCRIPT = os.path.abspath(__file__)
BLOCK = 250  # iterations per logged block on both sides (kerasdl's log_every)
DEPTH, WIDTH = 8, 20


def kerasdl_config(a, output_dir: str | None = None):
    from kerasdl.config import RunConfig

    return RunConfig(task="pinn", task_options={
        "problem": "burgers", "n_collocation": a.points, "n_conditions": a.conditions, "adam_steps": a.adam,
        "lbfgs_steps": a.lbfgs, "log_every": BLOCK}, schedule="constant", learning_rate=a.lr, seed=a.seed,
        output_dir=output_dir or os.path.join(T.WORKDIR, "runs"), name="peer_deepxde",
        model_options={"depth": DEPTH, "width": WIDTH})


# ----------------------------------------------------------------------------- shared inputs

def prepare(a, path: str) -> dict:
    """kerasdl's points, validation / test grids and initial weights, written to ``path`` (.npz)."""
    import numpy as np

    from kerasdl.tasks.pinn import PINNTask

    task = PINNTask(kerasdl_config(a).resolved(), None)
    pts = task.points()
    conditions = pts["conditions"]
    x_b = np.concatenate([p for _, p, _ in conditions])
    u_b = np.concatenate([np.reshape(v, (-1, 1)) for _, _, v in conditions])
    data, _ = task.make_data(("validation", "test"))
    (x_val, u_val), = [tuple(np.asarray(t) for t in e) for e in data["validation"]]
    (x_test, u_test), = [tuple(np.asarray(t) for t in e) for e in data["test"]]
    model = task.build()
    weights = {}
    for i, layer in enumerate([f"hidden{k}" for k in range(1, DEPTH + 1)] + ["output"]):
        kernel, bias = (np.asarray(w) for w in model.net.get_layer(layer).get_weights())
        weights[f"kernel{i}"], weights[f"bias{i}"] = kernel, bias
    problem = task.problem
    np.savez(path, x_f=pts["collocation"][:pts["active"]], x_b=x_b, u_b=u_b, x_val=x_val, u_val=u_val,
             x_test=x_test, u_test=u_test, low=np.array(problem.low()), high=np.array(problem.high()),
             nu=np.array(problem.params["nu"]), **weights)
    return {"n_f": int(pts["active"]), "n_b": len(x_b), "n_val": len(x_val), "n_test": len(x_test),
            "params": int(model.net.count_params())}


# ----------------------------------------------------------------------------- DeepXDE worker

def deepxde_worker(a) -> None:
    os.environ["DDE_BACKEND"] = "pytorch"
    import copy

    import numpy as np
    import torch

    torch.set_num_threads(a.threads)
    import deepxde as dde

    dde.config.set_default_float("float64")
    dde.config.set_random_seed(a.seed)
    d = T.load_npz(a.data)
    low, high, nu = d["low"], d["high"], float(d["nu"])

    def pde(x, u):
        u_x = dde.grad.jacobian(u, x, i=0, j=0)
        u_t = dde.grad.jacobian(u, x, i=0, j=1)
        u_xx = dde.grad.hessian(u, x, i=0, j=0)
        return u_t + u * u_x - nu * u_xx

    geom = dde.geometry.GeometryXTime(dde.geometry.Interval(low[0], high[0]), dde.geometry.TimeDomain(low[1], high[1]))
    bc = dde.icbc.PointSetBC(d["x_b"], d["u_b"], component=0)
    data = dde.data.TimePDE(geom, pde, [bc], num_domain=0, num_boundary=0, num_initial=0, anchors=d["x_f"])
    net = dde.nn.FNN([2] + [WIDTH] * DEPTH + [1], "tanh", "Glorot normal")
    centre = torch.tensor((low + high) / 2.0, dtype=torch.float64)
    half = torch.tensor((high - low) / 2.0, dtype=torch.float64)
    net.apply_feature_transform(lambda x: (x - centre) / half)
    if not a.own_init:
        with torch.no_grad():
            for i, layer in enumerate(net.linears):
                layer.weight.copy_(torch.from_numpy(d[f"kernel{i}"].T.copy()))
                layer.bias.copy_(torch.from_numpy(d[f"bias{i}"]))
    model = dde.Model(data, net)
    x_val, u_val = d["x_val"], d["u_val"][:, 0]

    def rel_l2(x, u_ref):
        u = model.predict(x)[:, 0]
        return float(np.linalg.norm(u - u_ref) / np.linalg.norm(u_ref))

    log = {"blocks": [], "best": None}  # blocks: phase, iterations, train seconds, loss, val_rel_l2

    class Clock(dde.callbacks.Callback):
        """Ends of 250-iteration blocks: training time (validation left out), loss, val rel L2."""

        def __init__(self, phase: str, total: int):
            super().__init__()
            self.phase, self.total = phase, total

        def on_train_begin(self):
            self.start_iter = self.model.train_state.iteration
            self.done = self.evals = 0
            self.t_last = time.perf_counter()

        def iterations(self) -> int:
            if self.phase == "adam":
                return self.model.train_state.iteration - self.start_iter
            state = self.model.opt.state_dict()["state"]
            return int(state[0]["n_iter"]) if state else 0

        def on_epoch_begin(self):
            if self.phase == "lbfgs":  # the last chunk: only what is left of the budget
                group = self.model.opt.param_groups[0]
                group["max_iter"] = max(1, min(BLOCK, self.total - self.iterations()))
                group["max_eval"] = group["max_iter"] * 5 // 4

        def on_epoch_end(self):
            n = self.iterations()
            if self.phase == "adam" and n % BLOCK and n != self.total:
                return
            self.record(n)

        def on_train_end(self):  # DeepXDE's "converged" break skips its _test: the loss is the chunk before's
            n = self.iterations()
            if n != self.done:
                self.record(n)

        def record(self, n: int) -> None:
            now = time.perf_counter()
            seconds, self.t_last = now - self.t_last, now
            loss = float(np.sum(self.model.train_state.loss_train))
            evals = None
            if self.phase == "lbfgs":  # torch's count is cumulative
                total = int(self.model.opt.state_dict()["state"][0]["func_evals"])
                evals, self.evals = total - self.evals, total
            row = {"phase": self.phase, "iterations": n - self.done, "seconds": seconds, "loss": loss,
                   "val_rel_l2": rel_l2(x_val, u_val), "func_evals": evals}
            log["blocks"].append(row)
            self.done = n
            if log["best"] is None or loss < log["best"][0]:
                log["best"] = (loss, copy.deepcopy(net.state_dict()))
            self.t_last = time.perf_counter()  # validation and the weight copy: off the clock

    model.compile("adam", lr=a.lr)
    if a.adam:
        model.train(iterations=a.adam, display_every=BLOCK, callbacks=[Clock("adam", a.adam)], verbose=0)
    lbfgs_iterations, lbfgs_evals = 0, 0
    if a.lbfgs:
        dde.optimizers.set_LBFGS_options(maxcor=a.lbfgs_memory, gtol=1e-12, maxiter=a.lbfgs)
        dde.optimizers.config.LBFGS_options["iter_per_step"] = min(BLOCK, a.lbfgs)
        dde.optimizers.config.LBFGS_options["fun_per_step"] = min(BLOCK, a.lbfgs) * 5 // 4
        model.compile("L-BFGS")
        model.train(display_every=BLOCK, callbacks=[Clock("lbfgs", a.lbfgs)], verbose=0)
        state = model.opt.state_dict()["state"]
        lbfgs_iterations = int(state[0]["n_iter"]) if state else 0
        lbfgs_evals = int(state[0]["func_evals"]) if state else 0
    last = rel_l2(d["x_test"], d["u_test"][:, 0])
    net.load_state_dict(log["best"][1])
    best = rel_l2(d["x_test"], d["u_test"][:, 0])
    T.emit({"version": dde.__version__, "torch": torch.__version__, "threads": torch.get_num_threads(),
            "blocks": log["blocks"], "adam_iterations": sum(b["iterations"] for b in log["blocks"]
                                                            if b["phase"] == "adam"),
            "lbfgs_iterations": lbfgs_iterations, "lbfgs_evaluations": lbfgs_evals,
            "test_rel_l2": best, "test_rel_l2_last": last, "best_loss": log["best"][0],
            "params": sum(p.numel() for p in net.parameters())})


# ----------------------------------------------------------------------------- kerasdl worker

def kerasdl_worker(a) -> None:
    import tensorflow as tf

    from kerasdl.engine.fit import train

    out = os.path.join(T.WORKDIR, "runs")
    result = train(kerasdl_config(a, out), overwrite=True, progress=False, echo=lambda *_: None)
    with open(os.path.join(result.run_dir, "history.csv"), newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    with open(os.path.join(result.run_dir, "metrics.json"), encoding="utf-8") as f:
        metrics = json.load(f)
    blocks, done = [], 0
    for r in rows:
        it = int(float(r["iteration"]))
        phase = "adam" if float(r["phase"]) == 0.0 else "lbfgs"
        evals = r.get("lbfgs_evaluations")
        blocks.append({"phase": phase, "iterations": it - done, "seconds": float(r["epoch_time_s"]),
                       "loss": float(r["loss"]), "val_rel_l2": float(r["val_rel_l2"]),
                       "func_evals": int(float(evals)) if phase == "lbfgs" and evals not in (None, "") else None})
        done = it
    T.emit({"version": _kerasdl_version(), "tensorflow": tf.__version__,
            "threads": tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count(),
            "blocks": blocks, "adam_iterations": sum(b["iterations"] for b in blocks if b["phase"] == "adam"),
            "lbfgs_iterations": sum(b["iterations"] for b in blocks if b["phase"] == "lbfgs"),
            "lbfgs_evaluations": sum(b["func_evals"] or 0 for b in blocks if b["phase"] == "lbfgs"),
            "test_rel_l2": metrics["test"]["rel_l2"], "test_rel_l2_last": None,
            "best_loss": min(b["loss"] for b in blocks), "run_dir": result.run_dir})


def _kerasdl_version() -> str:
    try:
        from importlib.metadata import version

        return version("kerasdl")
    except Exception:  # noqa: BLE001 - an editable checkout without metadata
        return "checkout"


# ----------------------------------------------------------------------------- figures

def per_iteration(blocks: list, phase: str) -> tuple[float | None, bool]:
    """(s per iteration, steady): the phase's blocks without its first when there are two or more."""
    rows = [b for b in blocks if b["phase"] == phase and b["iterations"] > 0]
    if not rows:
        return None, False
    steady = len(rows) > 1
    rows = rows[1:] if steady else rows
    return sum(b["seconds"] for b in rows) / sum(b["iterations"] for b in rows), steady


def time_to_target(blocks: list, target: float) -> tuple[float | None, int | None]:
    t, it = 0.0, 0
    for b in blocks:
        t += b["seconds"]
        it += b["iterations"]
        if b["val_rel_l2"] <= target:
            return t, it
    return None, None


def figures(r: dict, target: float) -> dict:
    adam, adam_steady = per_iteration(r["blocks"], "adam")
    lbfgs, lbfgs_steady = per_iteration(r["blocks"], "lbfgs")
    ttt, ttt_it = time_to_target(r["blocks"], target)
    return {"adam_s_per_iter": adam, "adam_steady": adam_steady, "lbfgs_s_per_iter": lbfgs,
            "lbfgs_steady": lbfgs_steady,
            "lbfgs_evals_per_iter": (r["lbfgs_evaluations"] / r["lbfgs_iterations"]) if r["lbfgs_iterations"]
            else None,
            "time_to_target_s": ttt, "iterations_to_target": ttt_it,
            "train_s": sum(b["seconds"] for b in r["blocks"]),
            "adam_iterations": r["adam_iterations"], "lbfgs_iterations": r["lbfgs_iterations"],
            "test_rel_l2": r["test_rel_l2"], "test_rel_l2_last": r["test_rel_l2_last"],
            "best_loss": r["best_loss"], "final_val_rel_l2": r["blocks"][-1]["val_rel_l2"] if r["blocks"] else None}


def table(fk: dict, fd: dict, a) -> str:
    def ratio(key):
        k, d = fk[key], fd[key]
        return f"{d / k:.2f}" if k and d is not None else "–"

    def ms(v):
        return "–" if v is None else f"{v * 1e3:.2f}"

    def sci(v):
        return "–" if v is None else f"{v:.2e}"

    def secs(v, it):
        return "not reached" if v is None else f"{v:.1f} s ({it:,} it)"

    lines = ["| figure | kerasdl | DeepXDE (PyTorch) | DeepXDE / kerasdl |", "|---|---:|---:|---:|",
             f"| ms per Adam iteration{' (steady)' if fk['adam_steady'] else ''} | {ms(fk['adam_s_per_iter'])} "
             f"| {ms(fd['adam_s_per_iter'])} | {ratio('adam_s_per_iter')} |",
             f"| ms per L-BFGS iteration{' (steady)' if fk['lbfgs_steady'] else ''} | {ms(fk['lbfgs_s_per_iter'])} "
             f"| {ms(fd['lbfgs_s_per_iter'])} | {ratio('lbfgs_s_per_iter')} |",
             f"| loss evaluations per L-BFGS iteration | {T.fmt(fk['lbfgs_evals_per_iter'], '.2f')} "
             f"| {T.fmt(fd['lbfgs_evals_per_iter'], '.2f')} | {ratio('lbfgs_evals_per_iter')} |",
             f"| time to val rel L2 <= {a.target:g} | {secs(fk['time_to_target_s'], fk['iterations_to_target'])} "
             f"| {secs(fd['time_to_target_s'], fd['iterations_to_target'])} | {ratio('time_to_target_s')} |",
             f"| training time, all blocks | {fk['train_s']:.1f} s | {fd['train_s']:.1f} s | {ratio('train_s')} |",
             f"| Adam iterations run | {fk['adam_iterations']:,} | {fd['adam_iterations']:,} | |",
             f"| L-BFGS iterations run (of {a.lbfgs:,}) | {fk['lbfgs_iterations']:,} | {fd['lbfgs_iterations']:,} | |",
             f"| lowest logged loss | {sci(fk['best_loss'])} | {sci(fd['best_loss'])} | |",
             f"| val rel L2, last block | {sci(fk['final_val_rel_l2'])} | {sci(fd['final_val_rel_l2'])} | |",
             f"| test rel L2 (256 x 101 grid, lowest-loss weights) | {sci(fk['test_rel_l2'])} "
             f"| {sci(fd['test_rel_l2'])} | {ratio('test_rel_l2')} |",
             f"| test rel L2, last weights | | {sci(fd['test_rel_l2_last'])} | |"]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main

def add_args(p) -> None:
    p.add_argument("--adam", type=int, default=5000, help="Adam iterations (default 5000)")
    p.add_argument("--lbfgs", type=int, default=10000, help="L-BFGS iteration budget (default 10000)")
    p.add_argument("--points", type=int, default=10000, help="collocation points N_f (default 10000)")
    p.add_argument("--conditions", type=int, default=100, help="initial + boundary points N_u (default 100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lbfgs-memory", type=int, default=50, help="L-BFGS memory on the DeepXDE side (kerasdl: 50)")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2, as TensorFlow's here)")
    p.add_argument("--own-init", action="store_true", help="DeepXDE draws its own Glorot-normal initial weights")


def worker_argv(kind: str, a, data: str) -> list[str]:
    argv = [SCRIPT, "--worker", kind, "--data", data, "--adam", str(a.adam), "--lbfgs", str(a.lbfgs),
            "--points", str(a.points), "--conditions", str(a.conditions), "--seed", str(a.seed), "--lr", str(a.lr),
            "--lbfgs-memory", str(a.lbfgs_memory), "--threads", str(a.threads)]
    return argv + (["--own-init"] if a.own_init else [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_args(parser)
    parser.add_argument("--smoke", action="store_true", help="a quick check: adam 100, lbfgs 50, points 1000")
    parser.add_argument("--target", type=float, default=1e-3, help="val relative L2 for 'time to' (default 1e-3)")
    parser.add_argument("--json", metavar="PATH", help="also write every figure and block as JSON")
    parser.add_argument("--worker", choices=("deepxde", "kerasdl"), help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    a = parser.parse_args()
    if a.worker == "deepxde":
        return deepxde_worker(a)
    if a.worker == "kerasdl":
        return kerasdl_worker(a)
    if a.smoke:
        a.adam, a.lbfgs, a.points = 100, 50, 1000
    for key in ("adam", "lbfgs"):
        if getattr(a, key) < 0:
            parser.error(f"--{key} must be >= 0")
    if a.adam + a.lbfgs < 1 or a.points < 1:
        parser.error("--adam + --lbfgs and --points must be >= 1")
    os.environ.update(T.QUIET_ENV)
    T.header("kerasdl PINN vs DeepXDE (PyTorch backend), Burgers")
    os.makedirs(T.WORKDIR, exist_ok=True)
    data = os.path.join(T.WORKDIR, f"deepxde_points_{a.points}_{a.conditions}_{a.seed}.npz")
    info = prepare(a, data)
    print(f"N_f = {info['n_f']:,} collocation points, N_u = {info['n_b']} condition points, {info['n_val']:,} "
          f"validation points, {info['n_test']:,} test points; {info['params']:,} parameters; Adam {a.adam:,} "
          f"+ L-BFGS {a.lbfgs:,} iterations, blocks of {BLOCK}\n", flush=True)
    timeout = 600 + 0.5 * (a.adam + 4 * a.lbfgs) * max(a.points, 1000) / 1000
    results = {}
    for kind in ("kerasdl", "deepxde"):
        t0 = time.perf_counter()
        results[kind] = T.run_worker(worker_argv(kind, a, data), timeout=timeout)
        print(f"{kind}: done in {time.perf_counter() - t0:.0f} s (process included)", flush=True)
    rk, rd = results["kerasdl"], results["deepxde"]
    fk, fd = figures(rk, a.target), figures(rd, a.target)
    print(f"\nkerasdl {rk['version']} (TensorFlow {rk['tensorflow']}), DeepXDE {rd['version']} (torch {rd['torch']}, "
          f"{rd['threads']} threads), float64; DeepXDE's initial weights: "
          f"{'its own' if a.own_init else 'kerasdl’s (copied)'}\n")
    print(table(fk, fd, a))
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f} (timings on a loaded machine are not comparable)")
    if fd["lbfgs_iterations"] < a.lbfgs:
        print(f"\nDeepXDE's L-BFGS stopped after {fd['lbfgs_iterations']:,} of {a.lbfgs:,} iterations.")
    if fk["lbfgs_iterations"] < a.lbfgs:
        print(f"\nkerasdl's L-BFGS stopped after {fk['lbfgs_iterations']:,} of {a.lbfgs:,} iterations (converged).")
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump({"args": {k: v for k, v in vars(a).items() if k not in ("worker", "data")}, "points": info,
                       "kerasdl": {**fk, "raw": rk}, "deepxde": {**fd, "raw": rd}}, f, indent=1)
        print(f"\nwrote {a.json}")


if __name__ == "__main__":
    main()
