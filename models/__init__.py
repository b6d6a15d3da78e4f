"""kerasdl.models: the architecture zoo.

    from kerasdl.models import build_model, list_models, model_info
    model = build_model("lenet5", input_shape=(28, 28, 1), num_classes=10)  # logits out
    model = build_model("lenet5")  # the same: the registry's default input and class count

One module per architecture family, each with one generic builder and its registered
variants (see :mod:`kerasdl.models.registry`). To add a family: write ``models/<family>.py``
with ``@register_model`` entry points or a table of presets (``register_presets(builder,
{name: dict(paper=..., notes=..., preset=dict(depth=18)), ...}, family=..., task=...)``), then
regenerate the shipped catalogue (``python benchmarks/param_counts.py --write``).

Not only classifiers: every entry has a role (:data:`ROLES`: classifier, segmenter, encoder,
decoder, generator, discriminator, denoiser, critic). A component names its own positional
arguments and their defaults, and builds the same way::

    list_models(role="encoder")                  # ["dense_encoder", ...]
    build_model("dense_encoder", input_shape=(28, 28, 1), latent_dim=2, gaussian=True)
    build_model("dense_decoder", latent_dim=2, output_shape=(28, 28, 1))
    model_info("dense_encoder").required         # ("input_shape", "latent_dim")

Register one with ``@register_model(name, builder=..., family=..., role="encoder",
required=("input_shape", "latent_dim"), defaults={"latent_dim": 16},
default_input_shape=(28, 28, 1), companion="dense_decoder", paper=...)``.
Builders use only ``keras.layers`` / ``keras.ops``, so they run on any Keras backend.

Importing this package imports neither Keras nor TensorFlow: names, :class:`ModelInfo` and
parameter counts come from the shipped catalogue, and :func:`build_model` imports only the
family module it needs. Family modules (``kerasdl.models.resnet``) and ``ACTIVATIONS`` load
on first attribute access.
"""

from __future__ import annotations

import importlib as _importlib

from .registry import (
    ROLES,
    ModelInfo,
    build_model,
    import_all_families,
    list_models,
    model_info,
    param_counts,
    register_model,
    register_presets,
)

__all__ = [
    "ACTIVATIONS",
    "ROLES",
    "ModelInfo",
    "build_model",
    "import_all_families",
    "list_models",
    "model_info",
    "param_counts",
    "register_model",
    "register_presets",
]


def __getattr__(name: str):
    """Lazy attributes: ``ACTIVATIONS`` and the submodules (``kerasdl.models.vit``)."""
    if name == "ACTIVATIONS":
        from .activations import ACTIVATIONS

        return ACTIVATIONS
    if not name.startswith("__"):
        try:
            return _importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
