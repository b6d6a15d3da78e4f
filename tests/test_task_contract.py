"""The task contract, end to end, for every registered task (issue #14, acceptance 3).

Parametrised over :func:`kerasdl.tasks.list_tasks`, so a task is covered as soon as it is
registered -- and fails here ("add a tiny recipe") until :data:`RECIPES` has a tiny, offline
training for it. For each task one run is trained through the installed CLI in a subprocess:

* the training is SIGKILLed once its first epoch is in history.csv, and ``kerasdl train --resume``
  finishes it: the run completes with exactly one history row per epoch (the killed epoch is
  neither lost nor logged twice; cf. Keras's ``BackupAndRestore``);
* that resumed run has a completed metrics.json with a non-empty "test" report, ``kerasdl evaluate
  RUN`` exits 0, and its export's kerasdl.json names the task and its signatures;
* the SavedModel is reloaded in a fresh Python process that never imports kerasdl (plain
  ``tf.saved_model.load``, as TF Serving would load it), and every signature in kerasdl.json is
  called on a small valid input built from its spec: outputs finite, batch size as asked.

Cost: every ``kerasdl`` subprocess pays TensorFlow's import (~10 s on two busy cores), so the
killed-and-resumed run *is* the contract run (no second training per task), the tasks' trainings
run side by side, and one fresh process reloads every export.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from kerasdl.tasks import list_tasks, task_class


# One tiny, offline training per task: registry model, dataset and shrinking options (after COMMON,
# so they may override it; each trains and evaluates in a few seconds). A new task needs an entry; its tests fail until it has one.
RECIPES: dict[str, list[str]] = {
    "classification": ["--model", "mlp", "--dataset", "digits", "--train-per-class", "4",
                       "--model-opt", "width=8", "--model-opt", "depth=1"],
    "regression": ["--model", "mlp", "--dataset", "diabetes", "--model-opt", "width=8", "--model-opt", "depth=1"],
    "segmentation": ["--model", "unet", "--dataset", "shapes", "--image-size", "16,16", "--batch-size", "128",
                     "--model-opt", "depth=1", "--model-opt", "base_filters=4"],
    "autoencoder": ["--model", "dense_encoder", "--dataset", "digits", "--train-per-class", "4",
                    "--model-opt", "width=8", "--task-opt", "latent_dim=2", "--task-opt", "noise=0.3"],
    "vae": ["--model", "dense_encoder", "--dataset", "digits", "--train-per-class", "4",
            "--model-opt", "width=8", "--task-opt", "latent_dim=2", "--task-opt", "iw_samples=4"],
    # A conditional WGAN-GP (two optimizers, n_critic, the penalty, the labels) on 2-D points.
    "gan": ["--model", "mlp_generator", "--dataset", "ring8", "--train-per-class", "8", "--model-opt", "width=8",
            "--task-opt", "latent_dim=2", "--task-opt", "loss=wgan-gp", "--task-opt", "n_critic=2",
            "--task-opt", "conditional=true", "--task-opt", "eval_samples=32", "--task-opt", "sample_every=4"],
    "vqvae": ["--model", "vq_encoder", "--dataset", "digits", "--train-per-class", "4",
              "--model-opt", "filters=4", "--task-opt", "latent_dim=2", "--task-opt", "codebook_size=8",
              "--task-opt", "eval_samples=32"],
    "diffusion": ["--model", "diffusion_unet", "--dataset", "digits", "--train-per-class", "4",
                  "--model-opt", "base_filters=4", "--task-opt", "timesteps=20", "--task-opt", "sample_steps=4",
                  "--task-opt", "conditional=true", "--task-opt", "eval_samples=32"],
    # Heat equation: 4 Adam epochs then 4 L-BFGS epochs of 10 iterations (the kill lands in the Adam phase,
    # the resume crosses into L-BFGS); --epochs follows from the iteration counts (8).
    "pinn": ["--task-opt", "problem=heat", "--task-opt", "n_collocation=200", "--task-opt", "n_conditions=20",
             "--task-opt", "adam_steps=40", "--task-opt", "lbfgs_steps=40", "--task-opt", "log_every=10",
             "--task-opt", "validation_points=100", "--model-opt", "depth=2", "--model-opt", "width=8"],
    # Karate club: one labelled node per faction, full batch (one step per epoch).
    "node_classification": ["--model", "gcn", "--dataset", "karate"],
    # The offline cycles set (trees, one cycle, two cycles), a small GIN.
    "graph_classification": ["--model", "gin", "--dataset", "cycles", "--batch-size", "64"],
}
# Epochs of the run: enough that the kill (after the first) lands before the last (tiny epochs: ~0.1 s).
EPOCHS = 8
COMMON = ["--epochs", str(EPOCHS), "--batch-size", "16", "--schedule", "constant", "--augment", "none",
          "--patience", "0", "--seed", "0"]
TASKS = list_tasks()


def _env(data_dir: str) -> dict:
    return dict(os.environ, KERASDL_DATA_DIR=data_dir, KERASDL_OFFLINE="1", COLUMNS="200",
                XDG_CACHE_HOME=os.path.join(data_dir, "cache"), TF_CPP_MIN_LOG_LEVEL="3")


def _history(run_dir) -> list[dict]:
    """history.csv's finished rows (a row being written has no newline yet)."""
    path = os.path.join(run_dir, "history.csv")
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        lines = f.read().splitlines(keepends=True)
    return list(csv.DictReader([line for line in lines if line.endswith("\n")]))


def _start(args: list, cwd, env) -> subprocess.Popen:
    return subprocess.Popen([str(a) for a in args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _finish(proc: subprocess.Popen, deadline: float) -> str:
    try:
        return proc.communicate(timeout=max(1.0, deadline - time.monotonic()))[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.communicate()[0] + "\n[killed: timeout]"


def _train_kill_resume(cmd: list, data_dir: str, root) -> dict[str, dict]:
    """Every recipe trained, SIGKILLed after its first finished epoch, and resumed to the end.

    The tasks run side by side: first every training (each killed as soon as its history.csv has
    a finished row), then every resume. Returns task -> {"cwd", "run_dir", "killed_at", "resumed"
    (its output)}, with "error" (one message) where a step failed.
    """
    env, deadline = _env(data_dir), time.monotonic() + 420
    runs: dict[str, dict] = {}
    for task, recipe in RECIPES.items():
        cwd = root / task
        cwd.mkdir()
        args = cmd + ["train", "--task", task, *COMMON, *recipe, "--export", "--export-dir", "saved_models",
                      "--name", task, "--output-dir", "runs"]
        runs[task] = {"cwd": cwd, "run_dir": cwd / "runs" / task, "proc": _start(args, cwd, env)}
    try:
        waiting = dict(runs)
        while waiting and time.monotonic() < deadline:
            for task, run in list(waiting.items()):
                if run["proc"].poll() is not None:
                    waiting.pop(task)
                elif _history(run["run_dir"]):
                    run["proc"].send_signal(signal.SIGKILL)
                    waiting.pop(task)
            time.sleep(0.02)
    finally:
        for run in runs.values():
            if run["proc"].poll() is None:
                run["proc"].kill()
    for task, run in runs.items():
        proc = run.pop("proc")
        out = _finish(proc, deadline)
        run["killed_at"] = len(_history(run["run_dir"]))
        if proc.returncode != -signal.SIGKILL or not run["killed_at"]:
            run["error"] = (f"{task}: the training was not killed after an epoch (exit {proc.returncode}, "
                            f"{run['killed_at']} history rows):\n{out[-3000:]}")
        else:
            run["proc"] = _start(cmd + ["train", "--resume", run["run_dir"]], run["cwd"], env)
    for task, run in runs.items():
        if "proc" in run:
            proc = run.pop("proc")
            run["resumed"] = _finish(proc, deadline)
            if proc.returncode != 0:
                run["error"] = f"{task}: kerasdl train --resume exited {proc.returncode}:\n{run['resumed'][-3000:]}"
    return runs


@pytest.fixture(scope="module")
def contract_runs(kerasdl_cmd, data_dir, tmp_path_factory, worker_id):
    """The trainings, once per test session: under pytest-xdist the first worker that needs them
    trains (holding a file lock) and writes where they are; the other worker waits and reads them."""
    if worker_id == "master":
        return _train_kill_resume(kerasdl_cmd, data_dir, tmp_path_factory.mktemp("contract"))
    import fcntl
    import pathlib

    shared = tmp_path_factory.getbasetemp().parent / "task_contract"
    shared.mkdir(exist_ok=True)
    record = shared / "runs.json"
    with open(shared / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not record.exists():
            runs = _train_kill_resume(kerasdl_cmd, data_dir, shared)
            record.write_text(json.dumps({t: {k: str(v) if isinstance(v, pathlib.Path) else v for k, v in r.items()}
                                          for t, r in runs.items()}))
    runs = json.loads(record.read_text())
    for run in runs.values():
        run["cwd"], run["run_dir"] = pathlib.Path(run["cwd"]), pathlib.Path(run["run_dir"])
    return runs


@pytest.fixture
def contract(request, contract_runs):
    """The task's killed-and-resumed run; fails (never skips) for a task without a recipe."""
    task = request.param
    if task not in RECIPES:
        pytest.fail(f"task {task!r} is registered but has no tiny recipe: add a tiny recipe to RECIPES in "
                    f"tests/test_task_contract.py (a model, dataset and options that train in seconds)")
    run = contract_runs[task]
    if "error" in run:
        pytest.fail(run["error"])
    return dict(run, task=task)


def _export_dir(run) -> str:
    root = run["cwd"] / "saved_models" / run["run_dir"].name
    versions = sorted(int(v) for v in os.listdir(root) if v.isdigit()) if root.is_dir() else []
    assert versions, f"no export under {root}"
    return str(root / str(versions[-1]))


@pytest.mark.parametrize("task", TASKS)
def test_every_registered_task_has_a_tiny_recipe(task):
    assert task in RECIPES, f"task {task!r} has no tiny recipe: add a tiny recipe to RECIPES in {__file__}"


@pytest.mark.parametrize("contract", TASKS, indirect=True)
def test_resume_after_kill_completes_with_one_history_row_per_epoch(contract):
    assert 1 <= contract["killed_at"] < EPOCHS, (
        f"the kill landed after {contract['killed_at']} of {EPOCHS} epochs: raise EPOCHS so that it lands mid-run")
    epochs = [int(row["epoch"]) for row in _history(contract["run_dir"])]
    assert epochs == list(range(EPOCHS)), f"history.csv epochs after the resume: {epochs}"


@pytest.mark.parametrize("contract", TASKS, indirect=True)
def test_metrics_completed_with_a_test_report(contract):
    metrics = json.loads((contract["run_dir"] / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics.get("epochs_run") == EPOCHS, metrics
    assert isinstance(metrics.get("test"), dict) and metrics["test"], metrics


@pytest.mark.parametrize("contract", TASKS, indirect=True)
def test_evaluate_exits_zero(contract, cli_inprocess):
    result = cli_inprocess("evaluate", contract["run_dir"], cwd=contract["cwd"])
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"


@pytest.mark.parametrize("contract", TASKS, indirect=True)
def test_export_metadata_names_the_task_and_signatures(contract):
    meta = json.loads(open(os.path.join(_export_dir(contract), "kerasdl.json")).read())
    assert meta["task"] == contract["task"]
    cls = task_class(contract["task"])
    expected = ["serving_default"] + (["encode", "decode"] if cls.encodes else []) + (
        ["sample"] if cls.generative else [])
    assert meta["signatures"][0] == "serving_default" and set(expected) <= set(meta["signatures"]), meta["signatures"]


# Runs in a fresh interpreter on export folders given as arguments: TensorFlow and NumPy only, never
# kerasdl. Prints one JSON line: path -> {signature: {output: shape}} or {"error": message}.
RELOAD = r"""
import json, os, sys, traceback
import numpy as np
import tensorflow as tf

BATCH, N = 2, 3


def value(meta, name, spec, rng):
    classes = len(meta.get("class_names") or []) or 1
    if spec.shape.rank == 0:  # the sample signature's n, seed, steps (diffusion) and label (conditional)
        scalar = {"n": N, "steps": 3, "label": classes - 1}.get(name, 7)
        return tf.constant(scalar, spec.dtype), None
    if name == "edge_index":  # a graph's edges (2, E) between the BATCH nodes: 0 <-> 1
        return tf.constant([[0, 1], [1, 0]], spec.dtype), None
    if name == "graph_ids":  # each node its own graph: one prediction per node again
        return tf.constant(np.arange(BATCH), spec.dtype), BATCH
    if name in ("labels", "t", "codes"):  # class ids in range; diffusion timesteps; VQ codes (K >= 2)
        shape = [BATCH] + [d or 1 for d in spec.shape.as_list()[1:]]
        high = classes if name == "labels" else 2
        return tf.constant(rng.integers(0, high, size=shape).astype(spec.dtype.as_numpy_dtype)), BATCH
    if spec.shape.rank is None:  # raw inputs of any rank: the dataset's shape and raw dtype
        shape, dtype = [BATCH] + list(meta["input_shape"]), tf.as_dtype(meta["input_dtype"])
        assert dtype == spec.dtype, (name, dtype, spec.dtype)
    else:
        shape, dtype = [BATCH] + [d or 1 for d in spec.shape.as_list()[1:]], spec.dtype
    if dtype.is_integer:
        x = rng.integers(0, min(dtype.max, 255) + 1, size=shape)
    else:
        x = rng.uniform(0, 1, size=shape)
    return tf.constant(x.astype(dtype.as_numpy_dtype)), BATCH


def check(path):
    meta = json.load(open(os.path.join(path, "kerasdl.json")))
    loaded = tf.saved_model.load(path)
    assert set(meta["signatures"]) <= set(loaded.signatures), (meta["signatures"], list(loaded.signatures))
    rng, report = np.random.default_rng(0), {}
    for name in meta["signatures"]:
        fn = loaded.signatures[name]
        kwargs, batch = {}, None
        for arg, spec in fn.structured_input_signature[1].items():
            kwargs[arg], b = value(meta, arg, spec, rng)
            batch = batch or b
        batch = batch or N
        outputs = fn(**kwargs)
        assert outputs, f"{name}: no outputs"
        for key, out in outputs.items():
            assert out.shape.rank and out.shape[0] == batch, f"{name}/{key}: shape {out.shape}, batch {batch}"
            if out.dtype.is_floating:
                assert bool(tf.reduce_all(tf.math.is_finite(out))), f"{name}/{key}: not finite"
        report[name] = {key: list(out.shape) for key, out in outputs.items()}
    return report


results = {}
for path in sys.argv[1:]:
    try:
        results[path] = check(path)
    except Exception:
        results[path] = {"error": traceback.format_exc(limit=3)}
leaked = sorted(m for m in sys.modules if m == "kerasdl" or m.startswith("kerasdl."))
print("RELOAD " + json.dumps({"results": results, "kerasdl_modules": leaked}))
"""


@pytest.fixture(scope="module")
def reloaded(contract_runs, tmp_path_factory):
    """One fresh process (no kerasdl) loads every export and calls each of its signatures."""
    paths = []
    for run in contract_runs.values():
        if "error" not in run:
            try:
                paths.append(_export_dir(run))
            except AssertionError:
                pass
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("PYTHONPATH", None)
    proc = subprocess.run([sys.executable, "-c", RELOAD, *paths], cwd=tmp_path_factory.mktemp("reload"), env=env,
                          capture_output=True, text=True, timeout=300)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RELOAD ")]
    assert proc.returncode == 0 and lines, f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return json.loads(lines[-1][len("RELOAD "):])


@pytest.mark.parametrize("contract", TASKS, indirect=True)
def test_savedmodel_reloads_without_kerasdl_and_every_signature_runs(contract, reloaded):
    assert reloaded["kerasdl_modules"] == [], "the reload process imported kerasdl"
    path = _export_dir(contract)
    report = reloaded["results"][path]
    assert "error" not in report, report.get("error")
    meta = json.loads(open(os.path.join(path, "kerasdl.json")).read())
    assert list(report) == meta["signatures"]
