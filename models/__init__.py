"""kerasdl.models: the architecture zoo.

    from kerasdl.models import build_model, list_models, model_info
    model = build_model("lenet5", input_shape=(28, 28, 1), num_classes=10)  # logits out

One module per architecture family, each with one generic builder and thin registered
entry points (see :mod:`kerasdl.models.registry`). To add a family: write
``models/<family>.py`` with ``@register_model`` entry points and import it below.
Builders use only ``keras.layers`` / ``keras.ops``, so they run on any Keras backend.
"""

from .registry import ModelInfo, build_model, list_models, model_info, register_model

# Family modules: importing them registers their models.
from . import linear, mlp, lenet  # noqa: E402,F401  isort: skip
from .activations import ACTIVATIONS  # noqa: E402

__all__ = ["ACTIVATIONS", "ModelInfo", "build_model", "list_models", "model_info", "register_model"]
