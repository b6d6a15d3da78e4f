"""The model registry: named entry points -> functional ``keras.Model`` builders.

Modelled on timm's ``models/_registry.py``: each family module defines ONE generic builder
(``MLP``, ``LeNet``, ...) and a few tiny entry-point functions decorated with
:func:`register_model`. An entry point binds the variant's preset (``resnet50`` ->
``depth=50``) and forwards the user's overrides, which win over the preset::

    @register_model("lenet5", builder=LeNet, family="lenet", task="classification",
                    paper="LeCun et al. 1998", default_input_shape=(28, 28, 1),
                    default_num_classes=10)
    def lenet5(input_shape, num_classes, **overrides):
        return LeNet(input_shape, num_classes, **{"name": "lenet5", **overrides})

``builder`` tells the registry which keyword overrides are valid (the builder's keyword
parameters), so :func:`build_model` can reject a misspelt one with a one-line error that
names the valid keywords, before any layer is built.

Importing :mod:`kerasdl.models` imports every family module, which fills the registry.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable, Sequence

from kerasdl.errors import KerasdlUsageError, UnknownNameError

__all__ = ["ModelInfo", "register_model", "build_model", "list_models", "model_info"]

# Parameters every builder takes positionally; they are not "overrides".
_REQUIRED = ("input_shape", "num_classes")


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about one named model (for ``kerasdl models`` and reports)."""

    name: str
    family: str
    task: str
    paper: str
    default_input_shape: tuple[int, ...]
    default_num_classes: int
    notes: str = ""
    # A small input the model accepts, used by the zoo-wide smoke tests (big ImageNet nets are
    # built there at e.g. 32x32 or 64x64 instead of 224x224); defaults to default_input_shape.
    smoke_input_shape: tuple[int, ...] = ()
    # Keyword overrides build_model accepts for this model (the family builder's keywords).
    overrides: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON- and YAML-safe dict (tuples become lists: ``yaml.safe_dump`` rejects tuples)."""
        d = dataclasses.asdict(self)
        d["default_input_shape"] = list(self.default_input_shape)
        d["overrides"] = list(self.overrides)
        d["smoke_input_shape"] = list(self.smoke_input_shape)
        return d


@dataclasses.dataclass(frozen=True)
class _Entry:
    fn: Callable[..., Any]
    info: ModelInfo


_REGISTRY: dict[str, _Entry] = {}


def _builder_keywords(builder: Callable[..., Any]) -> tuple[str, ...]:
    params = inspect.signature(builder).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        raise TypeError(
            f"builder {builder.__name__} must list its keywords explicitly (no **kwargs)"
        )
    return tuple(
        sorted(
            p.name
            for p in params
            if p.name not in _REQUIRED
            and p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        )
    )


def register_model(
    name: str,
    *,
    builder: Callable[..., Any],
    family: str,
    task: str,
    paper: str,
    default_input_shape: Sequence[int],
    default_num_classes: int,
    notes: str = "",
    smoke_input_shape: Sequence[int] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator that registers an entry point ``fn(input_shape, num_classes, **overrides)``.

    ``builder`` is the family's generic builder the entry point calls; its keyword
    parameters (minus ``input_shape`` and ``num_classes``) are the valid overrides.
    Registering the same name twice is a programming error (``ValueError``).
    """

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered (by {_REGISTRY[name].fn!r})")
        info = ModelInfo(
            name=name,
            family=family,
            task=task,
            paper=paper,
            default_input_shape=tuple(int(d) for d in default_input_shape),
            default_num_classes=int(default_num_classes),
            notes=notes,
            smoke_input_shape=tuple(int(d) for d in (smoke_input_shape or default_input_shape)),
            overrides=_builder_keywords(builder),
        )
        _REGISTRY[name] = _Entry(fn=fn, info=info)
        return fn

    return decorator


def list_models() -> list[str]:
    """Every registered model name, sorted."""
    return sorted(_REGISTRY)


def _entry(name: str) -> _Entry:
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):  # TypeError: an unhashable "name" such as a list
        raise UnknownNameError("model", str(name), list_models()) from None


def model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of a registered model; unknown name -> ``UnknownNameError``."""
    return _entry(name).info


def _check_input_shape(input_shape: Any) -> tuple[int, ...]:
    """A tuple of positive ints (an int ``n`` means ``(n,)``), else a one-line usage error."""
    if isinstance(input_shape, int) and not isinstance(input_shape, bool):
        input_shape = (input_shape,)
    try:
        shape = tuple(input_shape)
    except TypeError:
        shape = None
    if (
        not shape
        or any(isinstance(d, bool) or not isinstance(d, int) for d in shape)
        or any(d < 1 for d in shape)
    ):
        raise KerasdlUsageError(
            "input_shape must be a non-empty tuple of positive integers, without the batch "
            f"dimension, e.g. (28, 28, 1). Received: input_shape={input_shape!r}"
        )
    return tuple(int(d) for d in shape)


def _check_num_classes(num_classes: Any) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise KerasdlUsageError(
            "num_classes must be a positive integer (1 gives a single linear output for "
            f"regression). Received: num_classes={num_classes!r}"
        )
    return int(num_classes)


def build_model(
    name: str | None = None, /, *, input_shape: Sequence[int], num_classes: int, **overrides: Any
):
    """Build the registered model ``name`` as a functional ``keras.Model`` that outputs logits.

    ``name`` is positional-only so that ``name=`` can rename the Keras model:
    ``build_model("mlp", name="my_mlp", ...)``. Called with no positional name,
    ``build_model(name="mlp", ...)`` still means the registry name.

    Args:
        name: a name from :func:`list_models`.
        input_shape: one example's shape, without the batch axis, e.g. ``(28, 28, 1)``.
        num_classes: size of the linear output (logits); ``1`` for regression.
        **overrides: keyword arguments of the family builder (``model_info(name).overrides``),
            e.g. ``activation="tanh"``, ``include_top=False, pooling="avg"``, ``name="my_net"``.

    Raises:
        UnknownNameError: unknown model name (with closest-name suggestions), unknown
            override keyword or unknown activation name.
        KerasdlUsageError: an input shape or override value the architecture cannot take.
    """
    if name is None:
        if "name" not in overrides:
            raise TypeError("build_model() missing the model name, e.g. build_model('mlp', ...)")
        name = overrides.pop("name")
    entry = _entry(name)
    valid = entry.info.overrides
    for key in overrides:
        if key not in valid:
            raise UnknownNameError(
                f"{name} option",
                key,
                valid,
                extra="(valid options: " + ", ".join(valid) + ")",
            )
    return entry.fn(_check_input_shape(input_shape), _check_num_classes(num_classes), **overrides)
