"""``kerasdl tasks``: the kinds of learning, with their ``--task-opt`` keys."""

from __future__ import annotations

import dataclasses

import click

from .render import print_rows


@click.command("tasks", epilog="\b\nExamples:\n  kerasdl tasks\n"
               "  kerasdl train --task vae --dataset mnist5k --task-opt latent_dim=2 --task-opt beta=4\n"
               "  kerasdl sample runs/<vae-run> --n 64 --seed 0")
def tasks_command():
    """List every task: data kind, default model, summary, paper, its --task-opt keys with defaults.

    Pick one with `kerasdl train --task NAME`; set its options with `--task-opt KEY=VALUE`
    (repeatable). The "commands" column says which runs `kerasdl sample` / `kerasdl encode` take.
    """
    from kerasdl.tfquiet import import_tensorflow

    import_tensorflow()  # quietly: the task classes import Keras
    from kerasdl.tasks import list_tasks, task_class
    from kerasdl.tasks.options import OPTIONS

    rows = []
    for name in list_tasks():
        cls = task_class(name)
        opts = ", ".join(f"{f.name}={f.default}" for f in dataclasses.fields(OPTIONS[name])) or "-"
        commands = ", ".join(c for c, flag in (("sample", cls.generative), ("encode", cls.encodes)) if flag) or "-"
        rows.append((name, cls.data_kind, cls.default_model, commands,
                     cls.summary or "-", cls.paper or "-", opts))
    print_rows("kerasdl tasks", ("name", "data", "default model", "commands", "summary", "paper", "--task-opt"),
               rows, wrap=("summary", "paper", "--task-opt"))
