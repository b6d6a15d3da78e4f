"""``kerasdl models`` and ``kerasdl datasets``: what is available."""

from __future__ import annotations

import click
from rich.table import Table

from kerasdl.tfquiet import import_tensorflow

from .render import console


@click.command("models", epilog="\b\nExamples:\n  kerasdl models\n  kerasdl models --family mlp")
@click.option("--family", default=None, help="Only this family.")
@click.option("--no-params", is_flag=True, help="Skip building each model to count its parameters.")
def models_command(family, no_params):
    """List every registered model: family, task, default input, parameter count, paper."""
    import_tensorflow()  # quietly, before anything else loads it
    from kerasdl.models import build_model, list_models, model_info

    table = Table(title="kerasdl models", header_style="bold")
    for col in ("name", "family", "task", "default input", "classes", "parameters", "paper"):
        table.add_column(col, justify="right" if col in ("classes", "parameters") else "left")
    for name in list_models():
        info = model_info(name)
        if family and info.family != family:
            continue
        params = "-"
        if not no_params:
            import keras

            model = build_model(name, input_shape=info.default_input_shape, num_classes=info.default_num_classes)
            params = f"{model.count_params():,}"
            del model
            keras.backend.clear_session()
        table.add_row(name, info.family, info.task, str(tuple(info.default_input_shape)),
                      str(info.default_num_classes), params, info.paper)
    console.print(table)


@click.command("datasets", epilog="\b\nExamples:\n  kerasdl datasets")
def datasets_command():
    """List the offline datasets (they ship inside installed packages; no download needed).

    Any tensorflow-datasets catalog name (mnist, cifar10, svhn_cropped, ...) also works where it can
    be downloaded, as do an image folder (one sub-folder per class), a .npz and a .csv file.
    """
    import_tensorflow()  # quietly, before anything else loads it
    from kerasdl.data import list_datasets

    table = Table(title="kerasdl offline datasets", header_style="bold")
    for col in ("name", "task", "input", "classes", "train/val/test", "description"):
        table.add_column(col)
    for d in list_datasets():
        sizes = d.get("splits") or d.get("sizes") or {}
        split_text = "/".join(str(sizes.get(k, "?")) for k in ("train", "validation", "test")) if sizes else "-"
        table.add_row(d["name"], d.get("task", ""), str(tuple(d.get("input_shape", ()))),
                      str(d.get("num_classes", "")), split_text, d.get("description", ""))
    console.print(table)
