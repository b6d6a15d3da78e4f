"""Segmentation: a class per pixel (an (H, W) mask), pixel accuracy and mean IoU, examples of
predicted masks (see :mod:`kerasdl.tasks.supervised`)."""

from __future__ import annotations

from kerasdl.tasks.base import register_task
from kerasdl.tasks.supervised import SupervisedTask


@register_task
class SegmentationTask(SupervisedTask):
    name = "segmentation"
    summary = "a class per pixel: pixel accuracy, mean IoU, mask examples"
    roles = ("segmenter",)
