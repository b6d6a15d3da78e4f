"""``kerasdl predict`` and ``kerasdl export`` never crash and never answer silently wrong (#13):
uncertainty columns on the terminal, a serving signature that checks its input, warnings for
inputs far from the training data, and export names that hold one lineage each."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from kerasdl.config import RunConfig
from kerasdl.errors import KerasdlUsageError


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, data_dir):
    """One epoch of a tiny conv net with dropout on sklearn's digits (uint8 8x8x1, values 0..16),
    with conformal sets: every predict option works on it, and convs make a wrong input rank fatal
    to the kernels."""
    from kerasdl.training import train

    tmp = tmp_path_factory.mktemp("predict")
    config = RunConfig(model="cnn", dataset="digits", epochs=1, patience=0, seed=0, augment="none",
                       model_options={"spec": "cpd", "filters": 8, "padding": "same", "dropout": 0.2},
                       conformal_alpha=0.1, output_dir=str(tmp / "runs"), name="tiny")
    return train(config, echo=lambda *a, **k: None, rich_progress=False, progress=False).run_dir


@pytest.fixture(scope="module")
def digits_test():
    from kerasdl.data import load_arrays

    x, y, _ = load_arrays("digits", "test")
    return x, y


def test_predict_prints_uncertainty_and_sets_without_output_file(tiny_run, digits_test, cli_inprocess, tmp_path):
    """The README's `--mc-samples 50` and `--sets lac` lines, without -o, crashed with NameError."""
    np.savez(tmp_path / "batch.npz", x=digits_test[0][:4])
    mc = cli_inprocess("predict", tiny_run, "batch.npz", "--mc-samples", "3", cwd=tmp_path)
    assert mc.returncode == 0, mc.stderr
    rows = mc.stdout.strip().splitlines()
    assert len(rows) == 4 and all("std=" in r and "mutual_information=" in r for r in rows), mc.stdout
    sets = cli_inprocess("predict", tiny_run, "batch.npz", "--sets", "lac", "--top", "2", cwd=tmp_path)
    assert sets.returncode == 0, sets.stderr
    rows = sets.stdout.strip().splitlines()
    assert len(rows) == 4 and all("\tprediction_set={" in r for r in rows), sets.stdout


def test_serving_signature_takes_a_batch_without_channel_axis_and_rejects_bad_shapes(tiny_run, digits_test,
                                                                                    tmp_path):
    """Plain TensorFlow (no kerasdl), oneDNN on: an (N, 8, 8) uint8 batch used to abort the process.
    Now it gets its channel axis; any other shape raises a Python error naming the shape."""
    from kerasdl.export.savedmodel import export_run

    path = export_run(tiny_run, export_root=str(tmp_path / "sm"))
    np.save(tmp_path / "x.npy", digits_test[0][:16])
    script = textwrap.dedent(f"""
        import json, sys, numpy as np, tensorflow as tf
        serve = tf.saved_model.load({path!r}).signatures["serving_default"]
        x = np.load({str(tmp_path / "x.npy")!r})
        out = {{"4d": serve(inputs=tf.constant(x))["probabilities"].numpy().tolist(),
                "3d": serve(inputs=tf.constant(x[..., 0]))["probabilities"].numpy().tolist(), "bad": []}}
        for bad in (x[:, :7], np.repeat(x, 3, axis=-1), x[0, :, :, 0], x[None]):
            try:
                serve(inputs=tf.constant(bad))
                out["bad"].append("accepted")
            except Exception as e:
                out["bad"].append(type(e).__name__ + ": " + str(e))
        assert "kerasdl" not in sys.modules
        print(json.dumps(out))
    """)
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="1", TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]  # the process survived every call
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(out["3d"], out["4d"], atol=1e-6)
    assert np.array(out["4d"]).shape == (16, 10)
    for message in out["bad"]:
        assert message.startswith("InvalidArgumentError") and "inputs must have shape (N, 8, 8, 1) or (N, 8, 8)" \
            in message, message


def test_predict_warns_on_inputs_scaled_to_unit_range_or_inverted(tiny_run, digits_test, cli_inprocess, tmp_path):
    """Floats in [0, 1] where uint8 0..16 was trained on, and inverted digits, used to get confident
    answers and no word; the real test split gets no warning."""
    from kerasdl.export.savedmodel import export_run
    from kerasdl.predict import STATS_KEY, predict

    stats = json.loads(open(os.path.join(tiny_run, "dataset.json")).read())[STATS_KEY]  # stored by train
    assert stats["min"] == 0 and stats["max"] == 16 and stats["examples"] == 1259
    x = digits_test[0]
    np.savez(tmp_path / "good.npz", x=x)
    np.savez(tmp_path / "scaled.npz", x=x[:5] / 16.0)
    np.savez(tmp_path / "inverted.npz", x=16 - x[:5])
    export = export_run(tiny_run, export_root=str(tmp_path / "sm"))
    for source in (tiny_run, export):  # the export carries the statistics in kerasdl.json
        assert predict(source, [str(tmp_path / "good.npz")]).warnings == []
        scaled = predict(source, [str(tmp_path / "scaled.npz")]).warnings
        assert len(scaled) == 1 and "scaled to [0, 1]" in scaled[0], scaled
        assert "uint8 inputs of shape (N, 8, 8, 1) with values 0..16" in scaled[0]
        inverted = predict(source, [str(tmp_path / "inverted.npz")]).warnings
        assert len(inverted) == 1 and "5 of 5 inputs" in inverted[0] and "inverted polarity" in inverted[0]
        mixed = predict(source, [str(tmp_path / p) for p in ("good.npz", "scaled.npz", "inverted.npz")]).warnings
        assert len(mixed) == 2, mixed  # each file's problem once, naming its inputs
        assert mixed[0].startswith("5 of 279 inputs (") and "scaled.npz[0]," in mixed[0] and "[0, 1]" in mixed[0]
        assert mixed[1].startswith("5 of 279 inputs (") and "inverted.npz[0]," in mixed[1]
        assert "inverted polarity" in mixed[1]
    proc = cli_inprocess("predict", tiny_run, "inverted.npz", cwd=tmp_path)
    assert proc.returncode == 0 and len(proc.stdout.strip().splitlines()) == 5
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("Warning: ")]
    assert len(warnings) == 1 and "inverted polarity" in warnings[0], proc.stderr


def test_export_names_after_the_run_and_versions_one_lineage_only(tiny_run, cli_inprocess, tmp_path):
    """Exports used to go to saved_models/<model>/, mixing unrelated runs as versions of one model."""
    from kerasdl.export.savedmodel import export_run

    root = tmp_path / "sm"
    assert export_run(tiny_run, export_root=str(root)) == str(root / "tiny" / "1")
    assert export_run(tiny_run, export_root=str(root)) == str(root / "tiny" / "2")  # a re-export
    # A retrained run of the same setup may be a version of the same name ...
    again = shutil.copytree(tiny_run, tmp_path / "tiny-again")
    assert export_run(str(again), export_root=str(root), name="tiny") == str(root / "tiny" / "3")
    assert json.loads((root / "tiny" / "3" / "kerasdl.json").read_text())["run_dir"] == str(again)
    # ... a run of another dataset (a CSV here) under that name is refused before anything is written.
    other = tmp_path / "csv-run"
    shutil.copytree(tiny_run, other)
    config = (other / "config.yaml").read_text()
    (other / "config.yaml").write_text(config.replace("dataset: digits", "dataset: patients.csv"))
    with pytest.raises(KerasdlUsageError, match="holds another model .*dataset 'digits' there vs 'patients.csv'"):
        export_run(str(other), export_root=str(root), name="tiny")
    proc = cli_inprocess("export", other, "--export-dir", root, "--name", "tiny", cwd=tmp_path)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "choose another --name" in lines[0], proc.stderr
    assert sorted(os.listdir(root / "tiny")) == ["1", "2", "3"]  # no version, no temporary left
    proc = cli_inprocess("export", other, "--export-dir", root, "--name", "../x", cwd=tmp_path)
    assert proc.returncode == 2 and "plain folder name" in proc.stderr
    proc = cli_inprocess("export", other, "--export-dir", root, cwd=tmp_path)  # its own name: fine
    assert proc.returncode == 0 and proc.stdout.strip().endswith(os.path.join("csv-run", "1"))
