"""Full-batch L-BFGS in TensorFlow graph mode (issue #16: the PINN task's second phase).

Limited-memory BFGS: Nocedal, "Updating quasi-Newton matrices with limited storage", Math. Comp. 35
(1980); Liu & Nocedal, "On the limited memory BFGS method for large scale optimization", Math.
Prog. 45 (1989); Nocedal & Wright, *Numerical Optimization*, 2nd ed. (2006), Algorithm 7.4 (the
two-loop recursion) and Algorithm 7.5 (the outer iteration), with the scaling ``H0 = (s.y)/(y.y) I``
of their eq. (7.20).

Why another one: users of DeepXDE on TF2 see ``tfp.optimizer.lbfgs_minimize`` stop after 1 or 30
iterations with the loss still falling (deepxde#969, #1819, #1977): a failed line search or a
"no progress" test ends the run. :class:`LBFGS` runs its whole iteration budget and stops early
only on convergence (``||g||_2 <= gtol``); a line search that fails is counted, clears the memory
and the next iteration starts again from steepest descent.

    opt = LBFGS(model.trainable_variables, loss_and_grads, memory=50)

    @tf.function
    def phase2():
        return opt.run(5000)          # a dict of scalar tensors: loss, iterations_done, ...

Importing this module imports TensorFlow (the PINN task imports it when it trains).
"""

from __future__ import annotations

import re
from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

from kerasdl.errors import KerasdlUsageError

ARMIJO_C1 = 1e-4  # sufficient-decrease constant (Nocedal & Wright 2006, Sec. 3.1: c1 = 1e-4)
SHRINK = 0.5  # each failed line-search trial halves the step
APPROX_DELTA = 0.1  # Hager & Zhang (2005) approximate Armijo: accept when g_t.d <= (2 delta - 1) g.d ...
APPROX_EPS = 1e-6  # ... and f_t <= f + eps |f|, with eps = min(1e-6, 1000 machine epsilon)


class _Untracked:
    """A plain holder: ``tf.Module`` does not track what it holds."""

    def __init__(self, variables):
        self.variables = variables


def _tf_variable(v):
    """``v`` itself for a ``tf.Variable``, the ``tf.Variable`` behind a Keras 3 variable (TensorFlow backend)."""
    if isinstance(v, tf.Variable):
        return v
    inner = getattr(v, "value", None)
    if isinstance(inner, tf.Variable):
        return inner
    raise KerasdlUsageError(f"LBFGS optimises tf.Variable or Keras variables (TensorFlow backend), "
                            f"got {type(v).__name__}")


class LBFGS(tf.Module):
    """Limited-memory BFGS (Nocedal 1980; Liu & Nocedal 1989; Nocedal & Wright 2006, Alg. 7.4/7.5)
    over a list of ``tf.Variable``, full batch, with a backtracking Armijo line search.

    **Line search.** Backtracking Armijo (Nocedal & Wright 2006, Alg. 3.1): the trial step ``a`` is 1
    (or ``min(1, 1/||g||)`` when the memory is empty), halved until ``f(x + a d) <= f(x) + c1 a g.d``
    (``c1 = 1e-4``) with a finite loss and gradient, at most ``max_line_search`` trials (one
    ``loss_and_grads`` evaluation each; the accepted trial's gradient is the next iteration's). Why
    not strong Wolfe: with the quasi-Newton step the unit step is accepted almost always, so
    backtracking costs one evaluation per iteration, is a single ``tf.while_loop`` in graph mode,
    and never needs the interpolation/zoom stage whose corner cases (flat or noisy float32 losses)
    are what end the runs reported in deepxde#969/#1819. Armijo alone does not guarantee the
    curvature condition ``s.y > 0``; a pair with ``s.y <= eps ||s|| ||y||`` is skipped (not stored),
    which keeps the implicit inverse Hessian positive definite (Nocedal & Wright 2006, Sec. 7.2).

    Near a minimum the decrease ``c1 a g.d`` falls below the rounding error of ``f`` (on a quadratic
    with ``||g|| = 1e-8`` and curvature ``1e4``, ``f - f*`` is about ``1e-20``) and no trial can pass
    the Armijo test, however good: a trial is then also accepted under Hager & Zhang's approximate
    Armijo condition ("A new conjugate gradient method with guaranteed descent and an efficient line
    search", SIAM J. Optim. 16, 2005, Sec. 4): ``g(x + a d).d <= (2 delta - 1) g.d`` (``delta = 0.1``;
    on a quadratic it implies the Armijo test with ``c1 = delta``) with ``f(x + a d) <= f(x) + eps
    |f(x)|``, ``eps = min(1e-6, 1000 machine epsilon)`` (2e-13 in float64), which reads the accurate
    gradient instead of the rounded loss.

    **Line-search failure** (no acceptable trial): the variables go back to the iterate, *no step is
    taken* on that iteration, the memory is cleared and one failure is counted; the next iteration is
    a steepest-descent step of length ``min(1, 1/||g||)`` (then halved as needed). The iteration
    counts towards the budget. A direction that is not a descent direction (``g.d >= 0``, possible
    only through rounding) also clears the memory and falls back to ``-g`` within the same iteration.

    **Direction.** ``-H g`` by the compact representation (Byrd, Nocedal & Schnabel 1994), equal to
    the two-loop recursion but a few matrix products with no inner loop (see :meth:`_direction`).

    **State.** The memory ``S``, ``Y`` (``(memory, n)``, the pairs as rows, oldest first, newest last),
    their products ``S Y^T`` and ``Y Y^T`` (``(memory, memory)``, kept up to date in ``O(m n)``), the
    number of stored pairs, the last loss and gradient, and the totals (iterations,
    evaluations, failures) are ``tf.Variable`` created here, listed in :attr:`state_variables`; this
    object is a ``tf.Module``, so a ``tf.train.Checkpoint`` (or a model tracking it) saves and restores
    them. :meth:`run` continues from that state; it evaluates ``loss_and_grads`` once at its start
    (the variables may have changed since the last call, e.g. by more Adam steps) and otherwise
    reuses each accepted trial's gradient.

    **Arithmetic** is in ``dtype`` (float64 by default): the variables are read, flattened into one
    vector and cast to it; each trial point is cast back to each variable's own dtype when assigned.

    Args:
        variables: ``tf.Variable`` or Keras 3 variables (TensorFlow backend; e.g.
            ``model.trainable_variables``) of any (fully defined) shapes and float dtypes.
        loss_and_grads: ``() -> (loss, grads)``, the scalar loss and the list of gradients (one per
            variable, ``None`` read as zeros) at the variables' current values. It is traced inside
            this object's ``tf.while_loop``: it must be graph-compatible.
        memory: number of ``(s, y)`` pairs kept (``m``).
        dtype: float dtype of the optimiser's arithmetic and state.
        gtol: stop when ``||g||_2 <= gtol``.
        max_line_search: most trials (function evaluations) of one line search.
        curvature_eps: a pair is stored only when ``s.y > curvature_eps ||s|| ||y||``; default
            ``sqrt(machine epsilon)`` of ``dtype``.
        name: prefix of the state variables' names.
    """

    def __init__(self, variables: Sequence[tf.Variable], loss_and_grads: Callable, *, memory: int = 50,
                 dtype=tf.float64, gtol: float = 1e-12, max_line_search: int = 25,
                 curvature_eps: float | None = None, name: str = "lbfgs"):
        super().__init__(name=re.sub(r"\W", "_", str(name)) or "lbfgs")
        variables = list(variables)
        if not variables:
            raise KerasdlUsageError("LBFGS needs at least one variable to optimise")
        if not callable(loss_and_grads):
            raise KerasdlUsageError("LBFGS: loss_and_grads must be a function () -> (loss, gradients)")
        dtype = tf.as_dtype(dtype)
        if not dtype.is_floating:
            raise KerasdlUsageError(f"LBFGS: dtype must be a float type, not {dtype.name}")
        if int(memory) < 1:
            raise KerasdlUsageError(f"LBFGS: memory must be at least 1, got {memory}")
        if int(max_line_search) < 1:
            raise KerasdlUsageError(f"LBFGS: max_line_search must be at least 1, got {max_line_search}")
        variables = [_tf_variable(v) for v in variables]
        for v in variables:
            if not v.dtype.is_floating:
                raise KerasdlUsageError(f"LBFGS: variable {v.name} is {v.dtype.name}, not a float type")
            if not v.shape.is_fully_defined():
                raise KerasdlUsageError(f"LBFGS: variable {v.name} has an undefined shape {v.shape}")
        self._targets = _Untracked(variables)  # the model's own variables: not part of this object's checkpoint
        self._loss_and_grads = loss_and_grads
        self._shapes = [v.shape for v in variables]
        self._sizes = [int(v.shape.num_elements()) for v in variables]
        self.n = sum(self._sizes)
        self.memory = int(memory)
        self.dtype = dtype
        self.gtol = float(gtol)
        self.max_line_search = int(max_line_search)
        eps = float(np.finfo(dtype.as_numpy_dtype).eps)
        self.curvature_eps = float(np.sqrt(eps) if curvature_eps is None else curvature_eps)
        prefix = str(name)
        m, n = self.memory, self.n
        with tf.init_scope():  # variables are created eagerly, even when built inside a tf.function
            def var(value, vname, vdtype):
                return tf.Variable(tf.constant(value, vdtype), trainable=False, name=f"{prefix}/{vname}")
            self.S = var(np.zeros((m, n)), "S", dtype)
            self.Y = var(np.zeros((m, n)), "Y", dtype)
            self.SY = var(np.zeros((m, m)), "SY", dtype)
            self.YY = var(np.zeros((m, m)), "YY", dtype)
            self.num_pairs = var(0, "num_pairs", tf.int64)
            self.loss = var(np.nan, "loss", dtype)
            self.grad = var(np.zeros((n,)), "grad", dtype)
            self.total_iterations = var(0, "total_iterations", tf.int64)
            self.total_evaluations = var(0, "total_evaluations", tf.int64)
            self.total_failures = var(0, "total_failures", tf.int64)
        self.state_variables = [self.S, self.Y, self.SY, self.YY, self.num_pairs, self.loss, self.grad,
                                self.total_iterations, self.total_evaluations, self.total_failures]
        self._run_fn = tf.function(self._run, input_signature=[tf.TensorSpec([], tf.int64)])

    # ------------------------------------------------------------------------------------------ public
    def run(self, iterations) -> dict:
        """Run ``iterations`` L-BFGS iterations (fewer only if ``||g|| <= gtol``), from the saved state.

        ``iterations``: a Python int or a scalar integer tensor. Callable eagerly or inside a
        ``tf.function`` (the loop is one ``tf.while_loop``). Returns a dict of scalar tensors:
        ``loss`` (at the end), ``iterations_done``, ``evaluations`` (``loss_and_grads`` calls),
        ``line_search_failures`` (all three for this call), ``grad_norm``, ``converged``
        (``grad_norm <= gtol``) and ``total_iterations`` (over all calls).
        """
        if isinstance(iterations, (int, np.integer)) and int(iterations) < 0:
            raise KerasdlUsageError(f"LBFGS.run: iterations must be >= 0, got {iterations}")
        return self._run_fn(tf.cast(iterations, tf.int64))

    def reset(self):
        """Clear the memory (the stored ``(s, y)`` pairs); the totals are kept."""
        return tf.group(self.num_pairs.assign(0), *[v.assign(tf.zeros_like(v)) for v in
                                                    (self.S, self.Y, self.SY, self.YY)])

    # ---------------------------------------------------------------------------------------- helpers
    def _flatten(self, tensors):
        parts = []
        for t, size in zip(tensors, self._sizes):
            if t is None:
                parts.append(tf.zeros([size], self.dtype))
            else:
                parts.append(tf.reshape(tf.cast(tf.convert_to_tensor(t), self.dtype), [size]))
        return tf.concat(parts, axis=0)

    def _assign(self, x):
        ops = []
        for v, part, shape in zip(self._targets.variables, tf.split(x, self._sizes), self._shapes):
            ops.append(v.assign(tf.cast(tf.reshape(part, shape), v.dtype), read_value=False))
        return ops

    def _evaluate(self, x):
        """``(loss, flat gradient)`` at ``x`` (assigned to the variables first)."""
        with tf.control_dependencies(self._assign(x)):
            loss, grads = self._loss_and_grads()
        grads = list(grads)
        if len(grads) != len(self._targets.variables):
            raise KerasdlUsageError(f"LBFGS: loss_and_grads returned {len(grads)} gradients for "
                                    f"{len(self._targets.variables)} variables")
        return tf.reshape(tf.cast(loss, self.dtype), []), self._flatten(grads)

    def _direction(self, g, S, Y, SY, YY, num_pairs):
        """``-H g`` from the compact representation of the L-BFGS matrix (Byrd, Nocedal & Schnabel,
        "Representations of quasi-Newton matrices and their use in limited memory methods", Math.
        Prog. 63, 1994, eq. 3.1), which equals the two-loop recursion (Nocedal & Wright 2006, Alg.
        7.4) but is a handful of matrix products instead of ``2 m`` sequential steps:

            H g = gamma g + S^T p - gamma Y^T u,   u = R^-1 (S g),
            p = R^-T ((D + gamma Y Y^T) u - gamma Y g),

        with the pairs as rows of ``S``, ``Y`` (oldest first), ``R`` the upper triangle of ``S Y^T``,
        ``D`` its diagonal and ``gamma = (s.y)/(y.y)`` of the newest pair. Only the last
        ``num_pairs`` rows are in use; the others are masked out (identity rows of ``R``).
        """
        m = self.memory
        valid = tf.range(m, dtype=tf.int64) >= m - num_pairs
        validf = tf.cast(valid, self.dtype)
        both = validf[:, None] * validf[None, :]
        gamma = SY[m - 1, m - 1] / YY[m - 1, m - 1]
        diag = tf.linalg.diag_part(SY) * validf
        R = tf.linalg.band_part(SY * both, 0, -1) + tf.linalg.diag(1 - validf)
        a = tf.linalg.matvec(S, g) * validf
        b = tf.linalg.matvec(Y, g) * validf
        u = tf.linalg.triangular_solve(R, a[:, None], lower=False)
        w = diag[:, None] * u + gamma * tf.linalg.matmul(YY * both, u) - gamma * b[:, None]
        p = tf.linalg.triangular_solve(R, w, lower=False, adjoint=True)
        hg = gamma * g + tf.linalg.matvec(S, p[:, 0], transpose_a=True) - gamma * tf.linalg.matvec(
            Y, u[:, 0], transpose_a=True)
        return -hg

    def _store(self, S, Y, SY, YY, num_pairs, s, y):
        """Append the pair ``(s, y)`` as the newest row, dropping the oldest; update ``S Y^T`` and ``Y Y^T``
        by their new column (``O(m n)``, no Gram matrix recomputed)."""
        m = self.memory
        S = tf.concat([S[1:], s[None]], axis=0)
        Y = tf.concat([Y[1:], y[None]], axis=0)
        sy_col = tf.linalg.matvec(S, y)  # s_i . y_new (the upper triangle's new column)
        yy_col = tf.linalg.matvec(Y, y)
        pad = tf.zeros([1, m - 1], self.dtype)
        SY = tf.concat([tf.concat([SY[1:, 1:], pad], axis=0), sy_col[:, None]], axis=1)
        YY = tf.concat([tf.concat([YY[1:, 1:], yy_col[None, :m - 1]], axis=0), yy_col[:, None]], axis=1)
        return S, Y, SY, YY, tf.minimum(num_pairs + 1, m)

    # ------------------------------------------------------------------------------------------- loop
    def _run(self, iterations):
        dt = self.dtype
        one = tf.constant(1.0, dt)
        c1 = tf.constant(ARMIJO_C1, dt)
        gtol = tf.constant(self.gtol, dt)
        ceps = tf.constant(self.curvature_eps, dt)
        feps = tf.constant(min(APPROX_EPS, 1000 * float(np.finfo(dt.as_numpy_dtype).eps)), dt)
        zero_i = tf.constant(0, tf.int64)

        x0 = self._flatten([v.read_value() for v in self._targets.variables])
        f0, g0 = self._evaluate(x0)
        memory0 = (self.S.read_value(), self.Y.read_value(), self.SY.read_value(), self.YY.read_value(),
                   self.num_pairs.read_value())
        state0 = (zero_i, x0, f0, g0, tf.norm(g0), memory0, tf.constant(1, tf.int64), zero_i)

        def cond(i, x, f, g, gnorm, memory, evals, fails):
            return tf.logical_and(i < iterations, gnorm > gtol)

        def body(i, x, f, g, gnorm, memory, evals, fails):
            S, Y, SY, YY, num_pairs = memory
            steepest = -g
            d = tf.cond(num_pairs > 0, lambda: self._direction(g, S, Y, SY, YY, num_pairs), lambda: steepest)
            gd = tf.tensordot(g, d, 1)
            restart = tf.logical_or(tf.logical_not(gd < 0), num_pairs <= 0)  # no memory or not descent: -g
            d = tf.where(restart, steepest, d)
            gd = tf.where(restart, -gnorm * gnorm, gd)
            alpha0 = tf.where(restart, tf.minimum(one, one / gnorm), one)
            num_pairs = tf.where(restart, zero_i, num_pairs)

            # Backtracking Armijo: one evaluation per trial, the accepted trial's gradient is kept.
            def ls_cond(k, alpha, f_new, g_new, ok):
                return tf.logical_and(k < self.max_line_search, tf.logical_not(ok))

            def ls_body(k, alpha, f_new, g_new, ok):
                alpha = tf.where(k > 0, alpha * SHRINK, alpha)
                f_t, g_t = self._evaluate(x + alpha * d)
                finite = tf.logical_and(tf.math.is_finite(f_t), tf.reduce_all(tf.math.is_finite(g_t)))
                armijo = f_t <= f + c1 * alpha * gd
                approx = tf.logical_and(f_t <= f + feps * tf.abs(f),
                                        tf.tensordot(g_t, d, 1) <= (2 * APPROX_DELTA - 1) * gd)
                ok = tf.logical_and(finite, tf.logical_or(armijo, approx))
                return k + 1, alpha, f_t, g_t, ok

            k, alpha, f_new, g_new, ok = tf.while_loop(
                ls_cond, ls_body, (zero_i, alpha0, f, g, tf.constant(False)))

            def accept():
                x_new = x + alpha * d
                s, y = x_new - x, g_new - g
                sy = tf.tensordot(s, y, 1)
                good = sy > ceps * tf.norm(s) * tf.norm(y)  # else skip the pair: H stays positive definite
                new_memory = tf.cond(good, lambda: self._store(S, Y, SY, YY, num_pairs, s, y),
                                     lambda: (S, Y, SY, YY, num_pairs))
                return x_new, f_new, g_new, tf.norm(g_new), new_memory, fails

            def reject():  # no step: back to x, memory cleared, one failure
                with tf.control_dependencies(self._assign(x)):
                    x_back = tf.identity(x)
                return x_back, f, g, gnorm, (S, Y, SY, YY, zero_i), fails + 1

            x, f, g, gnorm, memory, fails = tf.cond(ok, accept, reject)
            return i + 1, x, f, g, gnorm, memory, evals + k, fails

        i, x, f, g, gnorm, memory, evals, fails = tf.while_loop(cond, body, state0, parallel_iterations=1)
        S, Y, SY, YY, num_pairs = memory
        with tf.control_dependencies([tf.group(self._assign(x))]):
            updates = tf.group(
                self.S.assign(S), self.Y.assign(Y), self.SY.assign(SY), self.YY.assign(YY),
                self.num_pairs.assign(num_pairs), self.loss.assign(f), self.grad.assign(g),
                self.total_iterations.assign_add(i), self.total_evaluations.assign_add(evals),
                self.total_failures.assign_add(fails))
        with tf.control_dependencies([updates]):
            return {"loss": tf.identity(f), "iterations_done": tf.identity(i), "evaluations": tf.identity(evals),
                    "line_search_failures": tf.identity(fails), "grad_norm": tf.identity(gnorm),
                    "converged": gnorm <= gtol, "total_iterations": self.total_iterations.read_value()}
