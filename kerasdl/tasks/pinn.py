"""The physics-informed task: a network ``u(inputs)`` trained on a PDE's residual and conditions.

Raissi, Perdikaris & Karniadakis 2019 ("Physics-informed neural networks", J. Comput. Phys. 378):
the loss is a weighted sum of

* the mean squared PDE residual on ``N_f`` collocation points (Latin hypercube, Sobol or uniform),
  its derivatives taken by automatic differentiation of ``u`` with respect to its inputs;
* the mean squared error of the initial / boundary conditions on ``N_u`` points of the domain's
  faces (Raissi's MSE_u: one mean over all of them; each condition is also logged alone);
* the mean squared error against observations of ``u`` (optional in a forward run; what an
  *inverse* run learns the problem's unknown coefficients from, with 1% noise in Raissi's Table 2).

``kerasdl train --task pinn --task-opt problem=burgers`` trains Raissi's Burgers setup (9 layers x
20 tanh, N_u = 100, N_f = 10,000) in float64. The problem is a :class:`kerasdl.data.pde.Problem`: a
built-in name or ``path/to/file.py:NAME`` (copied into the run as ``problem.py``, which is what
``kerasdl evaluate`` and ``predict`` read back).

Optimisation. Full batch: ``adam_steps`` Adam iterations (``--lr``, ``--schedule`` over those
iterations), then up to ``lbfgs_steps`` L-BFGS iterations (:mod:`kerasdl.tasks.lbfgs`, float64),
which stops early only on convergence (gradient norm below 1e-12): never after 1 or 30 iterations
for no reason (deepxde#969, #1819, #1977). One history row ("epoch") is ``log_every`` iterations:
the loss and each of its terms, ``phase`` (0 Adam, 1 L-BFGS), ``iteration``, L-BFGS's function
evaluations and line-search failures, the coefficients of an inverse run, and ``val_rel_l2`` (the
relative L2 error on reference points, for information: the run keeps its lowest *loss*). The
history, the checkpoint and ``--resume`` are the engine's, as for every task (the L-BFGS memory is
rebuilt after a resume). Residual-based adaptive refinement (``rar=true``, Lu et al. 2021,
"DeepXDE", SIAM Review 63) starts from ``n_collocation - rar_points`` points and, in ``rar_rounds``
rounds spread over the Adam phase (or the first ``rar_until`` of all iterations), adds the
candidates with the largest residual, up to
``n_collocation`` points: the same budget as uniform sampling.

The model is :class:`PINN`, a ``keras.Model`` that holds the field network, the point sets (as
non-trainable variables: they are saved with the weights, RAR's additions too) and an inverse
run's coefficients; it overrides ``train_step`` / ``test_step``. What is saved, evaluated and
exported is the field ``u(inputs)`` alone (with the hard-constraint transform when ``hard=true``).
Report: relative L2 on the reference grid, max and mean |error| and |residual|, the fitted
coefficients; figures: the solution against the reference at three times (Raissi's Figure 1), the
error and residual maps, the loss terms and (inverse) the coefficients per epoch.
"""

from __future__ import annotations

import math
import os
import shutil

import keras
import numpy as np
import tensorflow as tf

from kerasdl.data.pde import Problem, load_problem, parse_derivative, sampling
from kerasdl.engine.distribute import precision_policy
from kerasdl.errors import KerasdlUsageError
from kerasdl.runs import layout as runs
from kerasdl.tasks.base import Endpoint, Task, register_task
from kerasdl.tasks import taylor
from kerasdl.tasks.lbfgs import LBFGS

PROBLEM_FILE = "problem.py"  # a user problem's file, copied into the run
CHUNK = 8192  # points per batch where the field and its derivatives are evaluated for a report
LOSS_BLOCK = 2048  # collocation points per block of the training loss (cache-sized: see PINN.loss_terms)
LBFGS_GTOL = 1e-12  # L-BFGS stops early only when the gradient norm is below this


# --------------------------------------------------------------------------- derivatives


def field_values(u_fn, x, keys, inputs) -> dict:
    """``{input name: x_i, "u": u(x), key: derivative}`` at the points ``x`` (N, d), every value (N, 1).

    ``keys`` are derivative names (``u_x``, ``u_xx``, ``u_xt``, ...); they are computed with nested
    ``tf.GradientTape``s, one per order: the gradient of ``sum(u)`` with respect to ``x`` is every
    point's first derivatives at once (a field network is pointwise), the gradient of one of its
    columns the next order, and so on. Callable inside ``tf.function``; differentiable with respect
    to the network's weights (an outer tape sees everything).
    """
    wanted = {key: parse_derivative(key, inputs) for key in keys}
    needed = {path[:n] for path in wanted.values() for n in range(1, len(path) + 1)}
    order = max((len(p) for p in needed), default=0)
    parents = {k: sorted({p[:-1] for p in needed if len(p) == k}) for k in range(1, order + 1)}
    tapes = [tf.GradientTape(persistent=len(parents[order - i]) > 1) for i in range(order)]
    for tape in tapes:  # outermost (the highest order) first
        tape.__enter__()
        tape.watch(x)
    names = {name: x[:, i:i + 1] for i, name in enumerate(inputs)}
    values = {(): u_fn(x, names)}
    for k in range(1, order + 1):
        tape = tapes[order - k]
        tape.__exit__(None, None, None)  # the tapes of higher orders keep recording
        for parent in parents[k]:
            grad = tape.gradient(values[parent], x, unconnected_gradients=tf.UnconnectedGradients.ZERO)
            for path in needed:
                if len(path) == k and path[:-1] == parent:
                    values[path] = grad[:, path[-1]:path[-1] + 1]
        del tape
    return {**names, "u": values[()], **{key: values[path] for key, path in wanted.items()}}


def residual_column(problem: Problem, fields: dict, params: dict):
    """The problem's residual as an (N, 1) tensor."""
    r = problem.residual(fields, params)
    r = tf.convert_to_tensor(r)
    return tf.reshape(r, (-1, 1))


# --------------------------------------------------------------------------- the model


@keras.saving.register_keras_serializable(package="kerasdl")
class OutputTransform(keras.layers.Layer):
    """A problem's hard-constraint transform ``u = T(x, N(x))`` as a layer (Lagaris et al. 1998), so
    the saved ``model.keras`` of a ``hard=true`` run is the whole field. It records the problem's
    *name* and its inputs: a built-in problem's transform is found again by name; a user problem's
    lives in its own file, which an archive never imports (kerasdl rebuilds such runs from their
    config and ``problem.py``)."""

    def __init__(self, problem: str, inputs, transform=None, **kwargs):
        super().__init__(**kwargs)
        self.problem, self.inputs = str(problem), tuple(inputs)
        self._transform = transform

    def call(self, x, u):
        if self._transform is None:
            from kerasdl.data.pde.problems import PROBLEMS

            if self.problem not in PROBLEMS:
                raise ValueError(f"OutputTransform: {self.problem!r} is not a built-in problem; load the run with "
                                 f"kerasdl (kerasdl.runs.load_run) instead of its archive")
            self._transform = PROBLEMS[self.problem]().transform
        return self._transform({name: x[:, i:i + 1] for i, name in enumerate(self.inputs)}, u)

    def compute_output_shape(self, x_shape, u_shape):
        return u_shape

    def get_config(self):
        return {**super().get_config(), "problem": self.problem, "inputs": list(self.inputs)}


class PINN(keras.Model):
    """The trainable physics-informed model: field network + points + coefficients.

    ``phase`` / ``block`` (set by :class:`PhaseSwitch` at each epoch's start) choose what one
    ``train_step`` does: ``block`` Adam iterations, or ``block`` L-BFGS iterations.
    """

    def __init__(self, net, problem: Problem, opts, points: dict, *, jit: bool = False, **kwargs):
        super().__init__(name="pinn", **kwargs)
        self.net = net
        self.problem = problem
        self.opts = opts
        self.keys = problem.keys()
        dtype = opts.dtype
        self.field_dtype = dtype
        self.hard = bool(opts.hard)
        order = max((len(parse_derivative(k, problem.inputs)) for k in self.keys), default=0)
        # Forward (Taylor-mode) derivatives where the network allows: exact, and faster than nested
        # tapes without XLA; under XLA the tapes measured faster (Burgers, 2 CPU cores): tapes then.
        self.taylor = (opts.derivatives == "auto" and not jit and not self.hard and order <= 2
                       and taylor.supports(net))

        def weight(name, array, dt=dtype):
            array = np.asarray(array)
            var = self.add_weight(name=name, shape=array.shape, dtype=dt, trainable=False, initializer="zeros")
            var.assign(array.astype(dt))
            return var

        x_f = points["collocation"]
        self.n_max = len(x_f)
        self.x_f = weight("collocation", x_f)
        self.n_active = weight("active_points", np.array(points["active"], dtype=np.int32), "int32")
        # Conditions: one block of rows per condition (Python slices: their sizes are fixed).
        self.conditions = []  # (condition, start, stop)
        rows, targets = [], []
        start = 0
        for cond, pts, vals in points["conditions"]:
            self.conditions.append((cond, start, start + len(pts)))
            rows.append(pts)
            targets.append(np.reshape(vals, (-1, 1)))
            start += len(pts)
        d = problem.dim
        self.n_b = start
        self.x_b = weight("condition_points", np.concatenate(rows) if rows else np.zeros((0, d)))
        self.u_b = weight("condition_values", np.concatenate(targets) if targets else np.zeros((0, 1)))
        x_d, u_d = points["data"]
        self.n_d = len(x_d)
        self.x_d = weight("data_points", x_d)
        self.u_d = weight("data_values", np.reshape(u_d, (-1, 1)))
        # Coefficients: the known ones are constants; an inverse run's unknowns are trainable.
        self.unknowns = {}
        for name, unknown in (problem.unknowns.items() if opts.inverse else ()):
            start_value = math.log(unknown.guess) if unknown.positive else float(unknown.guess)
            var = self.add_weight(name=f"coef_{name}", shape=(), dtype=dtype, initializer="zeros", trainable=True)
            var.assign(start_value)
            self.unknowns[name] = (var, bool(unknown.positive))
        self.iteration = self.add_weight(name="iteration", shape=(), dtype="int64", initializer="zeros",
                                         trainable=False)
        self.phase, self.block = "adam", 1
        self.lbfgs = None  # made in compile (after the optimizer: the same trainable variables)
        self.built = True

    def count_params(self) -> int:
        """The field network's parameters and the coefficients: the point sets are state, not parameters."""
        return int(self.net.count_params()) + len(self.unknowns)

    # -- the field and the loss ----------------------------------------------------------------
    def fields(self, x) -> dict:
        """Inputs by name, ``u`` and the problem's derivatives at ``x``: by forward (Taylor-mode)
        propagation where the network allows it (:mod:`kerasdl.tasks.taylor`), else by tapes."""
        if self.taylor:
            return taylor.fields(self.net, x, self.keys, self.problem.inputs)
        return field_values(self.u, x, self.keys, self.problem.inputs)

    def u(self, x, names):
        out = self.net(x)
        if self.hard:
            out = self.problem.transform(names, out)
        return out

    def params(self) -> dict:
        """The coefficients: true values, or an inverse run's current estimates (tensors)."""
        out = {k: tf.constant(v, self.field_dtype) for k, v in self.problem.params.items()}
        for name, (var, positive) in self.unknowns.items():
            out[name] = tf.exp(var) if positive else tf.identity(var)
        return out

    def loss_terms(self):
        """``(total loss, {term name: value})`` on the current points (full batch).

        The collocation points are evaluated in blocks of at most :data:`LOSS_BLOCK` rows (static
        slices): each block's layer activations and derivative channels then stay in the CPU's
        cache, measured about 1.2x faster per iteration than one (10,000, 20) pass on 2 cores.
        """
        opts = self.opts
        nf = self.n_max  # static shapes (XLA): RAR's not-yet-added slots are masked, not sliced off
        params = self.params()
        mask = None
        if opts.rar:
            mask = tf.cast(tf.range(nf) < tf.cast(self.n_active, tf.int32), self.field_dtype)[:, None]
        squares = []
        for a in range(0, nf, LOSS_BLOCK):
            b = min(nf, a + LOSS_BLOCK)
            r2 = tf.square(residual_column(self.problem, self.fields(self.x_f[a:b]), params))
            squares.append(tf.reduce_sum(r2 if mask is None else mask[a:b] * r2))
        count = tf.cast(nf, self.field_dtype) if mask is None else tf.reduce_sum(mask)
        terms = {"loss_pde": tf.add_n(squares) / count}
        total = opts.w_pde * terms["loss_pde"]
        soft = bool(self.conditions) and not self.hard
        if soft or self.n_d:  # one pass over the condition and observation points
            fields = self.fields(tf.concat([self.x_b, self.x_d], axis=0))
        if soft:
            errors = []
            for cond, a, b in self.conditions:
                err = tf.square(fields[cond.output][a:b] - self.u_b[a:b])
                errors.append(err)
                terms[f"loss_{cond.name}"] = tf.reduce_mean(err)
            terms["loss_conditions"] = tf.reduce_mean(tf.concat(errors, axis=0))
            total += opts.w_conditions * terms["loss_conditions"]
        if self.n_d:
            terms["loss_data"] = tf.reduce_mean(tf.square(fields["u"][self.n_b:] - self.u_d))
            total += opts.w_data * terms["loss_data"]
        return total, terms

    def residual_at(self, x):
        """|residual| (N,) at points x (N, d)."""
        fields = self.fields(x)
        return tf.abs(residual_column(self.problem, fields, self.params()))[:, 0]

    def loss_and_grads(self):
        with tf.GradientTape() as tape:
            loss, _ = self.loss_terms()
        return loss, tape.gradient(loss, self.trainable_variables)

    # -- Keras extension points ----------------------------------------------------------------
    def train_step(self, data):
        variables = self.trainable_variables
        logs = {}
        if self.phase == "adam":
            def body(i):
                loss, grads = self.loss_and_grads()
                self.optimizer.apply_gradients(zip(grads, variables))
                return (i + 1,)

            tf.while_loop(lambda i: i < self.block, body, (tf.constant(0),))
        else:
            stats = self.lbfgs.run(self.block)
            logs.update({"lbfgs_evaluations": stats["evaluations"],
                         "lbfgs_failures": stats["line_search_failures"],
                         "grad_norm": stats["grad_norm"],
                         "lbfgs_converged": tf.cast(stats["converged"], self.field_dtype)})
        self.iteration.assign_add(self.block)
        loss, terms = self.loss_terms()
        logs = {"loss": loss, **terms, **logs, "phase": tf.constant(0.0 if self.phase == "adam" else 1.0),
                "iteration": tf.cast(self.iteration, tf.float64)}
        if self.opts.rar:
            logs["collocation_points"] = tf.cast(self.n_active, tf.float64)
        for name, value in self.params().items():
            if name in self.unknowns:
                logs[name] = value
        return logs

    def test_step(self, data):
        x, u_ref = data
        names = {name: x[:, i:i + 1] for i, name in enumerate(self.problem.inputs)}
        u = self.u(x, names)
        err = tf.sqrt(tf.reduce_sum(tf.square(u - u_ref))) / tf.sqrt(tf.reduce_sum(tf.square(u_ref)))
        return {"rel_l2": err}

    def call(self, x):
        names = {name: x[:, i:i + 1] for i, name in enumerate(self.problem.inputs)}
        return self.u(x, names)


class PhaseSwitch(keras.callbacks.Callback):
    """At each epoch's start: Adam or L-BFGS, and how many iterations (from the epoch's index, so a
    resumed run continues the same schedule); the train function is re-traced on a change."""

    def __init__(self, opts):
        super().__init__()
        self.opts = opts
        self.adam_epochs = -(-opts.adam_steps // opts.log_every)

    def schedule(self, epoch: int) -> tuple[str, int]:
        o = self.opts
        if epoch < self.adam_epochs:
            done = epoch * o.log_every
            return "adam", min(o.log_every, o.adam_steps - done)
        done = (epoch - self.adam_epochs) * o.log_every
        return "lbfgs", max(1, min(o.log_every, o.lbfgs_steps - done))

    def on_epoch_begin(self, epoch, logs=None):
        mode = self.schedule(epoch)
        model = self.model
        if (model.phase, model.block) != mode or getattr(model, "_traced_mode", None) != mode:
            model.phase, model.block = mode
            model._traced_mode = mode
            model.make_train_function(force=True)

    def on_epoch_end(self, epoch, logs=None):
        if logs and logs.get("lbfgs_converged", 0.0) >= 1.0:
            self.model.stop_training = True  # the gradient vanished: nothing left to do


class Refinement(keras.callbacks.Callback):
    """Residual-based adaptive refinement (Lu et al. 2021): at the scheduled epochs' ends, rank
    ``rar_candidates`` random points by |residual| and add the largest to the collocation set.

    The rounds are spread over the Adam phase, or with ``rar_until`` over that fraction of all
    iterations, into the L-BFGS phase (as Lu et al.'s Burgers example, which refines between
    converged L-BFGS runs); a round there clears L-BFGS's memory, whose pairs belong to the old loss.
    """

    def __init__(self, problem: Problem, opts, seed: int):
        super().__init__()
        self.problem, self.opts, self.seed = problem, opts, seed
        self.adam_epochs = -(-opts.adam_steps // opts.log_every)
        span = int(opts.epochs() * opts.rar_until) if opts.rar_until > 0 else self.adam_epochs
        rounds = opts.rar_rounds
        self.adds: dict[int, int] = {}
        for k in range(1, rounds + 1):
            epoch = max(0, min(span - 2, round(k * span / (rounds + 1)) - 1))
            share = opts.rar_points * k // rounds - opts.rar_points * (k - 1) // rounds
            self.adds[epoch] = self.adds.get(epoch, 0) + share
        self._residual = None

    def on_epoch_end(self, epoch, logs=None):
        add = self.adds.get(epoch, 0)
        model = self.model
        active = int(model.n_active.numpy())
        add = min(add, model.n_max - active)
        if add <= 0:
            return
        if self._residual is None:
            self._residual = tf.function(model.residual_at, reduce_retracing=True)
        candidates = sampling.collocation(self.problem, self.opts.rar_candidates, "uniform", seed=self.seed + 1000 + epoch)
        scores = np.concatenate([np.asarray(self._residual(tf.constant(candidates[i:i + CHUNK], model.field_dtype)))
                                 for i in range(0, len(candidates), CHUNK)])
        chosen = candidates[np.argsort(-scores, kind="stable")[:add]]
        x_f = model.x_f.numpy()
        x_f[active:active + add] = chosen
        model.x_f.assign(x_f)
        model.n_active.assign(active + add)
        if epoch + 1 >= self.adam_epochs and model.lbfgs is not None:  # the next epoch is L-BFGS's
            model.lbfgs.reset()


class ProblemCopy(keras.callbacks.Callback):
    """Keeps a user problem's file in the run (``problem.py``), written at the start of training."""

    def __init__(self, source: str, run_dir: str):
        super().__init__()
        self.source, self.run_dir = source, run_dir

    def on_train_begin(self, logs=None):
        target = runs.path(self.run_dir, PROBLEM_FILE)
        if os.path.abspath(self.source) != os.path.abspath(target):
            tmp = f"{target}.tmp-{os.getpid()}"
            shutil.copyfile(self.source, tmp)
            os.replace(tmp, target)


# --------------------------------------------------------------------------- the task


def _file_spec(spec: str) -> tuple[str, str] | None:
    """("path.py", "NAME") for a problem given as a file, None for a built-in name."""
    path, _, name = spec.partition(":") if ".py" in spec else (spec, "", "")
    return (path, name) if path.endswith(".py") else None


@register_task
class PINNTask(Task):
    name = "pinn"
    data_kind = "collocation"
    summary = "Physics-informed network u(x, t) for a PDE (Burgers, heat, Poisson, Helmholtz or yours), forward or inverse."
    paper = "Raissi, Perdikaris & Karniadakis 2019; RAR: Lu et al. 2021"
    roles = ("field",)
    serving_outputs = ("u",)
    logged = {"loss": "min", "loss_pde": "min", "loss_conditions": "min", "loss_data": "min", "rel_l2": "min"}

    def __init__(self, config, info):
        super().__init__(config, info)
        self._problem = None
        self.fitted: dict = {}

    # -- the problem ---------------------------------------------------------------------------
    @property
    def problem(self) -> Problem:
        if self._problem is None:
            spec = self.opts.problem
            file = _file_spec(spec)
            copy = runs.path(self.run_dir, PROBLEM_FILE) if self.run_dir else None
            if file and copy and os.path.exists(copy):  # the run's own copy: the original may have moved
                spec = f"{copy}:{file[1]}" if file[1] else copy
            self._problem = load_problem(spec)
        return self._problem

    def check(self) -> None:
        config, opts, problem = self.config, self.opts, self.problem
        if config.strategy not in ("auto", "one_device") or (config.cpu_devices or 1) > 1:
            raise KerasdlUsageError(f"task 'pinn' trains full-batch on one device; --strategy {config.strategy} "
                                    f"is not supported")
        if config.precision != "float32":
            raise KerasdlUsageError("task 'pinn' sets its own precision with --task-opt dtype=float64|float32; "
                                    f"leave --precision at float32. Received: precision={config.precision}")
        for flag, value in (("ema", config.ema), ("diagnostics", config.diagnostics)):
            if value:
                raise KerasdlUsageError(f"task 'pinn' does not support --{flag} (L-BFGS steps without the optimizer)")
        if opts.hard and problem.transform is None:
            raise KerasdlUsageError(f"hard=true needs an output transform; problem {problem.name!r} has none")
        if opts.inverse and not problem.unknowns:
            raise KerasdlUsageError(f"inverse=true: problem {problem.name!r} declares no unknowns (unknowns={{...}})")
        if (opts.inverse or opts.data_points) and problem.reference is None:
            raise KerasdlUsageError(f"observations of u (n_data, inverse) come from the reference solution; problem "
                                    f"{problem.name!r} has none")
        if opts.inverse and not opts.data_points:
            raise KerasdlUsageError("inverse=true needs observations: n_data must be >= 1")
        if not opts.inverse and not problem.conditions and not opts.data_points and not opts.hard:
            raise KerasdlUsageError(f"problem {problem.name!r} has no conditions and the run no observations: "
                                    f"the PDE alone has many solutions")

    # -- data ----------------------------------------------------------------------------------
    def make_data(self, splits):
        from kerasdl.data import DatasetInfo

        opts, problem = self.opts, self.problem
        grid, values, _ = sampling.reference_grid(problem)
        data = {}
        n_val = 0
        if problem.reference is not None and opts.validation_points:
            rng = np.random.default_rng(self.config.seed + 7)
            pick = rng.choice(len(grid), size=min(opts.validation_points, len(grid)), replace=False)
            n_val = len(pick)
        for split in splits:
            if split == "train":  # the points live in the model; one step per epoch
                data[split] = tf.data.Dataset.from_tensors(tf.zeros((), tf.float64))
            elif split == "validation":
                data[split] = (tf.data.Dataset.from_tensors((grid[pick], values[pick, None])) if n_val else None)
            else:
                data[split] = (tf.data.Dataset.from_tensors((grid, values[:, None])) if values is not None
                               else tf.data.Dataset.from_tensors((grid,)))
        info = DatasetInfo(
            name=opts.problem, source="pde", task="pinn", input_shape=(problem.dim,), raw_dtype="float64",
            num_classes=1, class_names=[], splits={"train": opts.n_collocation, "validation": n_val,
                                                   "test": len(grid)},
            mean=0.0, std=1.0, description=problem.description, feature_names=list(problem.inputs))
        return data, info

    def steps_per_epoch(self) -> int:
        return 1

    @property
    def xla(self) -> bool:
        """XLA for the train step: ``--jit``, which the task's ``xla`` option (on by default) sets."""
        return bool(self.config.jit)

    def points(self) -> dict:
        """The run's point sets, drawn from its seed (the same at training and at load)."""
        opts, problem, seed = self.opts, self.problem, self.config.seed
        n_start = opts.n_collocation - (opts.rar_points if opts.rar else 0)
        x_f = np.zeros((opts.n_collocation, problem.dim))
        x_f[:n_start] = sampling.collocation(problem, n_start, opts.sampler, seed=seed)
        conditions = ([] if opts.inverse or not problem.conditions
                      else sampling.condition_points(problem, opts.n_conditions, opts.sampler, seed=seed + 1))
        if opts.data_points:
            data = sampling.observations(problem, opts.data_points, noise=opts.noise, method=opts.sampler,
                                         seed=seed + 2)
        else:
            data = (np.zeros((0, problem.dim)), np.zeros((0, 1)))
        return {"collocation": x_f, "active": n_start, "conditions": conditions, "data": data}

    # -- model ---------------------------------------------------------------------------------
    def build(self):
        from kerasdl.models import build_model

        problem = self.problem
        options = {"low": list(problem.low()), "high": list(problem.high()), **self.config.model_options}
        with precision_policy(self.opts.dtype):
            net = build_model(self.config.model, input_shape=(problem.dim,), **options)
            return PINN(net, problem, self.opts, self.points(), jit=self.xla)

    def compile(self, model, optimizer, train_ds, val_ds, **speed):
        from kerasdl.engine.optim import make_optimizer

        opts = self.opts
        adam_epochs = max(1, -(-opts.adam_steps // opts.log_every))
        # Adam's schedule runs over its own iterations (log_every per epoch), not over the L-BFGS epochs.
        optimizer = make_optimizer(self.config.replace(epochs=adam_epochs, warmup_epochs=0.0)
                                   if self.config.warmup_epochs >= adam_epochs else
                                   self.config.replace(epochs=adam_epochs), opts.log_every)
        model.compile(optimizer=optimizer, jit_compile=self.xla, steps_per_execution=1)
        model.optimizer.build(model.trainable_variables)
        # The backend's own tf.Variables behind the Keras variables (what L-BFGS assigns in place).
        variables = [getattr(v, "value", v) for v in model.trainable_variables]
        model.lbfgs = LBFGS(variables, model.loss_and_grads, memory=opts.lbfgs_memory,
                            dtype=tf.as_dtype(opts.dtype), gtol=LBFGS_GTOL)
        return train_ds, val_ds

    def callbacks(self, run_dir: str) -> list:
        out = [PhaseSwitch(self.opts)]
        if self.opts.rar:
            out.append(Refinement(self.problem, self.opts, self.config.seed))
        file = _file_spec(self.opts.problem)
        if file:
            out.append(ProblemCopy(file[0], run_dir))
        return out

    def inference_model(self, model):
        if not isinstance(model, PINN):
            return model
        self.fitted = {name: float(value) for name, value in model.params().items() if name in model.unknowns}
        if not model.hard:
            return model.net
        with precision_policy(self.opts.dtype):
            x = keras.Input((self.problem.dim,), name="input")
            transform = OutputTransform(self.problem.name, self.problem.inputs, self.problem.transform,
                                        name="hard_constraints")
            u = transform(x, model.net(x))
            return keras.Model(x, u, name=f"{model.net.name}_hard")

    # -- reports -------------------------------------------------------------------------------
    def _grid_arrays(self, ds):
        batches = list(ds)
        x = np.concatenate([np.asarray(b[0]) for b in batches])
        u_ref = np.concatenate([np.asarray(b[1]) for b in batches])[:, 0] if len(batches[0]) > 1 else None
        return x, u_ref

    def _compiled(self, kind: str, model):
        """One traced function per (kind, model) for the task's life: the reports call them often."""
        cache = self.__dict__.setdefault("_functions", {})
        key = (kind, id(model))
        if key not in cache:
            problem, dtype = self.problem, tf.as_dtype(self.opts.dtype)
            if kind == "u":
                fn = tf.function(lambda t: model(t, training=False), reduce_retracing=True)
            else:
                params = {k: float(v) for k, v in problem.params.items()}
                params.update(self.fitted)

                def residual(t):
                    fields = field_values(lambda xx, names: model(xx, training=False), t, problem.keys(),
                                          problem.inputs)
                    p = {k: tf.constant(v, dtype) for k, v in params.items()}
                    return tf.abs(residual_column(problem, fields, p))[:, 0]

                fn = tf.function(residual, reduce_retracing=True)
            cache[key] = (model, fn)  # the model is kept alive with its function (ids are not reused)
        return cache[key][1]

    def _chunks(self, fn, x: np.ndarray) -> np.ndarray:
        dtype = tf.as_dtype(self.opts.dtype)
        return np.concatenate([np.asarray(fn(tf.constant(x[i:i + CHUNK], dtype))) for i in range(0, len(x), CHUNK)])

    def predict_points(self, model, x: np.ndarray) -> np.ndarray:
        """u (N, outputs) at raw points x (N, d)."""
        if not len(x):
            return np.zeros((0, 1))
        return self._chunks(self._compiled("u", model), np.asarray(x, dtype=np.float64))

    def residuals(self, model, x: np.ndarray) -> np.ndarray:
        """|residual| (N,) of the inference model at x, with the true (or fitted) coefficients."""
        return self._chunks(self._compiled("residual", model), np.asarray(x, dtype=np.float64))

    def _field_on(self, model, ds):
        """``(x, u_ref, u, |residual|)`` on the points of ``ds``; the last result is kept, so the
        plots after an evaluation do not compute the field and its residual again."""
        x, u_ref = self._grid_arrays(ds)
        last = self.__dict__.get("_last_field")
        if last is not None and last[0] is model and np.array_equal(last[1], x):
            return x, u_ref, last[2], last[3]
        u = self.predict_points(model, x)[:, 0]
        r = self.residuals(model, x)
        self._last_field = (model, x, u, r)
        return x, u_ref, u, r

    def evaluate(self, model, ds, **kw) -> dict:
        x, u_ref, u, r = self._field_on(model, ds)
        report = {"problem": self.problem.name, "points": int(len(x)),
                  "residual_max": float(r.max()), "residual_mean": float(r.mean())}
        if u_ref is not None:
            err = u - u_ref
            report.update({"rel_l2": float(np.linalg.norm(err) / np.linalg.norm(u_ref)),
                           "max_abs_error": float(np.abs(err).max()), "mean_abs_error": float(np.abs(err).mean())})
        if self.fitted:
            report["coefficients"] = {
                name: {"fitted": value, "true": float(self.problem.params[name]),
                       "rel_error": abs(value - self.problem.params[name]) / abs(self.problem.params[name])}
                for name, value in self.fitted.items()}
        return report

    def plots(self, report: dict, model, ds, run_dir: str, split: str = "test") -> list[str]:
        from kerasdl.plots import fields as figs

        x, u_ref, u, r = self._field_on(model, ds)
        _, _, shape = sampling.reference_grid(self.problem)
        if len(x) != int(np.prod(shape)):  # not the reference grid (e.g. another split): no maps
            return []
        out = []
        title = f"{self.config.model} on {self.problem.name}"
        where = os.path.join(runs.PLOTS, "solution.png")
        if figs.solution_figure(self.problem, x, u, u_ref, r, shape, runs.path(run_dir, where), title=title,
                                report=report):
            out.append(where)
        from kerasdl.engine.callbacks import read_history

        rows = read_history(runs.path(run_dir, runs.HISTORY))
        if rows:
            where = os.path.join(runs.PLOTS, "loss_terms.png")
            figs.loss_terms(rows, runs.path(run_dir, where), title=title)
            out.append(where)
            if self.fitted:
                where = os.path.join(runs.PLOTS, "coefficients.png")
                figs.coefficients(rows, {k: self.problem.params[k] for k in self.fitted}, runs.path(run_dir, where),
                                  title=title)
                out.append(where)
        return out

    def after_fit(self, model, val_ds, test_ds, run_dir: str, record: dict, title: str = "") -> None:
        from kerasdl.engine.callbacks import read_history

        rows = read_history(runs.path(run_dir, runs.HISTORY))
        seconds = sum(r.get("epoch_time_s", 0.0) for r in rows)
        adam = [r for r in rows if r.get("phase", 0.0) == 0.0]
        lbfgs = [r for r in rows if r.get("phase", 0.0) == 1.0]
        record["pinn"] = {
            "problem": self.problem.name,
            "adam_iterations": int(self.opts.adam_steps if adam else 0),
            "lbfgs_iterations": int(rows[-1]["iteration"] - (self.opts.adam_steps if adam else 0)) if lbfgs else 0,
            "lbfgs_line_search_failures": int(sum(r.get("lbfgs_failures", 0.0) for r in lbfgs)),
            "adam_seconds": round(sum(r.get("epoch_time_s", 0.0) for r in adam), 2),
            "lbfgs_seconds": round(sum(r.get("epoch_time_s", 0.0) for r in lbfgs), 2),
            "train_seconds": round(seconds, 2),
            "collocation_points": self.opts.n_collocation,
            "dtype": self.opts.dtype,
        }

    # -- export --------------------------------------------------------------------------------
    def endpoints(self, model, run_dir: str) -> dict:
        dtype = tf.as_dtype(self.opts.dtype)
        spec = [tf.TensorSpec([None, self.problem.dim], dtype, name="inputs")]

        def serve(inputs):
            return {"u": model(inputs, training=False)}

        return {"serving_default": Endpoint(serve, spec)}

    def tune_objectives(self) -> dict:
        return {}  # full-batch PDE training: no Keras Tuner search (yet)
