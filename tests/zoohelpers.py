"""Which zoo models the default suite checks in full, and which only in the full-zoo run.

The deepest variants of a family (ResNet-152 and its layouts, ResNet-101's v1.5 / pre-activation
layouts, DenseNet-201, EfficientNet-B5..B7) repeat, more often, the blocks of a sibling the suite
already trains one step and compares with keras.applications; their parameter counts are checked
against the published figures in tests/test_startup.py. In the default suite they are built and
run forward (logits checked), but not trained a step or transplanted: together that cost about
three CPU minutes. ``KERASDL_FULL_ZOO=1`` (``python benchmarks/zoo_full.py``) checks every model
in full.
"""

from __future__ import annotations

import os

import pytest

FULL_ZOO = os.environ.get("KERASDL_FULL_ZOO") == "1"

DEEP_VARIANTS = frozenset({
    "resnet152", "resnet152_v1_5", "resnet152v2", "preact_resnet152",
    "resnet101_v1_5", "preact_resnet101",
    "densenet201",
    "efficientnet_b5", "efficientnet_b6", "efficientnet_b7",
})

REASON = "deep variant of a family checked in full: run with KERASDL_FULL_ZOO=1 (python benchmarks/zoo_full.py)"


def checked_in_full(name: str) -> bool:
    return FULL_ZOO or name not in DEEP_VARIANTS


def full_zoo_param(name: str):
    """A pytest param for ``name``, skipped (with the reason) in the default suite when deep."""
    return name if checked_in_full(name) else pytest.param(name, marks=pytest.mark.skip(reason=REASON))
