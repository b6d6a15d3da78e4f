"""The graph tasks (kerasdl.tasks.graph): node classification (full batch, masked loss and figures)
and graph classification (batches of disjoint graphs), their calibration, export, predict and bad
input. Tiny trainings on the offline sets (karate, cycles); the Cora figures of issue #17 come from
benchmarks/gnn.py, not from here.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from kerasdl.config import RunConfig  # noqa: E402
from kerasdl.errors import KerasdlUsageError  # noqa: E402

from clihelpers import assert_one_line_error  # noqa: E402


def _train(tmp_path, name, **kw):
    from kerasdl.engine.fit import train

    fields = dict(output_dir=str(tmp_path), name=name, seed=0, export=True, export_dir=str(tmp_path / "saved"))
    fields.update(kw)
    return train(RunConfig.from_mapping(fields).resolved(), progress=False, echo=lambda *a: None)


@pytest.fixture(scope="module")
def karate_run(tmp_path_factory):
    """GCN on the karate club with its defaults but 30 epochs (calibrated, exported)."""
    tmp = tmp_path_factory.mktemp("karate")
    result = _train(tmp, "karate", dataset="karate", epochs=30)
    return result.run_dir, tmp


@pytest.fixture(scope="module")
def cycles_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cycles")
    result = _train(tmp, "cycles", dataset="cycles", epochs=3, batch_size=128,
                    model_options={"hidden_units": 16, "num_layers": 2})
    return result.run_dir, tmp


# --------------------------------------------------------------------------- the seam


def test_a_graph_dataset_resolves_its_task_and_the_papers_settings():
    def config(**values):
        return RunConfig.from_mapping(values).resolved()  # what the command line builds

    node = config(dataset="karate")
    assert (node.task, node.model, node.epochs, node.learning_rate, node.schedule, node.patience) == \
        ("node_classification", "gcn", 200, 0.01, "constant", 0)
    assert config(dataset="karate", model="gat").learning_rate == 0.005
    mine = config(dataset="karate", epochs=20, lr=0.001, schedule="cosine")  # = RunConfig's own defaults
    assert (mine.epochs, mine.learning_rate, mine.schedule) == (20, 0.001, "cosine")  # given: they win
    graph = config(dataset="cycles")
    assert (graph.task, graph.model, graph.batch_size) == ("graph_classification", "gin", 32)
    assert config(dataset="digits").task == "auto"  # not a graph: unchanged
    plain = RunConfig(dataset="karate").resolved()  # built directly: exactly its arguments, the task resolved
    assert (plain.task, plain.epochs) == ("node_classification", 20)


def test_node_datasets_hold_the_whole_graph_with_the_split_mask():
    from kerasdl.tasks.base import load_task_data

    data, info, task = load_task_data(RunConfig.from_mapping({"dataset": "karate"}).resolved(),
                                      ("train", "validation", "test"))
    assert task.name == "node_classification" and info.task == "node_classification"
    assert info.input_shape == (34,) and info.num_classes == 2 and info.graph["level"] == "node"
    masks = []
    for split in ("train", "validation", "test"):
        (inputs, y, w), = list(data[split])
        assert inputs["x"].shape == (34, 34) and inputs["edges"].shape == (156, 2)
        masks.append(w.numpy() > 0)
    assert masks[0].sum() == 2 and masks[0][[0, 33]].all()
    assert not (masks[0] & masks[1]).any() and not (masks[1] & masks[2]).any() and not (masks[0] & masks[2]).any()


def test_graph_batches_are_disjoint_unions_with_offset_edges():
    from kerasdl.data.graphs import load_graph
    from kerasdl.data.graphs.pipeline import graph_datasets

    g = load_graph("cycles")
    ds = graph_datasets(g, "none", ("test",), batch_size=5, seed=0)["test"]
    inputs, y = next(iter(ds))
    ids = np.asarray(g.graph_splits["test"][:5])
    gid = inputs["graph_ids"].numpy()
    edges = inputs["edges"].numpy()
    assert (np.diff(gid) >= 0).all() and gid.max() == 4 and np.array_equal(y.numpy(), g.y[ids])
    # every edge joins two nodes of the same graph, and each graph keeps its own edge count
    assert (gid[edges[:, 0]] == gid[edges[:, 1]]).all()
    for k, graph_id in enumerate(ids):
        nodes = g.node_graph == graph_id
        assert (gid == k).sum() == nodes.sum()
        assert (gid[edges[:, 0]] == k).sum() == nodes[g.edge_index[0]].sum()


def test_predict_logits_keeps_the_weighted_examples_only():
    from kerasdl.evaluation.report import predict_logits

    class Model:
        def predict_on_batch(self, x):
            return x

    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    ds = tf.data.Dataset.from_tensors((x, np.arange(6), np.array([1, 0, 1, 0, 0, 1], np.float32)))
    logits, labels = predict_logits(Model(), ds)
    assert labels.tolist() == [0, 2, 5] and logits[:, 0].tolist() == [0, 4, 10]


# --------------------------------------------------------------------------- node classification


def test_node_run_reports_masked_figures_calibration_and_the_embedding(karate_run):
    from kerasdl.evaluation import metrics as m
    from kerasdl.runs.load import load_run

    run_dir, _ = karate_run
    record = json.load(open(os.path.join(run_dir, "metrics.json")))
    test = record["test"]
    assert 0.0 <= test["accuracy"] <= 1.0 and "ece" in test and "calibration" in record
    assert os.path.isfile(os.path.join(run_dir, "plots", "embedding_test.png"))
    assert os.path.isfile(os.path.join(run_dir, "plots", "confusion_matrix_test.png"))
    # the figures are over the test nodes only: recompute them from the model's logits
    run = load_run(run_dir)
    graph = run.task.graph()
    from kerasdl.data.graphs.pipeline import node_inputs

    logits = np.asarray(run.model.predict_on_batch(node_inputs(graph, run.task.feature_rule())))
    test_nodes = graph.masks["test"]
    assert sum(test["confusion_matrix"][i][j] for i in range(2) for j in range(2)) == test_nodes.sum() == 16
    acc = float(np.mean(logits[test_nodes].argmax(-1) == graph.y[test_nodes]))
    assert test["accuracy"] == pytest.approx(acc)
    assert test["nll"] == pytest.approx(m.nll_from_logits(logits[test_nodes], graph.y[test_nodes]), rel=1e-5)


def test_the_training_loss_is_the_mean_over_the_train_nodes(karate_run):
    """Keras's logged val_loss = mean cross-entropy over the validation nodes + the L2 term."""
    import keras

    from kerasdl.runs.load import load_run
    from kerasdl.tasks.graph import GraphTask

    run_dir, _ = karate_run
    run = load_run(run_dir)
    task = run.task
    (inputs, y, w), = list(task.make_data(("validation",))[0]["validation"])
    model = task.build()
    model.set_weights(run.model.get_weights())
    GraphTask.compile(task, model, keras.optimizers.Adam(), None, None)
    one = tf.data.Dataset.from_tensors((inputs, y, w))  # arrays would fail Keras's equal-length check
    keras_loss = model.evaluate(one, verbose=0, return_dict=True)["loss"]
    logits = np.asarray(model.predict_on_batch(inputs)).astype(np.float64)
    z = logits - logits.max(-1, keepdims=True)
    ce = -(z[np.arange(len(y)), y.numpy()] - np.log(np.exp(z).sum(-1)))
    mask = w.numpy() > 0
    l2 = sum(float(loss) for loss in model.losses)
    assert keras_loss == pytest.approx(ce[mask].mean() + l2, rel=1e-4)


def test_evaluate_calibrate_and_predict_a_node_run(karate_run, tmp_path):
    from kerasdl import api
    from kerasdl.data.graphs import load_graph
    from kerasdl.predict import predict

    run_dir, _ = karate_run
    report = api.evaluate_run(run_dir, "validation")
    assert 0 <= report["accuracy"] <= 1 and "calibrated" in report
    record = api.calibrate_run(run_dir, method="temperature")
    assert record["validation_examples"] == 16 and record["test_examples"] == 16
    # predict on a graph file: the karate graph written as an .npz
    g = load_graph("karate")
    path = tmp_path / "club.npz"
    np.savez(path, x=g.x, edge_index=g.edge_index)
    out = predict(run_dir, [str(path)])
    assert out.outputs.shape == (34, 2) and out.calibrated
    np.testing.assert_allclose(out.outputs.sum(-1), 1.0, atol=1e-5)
    assert out.names[0].endswith("[node 0]")


def test_the_export_takes_raw_features_and_an_edge_index(karate_run, tmp_path):
    from kerasdl.data.graphs import load_graph
    from kerasdl.export.savedmodel import export_run
    from kerasdl.predict import predict

    run_dir, tmp = karate_run
    exported = export_run(run_dir, export_root=str(tmp_path / "export"))
    g = load_graph("karate")
    path = tmp_path / "club.npz"
    np.savez(path, x=g.x, edge_index=g.edge_index)
    from_run = predict(run_dir, [str(path)]).outputs
    from_export = predict(exported, [str(path)]).outputs
    np.testing.assert_allclose(from_run, from_export, atol=1e-5)
    code = (
        "import sys, numpy as np, tensorflow as tf\n"
        "f = tf.saved_model.load(sys.argv[1]).signatures['serving_default']\n"
        "x = np.eye(34, dtype=np.float32); e = np.array([[0, 1], [1, 0]], np.int64)\n"
        "print('P', f(x=tf.constant(x), edge_index=tf.constant(e))['probabilities'].shape)\n"
        "try:\n"
        "    f(x=tf.constant(x), edge_index=tf.constant([[0], [34]], tf.int64))\n"
        "except tf.errors.InvalidArgumentError as e:\n"
        "    print('E', 'edge_index holds a node id >= N' in str(e))\n"
        "print('K', any(m.startswith('kerasdl') for m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code, exported], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), cwd=str(tmp_path))
    assert "P (34, 2)" in out.stdout and "E True" in out.stdout and "K False" in out.stdout, out.stderr[-3000:]


def test_tuning_a_node_task(cli_inprocess, tmp_path):
    proc = cli_inprocess("tune", "--dataset", "karate", "--model", "gcn", "--max-trials", "1", "--epochs", "3",
                         "--objective", "val_accuracy", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "trial 0: val_accuracy" in proc.stdout
    assert "batch_size=64," in proc.stdout.split("trial 0:")[1].split("\n")[0]  # fixed: a node task is full batch


# --------------------------------------------------------------------------- graph classification


def test_graph_run_trains_evaluates_and_exports_per_graph(cycles_run, tmp_path):
    from kerasdl.data.graphs import load_graph
    from kerasdl.predict import predict

    run_dir, tmp = cycles_run
    record = json.load(open(os.path.join(run_dir, "metrics.json")))
    assert sum(map(sum, record["test"]["confusion_matrix"])) == 200 and "calibration" in record
    from kerasdl import api

    again = api.evaluate_run(run_dir, batch_size=16)  # other batches of graphs, the same figures
    assert again["accuracy"] == pytest.approx(record["test"]["accuracy"])
    assert again["nll"] == pytest.approx(record["test"]["nll"], rel=1e-4)
    g = load_graph("cycles")
    keep = np.isin(g.node_graph, [0, 1, 2])
    remap = np.full(g.node_graph.max() + 1, -1)
    remap[[0, 1, 2]] = [0, 1, 2]
    edges = g.edge_index[:, keep[g.edge_index[0]]]
    np.savez(tmp_path / "three.npz", x=g.x[keep], edge_index=edges, node_graph=remap[g.node_graph[keep]],
             y=g.y[[0, 1, 2]])
    out = predict(run_dir, [str(tmp_path / "three.npz")])
    assert out.outputs.shape == (3, 3)
    exported = [os.path.join(tmp / "saved", d) for d in os.listdir(tmp / "saved")][0]
    np.testing.assert_allclose(predict(exported, [str(tmp_path / "three.npz")]).outputs, out.outputs, atol=1e-5)


# --------------------------------------------------------------------------- bad input


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


def test_bad_graphs_are_refused_in_one_line_with_exit_2(cli_inprocess, tmp_path):
    x = np.eye(4, dtype=np.float32)
    ring = np.array([[0, 1, 1, 2, 2, 3, 3, 0], [1, 0, 2, 1, 3, 2, 0, 3]])
    masks = dict(train_mask=np.array([1, 1, 0, 0], bool), val_mask=np.array([0, 0, 1, 0], bool),
                 test_mask=np.array([0, 0, 0, 1], bool))
    cases = {
        "out_of_range": (_npz(tmp_path / "a.npz", x=x, edge_index=ring + (ring == 3) * 5, y=np.array([0, 1, 0, 1]),
                              **masks), "edge_index"),
        "rows": (_npz(tmp_path / "b.npz", x=x[:3], edge_index=ring[:, :4], y=np.array([0, 1, 0, 1]), **masks),
                 "rows"),
        "no_train_labels": (_npz(tmp_path / "c.npz", x=x, edge_index=ring, y=np.array([-1, -1, 0, 1]), **masks),
                            "train"),
    }
    for name, (path, word) in cases.items():
        work = tmp_path / name
        work.mkdir()
        proc = cli_inprocess("train", "--dataset", path, "--epochs", "1", cwd=work)
        assert_one_line_error(proc)
        assert word in proc.stderr, (name, proc.stderr)
        assert not (work / "runs").exists()


def test_wrong_model_and_wrong_level_are_refused(cli_inprocess, tmp_path):
    proc = cli_inprocess("train", "--dataset", "karate", "--model", "resnet20", cwd=tmp_path)
    assert_one_line_error(proc)
    assert "gcn" in proc.stderr
    proc = cli_inprocess("train", "--dataset", "cycles", "--task", "node_classification", cwd=tmp_path)
    assert_one_line_error(proc)
    assert "graph_classification" in proc.stderr
    assert not (tmp_path / "runs").exists()


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > pwned.txt",))


def test_a_hostile_planetoid_pickle_is_refused_by_the_real_cli(tmp_path, run_cli):
    folder = tmp_path / "planetoid"
    folder.mkdir()
    for part in ("x", "y", "tx", "ty", "allx", "ally", "graph"):
        with open(folder / f"ind.evil.{part}", "wb") as f:
            pickle.dump(_Evil(), f, protocol=2)
    (folder / "ind.evil.test.index").write_text("0\n")
    proc = run_cli("train", "--dataset", str(folder / "evil"), "--epochs", "1", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "system" in lines[0], proc.stderr
    assert not (tmp_path / "pwned.txt").exists() and not (tmp_path / "runs").exists()


# --------------------------------------------------------------------------- edge features


def test_clean_edges_carries_edge_features_with_their_edges():
    from kerasdl.data.graphs.graph import clean_edges

    ei = np.array([[0, 1, 1, 2], [1, 2, 2, 2]])  # 1->2 twice (first row wins), 2->2 a self-loop
    attr = np.array([[1.0], [2.0], [9.0], [5.0]])
    out, a = clean_edges(ei, edge_attr=attr)
    pairs = {(int(s), int(t)): float(v) for s, t, v in zip(out[0], out[1], a[:, 0])}
    assert pairs == {(0, 1): 1.0, (1, 0): 1.0, (1, 2): 2.0, (2, 1): 2.0}


def test_gine_and_weighted_gcn_match_numpy():
    from kerasdl.models.gnn import GCNConv, GINConv

    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 3)).astype(np.float32)
    edges = np.array([[0, 1], [1, 0], [1, 2], [2, 1], [3, 4], [4, 3]], np.int32)
    w = rng.uniform(0.5, 2.0, size=(6, 1)).astype(np.float32)
    gcn = GCNConv(4, use_bias=False)
    out = np.asarray(gcn([x, edges, w]))
    a = np.eye(5)
    for (s, t), wi in zip(edges, w[:, 0]):
        a[t, s] += wi
    d = a.sum(1) ** -0.5
    np.testing.assert_allclose(out, (d[:, None] * a * d[None]) @ x @ np.asarray(gcn.kernel), atol=1e-5)
    e = rng.normal(size=(6, 2)).astype(np.float32)
    gin = GINConv((4,))
    got = np.asarray(gin([x, edges, e], training=False))
    we, be = (np.asarray(v) for v in gin.edge_dense.weights)
    msg = np.maximum(x[edges[:, 0]] + e @ we + be, 0)
    agg = np.zeros_like(x)
    np.add.at(agg, edges[:, 1], msg)
    k, b = (np.asarray(v) for v in gin.dense[0].weights)
    bn = gin.norm[0]
    z = (x + agg) @ k + b
    z = (z - np.asarray(bn.moving_mean)) / np.sqrt(np.asarray(bn.moving_variance) + bn.epsilon)
    z = z * np.asarray(bn.gamma) + np.asarray(bn.beta)
    np.testing.assert_allclose(got, np.maximum(z, 0), atol=1e-5)


def test_a_graph_with_edge_features_trains_exports_and_predicts(tmp_path):
    from kerasdl.export.savedmodel import export_run
    from kerasdl.predict import predict

    rng = np.random.default_rng(0)
    n = 40
    src = rng.integers(0, n, 120)
    dst = rng.integers(0, n, 120)
    path = str(tmp_path / "g.npz")
    np.savez(path, x=rng.normal(size=(n, 3)).astype(np.float32), edge_index=np.stack([src, dst]),
             edge_attr=rng.uniform(size=(120, 2)).astype(np.float32), y=rng.integers(0, 2, n))
    result = _train(tmp_path, "edges", dataset=path, model="gin", epochs=2,
                    model_options={"hidden_units": 8, "num_layers": 1})
    info = json.load(open(os.path.join(result.run_dir, "dataset.json")))
    assert info["graph"]["edge_features"] == 2
    exported = export_run(result.run_dir, export_root=str(tmp_path / "export"))
    np.testing.assert_allclose(predict(result.run_dir, [path]).outputs, predict(exported, [path]).outputs, atol=1e-5)
    from kerasdl.config import RunConfig as RC
    from kerasdl.tasks.base import load_task_data

    with pytest.raises(KerasdlUsageError, match="edge features"):
        _, _, task = load_task_data(RC.from_mapping({"dataset": path, "model": "gat"}).resolved(), ("train",))
        task.build()
