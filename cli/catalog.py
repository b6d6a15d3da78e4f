"""``kerasdl models`` and ``kerasdl datasets``: what is available."""

from __future__ import annotations

import click
from kerasdl.tfquiet import import_tensorflow

from .render import console, print_rows


@click.command("models", epilog="\b\nExamples:\n  kerasdl models\n  kerasdl models --family resnet")
@click.option("--family", default=None, help="Only this family.")
@click.option("--no-params", is_flag=True, help="Skip counting parameters (counting builds each model once).")
def models_command(family, no_params):
    """List every registered model: family, task, default input, parameter count, paper.

    Counting parameters builds each model at its default input once; the counts are cached
    (keyed by the builders' source), so later calls are instant.
    """
    import_tensorflow()  # quietly, before anything else loads it
    from kerasdl.models import list_models, model_info

    names = [n for n in list_models() if not family or model_info(n).family == family]
    if family and not names:
        from kerasdl.errors import UnknownNameError

        raise UnknownNameError("family", family, {model_info(n).family for n in list_models()})
    counts = {} if no_params else _param_counts(names)
    columns = ("name", "family", "task", "default input", "classes", "parameters", "paper")
    rows = []
    for name in names:
        info = model_info(name)
        params = f"{counts[name]:,}" if name in counts else "-"
        rows.append((name, info.family, info.task, "x".join(str(d) for d in info.default_input_shape),
                     str(info.default_num_classes), params, info.paper))
    print_rows("kerasdl models", columns, rows, right=("classes", "parameters"), wrap=("paper",))


def _param_counts(names: list[str]) -> dict:
    """Parameter counts at the default input, cached per version of the builders' source."""
    import hashlib
    import json
    import os

    import keras

    import kerasdl.models as zoo
    from kerasdl.models import build_model, model_info

    folder = os.path.dirname(zoo.__file__)
    digest = hashlib.sha1()
    for file in sorted(f for f in os.listdir(folder) if f.endswith(".py")):
        with open(os.path.join(folder, file), "rb") as f:
            digest.update(file.encode() + f.read())
    cache_dir = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "kerasdl")
    cache_file = os.path.join(cache_dir, f"param-counts-{digest.hexdigest()[:16]}.json")
    try:
        with open(cache_file) as f:
            counts = json.load(f)
    except (OSError, ValueError):
        counts = {}
    missing = [n for n in names if n not in counts]
    if missing:
        with console.status("") as status:
            for i, name in enumerate(missing, 1):
                status.update(f"counting parameters: {name} ({i}/{len(missing)})")
                info = model_info(name)
                model = build_model(name, input_shape=info.default_input_shape, num_classes=info.default_num_classes)
                counts[name] = int(model.count_params())
                del model
                keras.backend.clear_session()
        try:
            os.makedirs(cache_dir, exist_ok=True)
            tmp = f"{cache_file}.tmp-{os.getpid()}"
            with open(tmp, "w") as f:
                json.dump(counts, f)
            os.replace(tmp, cache_file)
        except OSError:
            pass  # a read-only home only costs the next call the same wait
    return counts


@click.command("datasets", epilog="\b\nExamples:\n  kerasdl datasets")
def datasets_command():
    """List the offline datasets (they ship inside installed packages; no download needed).

    Any tensorflow-datasets catalog name (mnist, cifar10, svhn_cropped, ...) also works where it can
    be downloaded, as do an image folder (one sub-folder per class), a .npz and a .csv file.
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
