"""Transfer learning vs training from scratch at the same label budget (README table).

Pretrain LeNet-5 on digits 0-4 of mnist5k (all 1,750 training images, 20 epochs with the default
random-shift augmentation), then learn digits 5-9
from only N labelled images per class, four ways:

* scratch        -- a fresh LeNet-5;
* frozen         -- ``--init-from <pretrained> --freeze backbone`` (fixed feature extractor, new head);
* fine-tune top  -- stage 2 from the frozen run: ``--init-from <frozen run> --freeze backbone
                    --unfreeze-last 2`` (head + the two dense layers);
* fine-tune all  -- stage 2 from the frozen run: ``--init-from <frozen run> --freeze none`` with a
                    10x lower learning rate.

Fine-tuning starts from the run whose new head was already trained on the frozen features (the
lecture recipe: a random head's large gradients would otherwise wreck the pretrained features in
the first steps). Every method sees the same labelled images; the two-stage ones take more steps.

    python benchmarks/transfer_experiment.py [--seeds 0 1 2] [--budgets 5 10 20 50]

Uses the Python API (the same code path as the CLI) in one process; prints a Markdown table of
mean test accuracy (and the spread over seeds) on the 500 test images of digits 5-9.
"""

from __future__ import annotations

import argparse
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from kerasdl.tfquiet import import_tensorflow  # noqa: E402

import_tensorflow()

import numpy as np  # noqa: E402

from kerasdl.config import RunConfig  # noqa: E402
from kerasdl.training import train  # noqa: E402

SOURCE, TARGET = [0, 1, 2, 3, 4], [5, 6, 7, 8, 9]
METHODS = {
    "scratch": dict(learning_rate=3e-3),
    "frozen backbone": dict(freeze="backbone", learning_rate=1e-2),
    "fine-tune top (last 2)": dict(freeze="backbone", unfreeze_last=2, learning_rate=1e-3),
    "fine-tune all (lr/10)": dict(learning_rate=3e-4),
}
STAGE2 = {"fine-tune top (last 2)", "fine-tune all (lr/10)"}  # start from the "frozen backbone" run


def quiet(*_a, **_k):
    pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budgets", type=int, nargs="+", default=[5, 10, 20, 50])
    args = parser.parse_args()
    out = tempfile.mkdtemp(prefix="kerasdl-transfer-")
    common = dict(model="lenet5", dataset="mnist5k", output_dir=out, augment="none", patience=0)
    results: dict = {}
    for seed in args.seeds:
        # Pretraining uses the default augmentation (random shifts): more general features.
        src = train(RunConfig(classes=SOURCE, epochs=20, name=f"src-{seed}", seed=seed,
                              **{**common, "augment": "auto"}), echo=quiet, progress=False)
        print(f"pretrained on digits 0-4 (seed {seed}): test accuracy {src.metrics['test']['accuracy']:.3f}",
              flush=True)
        for budget in args.budgets:
            run_dirs = {}
            for m, (method, opts) in enumerate(METHODS.items()):
                start = run_dirs["frozen backbone"] if method in STAGE2 else src.run_dir
                init = {} if method == "scratch" else {"init_from": start}
                # The same number of optimiser steps for every budget: ~300.
                batch = min(10, 5 * budget)
                epochs = max(10, round(300 / (5 * budget / batch)))
                res = train(RunConfig(classes=TARGET, train_per_class=budget, epochs=epochs, batch_size=batch,
                                      name=f"m{m}-{budget}-{seed}", seed=seed,
                                      **init, **opts, **common), echo=quiet, progress=False)
                run_dirs[method] = res.run_dir
                results.setdefault((budget, method), []).append(res.metrics["test"]["accuracy"])
                print(f"  budget {budget}/class, {method}: {res.metrics['test']['accuracy']:.3f}", flush=True)
    print()
    print("| labels per class | " + " | ".join(METHODS) + " |")
    print("|---|" + "---|" * len(METHODS))
    for budget in args.budgets:
        cells = []
        for method in METHODS:
            acc = np.array(results[(budget, method)])
            cells.append(f"{acc.mean():.1%} ± {acc.std():.1%}" if len(acc) > 1 else f"{acc.mean():.1%}")
        print(f"| {budget} | " + " | ".join(cells) + " |")
    print(f"\nseeds {args.seeds}; test set: 500 images of digits 5-9; chance 20%")


if __name__ == "__main__":
    main()
