"""kerasdl tune on the real Keras Tuner: every tuner completes, failures (a child process's crash
included) are recorded, resume does not redo finished trials, and the best config retrains to its
reported score. Every trial runs in a fresh child process (the default, ``trial_process="fresh"``)."""

from __future__ import annotations

import csv
import math
import os
import sys

import pytest
import yaml

from kerasdl.errors import KerasdlUsageError, UnknownNameError

SMALL = {  # a small, fast space: MLPs on sklearn's 8x8 digits
    "learning_rate": {"type": "choice", "values": [0.003, 0.01]},
    "optimizer": {"type": "fixed", "value": "adam"},
    "batch_size": {"type": "fixed", "value": 64},
    "augment": {"type": "fixed", "value": "none"},
    "model_opt.width": {"type": "choice", "values": [32, 64]},
    "model_opt.depth": {"type": "fixed", "value": 1},
}


def settings(tuner="random", max_trials=3, epochs=2, space=None, objective="val_loss", process="fresh"):
    from kerasdl.config import RunConfig
    from kerasdl.tuning.search import TuneSettings

    base = {k: v for k, v in RunConfig(model="mlp", dataset="digits", epochs=epochs, patience=0).to_dict().items()
            if k not in ("name", "output_dir")}
    return TuneSettings(base=base, tuner=tuner, objective=objective, max_trials=max_trials, seed=0,
                        space=space or SMALL, trial_process=process)


def rows(tune_dir):
    with open(os.path.join(tune_dir, "tune_results.csv"), encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_default_space_follows_the_builder_and_yaml_overrides(tmp_path):
    from kerasdl.tuning.search import default_space, read_space

    mlp = default_space("mlp")
    assert {"learning_rate", "optimizer", "batch_size", "augment", "model_opt.width", "model_opt.dropout"} <= set(mlp)
    assert "model_opt.width" not in default_space("lenet5")  # lenet5's builder has no width option
    (tmp_path / "s.yaml").write_text("model_opt.width: {type: choice, values: [8, 16]}\n")
    assert read_space(str(tmp_path / "s.yaml"), mlp)["model_opt.width"]["values"] == [8, 16]
    (tmp_path / "bad.yaml").write_text("learning_rate: {type: flaot, min: 1, max: 2}\n")
    with pytest.raises(UnknownNameError, match="float"):
        read_space(str(tmp_path / "bad.yaml"), mlp)
    (tmp_path / "bad2.yaml").write_text("learning_rate: {type: float, min: 2, max: 1}\n")
    with pytest.raises(KerasdlUsageError, match="min < max"):
        read_space(str(tmp_path / "bad2.yaml"), mlp)
    (tmp_path / "bad3.yaml").write_text("learning_rat: {type: fixed, value: 1}\n")
    with pytest.raises(UnknownNameError, match="learning_rate"):
        read_space(str(tmp_path / "bad3.yaml"), mlp)


# The oracles run their trials in the search process (--trial-process shared); fresh trial processes
# (the default) are what every other test here uses: the oracles do not depend on it.
@pytest.mark.parametrize("tuner, process", [("grid", "shared"), ("bayesian", "shared"), ("hyperband", "shared")])
def test_each_tuner_completes(tuner, process, tmp_path, data_dir):
    from kerasdl.tuning.search import tune

    search = settings(tuner, max_trials=3, epochs=3, process=process)
    search.bayesian_initial_points = 2  # bayesian: the Gaussian process proposes the third trial
    result = tune(search, str(tmp_path / tuner), echo=lambda *_: None)
    done = [r for r in result.rows if r["status"] == "completed"]
    assert len(done) >= 2 and result.best_config
    values = [r["val_loss"] for r in done]
    assert values == sorted(values)  # ranked, best first
    if tuner == "grid":  # 2 x 2 grid, capped at 3 trials, no combination twice
        combos = {(r["learning_rate"], r["model_opt.width"]) for r in done}
        assert len(combos) == len(done) == 3
    if tuner == "hyperband":
        assert {int(r["tuner/epochs"]) for r in done} >= {1, 3}  # successive halving budgets
    trial_logs = os.path.join(result.tune_dir, "trial_logs")
    assert os.path.isdir(trial_logs) == (process == "fresh")  # the children's request, result and output


def test_random_search_best_config_retrains_to_its_score(tmp_path, data_dir):
    from kerasdl.config import RunConfig
    from kerasdl.training import train
    from kerasdl.tuning.search import tune, validation_figures

    result = tune(settings("random", max_trials=2), str(tmp_path / "t"), echo=lambda *_: None)
    table = rows(result.tune_dir)
    assert len(table) == 2 and {r["status"] for r in table} == {"completed"}
    for row in table:  # each trial ran in its own process, which reported its start-up and peak memory
        assert float(row["startup_seconds"]) > 0 and float(row["peak_rss_mib"]) > 100
        assert os.path.isfile(os.path.join(result.tune_dir, "trial_logs", row["trial"], "result.json"))
    assert os.path.getsize(result.plot) > 5000
    best = yaml.safe_load(open(result.best_config))
    config = RunConfig.from_mapping(best).replace(output_dir=str(tmp_path / "re"), name="best")
    retrained = train(config, echo=lambda *_: None, progress=False)
    again = validation_figures(retrained.run_dir, config)["val_loss"]
    assert again == pytest.approx(float(table[0]["val_loss"]), rel=0.02)  # seeded: the same run again


def test_failed_trials_are_recorded_and_the_search_goes_on(tmp_path, data_dir):
    from kerasdl.tuning.search import tune

    space = dict(SMALL, optimizer={"type": "fixed", "value": "sgd"},
                 learning_rate={"type": "choice", "values": [0.05, 1e12]}, **{"model_opt.width": {"type": "fixed", "value": 32}})
    result = tune(settings("grid", max_trials=2, space=space), str(tmp_path / "f"), echo=lambda *_: None)
    status = {float(r["learning_rate"]): r for r in rows(result.tune_dir)}
    assert status[0.05]["status"] == "completed"
    assert status[1e12]["status"] == "failed" and "nan" in status[1e12]["message"].lower()


def test_a_crashed_trial_process_is_a_failed_trial_and_the_search_goes_on(tmp_path, data_dir, monkeypatch):
    """The first trial's child is killed by SIGKILL (as the out-of-memory killer does), the second
    exits with code 3 without a result: both become failed trials with that reason (the search went
    on after the first) and the search ends normally."""
    from kerasdl.tuning import search as tuning

    crashes = [
        "import os, signal; os.kill(os.getpid(), signal.SIGKILL)",
        "import os; print('fatal error in the child', flush=True); os._exit(3)",
    ]
    monkeypatch.setattr(tuning, "trial_command", lambda request, result: [sys.executable, "-c", crashes.pop(0)])
    lines = []
    result = tuning.tune(settings("grid", max_trials=2), str(tmp_path / "c"), echo=lines.append)
    assert not crashes  # both trials ran
    by_trial = {r["trial"]: r for r in rows(result.tune_dir)}
    first, second = sorted(by_trial)
    assert by_trial[first]["status"] == "failed" and "killed by SIGKILL" in by_trial[first]["message"]
    assert by_trial[second]["status"] == "failed"
    assert "exited with code 3: fatal error in the child" in by_trial[second]["message"]
    assert result.best_config is None
    assert any(line.startswith(f"trial {first} failed: trial process killed by SIGKILL") for line in lines)


def test_resume_does_not_redo_finished_trials(tmp_path, data_dir):
    from kerasdl.tuning.search import TuneSettings, tune

    tune_dir = str(tmp_path / "r")
    started = []

    def interrupt_at_second_trial(line):
        if line.startswith("trial ") and line.endswith("s)"):
            started.append(line)  # a finished trial's summary line
        elif line.startswith("trial ") and len(started) == 1:
            raise KeyboardInterrupt  # as if Ctrl-C arrived when the second trial began

    with pytest.raises(KeyboardInterrupt):
        tune(settings("random", max_trials=2), tune_dir, echo=interrupt_at_second_trial)
    first = sorted(os.listdir(os.path.join(tune_dir, "trials")))
    assert len(first) == 1
    model_file = os.path.join(tune_dir, "trials", first[0], "model.keras")
    stamp = os.path.getmtime(model_file)
    lines = []
    result = tune(TuneSettings.load(tune_dir), tune_dir, resume=True, echo=lines.append)
    assert os.path.getmtime(model_file) == stamp  # the finished trial was not run again
    assert not any(line.startswith(f"trial {first[0]}:") for line in lines)
    table = rows(result.tune_dir)
    assert len(table) == 2 and len({r["trial"] for r in table}) == 2
    assert sorted(os.listdir(os.path.join(tune_dir, "trials"))) == sorted(r["trial"] for r in table)


def test_cli_tune_bad_input_exits_2(cli_inprocess, tmp_path):
    proc = cli_inprocess("tune", "--tuner", "hyperbnd", cwd=tmp_path)
    assert proc.returncode == 2 and "hyperband" in proc.stderr
    proc = cli_inprocess("tune", "--objective", "val_acc", cwd=tmp_path)
    assert proc.returncode == 2 and "val_accuracy" in proc.stderr
    proc = cli_inprocess("tune", "--trial-process", "forked", cwd=tmp_path)
    assert proc.returncode == 2 and "fresh" in proc.stderr
    proc = cli_inprocess("tune", "--resume", str(tmp_path / "nope"), cwd=tmp_path)
    assert proc.returncode == 2 and "tune directory" in proc.stderr
    proc = cli_inprocess("tune", "--model", "mlp", "--show-space", cwd=tmp_path)
    assert proc.returncode == 0 and "model_opt.width" in proc.stdout


def test_chief_and_two_workers_run_every_trial_exactly_once(tmp_path, data_dir):
    """Keras Tuner's distributed protocol for real: a chief process serving the oracle over gRPC on
    loopback and two worker processes, all ``kerasdl tune --join``."""
    from kerasdl.tuning.search import tune

    tune_dir = str(tmp_path / "dist")
    result = tune(settings("random", max_trials=4, epochs=1), tune_dir, workers=2, echo=lambda *_: None)
    table = rows(tune_dir)
    assert len(table) == 4 and {r["status"] for r in table} == {"completed"}
    ids = sorted(r["trial"] for r in table)
    assert sorted(os.listdir(os.path.join(tune_dir, "trials"))) == ids
    finished = []
    for worker in ("tuner0", "tuner1"):
        with open(os.path.join(tune_dir, "logs", f"{worker}.log"), encoding="utf-8") as f:
            finished += [line.split(":")[0].split()[1] for line in f if line.startswith("trial ") and "val_loss" in line]
    assert sorted(finished) == ids  # every trial ran once, in one of the workers
    assert result.best_config and os.path.exists(result.best_config)


def test_the_task_owns_the_objectives_and_adds_its_options_to_the_space():
    """Supervised runs keep loss/accuracy/NLL/ECE with their directions; a VAE offers val_elbo (to
    maximise) and val_loss; its options are searched as task_opt.<key> and routed into task_options."""
    from kerasdl.config import RunConfig
    from kerasdl.tuning.search import OBJECTIVES, apply_values, task_space

    sup = settings()
    assert sup.objectives() == {"val_loss": "min", "val_accuracy": "max", "val_nll": "min", "val_ece": "min"}
    assert tuple(sup.objectives()) == OBJECTIVES
    base = RunConfig(model="dense_encoder", dataset="digits", task="vae", epochs=1, patience=0)
    space = task_space(base)
    assert space["task_opt.latent_dim"] == {"type": "choice", "values": [2, 8, 16, 32]}
    assert space["task_opt.beta"]["values"] == [0.5, 1.0, 2.0]
    assert "model_opt.width" in space and "learning_rate" in space
    assert space["augment"] == {"type": "fixed", "value": "none"}  # unlabeled: nothing to augment
    config = apply_values(base, {"task_opt.latent_dim": 2, "task_opt.beta": 0.5, "model_opt.width": 64,
                                 "learning_rate": 0.003, "tuner/epochs": 1})
    assert config.task_options == {"latent_dim": 2, "beta": 0.5} and config.model_options == {"width": 64}
    assert config.learning_rate == 0.003
    vae = settings(objective="val_elbo")
    vae.base = {k: v for k, v in base.to_dict().items() if k not in ("name", "output_dir")}
    vae.space = space
    vae.check()
    assert vae.direction() == "max"
    vae.objective = "val_accuracy"
    with pytest.raises(UnknownNameError, match="val_elbo, val_loss"):
        vae.check()


def test_cli_tune_vae_ranks_trials_by_the_higher_val_elbo(cli_inprocess, tmp_path, data_dir):
    """Two one-epoch VAE trials in the search process: both record val_elbo from their history and
    best.yaml is the VAE trial with the higher ELBO; an objective the task does not offer is refused."""
    from clihelpers import assert_one_line_error

    proc = cli_inprocess("tune", "--task", "vae", "--objective", "val_accuracy", cwd=tmp_path)
    assert_one_line_error(proc, "val_accuracy", "val_elbo", "val_loss")
    assert not os.path.exists(tmp_path / "runs")  # nothing written
    space = tmp_path / "space.yaml"  # small and fast: one tiny layer, two code sizes
    space.write_text("model_opt.width: {type: fixed, value: 32}\nmodel_opt.activation: {type: fixed, value: relu}\n"
                     "task_opt.latent_dim: {type: choice, values: [2, 8]}\nbatch_size: {type: fixed, value: 128}\n"
                     "learning_rate: {type: choice, values: [0.0003, 0.003]}\n")
    proc = cli_inprocess("tune", "--task", "vae", "--dataset", "digits", "--objective", "val_elbo", "--max-trials", "2",
                         "--epochs", "1", "--trial-process", "shared", "--space", str(space), "--task-opt",
                         "iw_samples=2", "--name", "v", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table = rows(tmp_path / "runs" / "v")
    assert len(table) == 2 and {r["status"] for r in table} == {"completed"}
    elbos = [float(r["val_elbo"]) for r in table]
    assert all(math.isfinite(e) and e < 0 for e in elbos)
    assert elbos[0] == max(elbos)  # ranked: the higher ELBO first
    best = yaml.safe_load(open(tmp_path / "runs" / "v" / "best.yaml"))
    assert best["task"] == "vae" and best["model"] == "dense_encoder"
    assert best["task_options"]["latent_dim"] == int(table[0]["task_opt.latent_dim"])
    assert best["learning_rate"] == pytest.approx(float(table[0]["learning_rate"]))
