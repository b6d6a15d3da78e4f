"""Train one model of every family from the CLI on offline data; print a Markdown table.

    python benchmarks/train_zoo.py            # all rows (about half an hour on 2 CPU cores)
    python benchmarks/train_zoo.py resnet20   # only rows whose model name matches

Each row is a real ``kerasdl train`` subprocess (so the table shows what a user gets), with a
small label budget and few epochs where the net is large: the point is "every family trains and
beats chance clearly", not state-of-the-art accuracy. Runs go to a temporary directory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

# (model, dataset, extra CLI arguments, chance level)
ROWS = [
    ("logistic", "mnist5k", ["--epochs", "10"], 0.10),
    ("mlp", "mnist5k", ["--epochs", "10"], 0.10),
    ("highway", "mnist5k", ["--epochs", "10"], 0.10),
    ("cnn1d", "mnist5k", ["--epochs", "8"], 0.10),
    ("cnn", "mnist5k", ["--epochs", "8"], 0.10),
    ("lenet5", "mnist5k", [], 0.10),
    ("alexnet", "mnist5k", ["--image-size", "64,64", "--epochs", "4", "--train-per-class", "150",
                            "--lr", "0.0001"], 0.10),
    ("vgg11_bn", "mnist5k", ["--image-size", "32,32", "--epochs", "3", "--train-per-class", "150",
                             "--model-opt", "head=gap"], 0.10),
    ("googlenet", "mnist5k", ["--image-size", "32,32", "--epochs", "3", "--train-per-class", "150"], 0.10),
    ("resnet18", "mnist5k", ["--image-size", "32,32", "--epochs", "3", "--train-per-class", "150"], 0.10),
    ("resnet20", "mnist5k", ["--image-size", "32,32", "--epochs", "5"], 0.10),
    ("plain20", "mnist5k", ["--image-size", "32,32", "--epochs", "5"], 0.10),
    ("resnext50_32x4d", "mnist5k", ["--image-size", "32,32", "--epochs", "3", "--train-per-class", "100"], 0.10),
    ("wide_resnet16_8", "mnist5k", ["--image-size", "32,32", "--epochs", "2", "--train-per-class", "100"], 0.10),
    ("densenet121", "mnist5k", ["--image-size", "32,32", "--epochs", "3", "--train-per-class", "150"], 0.10),
    ("xception", "mnist5k", ["--image-size", "71,71", "--epochs", "3", "--train-per-class", "100",
                             "--batch-size", "16"], 0.10),
    ("efficientnet_b0", "mnist5k", ["--image-size", "32,32", "--epochs", "5", "--train-per-class", "150"], 0.10),
    ("vit_tiny_patch4_32", "mnist5k", ["--image-size", "32,32", "--epochs", "5"], 0.10),
    ("mixer_tiny_patch4_32", "mnist5k", ["--image-size", "32,32", "--epochs", "5"], 0.10),
    # The family at a CPU-sized configuration: the full 30-block gmlp_s16 (18M parameters) stays at
    # chance for 3 epochs on 1,500 digits (its token-mixing weights start at ~0 and grow slowly).
    ("gmlp_s16", "mnist5k", ["--image-size", "32,32", "--epochs", "10", "--model-opt", "patch_size=4",
                             "--model-opt", "depth=4", "--model-opt", "width=64", "--model-opt", "ffn_dim=256"],
     0.10),
    ("unet", "shapes", ["--epochs", "20", "--batch-size", "32", "--model-opt", "base_filters=16", "--model-opt", "depth=3",
                        "--augment", "none", "--lr", "0.003"], None),
    ("mlp", "diabetes", ["--epochs", "200", "--lr", "0.01", "--patience", "30"], None),
    ("mlp", "breast_cancer", ["--epochs", "40", "--loss", "binary_crossentropy"], 0.63),
]


def main(selected: list[str]) -> None:
    work = tempfile.mkdtemp(prefix="kerasdl-zoo-")
    print("| model | dataset | options | train examples | test figure | chance | seconds |")
    print("|---|---|---|---|---|---|---|")
    for model, dataset, extra, chance in ROWS:
        if selected and not any(s in model for s in selected):
            continue
        name = f"{model}-{dataset}"
        t0 = time.perf_counter()
        proc = subprocess.run(["kerasdl", "train", "--model", model, "--dataset", dataset, "--name", name,
                               "--seed", "0", *extra], cwd=work, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            print(f"| {model} | {dataset} | {' '.join(extra)} | - | FAILED: {proc.stderr.strip()[-200:]} | | |")
            continue
        with open(os.path.join(work, "runs", name, "metrics.json")) as f:
            record = json.load(f)
        test = record["test"]
        if "mean_iou" in test:
            figure = f"mean IoU {test['mean_iou']:.3f} (pixel acc {test['accuracy']:.1%})"
        elif "r2" in test:
            figure = f"R² {test['r2']:.3f} (MAE {test['mae']:.1f})"
        else:
            figure = f"accuracy {test['accuracy']:.1%}"
        with open(os.path.join(work, "runs", name, "dataset.json")) as f:
            train_n = json.load(f)["splits"]["train"]
        print(f"| {model} | {dataset} | {' '.join(extra) or '(defaults)'} | {train_n:,} | {figure} | "
              f"{'' if chance is None else f'{chance:.0%}'} | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
