"""tf.distribute: the strategies, the global-batch and learning-rate rules, and real multi-process runs.

The multi-replica tests use real processes: MirroredStrategy over 2 logical CPU devices (the CPU
split must happen before TensorFlow starts, so in a fresh interpreter), and MultiWorkerMirrored
with 2 ``kerasdl train`` worker processes on localhost described by ``TF_CONFIG``. Both must
train the same model to the same loss curve as one device: ``batch_size`` is the global batch.
"""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from kerasdl.engine import distribute
from kerasdl.config import RunConfig
from kerasdl.errors import KerasdlUsageError, UnknownNameError

# mnist5k's 3,500 training digits split into whole batches of 100, so every replica of every step
# gets the same number of examples (see the README on a final partial batch).
CURVE = dict(model="mlp", dataset="mnist5k", epochs=2, batch_size=100, seed=0, augment="none", calibrate=False)
CURVE_ARGS = ["--model", "mlp", "--dataset", "mnist5k", "--epochs", "2", "--batch-size", "100", "--seed", "0",
              "--augment", "none", "--no-calibrate"]
REL_TOL = 1e-4  # float32 sums in another order; a different data order or update differs by >1e-2


def _history(run_dir) -> list[dict]:
    with open(os.path.join(run_dir, "history.csv")) as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _assert_same_curve(got: list[dict], want: list[dict]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        for key in ("loss", "val_loss", "accuracy", "val_accuracy"):
            assert math.isclose(g[key], w[key], rel_tol=REL_TOL, abs_tol=1e-6), (key, got, want)


@pytest.fixture(scope="module")
def one_device_curve(data_dir, tmp_path_factory):
    """The reference: the same run on one device, in this process."""
    from kerasdl.training import train

    out = tmp_path_factory.mktemp("one_device")
    train(RunConfig(**CURVE, strategy="one_device", name="one", output_dir=str(out)), progress=False,
          echo=lambda *a: None)
    return _history(out / "one")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _tf_config(ports: list[int], index: int) -> str:
    return json.dumps({"cluster": {"worker": [f"localhost:{p}" for p in ports]},
                       "task": {"type": "worker", "index": index}})


def _start_workers(cmd: list[str], args: list[str], cwd, data_dir, n: int = 2) -> list[subprocess.Popen]:
    ports = [_free_port() for _ in range(n)]
    procs = []
    for index in range(n):
        env = dict(os.environ, KERASDL_DATA_DIR=data_dir, KERASDL_OFFLINE="1", TF_CONFIG=_tf_config(ports, index))
        procs.append(subprocess.Popen(cmd + args, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
    return procs


def _finish(procs: list[subprocess.Popen], timeout: float = 400) -> list[str]:
    outputs = []
    for proc in procs:
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            raise
        outputs.append(out)
        assert proc.returncode == 0, out[-3000:]
    return outputs


# ---- rules, in-process ---------------------------------------------------------------------------
def test_scale_settings_are_checked_with_suggestions():
    with pytest.raises(UnknownNameError, match="mirrored"):
        RunConfig(strategy="mirored").validate()
    with pytest.raises(UnknownNameError, match="mixed_bfloat16"):
        RunConfig(precision="bfloat16").validate()
    with pytest.raises(UnknownNameError, match="linear"):
        RunConfig(lr_scaling="linaer").validate()
    with pytest.raises(KerasdlUsageError, match="steps_per_execution"):
        RunConfig(steps_per_execution=0).validate()
    with pytest.raises(KerasdlUsageError, match="divisible by the 4 replicas. Received: batch_size=30"):
        distribute.check_global_batch(30, 4)
    distribute.check_global_batch(32, 4)


def test_learning_rate_scaling_rules():
    assert distribute.scaled_learning_rate(0.1, 1024, "linear", 256) == pytest.approx(0.4)  # Goyal et al.
    assert distribute.scaled_learning_rate(1e-3, 1024, "sqrt", 256) == pytest.approx(2e-3)
    assert distribute.scaled_learning_rate(1e-3, 1024, "none", 256) == 1e-3
    assert distribute.scaled_learning_rate(0.1, 32, "linear", 64) == pytest.approx(0.05)


def test_cluster_role_from_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert distribute.cluster_role() == distribute.SINGLE and distribute.SINGLE.is_chief
    monkeypatch.setenv("TF_CONFIG", _tf_config([1, 2, 3], 2))
    role = distribute.cluster_role()
    assert (role.num_workers, role.label, role.is_chief) == (3, "worker2", False)
    monkeypatch.setenv("TF_CONFIG", _tf_config([1, 2], 0))
    assert distribute.cluster_role().is_chief
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"chief": ["a:1"], "worker": ["b:1"]},
                                                "task": {"type": "worker", "index": 0}}))
    assert not distribute.cluster_role().is_chief  # a named chief task writes, not worker 0
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(KerasdlUsageError, match="TF_CONFIG is not a valid cluster description"):
        distribute.cluster_role()
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"ps": ["a:1"], "worker": ["b:1"]},
                                                "task": {"type": "ps", "index": 0}}))
    with pytest.raises(KerasdlUsageError, match="task type 'ps'"):
        distribute.cluster_role()


def test_precision_policy_is_restored_and_the_saved_model_is_float32(data_dir, tmp_path):
    import keras

    from kerasdl.training import train

    result = train(RunConfig(model="lenet5", dataset="digits", epochs=1, image_size=[28, 28], batch_size=64,
                             precision="mixed_bfloat16", name="bf16", output_dir=str(tmp_path)),
                   progress=False, echo=lambda *a: None)
    assert keras.config.dtype_policy().name == "float32"  # global state did not leak
    assert result.metrics["scale"]["precision"] == "mixed_bfloat16"
    assert result.metrics["test"]["accuracy"] > 0.3  # it learned in bfloat16 (chance: 0.1)
    model = keras.saving.load_model(tmp_path / "bf16" / "model.keras")
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}


def test_jit_and_steps_per_execution_train_the_same_model(data_dir, tmp_path, one_device_curve):
    from kerasdl.training import train

    config = RunConfig(**CURVE, steps_per_execution=5, name="spe", output_dir=str(tmp_path))
    result = train(config, progress=False, echo=lambda *a: None)
    _assert_same_curve(_history(tmp_path / "spe"), one_device_curve)  # 5 batches per call, same updates
    assert result.metrics["scale"]["steps_per_execution"] == 5
    jit = train(config.replace(steps_per_execution=1, jit=True, name="xla"), progress=False, echo=lambda *a: None)
    assert jit.metrics["scale"]["jit"] is True
    assert jit.metrics["test"]["accuracy"] > 0.8  # XLA fuses ops differently: close, not bit-equal


# ---- real processes ------------------------------------------------------------------------------
MIRRORED_SCRIPT = """
import json, sys
from kerasdl.config import RunConfig
from kerasdl.errors import KerasdlUsageError
from kerasdl.training import train
curve = json.loads(sys.argv[1])
try:
    train(RunConfig(**curve, strategy="mirrored", cpu_devices=2, steps_per_execution=4, name="refused",
                    output_dir="runs"), progress=False, echo=lambda *a: None)
except KerasdlUsageError as exc:
    assert "steps_per_execution > 1 does not work under MirroredStrategy" in str(exc), exc
else:
    raise AssertionError("steps_per_execution=4 under MirroredStrategy was not refused")
r = train(RunConfig(**curve, strategy="mirrored", cpu_devices=2, name="mirrored", output_dir="runs"),
          progress=False, echo=lambda *a: None)
print(json.dumps(r.metrics["scale"]))
"""


def test_mirrored_over_two_cpu_devices_matches_one_device(data_dir, tmp_path, one_device_curve):
    env = dict(os.environ, KERASDL_DATA_DIR=data_dir, KERASDL_OFFLINE="1")
    proc = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT, json.dumps(CURVE)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    scale = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (scale["strategy"], scale["replicas"], scale["per_replica_batch_size"]) == ("MirroredStrategy", 2, 50)
    assert scale["steps_per_execution"] == 1  # auto under a strategy: keras's multi-step loop fails there
    _assert_same_curve(_history(tmp_path / "runs" / "mirrored"), one_device_curve)
    assert not (tmp_path / "runs" / "refused").exists()


def test_two_worker_processes_match_one_worker(kerasdl_cmd, data_dir, tmp_path, one_device_curve):
    procs = _start_workers(kerasdl_cmd, ["train", *CURVE_ARGS, "--strategy", "multi_worker", "--name", "mw"], tmp_path, data_dir)
    chief, worker = _finish(procs)
    assert "[CollectiveAllReduceStrategy, 2 replicas, 50 per replica]" in chief
    assert "worker1: done" in worker
    run = tmp_path / "runs" / "mw"
    _assert_same_curve(_history(run), one_device_curve)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["scale"]["workers"] == 2
    assert sorted(os.listdir(tmp_path / "runs")) == ["mw"]  # the non-chief worker left nothing behind


def test_killed_worker_is_recovered_from_the_backup_on_restart(kerasdl_cmd, data_dir, tmp_path):
    epochs = 4
    args = ["train", "--model", "mlp", "--dataset", "mnist5k", "--epochs", str(epochs), "--batch-size", "50",
            "--augment", "none", "--no-calibrate", "--patience", "0", "--strategy", "multi_worker", "--name", "ft"]
    run = tmp_path / "runs" / "ft"
    backup = run / "backup" / "training_metadata.json"
    procs = _start_workers(kerasdl_cmd, args, tmp_path, data_dir)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and not (backup.exists() and json.loads(backup.read_text())["epoch"] >= 1):
            ended = [p for p in procs if p.poll() is not None]
            assert not ended, f"a worker ended before the kill:\n{ended[0].stdout.read()[-3000:]}"
            time.sleep(0.05)
        procs[1].send_signal(signal.SIGKILL)  # worker 1 dies mid-run
        procs[1].wait()
        # The chief cannot go on without it; the job is torn down and restarted, as a cluster
        # manager does.
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait()
    finally:
        for p in procs:
            p.kill()
            p.wait()
    saved = json.loads(backup.read_text())["epoch"]
    assert 1 <= saved < epochs
    before = _history(run)[:saved]

    chief, _ = _finish(_start_workers(kerasdl_cmd, ["train", "--resume", str(run)], tmp_path, data_dir))
    history = _history(run)
    assert [int(r["epoch"]) for r in history] == list(range(epochs))  # no gap, no duplicate
    assert history[:saved] == before  # the finished epochs were kept, not re-run
    assert "epoch 1/" not in chief and f"epoch {saved + 1}/{epochs}" in chief  # resumed at the backup
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["scale"]["workers"] == 2
    assert metrics["test"]["accuracy"] > 0.8


def test_vae_on_two_mirrored_cpu_devices_has_the_one_device_first_epoch_loss(run_cli, tmp_path):
    """Issue #14: a task with its own compute_loss (the VAE: noise from stateless seeds in the data,
    the summed loss divided by the global batch) trains the same under MirroredStrategy."""
    common = ["train", "--task", "vae", "--dataset", "digits", "--epochs", "1", "--batch-size", "64",
              "--seed", "0", "--task-opt", "latent_dim=2", "--task-opt", "iw_samples=2"]
    run_cli(*common, "--name", "one", cwd=tmp_path, check=0)
    run_cli(*common, "--name", "two", "--strategy", "mirrored", "--cpu-devices", "2", cwd=tmp_path, check=0)
    one, two = _history(tmp_path / "runs" / "one"), _history(tmp_path / "runs" / "two")
    scale = json.loads((tmp_path / "runs" / "two" / "metrics.json").read_text())["scale"]
    assert (scale["strategy"], scale["replicas"]) == ("MirroredStrategy", 2)
    for key in ("loss", "val_loss", "reconstruction", "kl"):
        assert abs(one[0][key] - two[0][key]) < 1e-4, (key, one[0][key], two[0][key])
