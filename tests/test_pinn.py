"""The physics-informed task (kerasdl.tasks.pinn): derivatives, the Adam -> L-BFGS schedule, inverse
runs, RAR, hard constraints, user problem files, the figures, export and predict, and bad input.

Tiny configurations only (a few hundred points, a two-layer network, tens of iterations): the
accuracy figures of issue #16 come from benchmarks/pinn.py, not from here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from kerasdl.config import RunConfig  # noqa: E402
from kerasdl.errors import KerasdlUsageError  # noqa: E402

TINY = {"n_collocation": 300, "n_conditions": 40, "adam_steps": 60, "lbfgs_steps": 60, "log_every": 30,
        "validation_points": 200}
NET = {"depth": 2, "width": 12}


def _train(tmp_path, name, seed=0, **options):
    from kerasdl.engine.fit import train

    config = RunConfig(task="pinn", task_options={**TINY, **options}, model_options=NET, output_dir=str(tmp_path),
                       name=name, seed=seed)
    return train(config, progress=False, echo=lambda *a: None)


def _history(run_dir):
    from kerasdl.engine.callbacks import read_history

    return read_history(os.path.join(run_dir, "history.csv"))


# --------------------------------------------------------------------------- derivatives


def test_field_values_match_analytic_derivatives():
    from kerasdl.tasks.pinn import field_values

    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(-1, 1, (50, 2)), tf.float64)

    def u_fn(points, names):  # u = x^3 t^2 + sin(x t)
        return names["x"] ** 3 * names["t"] ** 2 + tf.sin(names["x"] * names["t"])

    f = field_values(u_fn, x, ("u_x", "u_t", "u_xx", "u_xt", "u_ttt"), ("x", "t"))
    a, t = x[:, :1].numpy(), x[:, 1:].numpy()
    expected = {
        "u": a**3 * t**2 + np.sin(a * t),
        "u_x": 3 * a**2 * t**2 + t * np.cos(a * t),
        "u_t": 2 * a**3 * t + a * np.cos(a * t),
        "u_xx": 6 * a * t**2 - t**2 * np.sin(a * t),
        "u_xt": 6 * a**2 * t + np.cos(a * t) - a * t * np.sin(a * t),
        "u_ttt": -(a**3) * np.cos(a * t),
    }
    for key, value in expected.items():
        np.testing.assert_allclose(f[key].numpy(), value, rtol=1e-10, atol=1e-12, err_msg=key)


def test_field_values_are_differentiable_with_respect_to_weights():
    from kerasdl.tasks.pinn import field_values

    w = tf.Variable(0.7, dtype=tf.float64)
    x = tf.constant([[0.3], [0.9]], tf.float64)
    with tf.GradientTape() as tape:
        f = field_values(lambda p, n: tf.sin(w * n["x"]), x, ("u_xx",), ("x",))
        loss = tf.reduce_sum(f["u_xx"])  # -w^2 sin(w x)
    grad = tape.gradient(loss, w).numpy()
    xs = np.array([0.3, 0.9])
    expected = np.sum(-2 * 0.7 * np.sin(0.7 * xs) - 0.7**2 * xs * np.cos(0.7 * xs))
    np.testing.assert_allclose(grad, expected, rtol=1e-10)


# --------------------------------------------------------------------------- config and checks


def test_config_takes_epochs_dataset_and_monitor_from_the_options():
    config = RunConfig(task="pinn", task_options={"problem": "heat", "adam_steps": 100, "lbfgs_steps": 50,
                                                   "log_every": 30}).resolved()
    assert config.epochs == 4 + 2 and config.dataset == "heat" and config.monitor == "loss"
    assert config.model == "pinn_mlp" and config.name.startswith("pinn_mlp-heat-")
    assert config.jit  # xla=true (the default) is the engine's --jit
    assert not RunConfig(task="pinn", task_options={"xla": False}).resolved().jit
    kept = RunConfig(task="pinn", monitor="val_rel_l2").resolved()
    assert kept.monitor == "val_rel_l2"


@pytest.mark.parametrize("options, message", [
    ({"problem": "burgerz"}, "did you mean 'burgers'"),
    ({"w_pde": -1.0}, "w_pde must be >= 0"),
    ({"w_conditions": -0.5}, "w_conditions must be >= 0"),
    ({"sampler": "halton"}, "sampler"),
    ({"adam_steps": 0, "lbfgs_steps": 0}, "adam_steps + lbfgs_steps"),
    ({"rar": True, "rar_points": 300, "n_collocation": 300}, "rar_points"),
    ({"rar_until": 1.0}, "rar_until must be in [0, 1)"),
    ({"rar": True, "rar_until": 0.01}, "less than two history rows"),
])
def test_bad_options_are_one_line(options, message):
    from kerasdl.tasks.base import load_task_data

    with pytest.raises(KerasdlUsageError) as err:
        config = RunConfig(task="pinn", task_options=options)
        _, _, task = load_task_data(config.resolved(), ("train",))
        task.check()
    assert message in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("body, message", [
    ("P = Problem(name='p', inputs=('x',), bounds={'x': (0.0, 1.0)}, residual=None)", "has no residual"),
    ("P = Problem(name='p', inputs=('x',), bounds={'x': (1.0, 1.0)}, residual=lambda d, p: d['u'])", "zero width"),
])
def test_bad_problem_files_are_one_line(tmp_path, body, message):
    path = tmp_path / "mine.py"
    path.write_text("from kerasdl.data.pde import Problem\n" + body + "\n")
    from kerasdl.tasks.base import load_task_data

    config = RunConfig(task="pinn", task_options={"problem": f"{path}:P"}).resolved()
    with pytest.raises(KerasdlUsageError) as err:
        _, _, task = load_task_data(config, ("train",))
        task.check()
    assert message in str(err.value) and "\n" not in str(err.value)


def test_cli_refuses_bad_input_with_exit_2_and_one_line(tmp_path):
    env = dict(os.environ, KERASDL_OFFLINE="1", TF_CPP_MIN_LOG_LEVEL="3")
    out, cwd = tmp_path / "runs", tmp_path / "cwd"  # run outside the source tree: the installed kerasdl
    out.mkdir()
    cwd.mkdir()
    cmd = [sys.executable, "-m", "kerasdl", "train", "--task", "pinn", "--output-dir", str(out)]
    proc = subprocess.run(cmd + ["--task-opt", "problem=burgerz"], capture_output=True, text=True, env=env,
                          timeout=300, cwd=str(cwd))
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "burgers" in lines[0], proc.stderr
    assert not os.listdir(out)  # refused before any folder is made


# --------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def heat_run(tmp_path_factory):
    return _train(tmp_path_factory.mktemp("pinn"), "heat", problem="heat")


def test_schedule_runs_adam_then_the_full_lbfgs_budget(heat_run):
    rows = _history(heat_run.run_dir)
    assert [r["phase"] for r in rows] == [0.0, 0.0, 1.0, 1.0]
    assert [r["iteration"] for r in rows] == [30.0, 60.0, 90.0, 120.0]
    # L-BFGS keeps improving the loss: it must not stop before its budget (deepxde#969, #1819, #1977)
    assert rows[-1]["loss"] < rows[2]["loss"] < rows[1]["loss"]
    info = heat_run.metrics["pinn"]
    assert info["lbfgs_iterations"] == 60 and info["adam_iterations"] == 60
    assert all(k in rows[-1] for k in ("lbfgs_failures", "lbfgs_evaluations", "loss_pde", "loss_initial",
                                       "loss_boundary", "loss_conditions", "val_rel_l2"))


def test_report_and_figures(heat_run):
    test = heat_run.metrics["test"]
    assert test["points"] == 101 * 101
    assert 0 < test["rel_l2"] < 1 and test["residual_max"] >= test["residual_mean"] > 0
    for plot in ("plots/solution.png", "plots/loss_terms.png"):
        assert plot in test["plots"] and os.path.getsize(os.path.join(heat_run.run_dir, plot)) > 1000


def test_evaluate_predict_and_export_agree(heat_run, tmp_path):
    from kerasdl import api
    from kerasdl.export.savedmodel import export_run
    from kerasdl.predict import predict

    report = api.evaluate_run(heat_run.run_dir)
    assert report["rel_l2"] == pytest.approx(heat_run.metrics["test"]["rel_l2"], rel=1e-9)
    points = tmp_path / "points.csv"
    points.write_text("x,t\n0.5,0.0\n0.25,0.5\n0.9,1.0\n")
    from_run = predict(heat_run.run_dir, [str(points)])
    assert from_run.task == "regression" and from_run.outputs.shape == (3,)
    exported = export_run(heat_run.run_dir, export_root=str(tmp_path / "saved"))
    from_export = predict(exported, [str(points)])
    np.testing.assert_allclose(from_export.outputs, from_run.outputs, rtol=1e-12)
    # the SavedModel in a process that never imports kerasdl: u(x, t) in float64
    code = ("import sys, tensorflow as tf; f = tf.saved_model.load(sys.argv[1]).signatures['serving_default'];"
            "u = f(inputs=tf.constant([[0.5, 0.0], [0.25, 0.5], [0.9, 1.0]], tf.float64))['u'];"
            "print(u.numpy()[:, 0].tolist()); assert 'kerasdl' not in sys.modules")
    out = subprocess.run([sys.executable, "-c", code, exported], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr[-2000:]
    np.testing.assert_allclose(json.loads(out.stdout.strip().splitlines()[-1]), from_run.outputs, rtol=1e-12)


def test_inverse_run_logs_and_reports_its_coefficient(tmp_path):
    result = _train(tmp_path, "inverse", problem="heat", inverse=True, n_data=200, noise=0.01)
    rows = _history(result.run_dir)
    assert all("alpha" in r for r in rows) and rows[0]["alpha"] != rows[-1]["alpha"]
    coef = result.metrics["test"]["coefficients"]["alpha"]
    assert coef["true"] == 0.4 and coef["fitted"] == pytest.approx(rows[-1]["alpha"], rel=1e-9)
    assert "loss_data" in rows[-1] and "loss_conditions" not in rows[-1]  # Raissi's inverse setup: data + PDE
    assert "plots/coefficients.png" in result.metrics["test"]["plots"]


def test_rar_adds_points_up_to_the_budget(tmp_path):
    result = _train(tmp_path, "rar", problem="heat", rar=True, rar_points=100, rar_rounds=2, rar_candidates=500,
                    adam_steps=90)
    counts = [r["collocation_points"] for r in _history(result.run_dir)]
    assert counts[0] == 200 and counts[-1] == 300 and counts == sorted(counts)


def test_rar_until_refines_into_the_lbfgs_phase_and_clears_its_memory(tmp_path):
    # 60 Adam + 60 L-BFGS iterations in rows of 30 (4 rows); rar_until=0.75: rounds at the ends of rows 0 and 1,
    # the second one (row 1, the last Adam row) just before L-BFGS starts: its memory is cleared there.
    from kerasdl.tasks.options import PINNOptions
    from kerasdl.tasks.pinn import Refinement

    opts = PINNOptions(**{**TINY, "rar": True, "rar_points": 100, "rar_rounds": 2, "rar_until": 0.75})
    opts.check()
    assert Refinement(None, opts, 0).adds == {0: 50, 1: 50}
    late = PINNOptions(**{**TINY, "adam_steps": 30, "lbfgs_steps": 120, "rar": True, "rar_points": 100,
                          "rar_rounds": 2, "rar_until": 0.8})
    assert max(Refinement(None, late, 0).adds) >= 1  # a round after the (one-row) Adam phase
    result = _train(tmp_path, "rar_late", problem="heat", adam_steps=30, lbfgs_steps=120, rar=True, rar_points=100,
                    rar_rounds=2, rar_candidates=500, rar_until=0.8)
    rows = _history(result.run_dir)
    counts = [r["collocation_points"] for r in rows]
    assert counts[0] < counts[-1] == 300 and counts == sorted(counts)
    assert any(r["phase"] == 1.0 and r["collocation_points"] < 300 for r in rows)  # L-BFGS ran before the last round


def test_hard_constraints_hold_exactly(tmp_path):
    from kerasdl.runs.load import load_run

    result = _train(tmp_path, "hard", problem="heat", hard=True, lbfgs_steps=0)
    run = load_run(result.run_dir)
    edge = np.array([[0.0, 0.3], [1.0, 0.7], [0.3, 0.0], [0.8, 0.0]])
    u = run.task.predict_points(run.model, edge)[:, 0]
    np.testing.assert_allclose(u, [0.0, 0.0, np.sin(0.3 * np.pi), np.sin(0.8 * np.pi)], atol=1e-12)
    assert "loss_conditions" not in _history(result.run_dir)[0]


def test_user_problem_file_is_kept_with_the_run(tmp_path):
    source = tmp_path / "decay.py"
    source.write_text(
        "import numpy as np\n"
        "from kerasdl.data.pde import Condition, Problem\n\n"
        "def residual(d, p):\n"
        "    return d['u_t'] + p['k'] * d['u']\n\n"
        "DECAY = Problem(name='decay', inputs=('t',), bounds={'t': (0.0, 1.0)}, residual=residual,\n"
        "    derivatives=('u_t',), params={'k': 2.0},\n"
        "    conditions=(Condition('initial', faces=({'t': 0.0},), value=lambda p: np.ones(len(p))),),\n"
        "    reference=lambda p: np.exp(-2.0 * p[:, 0]))\n")
    result = _train(tmp_path / "runs", "decay", problem=f"{source}:DECAY", adam_steps=30, lbfgs_steps=120,
                    n_conditions=1)
    assert os.path.exists(os.path.join(result.run_dir, "problem.py"))
    assert result.metrics["test"]["rel_l2"] < 1e-2
    os.remove(source)  # the run reads its own copy from now on
    from kerasdl import api

    assert api.evaluate_run(result.run_dir)["rel_l2"] == pytest.approx(result.metrics["test"]["rel_l2"])


# --------------------------------------------------------------------------- builders


def test_pinn_mlp_is_raissis_network():
    from kerasdl.models import build_model

    model = build_model("pinn_mlp", input_shape=(2,), low=[-1.0, 0.0], high=[1.0, 1.0])
    # 2 -> 8 x 20 tanh -> 1: "9 layers x 20" (Raissi et al. 2019, Burgers)
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == 2 * 20 + 20 + 7 * (20 * 20 + 20) + 21
    assert [l.name for l in model.layers] == ["input", "input_scale", *[f"hidden{i}" for i in range(1, 9)], "output"]
    # inputs are mapped from the box to [-1, 1] inside the model
    scaled = model.get_layer("input_scale")(np.array([[-1.0, 0.0], [1.0, 1.0]], "float32"))
    np.testing.assert_allclose(np.asarray(scaled), [[-1.0, -1.0], [1.0, 1.0]], atol=1e-6)


def test_fourier_mlp_and_bad_builder_options():
    from kerasdl.models import build_model

    model = build_model("fourier_mlp", input_shape=(2,), fourier_features=8)
    assert model.get_layer("fourier").output.shape[-1] == 16
    with pytest.raises(KerasdlUsageError, match="smooth"):
        build_model("pinn_mlp", input_shape=(2,), activation="relu")
    with pytest.raises(KerasdlUsageError, match="high > low"):
        build_model("pinn_mlp", input_shape=(2,), low=[0.0, 0.0], high=[0.0, 1.0])


def test_hard_constraint_archive_reloads_for_a_builtin_problem(tmp_path):
    import keras

    result = _train(tmp_path, "hardkeras", problem="heat", hard=True, adam_steps=30, lbfgs_steps=0)
    model = keras.saving.load_model(os.path.join(result.run_dir, "model.keras"))
    u = np.asarray(model(np.array([[0.0, 0.5], [0.5, 0.0]])))[:, 0]
    np.testing.assert_allclose(u, [0.0, 1.0], atol=1e-12)
