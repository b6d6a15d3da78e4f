"""``kerasdl train``: train a model on a dataset and write a run directory."""

from __future__ import annotations

import click

from kerasdl.tfquiet import import_tensorflow
from click.core import ParameterSource

from kerasdl.augment import HELP as AUGMENT_HELP
from kerasdl.distribute import LR_SCALINGS, PRECISIONS, STRATEGIES
from kerasdl.config import (CALIBRATIONS, DROPOUT_SCHEDULES, INITIALIZERS, INPUT_NORMS, KEY_ALIASES, LOSSES, OPTIMIZERS,
                            SCHEDULES, RunConfig, replay_name)

from .options import data_dir_option, export_dir_option
from .render import print_calibration, print_metrics

EPILOG = """\b
Examples:
  kerasdl train                                      # lenet5 on mnist5k with the defaults
  kerasdl train --model mlp --dataset digits --epochs 40 --model-opt width=256 --model-opt dropout=0.2
  kerasdl train --optimizer nesterov --lr 0.05 --schedule cosine --warmup-epochs 1
  kerasdl train --model mlp --model-opt width=1024 --model-opt dropout=0.5 --dropout-schedule early \\
                --dropout-epochs 5 --l2 1e-4 --label-smoothing 0.1        # regularisation
  kerasdl train --model resnet20 --image-size 32,32 --agc 0.01 --ema 0.999 --stochastic-depth 0.1
  kerasdl train --model mlp --model-opt depth=20 --model-opt activation=sigmoid --diagnostics
  kerasdl train --config run.yaml --epochs 5         # YAML values, command line wins
  kerasdl train --resume runs/lenet5-mnist5k-20261123-101500-3fa2c1   # continue after a crash or Ctrl-C
  kerasdl train --model lenet5 --dataset cifar10 --export      # any tfds catalog name (downloads)
  kerasdl train --model mlp --model-opt dropout=0.3 --ensemble 5 --conformal-alpha 0.1   # uncertainty
  kerasdl train --model resnet20 --image-size 32,32 --strategy mirrored --batch-size 256 \\
                --lr-scaling linear --warmup-epochs 2 --precision mixed_bfloat16    # data parallel
  TF_CONFIG='{"cluster": {"worker": ["host1:2222", "host2:2222"]}, "task": {"type": "worker", "index": 0}}' \\
      kerasdl train --strategy multi_worker --name mw1 --output-dir /shared/runs   # on every host
  kerasdl train --dataset mnist5k --classes 5,6,7,8,9 --train-per-class 20 \\
                --init-from runs/digits04 --freeze backbone            # transfer learning
"""

# CLI option name -> RunConfig field, where they differ (config files take either spelling).
FIELD = KEY_ALIASES


def _config_keys_epilog() -> str:
    """The help's list of config-file keys, made from RunConfig's fields (so it cannot drift)."""
    import dataclasses
    import textwrap

    flag_of = {field: flag for flag, field in KEY_ALIASES.items()}
    keys = [f"{flag_of[f.name]} ({f.name})" if f.name in flag_of else f.name
            for f in dataclasses.fields(RunConfig)]
    lines = textwrap.wrap(", ".join(keys), width=100, initial_indent="  ", subsequent_indent="  ",
                          break_on_hyphens=False)
    return ("\n\b\nConfig-file keys (YAML; the flag names work too, with - or _; the command line wins):\n"
            + "\n".join(lines) + "\n")


EPILOG += _config_keys_epilog()


def _check_model_name(name: str) -> None:
    """Refuse an unknown model name with the closest names. The registry answers from its shipped
    catalogue without TensorFlow; where it must import the family modules after all (a catalogue
    older than the code), TensorFlow's native start-up lines are kept off the terminal, as
    ``import_tensorflow`` does."""
    import os
    import sys

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            try:
                from kerasdl.models import model_info

                model_info(name)
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def _is_stored_run_config(path: str) -> bool:
    """True for a run directory's own config.yaml (a replay), not for a config file a user wrote."""
    import os

    from kerasdl.runs import CONFIG, METRICS

    folder = os.path.dirname(os.path.abspath(path))
    return os.path.basename(path) == CONFIG and os.path.exists(os.path.join(folder, METRICS))


def _parse_model_opts(values: tuple[str, ...]) -> dict:
    import yaml

    opts = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint="--model-opt")
        try:
            opts[key] = yaml.safe_load(raw)  # "0.2" -> 0.2, "[64,32]" -> [64, 32], "relu" -> "relu"
        except yaml.YAMLError:
            raise click.BadParameter(f"cannot parse value of {item!r}", param_hint="--model-opt") from None
    return opts


@click.command("train", epilog=EPILOG)
@click.option("--model", "-m", help="Registry name (see 'kerasdl models').  [default: lenet5]")
@click.option("--dataset", "-d", help="Offline name (see 'kerasdl datasets'), tfds catalog name, image "
              "folder, .npz or .csv.  [default: mnist5k]")
@click.option("--label-column", metavar="NAME", help="A .csv dataset's label column.  [default: the first of "
              "label, target, y, class]")
@click.option("--epochs", "-e", type=click.IntRange(min=1), help="Maximum epochs.  [default: 20]")
@click.option("--batch-size", "-b", type=click.IntRange(min=1), help="Batch size.  [default: 64]")
@click.option("--optimizer", help=f"One of {', '.join(OPTIMIZERS)}.  [default: adam]")
@click.option("--lr", type=float, help="Base learning rate.  [default: 0.001]")
@click.option("--momentum", type=float, help="Momentum for 'momentum'/'nesterov'.  [default: 0.9]")
@click.option("--weight-decay", type=float, help="Decoupled weight decay (optimizer default if unset).")
@click.option("--schedule", help=f"LR schedule: {', '.join(SCHEDULES)}.  [default: cosine]")
@click.option("--warmup-epochs", type=float, help="Linear warmup length in epochs.  [default: 0]")
@click.option("--lr-decay-epochs", type=click.IntRange(min=1), help="Step schedule period.  [default: 10]")
@click.option("--lr-decay-factor", type=float, help="Step/plateau multiplier.  [default: 0.1]")
@click.option("--min-lr", type=float, help="Floor for cosine/onecycle/plateau; cyclic's low rate.  [default: 0]")
@click.option("--lr-cycle-epochs", type=float, help="Cyclic schedule: epochs per up-and-down cycle.  [default: 4]")
@click.option("--clip-value", type=float, help="Clip every gradient element to [-V, V].")
@click.option("--clip-norm", type=float, help="Rescale the gradient to global L2 norm <= N.")
@click.option("--agc", type=float, metavar="LAMBDA", help="Adaptive gradient clipping (Brock et al. 2021): "
              "clip each unit's gradient to LAMBDA x its weight norm (e.g. 0.01).")
@click.option("--accumulate", type=click.IntRange(min=1), help="Gradient accumulation: one update every N "
              "batches (effective batch N x batch size).  [default: 1]")
@click.option("--ema", type=float, metavar="MOMENTUM", help="Exponential moving average of the weights "
              "(e.g. 0.999); validation, checkpoints and the saved model use the averaged weights.")
@click.option("--init", help=f"Re-initialise every kernel: {', '.join(INITIALIZERS)} (zeros shows the "
              "symmetry failure).  [default: the builder's own]")
@click.option("--l1", type=float, help="L1 penalty on every kernel, added to the loss.  [default: 0]")
@click.option("--l2", type=float, help="L2 penalty on every kernel, added to the loss (coupled; see "
              "--weight-decay for decoupled).  [default: 0]")
@click.option("--max-norm", type=float, help="Max-norm constraint: each unit's incoming weight vector "
              "has L2 norm <= C after every update.")
@click.option("--dropout-schedule", help=f"{', '.join(DROPOUT_SCHEDULES)}: early = dropout only in the first "
              "--dropout-epochs epochs, late = only after them (Liu et al. 2023).  [default: constant]")
@click.option("--dropout-epochs", type=click.IntRange(min=0), help="K of the early/late dropout schedule.")
@click.option("--label-smoothing", type=float, help="Cross-entropy on targets (1-e)*onehot + e/K.  [default: 0]")
@click.option("--stochastic-depth", type=float, help="Residual nets: drop-path rate of the last block, "
              "linearly less before (Huang et al. 2016).")
@click.option("--input-norm", help=f"Input normalisation: {', '.join(INPUT_NORMS)} (statistics from the "
              "train split; channel_mean = per-channel mean subtraction).  [default: auto]")
@click.option("--diagnostics", is_flag=True, default=None, help="Log per-layer gradient norms, activation "
              "statistics and dead ReLUs to TensorBoard and diagnostics.csv; warn on vanishing/exploding "
              "gradients.")
@click.option("--augment", help=f"{AUGMENT_HELP}  [default: auto]")
@click.option("--loss", help=f"One of {', '.join(LOSSES)}; classification losses take the logits "
              "(binary_crossentropy: two-class sets, one logit).  [default: sparse_categorical_crossentropy, "
              "mse for regression]")
@click.option("--patience", type=click.IntRange(min=0), help="Early-stopping patience, 0 = off.  [default: 10]")
@click.option("--monitor", help="Metric for early stopping and the best checkpoint.  [default: val_loss]")
@click.option("--seed", type=int, help="Random seed (same seed, same data, same metrics).  [default: 0]")
@click.option("--name", help="Run name (folder under --output-dir).  [default: <model>-<dataset>-<time>]")
@click.option("--output-dir", type=click.Path(file_okay=False), help="Where runs go.  [default: runs]")
@data_dir_option
@click.option("--download/--no-download", default=None,
              help="Allow downloading tfds catalog datasets (default: yes unless KERASDL_OFFLINE=1).")
@click.option("--model-opt", multiple=True, metavar="KEY=VALUE",
              help="Builder override, repeatable (e.g. --model-opt depth=3 --model-opt activation=tanh).")
@click.option("--image-size", metavar="H,W", help="Resize images, e.g. 32,32 (for nets that need larger inputs).")
@click.option("--classes", metavar="LIST", help="Train on these classes only, e.g. '5,6,7,8,9' (relabelled 0..k-1).")
@click.option("--train-per-class", type=click.IntRange(min=1), help="Label budget: at most N training examples per class.")
@click.option("--init-from", type=click.Path(), help="Transfer learning: start from this run's best weights "
              "(layers matched by name and shape; a head of another size is re-initialised).")
@click.option("--pretrained", type=click.Choice(["imagenet"]), help="Start from keras.applications' ImageNet "
              "weights (models with a keras.applications twin; read from ~/.keras/models, downloaded unless "
              "offline; a head of another size is new).")
@click.option("--freeze", help="With --init-from or --pretrained: 'backbone' trains only the head, 'none' fine-tunes all.  [default: none]")
@click.option("--unfreeze-last", type=click.IntRange(min=0), help="With --freeze backbone: also train the last N weighted layers.")
@click.option("--calibrate/--no-calibrate", default=None, help="Classifiers: fit a calibration map on the "
              "validation split when training ends (calibration.json, reliability diagram); evaluate, predict "
              "and export use it.  [default: calibrate]")
@click.option("--calibration", help=f"Calibration map: {', '.join(CALIBRATIONS)} (Guo et al. 2017).  "
              "[default: temperature]")
@click.option("--ece-bins", type=click.IntRange(min=1), help="Equal-width bins of ECE and the reliability "
              "diagram.  [default: 15]")
@click.option("--conformal-alpha", type=float, metavar="ALPHA", help="Also calibrate split-conformal "
              "prediction sets (LAC and APS) with coverage 1 - ALPHA on validation, e.g. 0.1.")
@click.option("--ensemble", type=click.IntRange(min=1), metavar="N", help="Deep ensemble: train N members "
              "(seeds seed..seed+N-1) in <run>/members/; evaluate, predict and export use the averaged "
              "probabilities.  [default: 1]")
@click.option("--strategy", help=f"tf.distribute strategy: {', '.join(STRATEGIES)}. auto = multi_worker when "
              "TF_CONFIG names several tasks, mirrored with several GPUs, else one device. --batch-size is the "
              "global batch, split over the replicas.  [default: auto]")
@click.option("--cpu-devices", type=click.IntRange(min=1), metavar="N", help="Split the CPU into N logical "
              "devices (mirrored data parallelism on a CPU-only machine).  [default: 1]")
@click.option("--precision", help=f"{', '.join(PRECISIONS)}: 16-bit compute with float32 weights (float16 "
              "adds loss scaling); the saved model is float32.  [default: float32]")
@click.option("--jit/--no-jit", default=None, help="XLA-compile the train step (turns TF op determinism "
              "off).  [default: no-jit]")
@click.option("--steps-per-execution", type=click.IntRange(min=1), metavar="N", help="Run N batches per "
              "compiled call (less Python overhead per step; the same updates; callbacks see every Nth batch). "
              " [default: 32; 1 under a distribution strategy or with the plateau schedule's warmup]")
@click.option("--lr-scaling", help=f"{', '.join(LR_SCALINGS)}: scale --lr by batch/--lr-base-batch "
              "(linear: Goyal et al. 2017) or its square root.  [default: none]")
@click.option("--lr-base-batch", type=click.IntRange(min=1), help="Batch size --lr was chosen for.  "
              "[default: 64]")
@click.option("--export/--no-export", default=None, help="Export a SavedModel when training ends.")
@export_dir_option
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="YAML file of options; command-line options override it.")
@click.option("--resume", "resume_dir", type=click.Path(), help="Continue an interrupted run directory.")
@click.option("--overwrite", is_flag=True, help="Replace an existing run directory of the same name.")
@click.pass_context
def train_command(ctx, config_file, resume_dir, overwrite, **options):
    """Train a model, evaluate it on the test split and write runs/<name>/.

    The run directory holds config.yaml (the resolved config), history.csv, metrics.json,
    checkpoints, TensorBoard logs and PNG plots.
    """
    given = {}
    for key, value in options.items():
        if ctx.get_parameter_source(key) == ParameterSource.COMMANDLINE:
            if key == "export_dir" or value is not None:
                given[FIELD.get(key, key)] = value
    if "model_options" in given:
        given["model_options"] = _parse_model_opts(given["model_options"])
    if "image_size" in given:
        try:
            given["image_size"] = [int(v) for v in given["image_size"].replace("x", ",").split(",")]
        except ValueError:
            raise click.BadParameter(f"expected H,W, got {given['image_size']!r}", param_hint="--image-size") from None
    if "classes" in given:
        given["classes"] = [int(c) if c.strip().lstrip("-").isdigit() else c.strip()
                            for c in given["classes"].split(",") if c.strip()]

    # Values and names that need no TensorFlow are checked first: a typo costs no TF import.
    replay = False
    if resume_dir:
        if config_file or overwrite:
            raise click.UsageError("--resume takes the run's own config; drop --config/--overwrite")
        extra = {k: v for k, v in given.items() if k in ("epochs", "data_dir", "download")}
        ignored = sorted(set(given) - set(extra))
        if ignored:
            raise click.UsageError(f"--resume keeps the run's settings; cannot change {', '.join(ignored)}")
    elif config_file:
        config = RunConfig.from_yaml(config_file, given)
        replay = "name" not in given and bool(config.name) and _is_stored_run_config(config_file)
        if replay:  # a run's own config.yaml: the stored name is taken, so the replay gets a new one
            new_name = replay_name(config.output_dir, config.name)
            click.echo(f"replaying run {config.name} as run {new_name}")
            config = config.replace(name=new_name)
    else:
        config = RunConfig.from_mapping(given, source="command line")
    if not resume_dir:
        _check_model_name(config.model)

    import_tensorflow()  # quietly, before anything else loads it
    from kerasdl.training import resume_config, train

    if resume_dir:
        config = resume_config(resume_dir, **extra)
    if "name" not in given and not resume_dir and not (config_file and config.name and not replay):
        from kerasdl.distribute import cluster_role

        if cluster_role().num_workers > 1:
            raise click.UsageError("a multi-worker run (TF_CONFIG) needs --name, so that every worker "
                                   "agrees on the run directory")
    config = config.resolved()  # fixes the run name now
    # Ctrl-C: train() marks the run interrupted and raises RunInterrupted, whose one line (how to
    # resume) the root group prints with exit code 130.
    result = train(config, resume=bool(resume_dir), overwrite=overwrite, echo=click.echo)
    if "role" in result.metrics:  # a non-chief worker: the chief reports the run
        click.echo(f"{result.metrics['role']}: done; the chief writes {result.run_dir}")
        return
    if result.stop_reason == "nan_loss":
        at = result.metrics["nan_at"]
        click.secho(
            f"stopped: the loss became NaN in epoch {at['epoch']} (batch {at['batch']}); kept the best "
            f"checkpoint from epoch {result.metrics['best_epoch']} "
            f"({result.metrics['monitor']} {result.metrics['best_monitor_value']:.4f})",
            fg="yellow", err=True,
        )
    elif result.stop_reason == "early_stopping":
        click.echo(f"early stopping after epoch {result.metrics['epochs_run']}; "
                   f"best epoch {result.metrics['best_epoch']}")
    print_metrics(result.metrics["test"], title=f"test metrics ({result.run_dir})")
    if "calibration" in result.metrics:
        from kerasdl.posthoc import CALIBRATION
        from kerasdl.runs import path, read_json

        print_calibration(read_json(path(result.run_dir, CALIBRATION)))
    if result.export_path:
        click.echo(f"exported SavedModel: {result.export_path}")
    click.echo(f"run directory: {result.run_dir}")
