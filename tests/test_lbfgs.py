"""kerasdl.tasks.lbfgs: full-batch L-BFGS in TensorFlow graph mode (issue #16)."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from kerasdl.errors import KerasdlUsageError  # noqa: E402
from kerasdl.tasks.lbfgs import LBFGS  # noqa: E402


def _values(result):
    return {k: v.numpy() for k, v in result.items()}


def _quadratic(dim=20, cond=1e4, seed=0):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    a = q @ np.diag(np.logspace(0, np.log10(cond), dim)) @ q.T
    return a, rng.normal(size=dim)


def _quadratic_problem(a, b, dtype=tf.float64):
    x = tf.Variable(np.zeros(len(b)), dtype=dtype)
    at, bt = tf.constant(a, dtype), tf.constant(b, dtype)

    def loss_and_grads():
        with tf.GradientTape() as tape:
            loss = 0.5 * tf.tensordot(x, tf.linalg.matvec(at, x), 1) - tf.tensordot(bt, x, 1)
        return loss, tape.gradient(loss, [x])

    return x, loss_and_grads


def _rosenbrock():
    z = tf.Variable([-1.2, 1.0], dtype=tf.float64)

    def loss_and_grads():
        with tf.GradientTape() as tape:
            loss = 100.0 * (z[1] - z[0] ** 2) ** 2 + (1.0 - z[0]) ** 2
        return loss, tape.gradient(loss, [z])

    return z, loss_and_grads


def _mlp_problem(points=200, hidden=10, seed=0):
    """Least squares of a 1-16-16-1 tanh MLP (two variables per layer, several shapes) to sin(3x)."""
    rng = np.random.default_rng(seed)
    xs = np.linspace(-1, 1, points)[:, None]
    ys = np.sin(3 * xs) + 0.3 * np.cos(7 * xs)
    sizes = [1, hidden, hidden, 1]
    weights = []
    for i, (m, n) in enumerate(zip(sizes[:-1], sizes[1:])):
        weights.append(tf.Variable(rng.normal(size=(m, n)) / np.sqrt(m), name=f"w{i}"))
        weights.append(tf.Variable(np.zeros(n), name=f"b{i}"))
    xt, yt = tf.constant(xs), tf.constant(ys)

    def loss_and_grads():
        with tf.GradientTape() as tape:
            h = xt
            for i in range(0, len(weights) - 2, 2):
                h = tf.tanh(h @ weights[i] + weights[i + 1])
            out = h @ weights[-2] + weights[-1]
            loss = tf.reduce_mean((out - yt) ** 2)
        return loss, tape.gradient(loss, weights)

    return weights, loss_and_grads


def _two_loop(g, pairs):
    """Nocedal & Wright (2006) Algorithm 7.4 in numpy: -H g for pairs (s, y), oldest first."""
    q, alphas = g.copy(), []
    for s, y in reversed(pairs):
        a = (s @ q) / (s @ y)
        alphas.append(a)
        q -= a * y
    s, y = pairs[-1]
    r = (s @ y) / (y @ y) * q
    for (s, y), a in zip(pairs, reversed(alphas)):
        r += (a - (y @ r) / (s @ y)) * s
    return -r


@pytest.mark.parametrize("stored", [1, 3, 4, 7])
def test_compact_direction_equals_the_two_loop_recursion(stored):
    rng = np.random.default_rng(stored)
    n, memory = 6, 4
    opt = LBFGS([tf.Variable(np.zeros(n))], lambda: None, memory=memory)
    pairs = []
    for _ in range(stored):
        s = rng.normal(size=n)
        y = s + 0.3 * rng.normal(size=n)  # s.y > 0
        pairs.append((s, y))
    S, Y, SY, YY, k = (opt.S, opt.Y, opt.SY, opt.YY, opt.num_pairs)
    mem = (S.read_value(), Y.read_value(), SY.read_value(), YY.read_value(), k.read_value())
    for s, y in pairs:
        mem = opt._store(*mem, tf.constant(s), tf.constant(y))
    assert int(mem[4]) == min(stored, memory)
    g = rng.normal(size=n)
    d = opt._direction(tf.constant(g), *mem).numpy()
    np.testing.assert_allclose(d, _two_loop(g, pairs[-memory:]), rtol=1e-10, atol=1e-12)


def test_ill_conditioned_quadratic_reaches_the_exact_minimiser():
    a, b = _quadratic()
    x, fn = _quadratic_problem(a, b)
    opt = LBFGS([x], fn, gtol=1e-10)
    out = _values(tf.function(lambda: opt.run(500))())
    assert out["converged"] and out["grad_norm"] < 1e-8
    assert out["line_search_failures"] == 0
    np.testing.assert_allclose(x.numpy(), np.linalg.solve(a, b), atol=1e-8)
    # steepest descent with its best fixed step 2/(L+mu) is still far away after 20x as many iterations
    eig = np.linalg.eigvalsh(a)
    step, xs = 2.0 / (eig[0] + eig[-1]), np.zeros_like(b)
    for _ in range(20 * int(out["iterations_done"])):
        xs -= step * (a @ xs - b)
    assert np.linalg.norm(a @ xs - b) > 1e3 * 1e-8
    assert out["iterations_done"] <= 200


def test_rosenbrock_matches_scipy_order_of_magnitude():
    optimize = pytest.importorskip("scipy.optimize")
    z, fn = _rosenbrock()
    out = _values(LBFGS([z], fn, memory=10).run(200))
    np.testing.assert_allclose(z.numpy(), [1.0, 1.0], atol=1e-6)
    assert out["iterations_done"] <= 200
    ref = optimize.minimize(optimize.rosen, [-1.2, 1.0], jac=optimize.rosen_der, method="L-BFGS-B").nit
    assert ref / 5 <= out["iterations_done"] <= 5 * ref
    assert out["evaluations"] >= out["iterations_done"]


def test_runs_the_whole_budget_while_the_loss_improves():
    weights, fn = _mlp_problem()
    opt = LBFGS(weights, fn, memory=20)
    run = tf.function(lambda n: opt.run(n))
    first = _values(run(tf.constant(30)))
    rest = _values(run(tf.constant(270)))
    assert first["iterations_done"] == 30 and rest["iterations_done"] == 270
    assert rest["total_iterations"] == 300
    assert rest["loss"] < first["loss"]
    assert not rest["converged"]
    assert rest["line_search_failures"] >= 0 and opt.total_failures.numpy() == (
        first["line_search_failures"] + rest["line_search_failures"])
    assert rest["evaluations"] >= 270
    assert opt.total_evaluations.numpy() == first["evaluations"] + rest["evaluations"]
    np.testing.assert_allclose(opt.loss.numpy(), rest["loss"])


def test_two_calls_continue_the_same_history():
    results = []
    for split in ([60, 60], [120]):
        weights, fn = _mlp_problem(points=50, hidden=6)
        opt = LBFGS(weights, fn, memory=10)
        for n in split:
            out = _values(opt.run(n))
        assert out["total_iterations"] == 120
        results.append((out["loss"], np.concatenate([w.numpy().ravel() for w in weights])))
    assert abs(results[0][0] - results[1][0]) <= 1e-10 * abs(results[1][0])
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=0, atol=1e-10)


def test_inside_a_tf_function_called_twice_and_reset():
    a, b = _quadratic(dim=5, cond=10.0)
    x, fn = _quadratic_problem(a, b)
    opt = LBFGS([x], fn, memory=3, gtol=1e-9)

    @tf.function
    def step():
        return opt.run(2)

    one, two = _values(step()), _values(step())
    assert one["iterations_done"] == 2 and two["total_iterations"] == 4
    assert two["loss"] < one["loss"]
    assert opt.num_pairs.numpy() >= 1
    opt.reset()
    assert opt.num_pairs.numpy() == 0 and opt.total_iterations.numpy() == 4
    out = _values(opt.run(tf.constant(100)))
    assert out["converged"]
    np.testing.assert_allclose(x.numpy(), np.linalg.solve(a, b), atol=1e-8)
    assert _values(opt.run(10))["iterations_done"] == 0  # converged: nothing left to do


def test_float32_variables():
    a, b = _quadratic(dim=8, cond=100.0)
    x, fn = _quadratic_problem(a, b, dtype=tf.float32)
    opt = LBFGS([x], fn, dtype=tf.float32, gtol=1e-4)
    out = _values(opt.run(100))
    assert x.dtype == tf.float32 and out["loss"].dtype == np.float32
    assert out["converged"]
    np.testing.assert_allclose(x.numpy(), np.linalg.solve(a, b), atol=1e-3)


def test_float32_variables_with_float64_arithmetic():
    a, b = _quadratic(dim=8, cond=100.0)
    x, fn = _quadratic_problem(a, b, dtype=tf.float32)
    out = _values(LBFGS([x], fn, gtol=1e-3).run(100))
    assert out["loss"].dtype == np.float64 and out["converged"]
    np.testing.assert_allclose(x.numpy(), np.linalg.solve(a, b), atol=1e-3)


def test_line_search_failure_is_counted_and_the_run_goes_on():
    """A loss that never decreases: every line search fails, yet the whole budget runs."""
    v = tf.Variable([1.0, 2.0], dtype=tf.float64)

    def loss_and_grads():  # a "gradient" that points uphill
        loss = tf.reduce_sum(v ** 2)
        return loss, [-2.0 * v]

    opt = LBFGS([v], loss_and_grads, max_line_search=4)
    out = _values(opt.run(5))
    assert out["iterations_done"] == 5 and out["line_search_failures"] == 5
    assert out["evaluations"] == 1 + 5 * 4
    np.testing.assert_array_equal(v.numpy(), [1.0, 2.0])  # no step taken, variables restored
    assert opt.num_pairs.numpy() == 0


def test_keras_model_variables_and_checkpointed_state(tmp_path):
    """Keras 3 variables (float32) are optimised; a model that tracks the optimiser checkpoints its state."""
    keras = pytest.importorskip("keras")
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(6, activation="tanh", name="hidden"),
                              keras.layers.Dense(1, name="out")])
    xs = tf.constant(np.linspace(-1, 1, 32)[:, None], tf.float32)
    ys = tf.sin(3 * xs)

    def loss_and_grads():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((model(xs) - ys) ** 2)
        return loss, tape.gradient(loss, model.trainable_variables)

    opt = LBFGS(model.trainable_variables, loss_and_grads, memory=5)
    model.lbfgs = opt
    before = float(loss_and_grads()[0])
    first = _values(opt.run(10))
    assert first["iterations_done"] == 10 and first["loss"] < before
    np.testing.assert_allclose(float(loss_and_grads()[0]), first["loss"], rtol=1e-6)  # the model moved
    checkpoint = tf.train.Checkpoint(model=model)
    path = checkpoint.write(str(tmp_path / "ckpt"))
    names = [name for name, _ in tf.train.list_variables(path)]
    assert sum("lbfgs/" in name for name in names) == len(opt.state_variables)
    saved = [v.numpy().copy() for v in opt.state_variables]
    opt.run(3)
    checkpoint.read(path).assert_consumed()
    for v, s in zip(opt.state_variables, saved):
        np.testing.assert_array_equal(v.numpy(), s)


def test_bad_arguments():
    v = tf.Variable([1.0])
    with pytest.raises(KerasdlUsageError):
        LBFGS([], lambda: (0.0, []))
    with pytest.raises(KerasdlUsageError):
        LBFGS([v], lambda: None, memory=0)
    with pytest.raises(KerasdlUsageError):
        LBFGS([v], lambda: None, dtype=tf.int32)
    with pytest.raises(KerasdlUsageError):
        LBFGS([tf.Variable([1])], lambda: None)
    with pytest.raises(KerasdlUsageError):
        LBFGS([np.zeros(3)], lambda: None)
    with pytest.raises(KerasdlUsageError):
        LBFGS([v], lambda: None).run(-1)
