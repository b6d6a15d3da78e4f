"""Overhead of ``kerasdl train`` over a plain hand-written ``model.fit`` script (issue #6, target >= 0.97).

    python benchmarks/overhead.py                       # kerasdl train vs plain fit, 5 repetitions
    python benchmarks/overhead.py --variants            # + kerasdl with one part switched off at a time

Same model (``lenet5``), data (``mnist5k``, kerasdl's own splits), batch 64, Adam lr 1e-3,
**no augmentation on either side** (``kerasdl train --augment none``; kerasdl's default ``auto``
adds random shifts, which a plain script would not have). Everything else is kerasdl's default
and counts as its overhead: cosine schedule, op determinism, NanGuard, history.csv,
best-checkpoint, TensorBoard, progress lines, BackupAndRestore. The plain script
(``_timing.keras_worker``) builds ``kerasdl.models.build_model("lenet5")`` on the same arrays
(``kerasdl.data.load_arrays`` saved to an .npz), a tf.data pipeline (shuffle, batch, map /255,
prefetch), constant lr, ``compile`` + ``fit(validation_data=...)``, verbose 0.

Both run in fresh subprocesses, interleaved; figures in ``_timing.py``: *steady* images/s
(epochs 2..N, each epoch incl. its validation pass, as history.csv's ``epoch_time_s``) and
*inclusive* images/s (the whole ``fit`` minus the first epoch, so what runs between epochs, such
as checkpoint and backup writes, counts).

``--variants`` runs ``kerasdl.engine.fit.train`` in a subprocess (the same code path as the CLI)
with one part replaced by a no-op at a time (monkeypatched in that process only), to find what
costs.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _timing as T  # noqa: E402

SCRIPT = os.path.abspath(__file__)

# name -> (what is switched off / changed, RunConfig overrides)
KERASDL_VARIANTS = {
    "kerasdl train() (reference, as the CLI)": ([], {}),
    "- op determinism": (["determinism"], {}),
    "- NanGuard (per-batch float(loss))": (["nanguard"], {}),
    "- Progress callback": (["progress"], {}),
    "- TensorBoard callback": (["tensorboard"], {}),
    "- BackupAndRestore": (["backup"], {}),
    "- BestCheckpoint": (["best"], {}),
    "constant lr instead of cosine": ([], {"schedule": "constant"}),
    "- all per-batch hooks (NanGuard, Progress, TensorBoard)": (["nanguard", "progress", "tensorboard"], {}),
    "- all of the above callbacks and determinism": (
        ["determinism", "nanguard", "progress", "tensorboard", "backup", "best"], {}),
}


def kerasdl_worker(a) -> None:
    """``kerasdl.engine.fit.train`` with the parts named in ``--off`` replaced by no-ops."""
    import csv
    import json

    import keras

    from kerasdl.engine import callbacks as cb
    from kerasdl.engine import fit as training
    from kerasdl.config import RunConfig

    off = set(filter(None, a.off.split(",")))

    class Noop(keras.callbacks.Callback):
        def __init__(self, *args, **kwargs):
            super().__init__()
            self.stopped_at, self.best_epoch, self.best = None, None, None

    if "determinism" in off:
        training.set_seed = lambda seed, **kw: keras.utils.set_random_seed(seed)
    if "nanguard" in off:
        cb.NanGuard = Noop
    if "progress" in off:
        cb.Progress = Noop
    if "tensorboard" in off:
        keras.callbacks.TensorBoard = Noop
    if "backup" in off:
        keras.callbacks.BackupAndRestore = Noop
    if "best" in off:
        class SaveAtEnd(Noop):  # the run still needs a weights file to load at the end
            def __init__(self, path, *args, **kwargs):
                super().__init__()
                self.path = path

            def on_train_end(self, logs=None):
                self.model.save_weights(self.path)

        cb.BestCheckpoint = SaveAtEnd
    overrides = json.loads(a.config or "{}")
    config = RunConfig(model="lenet5", dataset="mnist5k", epochs=a.epochs, augment="none", patience=0,
                       name=a.name, output_dir=os.path.join(T.WORKDIR, "runs"), **overrides)
    result = training.train(config, overwrite=True, rich_progress=False, echo=lambda *x: None)
    with open(os.path.join(result.run_dir, "history.csv"), newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    times = [float(r["epoch_time_s"]) for r in rows]
    fit = float(result.metrics["train_seconds_this_session"])
    T.emit({"n_train": 3500, "epoch_times": times, "fit_s": fit, "val_acc": [float(r["val_accuracy"]) for r in rows],
            "epoch_ends": [], "off": sorted(off)})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--worker", choices=("keras", "kerasdl"))
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--run-epochs", type=int, default=10, help="epochs per run (the first is not counted)")
    p.add_argument("--variants", nargs="*", help="measure kerasdl variants (all, or the names given)")
    p.add_argument("--no-cli", action="store_true", help="leave out the kerasdl train CLI row (variants only)")
    p.add_argument("--extra", nargs="*", default=[], help="extra kerasdl train options for both kerasdl rows")
    p.add_argument("--off", default="")
    p.add_argument("--config", default="")
    p.add_argument("--name", default="variant")
    T.add_keras_args(p)
    args = p.parse_args()
    if args.worker == "keras":
        return T.keras_worker(args)
    if args.worker == "kerasdl":
        return kerasdl_worker(args)

    data = T.prepare_npz(os.path.join(T.WORKDIR, "mnist5k.npz"))
    epochs = args.run_epochs
    T.header("Overhead: kerasdl train vs a plain model.fit script (LeNet-5, mnist5k, batch 64, Adam 1e-3, "
             "no augmentation)")
    contenders = {
        "plain keras fit (tf.data)": lambda i: T.run_worker(T.keras_argv(SCRIPT, data, epochs=epochs, seed=i)),
        "kerasdl train --augment none": lambda i: T.kerasdl_train(
            ["--epochs", str(epochs), "--augment", "none", *args.extra], f"overhead-{i}"),
    }
    if args.no_cli:
        del contenders["kerasdl train --augment none"]
    if args.variants is not None:
        names = args.variants or list(KERASDL_VARIANTS)
        for name in names:
            off, cfg = KERASDL_VARIANTS[name]
            import json

            contenders[name] = (lambda off, cfg, name: lambda i: T.run_worker(
                [SCRIPT, "--worker", "kerasdl", "--epochs", str(epochs), "--off", ",".join(off),
                 "--config", json.dumps(cfg), "--name", f"var-{abs(hash(name)) % 10**6}-{i}"]))(off, cfg, name)
    results = {k: [] for k in contenders}
    for i in range(args.repeats):
        for name in T.interleave(i, list(contenders)):
            r = contenders[name](i)
            results[name].append(r)
            print(f"  rep {i + 1} {name}: {T.steady_ips(r):,.0f} steady, {T.inclusive_ips(r):,.0f} inclusive images/s; "
                  f"epoch s {' '.join(f'{t:.2f}' for t in r['epoch_times'])}, fit {r['fit_s']:.1f} s",
                  flush=True)
    ref = "plain keras fit (tf.data)"
    ms = {k: T.median([T.steady_ips(r) for r in v]) for k, v in results.items()}
    mi = {k: T.median([T.inclusive_ips(r) for r in v]) for k, v in results.items()}
    print("\n| contender | steady images/s (runs) | median | / plain fit | inclusive images/s (runs) | median | / plain fit |")
    print("|---|---|---|---|---|---|---|")
    for k, v in results.items():
        print(f"| {k} | {', '.join(f'{T.steady_ips(r):,.0f}' for r in v)} | **{ms[k]:,.0f}** | {ms[k] / ms[ref]:.3f} | "
              f"{', '.join(f'{T.inclusive_ips(r):,.0f}' for r in v)} | **{mi[k]:,.0f}** | {mi[k] / mi[ref]:.3f} |")
    k = "kerasdl train --augment none"
    if k in ms:
        print(f"\nkerasdl train / plain fit: {ms[k] / ms[ref]:.3f} steady, {mi[k] / mi[ref]:.3f} inclusive "
              f"(target >= 0.97); {epochs} epochs per run, {args.repeats} runs each.", flush=True)


if __name__ == "__main__":
    main()
