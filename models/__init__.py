"""kerasdl.models: the architecture zoo.

    from kerasdl.models import build_model, list_models, model_info
    model = build_model("lenet5", input_shape=(28, 28, 1), num_classes=10)  # logits out

One module per architecture family, each with one generic builder and thin registered
entry points (see :mod:`kerasdl.models.registry`). To add a family: write
``models/<family>.py`` with ``@register_model`` entry points; every public module of this
package is imported below, which registers its models.
Builders use only ``keras.layers`` / ``keras.ops``, so they run on any Keras backend.
"""

from .registry import ModelInfo, build_model, list_models, model_info, register_model

import importlib as _importlib  # noqa: E402
import pkgutil as _pkgutil  # noqa: E402

from .activations import ACTIVATIONS  # noqa: E402

# Family modules: importing them registers their models (sorted, so the order is stable).
for _module in sorted(m.name for m in _pkgutil.iter_modules(__path__)):
    if not _module.startswith("_") and _module not in ("registry", "activations"):
        _importlib.import_module(f"{__name__}.{_module}")

__all__ = ["ACTIVATIONS", "ModelInfo", "build_model", "list_models", "model_info", "register_model"]
