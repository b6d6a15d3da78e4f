"""``kerasdl tune``: hyperparameter search on Keras Tuner, each trial a kerasdl training run."""

from __future__ import annotations

import click
from click.core import ParameterSource

from kerasdl.tfquiet import import_tensorflow

from .config_options import config_option, to_field
from .render import print_rows

EPILOG = """\b
Examples:
  kerasdl tune --model mlp --dataset digits --tuner hyperband --epochs 9
  kerasdl tune --model mlp --dataset digits --tuner bayesian --max-trials 20 --objective val_accuracy
  kerasdl tune --model lenet5 --space space.yaml --max-trials 8     # your own search space
  kerasdl tune --resume runs/tune-mlp-digits-20261123-101500        # continue an interrupted search
  kerasdl train --config runs/tune-mlp-digits-20261123-101500/best.yaml   # retrain the best
  kerasdl tune --model mlp --max-trials 12 --workers 2            # chief + 2 workers on this machine
  kerasdl tune --task vae --dataset mnist --objective val_elbo    # latent size, beta, width, learning rate

\b
space.yaml overrides or extends the model's default space:
  learning_rate: {type: float, min: 1.0e-4, max: 1.0e-2, log: true}
  model_opt.width: {type: choice, values: [64, 128, 256]}
  model_opt.dropout: {type: fixed, value: 0.2}
  task_opt.latent_dim: {type: choice, values: [8, 16]}       # a --task-opt key of the task
"""


@click.command("tune", epilog=EPILOG)
# Options that set the trials' RunConfig fields come from the fields (kerasdl/config.py), with the
# search's own defaults.
@config_option("model", default="mlp", help="Registry name (see 'kerasdl models'); with a --task that has its "
               "own model (autoencoder, vae: dense_encoder; segmentation: unet) and no --model, that one.")
@config_option("dataset", default="digits")
@config_option("task")
@config_option("task_options")
@click.option("--tuner", default=None, help="random, grid, bayesian or hyperband.  [default: random]")
@click.option("--max-trials", type=click.IntRange(min=1), default=None,
              help="Trials to run (random, grid, bayesian).  [default: 10]")
@click.option("--objective", default=None, help="What the search optimises, on the validation split; the task "
              "offers it with its direction: val_loss, val_accuracy, val_nll or val_ece (supervised), val_elbo or "
              "val_loss (vae), val_loss (autoencoder).  [default: val_loss]")
@config_option("epochs", default=10, help="Epochs per trial; hyperband's largest budget.")
@click.option("--space", "space_file", type=click.Path(dir_okay=False), default=None,
              help="YAML search space that overrides or extends the model's default.")
@config_option("seed", help="Seed of the search and of every trial.")
@click.option("--name", default=None, help="Tune directory name.  [default: tune-<model>-<dataset>-<time>]")
@config_option("output_dir", help="Where the tune directory goes.")
@click.option("--show-space", is_flag=True, help="Print the search space and exit.")
@click.option("--resume", "resume_dir", type=click.Path(), default=None,
              help="Continue an interrupted search; finished trials are not redone.")
@click.option("--overwrite", is_flag=True, help="Replace an existing tune directory of the same name.")
@click.option("--trial-process", type=click.Choice(["fresh", "shared"]), default=None,
              help="fresh: every trial in a new Python process (memory returned when it ends; a crash "
                   "is a failed trial); shared: every trial in this process (no start-up cost, but memory "
                   "grows by a few MiB per trial).  [default: fresh]")
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True,
              help="Distributed search on this machine: a chief process serving the oracle and N worker "
                   "processes running trials (Keras Tuner's KERASTUNER_* protocol on localhost).")
@click.option("--prepare", is_flag=True, help="Only write the tune directory's tune.yaml (for a multi-host "
              "search: then start the chief and the workers with --join).")
@click.option("--join", "join_dir", type=click.Path(), default=None,
              help="Run as the chief or a worker of the search in this (shared) tune directory, as the "
                   "KERASTUNER_TUNER_ID / KERASTUNER_ORACLE_IP / KERASTUNER_ORACLE_PORT variables say.")
@click.pass_context
def tune_command(ctx, model, dataset, task, task_options, tuner, max_trials, objective, epochs, space_file, seed,
                 name, output_dir, show_space, resume_dir, overwrite, trial_process, workers, prepare, join_dir):
    """Search hyperparameters; every trial is a kerasdl training run.

    Writes a ranked tune_results.csv, best.yaml (retrain with 'kerasdl train --config best.yaml')
    and tune_objective.png into the tune directory.
    """
    import datetime as dt
    import os

    tf = import_tensorflow()  # quietly, before anything else loads it
    tf.get_logger().setLevel("ERROR")  # trials rebuild models: retracing notes would bury the trial lines
    from kerasdl.tuning import search as tuning

    if join_dir:
        missing = [v for v in tuning.CHIEF_ENV if v not in os.environ]
        if missing:
            raise click.UsageError(f"--join needs the environment variables {', '.join(missing)}")
        settings = tuning.TuneSettings.load(join_dir)
        role = os.environ["KERASTUNER_TUNER_ID"]
        click.echo(f"{role} of the search in {join_dir} (oracle {os.environ['KERASTUNER_ORACLE_IP']}:"
                   f"{os.environ['KERASTUNER_ORACLE_PORT']})")
        result = tuning.search(settings, join_dir, echo=click.echo)
        if result.best_config:
            click.echo(f"best config: {result.best_config}")
        return
    if resume_dir:
        locked = ("model", "dataset", "task", "task_options", "tuner", "max_trials", "objective", "epochs",
                  "space_file", "seed", "name", "output_dir", "trial_process")
        given = [k for k in locked if ctx.get_parameter_source(k) == ParameterSource.COMMANDLINE]
        if given or overwrite:
            raise click.UsageError(f"--resume keeps the search's settings; cannot change {', '.join(given) or 'overwrite'}")
        settings, tune_dir = tuning.TuneSettings.load(resume_dir), resume_dir
    else:
        from kerasdl.config import RunConfig
        from kerasdl.tasks.options import DEFAULT_MODELS, default_model

        task = task or "auto"
        if ctx.get_parameter_source("model") is ParameterSource.DEFAULT and task in DEFAULT_MODELS:
            model = default_model(task)  # e.g. --task vae: dense_encoder, not the classifiers' mlp
        model, dataset = model or "mlp", dataset or "digits"
        base = RunConfig(model=model, dataset=dataset, epochs=epochs or 10, seed=seed or 0, patience=0, task=task,
                         task_options=to_field("task_options", task_options))
        base.validate()
        space = tuning.task_space(base)
        if space_file:
            space = tuning.read_space(space_file, space)
        base_fields = {k: v for k, v in base.to_dict().items() if k not in ("name", "output_dir")}
        settings = tuning.TuneSettings(base=base_fields, tuner=tuner or "random", objective=objective or "val_loss",
                                       max_trials=max_trials or 10, seed=seed or 0, space=space,
                                       trial_process=trial_process or "fresh")
        settings.check()
        if show_space:
            print_rows("search space", ["hyperparameter", "type", "values"],
                       [[k, v["type"], ", ".join(f"{kk}={vv}" for kk, vv in v.items() if kk != "type")]
                        for k, v in settings.space.items()])
            return
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        tune_dir = os.path.join(output_dir or "runs", name or f"tune-{model}-{dataset.replace('/', '_')}-{stamp}")

    if prepare:
        tuning.prepare(settings, tune_dir, resume=bool(resume_dir), overwrite=overwrite)
        click.echo(f"prepared {tune_dir}; start the chief and workers with: kerasdl tune --join {tune_dir}")
        return
    click.echo(f"{settings.tuner} search over {len(settings.space)} hyperparameters of {settings.base['model']} on "
               f"{settings.base['dataset']}, objective {settings.objective} -> {tune_dir}")
    try:
        result = tuning.tune(settings, tune_dir, resume=bool(resume_dir), overwrite=overwrite, echo=click.echo,
                             workers=workers)
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted; continue with: kerasdl tune --resume {tune_dir}", err=True)
        raise
    shown = [k for k in settings.space if not k.startswith("tuner/")]
    rows = [[r["trial"], r["status"], *(f"{r[settings.objective]:.4f}" if r.get(settings.objective) is not None
                                        else "-",),
             *(_fmt(r.get(k)) for k in shown)] for r in result.rows]
    print_rows(f"trials, best first ({settings.objective})", ["trial", "status", settings.objective, *shown], rows)
    if result.best_config:
        click.echo(f"best config: {result.best_config}  (retrain: kerasdl train --config {result.best_config})")
    if result.plot:
        click.echo(f"plot: {result.plot}")
    click.echo(f"results: {os.path.join(tune_dir, tuning.RESULTS_CSV)}")


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return "-" if value is None else str(value)
