"""Classification: class ids, cross-entropy on logits, accuracy / NLL / ECE, calibration and
conformal sets after fitting (see :mod:`kerasdl.tasks.supervised`)."""

from __future__ import annotations

from kerasdl.tasks.base import register_task
from kerasdl.tasks.supervised import SupervisedTask


@register_task
class ClassificationTask(SupervisedTask):
    name = "classification"
    summary = "class ids from images or features: cross-entropy, accuracy, NLL, ECE, calibration"
    roles = ("classifier",)
