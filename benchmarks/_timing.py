"""Shared pieces of the issue #6 benchmarks (overhead.py, peer_torch.py, flops.py).

Every contender runs in a fresh subprocess and prints one JSON line (``RESULT {...}``) with its
per-epoch wall times, the whole ``fit`` time and the validation accuracy after every epoch;
``kerasdl train`` runs are read back from their run directory instead. Figures:

* steady images/s = training images x (epochs - 1) / wall time of epochs 2..N, each epoch's
  time running from its start to the end of its validation pass (kerasdl's ``epoch_time_s``;
  the plain scripts time the same span with :class:`EpochTimer`). The first epoch (tracing,
  warm-up) is excluded.
* inclusive images/s = the same over ``(fit wall time - first epoch)``, so every per-epoch cost
  between epochs (checkpoint and backup writes, TensorBoard) is counted too.
* time to accuracy = wall time from the start of ``fit`` (first epoch and its tracing included,
  process start-up and data loading not) to the end of the first epoch whose validation
  accuracy reaches the target.
"""

from __future__ import annotations

import csv
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time

WORKDIR = os.environ.get("KERASDL_BENCH_DIR", "/tmp/benchwork")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUIET_ENV = {"KERASDL_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}


def header(title: str) -> None:
    """The title, exact command, date, commit and machine, as markdown."""
    try:
        commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        commit += " (+ uncommitted changes)" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    cmd = " ".join(shlex.quote(a) for a in ["python", "benchmarks/" + os.path.basename(sys.argv[0]), *sys.argv[1:]])
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    print(f"## {title}\n\n`{cmd}`  \n{now}, commit {commit}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start\n", flush=True)


def env(**extra) -> dict:
    return {**os.environ, **QUIET_ENV, **{k: str(v) for k, v in extra.items()}}


def run_worker(argv: list[str], extra_env: dict | None = None, timeout: float = 1200) -> dict:
    """Run ``python <argv>`` in a fresh process (cwd = WORKDIR) and return its RESULT json."""
    os.makedirs(WORKDIR, exist_ok=True)
    proc = subprocess.run([sys.executable, *argv], cwd=WORKDIR, env=env(**(extra_env or {})),
                          capture_output=True, text=True, timeout=timeout)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"worker {argv} failed (rc {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")


def kerasdl_train(args: list[str], name: str, extra_env: dict | None = None) -> dict:
    """A real ``kerasdl train`` subprocess; its figures from history.csv / metrics.json."""
    out = os.path.join(WORKDIR, "runs")
    cmd = [sys.executable, "-m", "kerasdl", "train", *args, "--name", name, "--output-dir", out,
           "--patience", "0", "--overwrite"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=WORKDIR, env=env(**(extra_env or {})), capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed (rc {proc.returncode}):\n{proc.stderr[-4000:]}")
    run = os.path.join(out, name)
    with open(os.path.join(run, "dataset.json"), encoding="utf-8") as f:
        n_train = int(json.load(f)["splits"]["train"])
    with open(os.path.join(run, "history.csv"), newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    with open(os.path.join(run, "metrics.json"), encoding="utf-8") as f:
        metrics = json.load(f)
    times = [float(r["epoch_time_s"]) for r in rows]
    fit = float(metrics["train_seconds_this_session"])
    # kerasdl's epoch_time_s leaves out what runs between epochs (backup, checkpoint, TensorBoard);
    # time to accuracy spreads that gap evenly over the epochs.
    gap = max(fit - sum(times), 0.0) / len(times)
    ends, t = [], 0.0
    for e in times:
        t += e + gap
        ends.append(t)
    return {"n_train": n_train, "epoch_times": times, "fit_s": fit, "val_acc": [float(r["val_accuracy"]) for r in rows],
            "epoch_ends": ends, "process_s": wall, "test_accuracy": metrics["test"].get("accuracy")}


def steady_ips(r: dict) -> float:
    t = r["epoch_times"]
    return r["n_train"] * (len(t) - 1) / sum(t[1:])


def inclusive_ips(r: dict) -> float:
    t = r["epoch_times"]
    return r["n_train"] * (len(t) - 1) / (r["fit_s"] - t[0])


def time_to_accuracy(r: dict, target: float) -> tuple[float | None, int | None]:
    for i, (acc, end) in enumerate(zip(r["val_acc"], r["epoch_ends"])):
        if acc >= target:
            return end, i + 1
    return None, None


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, spec=",.0f"):
    return "–" if v is None else format(v, spec)


def interleave(i: int, items: list) -> list:
    """Alternate the order each repetition so drift hits every contender alike."""
    return items if i % 2 == 0 else items[::-1]


def emit(result: dict) -> None:
    print("RESULT " + json.dumps(result), flush=True)


def prepare_npz(path: str, size32: bool = False) -> str:
    """mnist5k's train/validation/test splits (kerasdl's own) as an .npz; ``size32``: zero-padded
    by 2 pixels to 32x32 and the gray channel repeated 3 times (a 32x32x3 set for ResNet-20)."""
    if os.path.exists(path):
        return path
    code = (
        "import numpy as np, sys\n"
        "from kerasdl.data import load_arrays\n"
        "out = {}\n"
        "for s, k in (('train', 'train'), ('validation', 'val'), ('test', 'test')):\n"
        "    x, y, _ = load_arrays('mnist5k', s)\n"
        f"    if {size32}:\n"
        "        x = np.repeat(np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0))), 3, axis=-1)\n"
        "    out['x_' + k], out['y_' + k] = x, y\n"
        "np.savez(sys.argv[1], **out)\n"
    )
    os.makedirs(os.path.dirname(path), exist_ok=True)
    subprocess.run([sys.executable, "-c", code, path + ".tmp.npz"], cwd=WORKDIR, env=env(), check=True,
                   capture_output=True)
    os.replace(path + ".tmp.npz", path)
    return path


def load_npz(path: str):
    import numpy as np

    with np.load(path) as f:
        return {k: f[k] for k in f.files}


# ----------------------------------------------------------------------------- plain Keras worker

def keras_worker(a) -> None:
    """A plain, hand-written Keras script: build kerasdl's model, compile, fit. ``a`` carries the
    variant (see :func:`add_keras_args`)."""
    import numpy as np
    import tensorflow as tf
    import keras

    if a.intra:
        tf.config.threading.set_intra_op_parallelism_threads(a.intra)
    if a.inter:
        tf.config.threading.set_inter_op_parallelism_threads(a.inter)
    keras.utils.set_random_seed(a.seed)
    if a.determinism:
        tf.config.experimental.enable_op_determinism()
    from kerasdl.models import build_model

    d = load_npz(a.data)
    xtr, ytr, xva, yva = d["x_train"], d["y_train"], d["x_val"], d["y_val"]
    model = build_model(a.model, input_shape=xtr.shape[1:], num_classes=10)
    steps = -(-len(xtr) // a.batch)
    if a.schedule == "cosine":
        lr = keras.optimizers.schedules.CosineDecay(a.lr, decay_steps=steps * a.epochs)
    else:
        lr = a.lr
    model.compile(optimizer=keras.optimizers.Adam(lr),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"],
                  jit_compile=bool(a.jit), steps_per_execution=a.spe)
    if a.input == "tfdata":
        def pipe(x, y, train):
            ds = tf.data.Dataset.from_tensor_slices((x, y))
            if train:
                ds = ds.shuffle(len(x), seed=a.seed, reshuffle_each_iteration=True)
            ds = ds.batch(a.batch).map(lambda x, y: (tf.cast(x, tf.float32) / 255.0, y),
                                       num_parallel_calls=tf.data.AUTOTUNE)
            return ds.prefetch(tf.data.AUTOTUNE)

        train, val = pipe(xtr, ytr, True), pipe(xva, yva, False)
        fit_kw = {}
    else:  # numpy arrays, normalised once up front; keras shuffles and batches
        train = (xtr.astype("float32") / 255.0, ytr)
        val = (xva.astype("float32") / 255.0, yva)
        fit_kw = {"batch_size": a.batch, "shuffle": True}
    EpochTimer, PerBatchLossCheck = _callbacks()
    timer = EpochTimer()
    cbs = [timer] + ([PerBatchLossCheck()] if a.batch_callback else [])
    t0 = time.perf_counter()
    if a.input == "tfdata":
        model.fit(train, validation_data=val, epochs=a.epochs, verbose=0, callbacks=cbs, **fit_kw)
    else:
        model.fit(*train, validation_data=val, epochs=a.epochs, verbose=0, callbacks=cbs, **fit_kw)
    fit_s = time.perf_counter() - t0
    emit({"n_train": len(xtr), "epoch_times": timer.times, "fit_s": fit_s, "val_acc": timer.val_acc,
          "epoch_ends": [e - t0 for e in timer.ends], "params": int(model.count_params()),
          "jit_resolved": bool(model.jit_compile)})


def add_keras_args(p) -> None:
    p.add_argument("--model", default="lenet5")
    p.add_argument("--data", required=False)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--schedule", default="constant", choices=("constant", "cosine"))
    p.add_argument("--input", default="tfdata", choices=("tfdata", "numpy"))
    p.add_argument("--jit", type=int, default=0)
    p.add_argument("--spe", type=int, default=1)
    p.add_argument("--determinism", type=int, default=0)
    p.add_argument("--intra", type=int, default=0)
    p.add_argument("--inter", type=int, default=0)
    p.add_argument("--batch-callback", type=int, default=0)


def keras_argv(script: str, data: str, **kw) -> list[str]:
    argv = [script, "--worker", "keras", "--data", data]
    for k, v in kw.items():
        argv += [f"--{k.replace('_', '-')}", str(v)]
    return argv


def _callbacks():
    import keras

    class EpochTimer(keras.callbacks.Callback):
        """Epoch start -> end of its validation pass, like kerasdl's history.csv ``epoch_time_s``."""

        def on_train_begin(self, logs=None):
            self.times, self.ends, self.val_acc = [], [], []

        def on_epoch_begin(self, epoch, logs=None):
            self._t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            now = time.perf_counter()
            self.times.append(now - self._t0)
            self.ends.append(now)
            self.val_acc.append(float((logs or {}).get("val_accuracy", float("nan"))))

    class PerBatchLossCheck(keras.callbacks.Callback):
        """What kerasdl's NanGuard does each batch: read the loss as a Python float."""

        def on_train_batch_end(self, batch, logs=None):
            loss = (logs or {}).get("loss")
            if loss is not None:
                float(loss)

    return EpochTimer, PerBatchLossCheck
