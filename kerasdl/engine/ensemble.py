"""Deep ensembles (Lakshminarayanan, Pritzel & Blundell 2017, "Simple and Scalable Predictive
Uncertainty Estimation using Deep Ensembles"): M copies of a network trained from different
random initialisations and data orders, predicting the average of their softmax probabilities.

``kerasdl train --ensemble M`` trains the members as ordinary runs inside the ensemble's run
directory, with seeds ``seed, seed + 1, ..., seed + M - 1``::

    runs/<name>/
      config.yaml, dataset.json, metrics.json, calibration.json, plots/   the ensemble as one model
      plots/member_learning_curves.png                                    the members' curves side by side
      members/member1/ ... members/memberM/                               complete runs, one per seed

Everything that reads a run (evaluate, calibrate, predict, export) loads an ensemble run as one
:class:`Ensemble` model whose outputs are the logits ``log(mean_m softmax(z_m))`` -- softmax of
them gives back exactly the averaged probabilities, so calibration, metrics and the SavedModel's
softmax need no special case. An interrupted ensemble resumes: finished members are kept, the
unfinished one continues from its backup, the rest start.
"""

from __future__ import annotations

import os

import keras
from keras import ops

from kerasdl import runs

MEMBERS = "members"


def member_dir(run_dir: str, index: int) -> str:
    """Run directory of member ``index`` (1-based)."""
    return os.path.join(run_dir, MEMBERS, f"member{index}")


class Ensemble(keras.Model):
    """The average of the members' softmax probabilities, returned as logits log(p_bar).

    Held in memory only (a run's members are each saved as ordinary runs), so it needs no
    serialisation; its variables are the members', which is what a SavedModel export tracks.
    """

    def __init__(self, members, name: str = "ensemble"):
        super().__init__(name=name)
        self.members = list(members)

    def call(self, inputs, training=False):
        probs = None
        for member in self.members:
            z = member(inputs, training=training)
            if z.shape[-1] == 1:  # one sigmoid logit z -> softmax logits (0, z)
                z = ops.concatenate([ops.zeros_like(z), z], axis=-1)
            p = ops.softmax(z, axis=-1)
            probs = p if probs is None else probs + p
        probs = probs / len(self.members)
        return ops.log(ops.maximum(probs, 1e-37))  # float32-safe: log(0) would make NaN in softmax's max


def load_ensemble(run_dir: str, size: int, input_shape, load_member) -> Ensemble:
    """Rebuild every member from its run directory (``load_member(dir)`` -> keras model; the
    run loader passes itself) and wrap them as one :class:`Ensemble`."""
    from kerasdl.errors import KerasdlUsageError

    members = []
    for k in range(1, size + 1):
        where = member_dir(run_dir, k)
        if not os.path.isdir(where):
            raise KerasdlUsageError(f"ensemble {run_dir} is missing member {k} ({where}); "
                                    f"finish it with: kerasdl train --resume {run_dir}")
        members.append(load_member(where))
    model = Ensemble(members, name=f"ensemble_of_{size}")
    model(ops.zeros((1, *input_shape)))  # build (for count_params and SavedModel tracking)
    return model


def member_configs(config) -> list:
    """The config of each member: the ensemble's, with its own seed and folder, and no export or
    conformal sets. A classifier's members are calibrated like a normal run (calibration.json,
    reliability diagram); the ensemble reads their raw weights, so this changes none of its figures."""
    out_dir = os.path.join(config.run_dir, MEMBERS)
    return [config.replace(ensemble=1, seed=config.seed + k, name=f"member{k + 1}", output_dir=out_dir,
                           export=False, conformal_alpha=None)
            for k in range(config.ensemble)]


MEMBER_CURVES = "member_learning_curves.png"


def plot_member_curves(run_dir: str, members: list, title: str = "") -> str:
    """``plots/member_learning_curves.png`` of the ensemble: every member's learning curves side
    by side (each member's own folder also has its ``plots/learning_curves.png``)."""
    from kerasdl import plots
    from kerasdl.engine.callbacks import read_history

    histories = [read_history(runs.path(m.run_dir, runs.HISTORY)) for m in members]
    labels = [f"member {k} (seed {m.seed})" for k, m in enumerate(members, start=1)]
    return plots.member_learning_curves(histories, runs.path(run_dir, os.path.join(runs.PLOTS, MEMBER_CURVES)),
                                        title=title, labels=labels)
