"""Build every registered model at its default input and print parameter counts as Markdown.

    python benchmarks/param_counts.py > /tmp/params.md

"published" is the reference figure (../shared/REFERENCES.md and the reference implementations
named in each family's docstring). Keras ``count_params()`` counts BatchNorm moving statistics;
torchvision and most papers count trainable parameters only -- the ``counted`` column says which
of our figures is compared.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from kerasdl.tfquiet import import_tensorflow  # noqa: E402

import_tensorflow()

import keras  # noqa: E402
import numpy as np  # noqa: E402

from kerasdl.models import build_model, list_models, model_info  # noqa: E402

# name -> (published figure, "total" | "trainable", reference, build overrides, input override)
PUBLISHED = {
    "lenet5": (61_706, "total", "LeNet-5 variant (REFERENCES)", {}, None),
    "alexnet": (61_100_840, "total", "torchvision alexnet", {}, None),
    "vgg16": (138_357_544, "total", "keras.applications VGG16", {}, None),
    "vgg19": (143_667_240, "total", "keras.applications VGG19", {}, None),
    "googlenet": (6_624_904, "trainable", "torchvision googlenet (no aux)", {}, None),
    "resnet18": (11_689_512, "trainable", "torchvision", {}, None),
    "resnet34": (21_797_672, "trainable", "torchvision", {}, None),
    "resnet50": (25_636_712, "total", "keras.applications ResNet50", {}, None),
    "resnet101": (44_707_176, "total", "keras.applications", {}, None),
    "resnet152": (60_419_944, "total", "keras.applications", {}, None),
    "resnet50v2": (25_613_800, "total", "keras.applications ResNet50V2", {}, None),
    "resnext50_32x4d": (25_028_904, "trainable", "torchvision", {}, None),
    "resnet20": (270_000, "trainable", "He et al. 2016 Table 6 (0.27M)", {}, None),
    "resnet32": (460_000, "trainable", "He et al. 2016 (0.46M)", {}, None),
    "resnet44": (660_000, "trainable", "He et al. 2016 (0.66M)", {}, None),
    "resnet56": (850_000, "trainable", "He et al. 2016 (0.85M)", {}, None),
    "resnet110": (1_700_000, "trainable", "He et al. 2016 (1.7M)", {}, None),
    "wide_resnet28_10": (36_500_000, "trainable", "Zagoruyko & Komodakis 2016 (36.5M)", {}, None),
    "wide_resnet16_8": (11_000_000, "trainable", "Zagoruyko & Komodakis 2016 (11.0M)", {}, None),
    "wide_resnet40_4": (8_900_000, "trainable", "Zagoruyko & Komodakis 2016 (8.9M)", {}, None),
    "densenet121": (8_062_504, "total", "keras.applications DenseNet121", {}, None),
    "xception": (22_910_480, "total", "keras.applications Xception", {}, None),
    "efficientnet_b0": (5_330_571, "total", "keras.applications EfficientNetB0",
                        {"include_preprocessing": True}, None),
    "vit_b16": (86_567_656, "total", "timm vit_base_patch16_224", {}, None),
    "vit_s16": (22_050_664, "total", "timm vit_small_patch16_224", {}, None),
    "vit_ti16": (5_717_416, "total", "timm vit_tiny_patch16_224", {}, None),
    "mixer_s16": (18_528_264, "total", "timm mixer_s16_224 (paper 18M)", {}, None),
    "mixer_b16": (59_880_472, "total", "timm mixer_b16_224 (paper 59M)", {}, None),
    "gmlp_s16": (19_422_656, "total", "timm gmlp_s16_224", {}, None),
    "unet": (31_031_685, "total", "Ronneberger et al. 2015, 572x572x1 valid (~31.0M)", {"padding": "valid"},
             (572, 572, 1)),
}


def count(model, which: str) -> int:
    if which == "trainable":
        return int(sum(np.prod(w.shape) for w in model.trainable_weights))
    return int(model.count_params())


def main() -> None:
    print("| model | family | default input | parameters (ours) | published | counted | reference |")
    print("|---|---|---|---|---|---|---|")
    for name in list_models():
        info = model_info(name)
        published, which, ref, overrides, shape = PUBLISHED.get(name, (None, "total", "", {}, None))
        num_classes = 2 if name == "unet" else info.default_num_classes
        model = build_model(name, input_shape=shape or info.default_input_shape, num_classes=num_classes,
                            **overrides)
        ours = count(model, which)
        shown = f"{published:,}" if published else "-"
        if published and published % 10_000 == 0:  # a rounded paper figure
            shown = f"{published / 1e6:.2f}M"
        print(f"| {name} | {info.family} | {tuple(shape or info.default_input_shape)} | {ours:,} | {shown} | "
              f"{which if published else ''} | {ref} |", flush=True)
        del model
        keras.backend.clear_session()


if __name__ == "__main__":
    main()
