"""``kerasdl models`` and ``kerasdl datasets``: what is available."""

from __future__ import annotations

import click
from kerasdl.tfquiet import import_tensorflow

from .render import print_rows


@click.command("models", epilog="\b\nExamples:\n  kerasdl models\n"
               "  kerasdl models --family resnet\n  kerasdl models --role encoder")
@click.option("--family", default=None, help="Only this family.")
@click.option("--role", default=None,
              help="Only this role: classifier, segmenter, encoder, decoder, generator, "
              "discriminator, denoiser or critic.")
@click.option("--no-params", is_flag=True, help="Leave out the two parameter-count columns.")
def models_command(family, role, no_params):
    """List every registered model: family, task, default input, parameter counts, paper.

    Parameter counts ship with kerasdl (measured at each model's default input and class count
    when the catalogue was generated), so nothing is built and the listing prints at once.
    "trainable" counts trainable weights (as torchvision and the papers do); "total" is Keras'
    count_params(), which adds BatchNorm's moving statistics. The training header prints both,
    at the run's own input and class count.
    """
    from kerasdl.models import list_models, model_info, param_counts, registry

    if registry.stale_modules():  # a family edited since the catalogue was made: import it for real
        import_tensorflow()  # quietly, before the family module loads it
    names = [n for n in list_models(role=role) if not family or model_info(n).family == family]
    if family and not any(model_info(n).family == family for n in list_models()):
        from kerasdl.errors import UnknownNameError

        raise UnknownNameError("family", family, {model_info(n).family for n in list_models()})
    counted = () if no_params else ("trainable", "total")
    columns = ("name", "family", "task", "default input", "classes", *counted, "paper")
    rows, missing = [], []
    for name in names:
        info = model_info(name)
        shipped = None if no_params else param_counts(name)
        if no_params:
            counts = ()
        elif shipped:
            counts = tuple(f"{c:,}" for c in shipped)
        else:
            counts = ("?", "?")
            missing.append(name)
        shape = "x".join(str(d) for d in info.default_input_shape) or "-"  # "-": a decoder
        classes = str(info.default_num_classes) if "num_classes" in info.required else "-"
        rows.append((name, info.family, info.task, shape, classes, *counts, info.paper))
    columns, rows = _fit_terminal(columns, rows)
    print_rows("kerasdl models", columns, rows, right=("classes", *counted), wrap=("paper",))
    if missing:
        click.echo(f"?: no shipped parameter count for {', '.join(missing)} (edited since the "
                   "catalogue was generated: run `python benchmarks/param_counts.py --write`)",
                   err=True)


def _fit_terminal(columns, rows, optional=("paper", "task", "family"), min_wrapped=20):
    """On a terminal too narrow for every column, leave out ``optional`` ones (in that order)
    rather than cut names and counts short; piped output always keeps every column."""
    from .render import console

    if not console.is_terminal:
        return columns, rows

    def width(cols):  # rich's box: 3 characters per column (padding and rule) and 1 more
        return 1 + sum(3 + (min_wrapped if c == "paper" else
                            max(len(c), *(len(r[columns.index(c)]) for r in rows))) for c in cols)

    keep = list(columns)
    for column in optional:
        if width(keep) <= console.width:
            break
        if column in keep:
            keep.remove(column)
    index = [columns.index(c) for c in keep]
    return tuple(keep), [tuple(row[i] for i in index) for row in rows]


@click.command("datasets", epilog="\b\nExamples:\n  kerasdl datasets")
def datasets_command():
    """List the offline datasets (they ship inside installed packages; no download needed).

    Any tensorflow-datasets catalog name (mnist, cifar10, svhn_cropped, ...) also works where it can
    be downloaded, as do an image folder (one sub-folder per class), a .npz and a .csv file. Graph
    datasets: karate, cycles, the Planetoid files (path/to/folder/cora reads ind.cora.*), a graph
    .npz or a folder with nodes.csv and edges.csv.
    """
    import_tensorflow()  # quietly, before anything else loads it
    from kerasdl.data import list_datasets

    columns = ("name", "task", "input", "classes", "train/val/test", "description")
    rows = []
    for d in list_datasets():
        sizes = d.get("splits") or d.get("sizes") or {}
        split_text = "/".join(str(sizes.get(k, "?")) for k in ("train", "validation", "test")) if sizes else "-"
        rows.append((d["name"], d.get("task", ""), "x".join(str(v) for v in d.get("input_shape", ())),
                     str(d.get("num_classes", "")), split_text, d.get("description", "")))
    print_rows("kerasdl offline datasets", columns, rows, wrap=("description",))
    from kerasdl.data.graphs import GRAPH_DATASETS, load_graph
    from kerasdl.data.graphs.pipeline import GRAPH_TASKS

    rows = []
    for name in sorted(GRAPH_DATASETS):
        g = load_graph(name)
        sizes = g.split_sizes()
        rows.append((name, GRAPH_TASKS[g.level], f"{g.num_nodes} nodes x {g.num_features}", str(g.num_classes),
                     "/".join(str(sizes[k]) for k in ("train", "validation", "test")), GRAPH_DATASETS[name]))
    print_rows("kerasdl offline graph datasets (Planetoid files: --dataset path/to/folder/cora)", columns, rows,
               wrap=("description",))
