"""``kerasdl train``: train a model on a dataset and write a run directory."""

from __future__ import annotations

import click

from kerasdl.tfquiet import import_tensorflow
from kerasdl.config import KEY_ALIASES, RunConfig, replay_name

from .config_options import GroupedCommand, config_options, given_fields
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
    from kerasdl.tfquiet import native_stderr_silenced

    with native_stderr_silenced():
        from kerasdl.models import model_info

        model_info(name)


def _is_stored_run_config(path: str) -> bool:
    """True for a run directory's own config.yaml (a replay), not for a config file a user wrote."""
    import os

    from kerasdl.runs import CONFIG, METRICS

    folder = os.path.dirname(os.path.abspath(path))
    return os.path.basename(path) == CONFIG and os.path.exists(os.path.join(folder, METRICS))


@click.command("train", cls=GroupedCommand, epilog=EPILOG)
@config_options()  # every RunConfig field (kerasdl/config.py), grouped in --help
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
    given = given_fields(ctx, options)

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
        _check_model_name(config.model_name)

    import_tensorflow()  # quietly, before anything else loads it
    from kerasdl.engine.fit import resume_config, train

    if resume_dir:
        config = resume_config(resume_dir, **extra)
    if "name" not in given and not resume_dir and not (config_file and config.name and not replay):
        from kerasdl.engine.distribute import cluster_role

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
        from kerasdl.evaluation.posthoc import CALIBRATION
        from kerasdl.runs import path, read_json

        print_calibration(read_json(path(result.run_dir, CALIBRATION)))
    if result.export_path:
        click.echo(f"exported SavedModel: {result.export_path}")
    click.echo(f"run directory: {result.run_dir}")
