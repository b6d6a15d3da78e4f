"""Regression: real targets, MSE-type losses, MAE / RMSE / R² (see :mod:`kerasdl.tasks.supervised`);
no calibration step."""

from __future__ import annotations

from kerasdl.tasks.base import register_task
from kerasdl.tasks.supervised import SupervisedTask


@register_task
class RegressionTask(SupervisedTask):
    name = "regression"
    summary = "real-valued targets: MSE / MAE / Huber losses, R², a scatter of predictions"
    roles = ("classifier",)  # the same heads, one linear output

    def after_fit(self, model, val_ds, test_ds, run_dir: str, record: dict, title: str = "") -> None:
        """Nothing to calibrate."""
