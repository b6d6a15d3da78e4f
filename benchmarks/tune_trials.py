"""Tuning cost: trials (and training epochs) until a search first reaches a target validation
accuracy, random vs bayesian vs hyperband, several seeds (issue #6, benchmark 4).

    python benchmarks/tune_trials.py --work-dir /tmp/tune-trials --target 0.97
    python benchmarks/tune_trials.py --work-dir /tmp/tune-trials --tuners random --seeds 1   # one search

Every search is a real ``kerasdl tune`` (:func:`kerasdl.tuning.search.tune`) of the MLP on ``digits``
over the model's default search space, objective ``val_accuracy``, seed s for the oracle and for
every trial. Random and bayesian run ``--trials`` trials of ``--epochs`` epochs each (bayesian:
the Gaussian process proposes after ``--initial-points`` random trials); hyperband gets
``--epochs`` as its largest budget (its trials get 1, 3, 9, ... epochs; a trial continuing
another starts from its weights) and runs one Hyperband iteration, however many trials that
makes. ``--trial-process shared`` runs the trials in the search process, which saves each
child's start-up (TensorFlow's import, several seconds a trial); the trials are seeded alike.

A finished search is kept in ``<work dir>/<tuner>-seed<s>/`` and not run again, so the searches
can be run in several invocations and the table computed at the end. For every search the table
gives the trials, in order of creation, up to and including the first that reached the target,
and the training epochs allotted until then (hyperband's trials have different budgets, so
epochs are the fairer cost); then the best score and the trials run. It also prints the
distribution of all trial scores, from which to pick a target that is reachable but not trivial.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import time

TUNERS = ("random", "bayesian", "hyperband")


def search_dir(work_dir: str, tuner: str, seed: int) -> str:
    return os.path.join(work_dir, f"{tuner}-seed{seed}")


def run_search(tune_dir: str, tuner: str, seed: int, args: argparse.Namespace) -> None:
    """One ``kerasdl tune`` search, unless ``tune_dir`` already holds a finished one."""
    from kerasdl.config import RunConfig
    from kerasdl.tuning.search import RESULTS_CSV, TuneSettings, default_space, tune

    if os.path.isfile(os.path.join(tune_dir, RESULTS_CSV)):
        print(f"{tune_dir}: already searched")
        return
    base = {k: v for k, v in RunConfig(model="mlp", dataset="digits", epochs=args.epochs, seed=seed, patience=0)
            .to_dict().items() if k not in ("name", "output_dir")}
    settings = TuneSettings(base=base, tuner=tuner, objective="val_accuracy", max_trials=args.trials, seed=seed,
                            space=default_space("mlp"), max_consecutive_failed_trials=args.trials,
                            trial_process=args.trial_process, bayesian_initial_points=args.initial_points)
    t0 = time.perf_counter()
    tune(settings, tune_dir, overwrite=True, echo=lambda *_: None)
    print(f"{tune_dir}: searched in {time.perf_counter() - t0:.0f} s")


def read_trials(tune_dir: str, epochs: int) -> list[dict]:
    """The search's trials in order of creation: status, val_accuracy (None if failed), epochs."""
    from kerasdl.tuning.search import RESULTS_CSV

    with open(os.path.join(tune_dir, RESULTS_CSV), encoding="utf-8") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: int(r["trial"]))
    return [{"status": r["status"],
             "val_accuracy": float(r["val_accuracy"]) if r.get("val_accuracy") else None,
             "epochs": int(float(r["tuner/epochs"])) if r.get("tuner/epochs") else epochs} for r in rows]


def cost_to_target(trials: list[dict], target: float) -> tuple[int, int] | None:
    """(trials, epochs) up to and including the first trial reaching ``target``; None if none did."""
    spent = 0
    for number, trial in enumerate(trials, start=1):
        spent += trial["epochs"]
        if trial["val_accuracy"] is not None and trial["val_accuracy"] >= target:
            return number, spent
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-dir", required=True, help="Where the searches are kept (and reused).")
    parser.add_argument("--tuners", nargs="+", choices=TUNERS, default=list(TUNERS))
    # Not 0: Keras Tuner's oracles take seed 0 for "no seed" (a random one), so the search would not repeat.
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--trials", type=int, default=15, help="Trials of random and bayesian search.")
    parser.add_argument("--epochs", type=int, default=9, help="Epochs per trial; hyperband's largest budget.")
    parser.add_argument("--initial-points", type=int, default=4, help="Bayesian search: random trials before "
                        "the Gaussian process proposes (Keras Tuner's default, 3 per hyperparameter, would make a "
                        "short search a random one).")
    parser.add_argument("--trial-process", choices=("fresh", "shared"), default="fresh")
    parser.add_argument("--target", type=float, default=None, help="Validation accuracy to reach; without it "
                        "only the searches are run and the score distribution printed.")
    args = parser.parse_args()
    os.environ.setdefault("KERASDL_OFFLINE", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    searches = {}
    for tuner in args.tuners:
        for seed in args.seeds:
            tune_dir = search_dir(args.work_dir, tuner, seed)
            run_search(tune_dir, tuner, seed, args)
            searches[tuner, seed] = read_trials(tune_dir, args.epochs)

    print(f"\nMLP on digits, default search space, objective val_accuracy, {args.epochs} epochs per trial "
          f"(hyperband: largest budget), random/bayesian {args.trials} trials, bayesian after "
          f"{args.initial_points} random ones\n")
    print("| tuner | trials | failed | val_accuracy min | 25% | median | 75% | 90% | max |")
    print("|---|---|---|---|---|---|---|---|---|")
    for tuner in args.tuners:
        scores = sorted(t["val_accuracy"] for seed in args.seeds for t in searches[tuner, seed]
                        if t["val_accuracy"] is not None)
        count = sum(len(searches[tuner, seed]) for seed in args.seeds)
        q = statistics.quantiles(scores, n=20, method="inclusive")
        print(f"| {tuner} | {count} | {count - len(scores)} | {scores[0]:.4f} | {q[4]:.4f} | {q[9]:.4f} | "
              f"{q[14]:.4f} | {q[17]:.4f} | {scores[-1]:.4f} |")
    if args.target is None:
        return

    print(f"\ntarget: val_accuracy >= {args.target}\n")
    print("| tuner | seed | trials to target | epochs to target | best val_accuracy | trials run | epochs run |")
    print("|---|---|---|---|---|---|---|")
    for tuner in args.tuners:
        for seed in args.seeds:
            trials = searches[tuner, seed]
            reached = cost_to_target(trials, args.target)
            best = max((t["val_accuracy"] for t in trials if t["val_accuracy"] is not None), default=float("nan"))
            shown = (f"{reached[0]} | {reached[1]}" if reached
                     else f"not reached within {len(trials)} | not reached within {sum(t['epochs'] for t in trials)}")
            print(f"| {tuner} | {seed} | {shown} | {best:.4f} | {len(trials)} | {sum(t['epochs'] for t in trials)} |")


if __name__ == "__main__":
    main()
