"""Calibration and uncertainty wired into runs: train calibrates, ensembles, evaluate, predict,
export and ``kerasdl calibrate`` (#5). The maths itself is tested in test_calibration.py and
test_uncertainty.py against NumPy; here the question is whether every command uses it rightly."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from kerasdl.config import RunConfig
from kerasdl.errors import KerasdlUsageError, UnknownNameError


def quiet(*_args, **_kw):
    pass


def run(tmp_path, name, **kw):
    from kerasdl.training import train

    kw = {"dataset": "digits", "model": "mlp", **kw}
    config = RunConfig(output_dir=str(tmp_path / "runs"), name=name, patience=0, **kw)
    return train(config, echo=quiet, rich_progress=False, progress=False)


@pytest.fixture(scope="module")
def ensemble_run(tmp_path_factory, data_dir):
    """A 3-member deep ensemble of small dropout MLPs on sklearn's digits, with conformal sets."""
    tmp = tmp_path_factory.mktemp("ens")
    return run(tmp, "ens", ensemble=3, epochs=3, model_options={"width": 64, "dropout": 0.2},
               conformal_alpha=0.1, seed=4)


def test_config_checks_the_new_fields():
    from kerasdl.evaluation import calibration
    from kerasdl.config import CALIBRATIONS

    assert CALIBRATIONS == calibration.KINDS  # the config's copy (no scipy import at CLI start) agrees
    with pytest.raises(UnknownNameError, match="temperature"):
        RunConfig(calibration="temprature").validate()
    for bad in ({"conformal_alpha": 0.0}, {"conformal_alpha": 1.5}, {"ensemble": 0}, {"ece_bins": 0},
                {"calibrate": "yes"}):
        with pytest.raises(KerasdlUsageError, match=next(iter(bad))):
            RunConfig(**bad).validate()


def test_ensemble_trains_members_and_predicts_their_mean(ensemble_run, data_dir):
    import keras

    from kerasdl import runs

    from kerasdl.evaluation import metrics
    from kerasdl.engine.ensemble import member_dir
    from kerasdl.data import load_splits

    run_dir = ensemble_run.run_dir
    record = ensemble_run.metrics
    assert record["ensemble"] == 3 and [m["seed"] for m in record["members"]] == [4, 5, 6]
    from kerasdl.runs.load import load_run

    members = [load_run(member_dir(run_dir, k)).model for k in (1, 2, 3)]
    w = [keras.ops.convert_to_numpy(m.trainable_weights[0]) for m in members]
    assert not np.allclose(w[0], w[1])  # different seeds, different nets
    loaded = load_run(run_dir)
    data, _ = load_splits(loaded.config, ("test",), shuffle_train=False)
    x, _ = next(iter(data["test"]))
    want = np.mean([metrics.softmax(keras.ops.convert_to_numpy(m(x))) for m in members], axis=0)
    got = metrics.softmax(keras.ops.convert_to_numpy(loaded.model(x)))
    np.testing.assert_allclose(got, want, atol=1e-5)
    # The ensemble's test NLL is at most the mean of its members' (Jensen: log is concave).
    assert record["test"]["nll"] <= np.mean([m["nll"] for m in record["members"]]) + 1e-9
    assert record["parameters"] == sum(m.count_params() for m in members)


def test_train_calibrates_on_validation_and_keeps_the_argmax(ensemble_run):
    from kerasdl.evaluation import posthoc

    cal = json.loads(open(os.path.join(ensemble_run.run_dir, posthoc.CALIBRATION)).read())
    assert cal["fitted_on"] == "validation" and cal["temperature"] > 0
    assert cal["test_after"]["accuracy"] == cal["test_before"]["accuracy"]  # T never changes the argmax
    assert cal["validation_nll_after"] <= cal["validation_nll_before"] + 1e-12  # it minimises val NLL
    assert cal["test_before"]["accuracy"] == pytest.approx(ensemble_run.metrics["test"]["accuracy"])
    assert ensemble_run.metrics["calibration"]["temperature"] == cal["temperature"]
    conformal = cal["conformal"]
    assert set(conformal) >= {"lac", "aps"} and conformal["alpha"] == 0.1
    for score in ("lac", "aps"):
        assert 0.75 <= conformal[score]["coverage"] <= 1.0
        assert conformal[score]["mean_set_size"] >= 0.5
    for png in cal["plots"]:
        assert os.path.getsize(png) > 5000


def test_evaluate_reports_calibrated_conformal_and_mc_dropout(ensemble_run, data_dir):
    from kerasdl.api import evaluate_run

    report = evaluate_run(ensemble_run.run_dir, "test", mc_samples=5)
    cal = json.loads(open(os.path.join(ensemble_run.run_dir, "calibration.json")).read())
    assert report["calibrated"]["nll"] == pytest.approx(cal["test_after"]["nll"], abs=1e-9)
    assert report["calibrated"]["ece"] == pytest.approx(cal["test_after"]["ece"], abs=1e-9)
    assert report["brier"] == pytest.approx(cal["test_before"]["brier"], abs=1e-9)
    assert report["conformal"]["lac"]["coverage"] == pytest.approx(cal["conformal"]["lac"]["coverage"])
    mc = report["mc_dropout"]
    assert mc["samples"] == 5 and 0.5 < mc["accuracy"] <= 1 and mc["mean_mutual_information"] > 0
    again = evaluate_run(ensemble_run.run_dir, "test", mc_samples=5)["mc_dropout"]
    assert again == mc  # seeded masks


def test_vector_scaling_rerun_with_calibrate_run(ensemble_run, data_dir, tmp_path):
    import shutil

    from kerasdl.api import calibrate_run
    from kerasdl.evaluation.posthoc import load_calibrator

    copy = str(tmp_path / "copy")
    shutil.copytree(ensemble_run.run_dir, copy)
    record = calibrate_run(copy, method="vector", n_bins=10)
    assert record["method"] == "vector" and record["n_bins"] == 10 and "temperature" not in record
    assert load_calibrator(copy).kind == "vector"
    assert json.loads(open(os.path.join(copy, "metrics.json")).read())["calibration"]["method"] == "vector"


def test_ensemble_resume_trains_only_the_missing_member(ensemble_run, tmp_path, data_dir):
    import shutil

    from kerasdl import runs
    from kerasdl.engine.ensemble import member_dir
    from kerasdl.training import resume_config, train

    copy = tmp_path / "runs" / "ens"
    shutil.copytree(ensemble_run.run_dir, copy)
    shutil.rmtree(member_dir(str(copy), 3))  # as if interrupted before member 3 started
    runs.write_json(os.path.join(copy, "metrics.json"), {"status": "running"})
    kept = os.path.getmtime(os.path.join(member_dir(str(copy), 1), "model.keras"))
    lines = []
    result = train(resume_config(str(copy)), resume=True, echo=lines.append, rich_progress=False, progress=False)
    assert "ensemble member 1/3 (seed 4): already trained" in lines
    assert os.path.getmtime(os.path.join(member_dir(str(copy), 1), "model.keras")) == kept
    assert result.metrics["members"][2]["accuracy"] == pytest.approx(ensemble_run.metrics["members"][2]["accuracy"])
    assert result.metrics["test"]["accuracy"] == pytest.approx(ensemble_run.metrics["test"]["accuracy"])


def test_calibration_is_refused_for_regression(tmp_path, data_dir):
    result = run(tmp_path, "reg", dataset="diabetes", epochs=1)
    assert "calibration" not in result.metrics
    from kerasdl.api import calibrate_run

    with pytest.raises(KerasdlUsageError, match="classifiers"):
        calibrate_run(result.run_dir)


def test_cli_calibrate_command(trained_run, run_cli, workdir, tmp_path):
    import shutil

    run = tmp_path / "lenet"
    shutil.copytree(trained_run[0], run)
    proc = run_cli("calibrate", run, "--method", "vector", "--bins", "10", "--conformal-alpha", "0.2",
                   cwd=workdir, check=0)
    for word in ("calibration (vector scaling", "ece (10 bins)", "LAC", "APS", "test coverage"):
        assert word in proc.stdout, word
    cal = json.loads((run / "calibration.json").read_text())
    assert cal["method"] == "vector" and cal["conformal"]["alpha"] == 0.2 and len(cal["calibrator"]["params"]["w"]) == 10


def test_cli_bad_uncertainty_requests_exit_2(trained_run, cli_inprocess, workdir):
    run, run_cli = trained_run[0], cli_inprocess
    cases = [
        (["evaluate", run, "--mc-samples", "3"], "no dropout layer"),  # lenet5 has no dropout
        (["train", "--calibration", "platt", "--epochs", "1"], "temperature"),
        (["train", "--conformal-alpha", "1.5", "--epochs", "1"], "conformal_alpha"),
        (["calibrate", "runs/nope"], "not found"),
        (["predict", run, "x.npz", "--mc-samples", "5", "--sets", "lac"], "without MC dropout"),
    ]
    for args, needle in cases:
        proc = run_cli(*args, cwd=workdir)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and needle in lines[0], (args, proc.stderr)
