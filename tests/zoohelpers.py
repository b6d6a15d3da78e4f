"""Which zoo models the default suite checks in full, and which only in the full-zoo run.

The deeper variants of a family (ResNet-101 / 152 in every layout, DenseNet-169 / 201,
EfficientNet-B2..B7, the bigger wide ResNets, ResNet-110, Mixer-B/16, ViT-B/16) repeat, more
often, the blocks of a sibling the suite already trains one step and compares with
keras.applications; their parameter counts and feature shapes are still checked against the
published or keras.applications figures (tests/test_zoo_resnet.py, tests/test_zoo_modern.py,
tests/test_startup.py). In the default suite they are built and
run forward (logits checked), but not trained a step, transplanted or rebuilt with a one-output
head (the family's shared head is checked on its shallower models): together that cost about
five CPU minutes. ``KERASDL_FULL_ZOO=1`` (``python benchmarks/zoo_full.py``) checks every model
in full.
"""

from __future__ import annotations

import os

import pytest

FULL_ZOO = os.environ.get("KERASDL_FULL_ZOO") == "1"

# Checked in full in the default suite, per family: the shallowest model of every block type and
# layout (resnet18 / resnet34 / resnet50 / resnet50_v1_5 / resnet50v2 / preact_resnet50,
# densenet121, efficientnet_b0 and b1, wide_resnet and wide_resnet16_8, resnet20 / 32 / 44 / 56,
# mixer_s16, vit_s16 / ti16, ...). These deeper or wider ones only repeat those blocks:
DEEP_VARIANTS = frozenset({
    "resnet101", "resnet101v2", "resnet101_v1_5", "preact_resnet101",
    "resnet152", "resnet152_v1_5", "resnet152v2", "preact_resnet152",
    "densenet169", "densenet201",
    "efficientnet_b2", "efficientnet_b3", "efficientnet_b4", "efficientnet_b5", "efficientnet_b6", "efficientnet_b7",
    "wide_resnet28_10", "wide_resnet40_4", "resnet110", "mixer_b16", "vit_b16",
})

REASON = "deep variant of a family checked in full: run with KERASDL_FULL_ZOO=1 (python benchmarks/zoo_full.py)"


def checked_in_full(name: str) -> bool:
    return FULL_ZOO or name not in DEEP_VARIANTS


def full_zoo_param(name: str):
    """A pytest param for ``name``, skipped (with the reason) in the default suite when deep."""
    return name if checked_in_full(name) else pytest.param(name, marks=pytest.mark.skip(reason=REASON))
