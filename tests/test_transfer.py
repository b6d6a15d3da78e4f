"""Class subsets, label budgets, transfer learning and the binary (sigmoid) head, in-process."""

from __future__ import annotations

import numpy as np
import pytest

from kerasdl.config import RunConfig
from kerasdl.errors import KerasdlUsageError


def quiet(*_args, **_kw):
    pass


def run(tmp_path, **kw):
    from kerasdl.training import train

    config = RunConfig(output_dir=str(tmp_path / "runs"), patience=0, **kw)
    return train(config, echo=quiet, rich_progress=False)


def test_subset_relabels_and_limits_per_class():
    from kerasdl.data import DatasetInfo
    from kerasdl.data.subset import subset_arrays

    info = DatasetInfo("toy", "npz", "classification", (2,), "float32", 4, ["a", "b", "c", "d"],
                       {"train": 40}, 0.0, 1.0)
    x = np.arange(80, dtype="float32").reshape(40, 2)
    y = np.arange(40) % 4
    xs, ys, sub = subset_arrays(x, y, info, classes=[3, "b"], per_class=4, seed=0)
    assert sub.num_classes == 2 and sub.class_names == ["d", "b"]
    assert np.bincount(ys).tolist() == [4, 4]
    assert np.all(y[(xs[:, 0] / 2).astype(int)] == np.where(ys == 0, 3, 1))  # relabelled in the order given
    again = subset_arrays(x, y, info, classes=[3, "b"], per_class=4, seed=0)[0]
    assert np.array_equal(xs, again)  # seeded choice
    with pytest.raises(KerasdlUsageError, match="class 'z'"):
        subset_arrays(x, y, info, classes=["z", "a"])


def test_transfer_frozen_backbone_trains_only_a_new_head(tmp_path, data_dir):
    src = run(tmp_path, model="lenet5", dataset="mnist5k", classes=[0, 1, 2, 3, 4], epochs=2, name="src",
              augment="none")
    assert src.metrics["test"]["n"] == 500 and src.metrics["test"]["accuracy"] > 0.9
    dst = run(tmp_path, model="lenet5", dataset="mnist5k", classes=[5, 6, 7, 8, 9], train_per_class=10,
              epochs=30, batch_size=10, learning_rate=1e-2, name="dst", init_from=src.run_dir,
              freeze="backbone", augment="none")
    transfer = dst.metrics["transfer"]
    # Same class count, different labels: the head is still re-initialised.
    assert transfer["reinitialised"] == ["head_logits"] and transfer["copied_layers"] >= 4
    assert dst.metrics["trainable_parameters"] == 84 * 5 + 5
    from kerasdl.runs.load import load_run

    a, b = load_run(src.run_dir).model, load_run(dst.run_dir).model
    for layer in a.layers:
        if layer.weights and layer.name != "head_logits":  # the frozen backbone did not move
            for wa, wb in zip(layer.get_weights(), b.get_layer(layer.name).get_weights()):
                np.testing.assert_array_equal(wa, wb)
    assert dst.metrics["test"]["accuracy"] > 0.5  # 50 labels, 5 classes: far above chance (0.2)


def test_unfreeze_last_and_bad_transfer(tmp_path, data_dir):
    src = run(tmp_path, model="mlp", dataset="digits", epochs=1, name="s")
    dst = run(tmp_path, model="mlp", dataset="digits", epochs=1, name="d", init_from=src.run_dir,
              freeze="backbone", unfreeze_last=1)
    assert dst.metrics["transfer"]["unfrozen_backbone_layers"] == ["dense2_linear"] or \
        len(dst.metrics["transfer"]["unfrozen_backbone_layers"]) == 1
    assert dst.metrics["transfer"]["reinitialised"] == []  # same labels: the head is kept too
    with pytest.raises(KerasdlUsageError, match="nothing to transfer"):
        run(tmp_path, model="logistic", dataset="iris", epochs=1, name="x", init_from=src.run_dir)
    with pytest.raises(KerasdlUsageError, match="init_from"):
        RunConfig(freeze="backbone").validate()


def test_binary_head_on_breast_cancer_exports_two_probabilities(tmp_path, data_dir):
    res = run(tmp_path, model="mlp", dataset="breast_cancer", loss="binary_crossentropy", epochs=15,
              name="bin", learning_rate=3e-3)
    assert res.metrics["test"]["accuracy"] > 0.9
    from kerasdl.runs.load import load_run

    model = load_run(res.run_dir).model
    assert model.output_shape == (None, 1)  # one sigmoid logit
    from kerasdl.data import load_arrays
    from kerasdl.export.savedmodel import export_run
    from kerasdl.predict import predict

    x, y, _ = load_arrays("breast_cancer", "test")
    np.savez(tmp_path / "x.npz", x=x)
    probs = predict(res.run_dir, [str(tmp_path / "x.npz")]).outputs
    assert probs.shape == (len(y), 2) and np.allclose(probs.sum(1), 1, atol=1e-6)
    path = export_run(res.run_dir, export_root=str(tmp_path / "sm"))
    np.testing.assert_allclose(predict(path, [str(tmp_path / "x.npz")]).outputs, probs, atol=1e-5)
    with pytest.raises(KerasdlUsageError, match="two-class"):
        run(tmp_path, model="mlp", dataset="iris", loss="binary_crossentropy", epochs=1, name="bad")
