"""Run plots (kerasdl/plots/__init__.py, kerasdl/evaluation/report.py): what a run leaves to look at.

Tiny real runs through the CLI: an ensemble's members each get a normal run's figures, a
regression run a predicted-vs-true scatter, a segmentation run predicted-mask examples.
"""

from __future__ import annotations

import json

import numpy as np


def read_png(path):
    import matplotlib.image

    return matplotlib.image.imread(str(path))


def assert_png(path):
    """A real, non-blank figure."""
    assert path.is_file(), f"missing {path}"
    image = read_png(path)
    assert image.ndim == 3 and min(image.shape[:2]) > 100
    assert image[..., :3].std() > 0.01  # something was drawn


def test_regression_scatter_draws_the_points_and_the_diagonal(tmp_path):
    import matplotlib.pyplot as plt

    from kerasdl import plots

    captured = {}
    original = plots.save

    def keep(fig, path):
        ax = fig.axes[0]
        captured["points"] = ax.collections[0].get_offsets()
        captured["text"] = " ".join(t.get_text() for t in ax.texts)
        return original(fig, path)

    y_true = np.array([1.0, 2.0, 3.0, 4.0])
    y_pred = np.array([1.5, 2.0, 2.5, 4.5])
    try:
        plots.save = keep
        out = plots.regression_scatter(y_true, y_pred, str(tmp_path / "s.png"))
    finally:
        plots.save = original
    assert out == str(tmp_path / "s.png")
    assert_png(tmp_path / "s.png")
    np.testing.assert_allclose(captured["points"], np.stack([y_true, y_pred], axis=1))
    assert "R² 0.850" in captured["text"] and "n 4" in captured["text"]  # 1 - 0.75 / 5
    plt.close("all")


def test_segmentation_examples_show_input_true_and_predicted_masks(tmp_path):
    from kerasdl import plots

    rng = np.random.default_rng(0)
    images = rng.random((2, 16, 16, 3)).astype("float32")
    truth = np.zeros((2, 16, 16), int)
    truth[:, 4:12, 4:12] = 2
    predicted = truth.copy()
    predicted[0, :8] = 1
    plots.segmentation_examples(images, truth, predicted, str(tmp_path / "m.png"),
                                class_names=["background", "circle", "square"])
    assert_png(tmp_path / "m.png")


def test_ensemble_members_get_the_figures_of_a_normal_run(cli_inprocess, tmp_path):
    proc = cli_inprocess("train", "--model", "mlp", "--dataset", "digits", "--epochs", "1", "--ensemble", "2",
                         "--name", "ens", "--output-dir", tmp_path / "runs", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "runs" / "ens"
    for k in (1, 2):
        member = run / "members" / f"member{k}"
        for figure in ("learning_curves", "confusion_matrix_test", "reliability_test", "confidence_histogram"):
            assert_png(member / "plots" / f"{figure}.png")
        record = json.loads((member / "metrics.json").read_text())
        assert "calibration" in record  # the reliability diagram's figures, as in a normal run
    assert_png(run / "plots" / "member_learning_curves.png")  # the members side by side
    assert_png(run / "plots" / "reliability_test.png")  # the ensemble's own, as before
    listing = cli_inprocess("runs", tmp_path / "runs", cwd=tmp_path)
    assert "\t2 x mlp\t1/1\t" in listing.stdout


def test_regression_run_plots_predicted_against_true(cli_inprocess, tmp_path):
    proc = cli_inprocess("train", "--model", "mlp", "--dataset", "diabetes", "--epochs", "1", "--name", "reg",
                         "--output-dir", tmp_path / "runs", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "runs" / "reg"
    figure = run / "plots" / "regression_scatter_test.png"
    assert_png(figure)
    record = json.loads((run / "metrics.json").read_text())
    assert str(figure) in record["test"]["plots"]
    figure.unlink()
    proc = cli_inprocess("evaluate", run, cwd=tmp_path)  # evaluate draws it again
    assert proc.returncode == 0, proc.stderr
    assert_png(figure)
    assert f"plot: {figure}" in proc.stdout


def test_segmentation_run_plots_predicted_masks(cli_inprocess, tmp_path):
    proc = cli_inprocess("train", "--model", "unet", "--dataset", "shapes", "--epochs", "1", "--model-opt",
                         "base_filters=4", "--model-opt", "depth=2", "--augment", "none", "--image-size", "32,32",
                         "--batch-size", "128", "--name", "seg",
                         "--output-dir", tmp_path / "runs", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "runs" / "seg"
    assert_png(run / "plots" / "segmentation_examples_test.png")
    assert_png(run / "plots" / "confusion_matrix_test.png")
