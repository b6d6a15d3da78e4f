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

Start-up without Keras: importing :mod:`kerasdl.models` imports no family module (and so
neither Keras nor TensorFlow). Every entry's :class:`ModelInfo` and its parameter counts are
also shipped as data in ``models/_catalog.py``, generated from the real registry by
``python benchmarks/param_counts.py --write``. :func:`list_models`, :func:`model_info`,
:func:`param_counts` and an unknown name's error read that catalogue; :func:`build_model`
imports only the family module it needs. The catalogue records a digest of each family
module's source (and of the sibling modules it imports): a module edited since the catalogue
was generated is imported for real instead, so a stale catalogue is slower, never wrong
(``tests/test_startup.py`` fails until it is regenerated).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import inspect
import os
import re
from typing import Any, Callable, Sequence

from kerasdl.errors import KerasdlUsageError, UnknownNameError

__all__ = [
    "ModelInfo", "register_model", "build_model", "list_models", "model_info", "param_counts",
]

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
        shipped = _shipped().infos.get(name)
        if shipped is not None and f"{__package__}.{_shipped().module_of[name]}" != fn.__module__:
            raise ValueError(f"model {name!r} is already registered (by kerasdl.models."
                             f"{_shipped().module_of[name]})")
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


# --------------------------------------------------------------------------- the shipped catalogue

_CATALOG_MODULE = "_catalog"  # models/_catalog.py, written by benchmarks/param_counts.py --write
_NOT_FAMILIES = ("registry", "activations")  # public modules of the package that register nothing


def family_modules() -> list[str]:
    """The family modules of this package (``resnet``, ``vit``, ...), sorted; none is imported."""
    folder = os.path.dirname(os.path.abspath(__file__))
    names = (f[:-3] for f in os.listdir(folder) if f.endswith(".py"))
    return sorted(n for n in names if not n.startswith("_") and n not in _NOT_FAMILIES)


def source_digests() -> dict[str, str]:
    """Per family module: a digest of its source and of every sibling module it imports.

    ``from .resnet import ...`` in ``wide_resnet.py`` makes resnet.py part of wide_resnet's
    digest (and ``._common`` / ``.activations`` part of nearly every digest), so any edit that
    can change a model's registration or parameter count changes its module's digest. The
    registry itself and the generated catalogue are left out.
    """
    folder = os.path.dirname(os.path.abspath(__file__))
    sources: dict[str, bytes] = {}
    for file in os.listdir(folder):
        if file.endswith(".py") and file[:-3] not in ("registry", _CATALOG_MODULE):
            with open(os.path.join(folder, file), "rb") as f:
                sources[file[:-3]] = f.read()
    relative_import = re.compile(rb"^\s*from \.(\w+) import", re.M)
    imports = {name: set(relative_import.findall(src)) for name, src in sources.items()}
    digests = {}
    for module in family_modules():
        seen, todo = set(), [module]
        while todo:
            current = todo.pop()
            if current in seen or current not in sources:
                continue
            seen.add(current)
            todo.extend(dep.decode() for dep in imports[current])
        digest = hashlib.sha256()
        for name in sorted(seen):
            digest.update(name.encode() + b"\0" + sources[name] + b"\0")
        digests[module] = digest.hexdigest()[:16]
    return digests


@dataclasses.dataclass(frozen=True)
class _Catalog:
    """The usable part of the shipped catalogue: entries of modules unchanged since it was made."""

    infos: dict[str, ModelInfo]
    counts: dict[str, tuple[int, int]]  # name -> (trainable, total)
    module_of: dict[str, str]
    stale: tuple[str, ...]  # family modules edited (or added) since: imported for real


def info_from_record(name: str, record: dict[str, Any]) -> ModelInfo:
    """A :class:`ModelInfo` from one catalogue record (the inverse of :func:`catalog_record`)."""
    fields = {f.name for f in dataclasses.fields(ModelInfo)}
    kwargs = {
        k: (tuple(v) if isinstance(v, (list, tuple)) else v)
        for k, v in record.items()
        if k in fields and k != "name"
    }
    return ModelInfo(name=name, **kwargs)


def catalog_record(info: ModelInfo, module: str, trainable: int, total: int) -> dict[str, Any]:
    """One catalogue record: the :class:`ModelInfo` fields, its module and its parameter counts."""
    fields = [f.name for f in dataclasses.fields(ModelInfo) if f.name != "name"]
    record = {field: getattr(info, field) for field in fields}
    record.update(module=module, trainable_params=int(trainable), total_params=int(total))
    return record


@functools.lru_cache(maxsize=None)
def _shipped() -> _Catalog:
    try:
        shipped = importlib.import_module(f"{__package__}.{_CATALOG_MODULE}")
        shipped_digests, records = dict(shipped.DIGESTS), dict(shipped.MODELS)
    except ImportError:  # no catalogue yet (a new checkout before the first --write)
        shipped_digests, records = {}, {}
    current = source_digests()
    fresh = {m for m, d in current.items() if shipped_digests.get(m) == d}
    infos, counts, module_of = {}, {}, {}
    for name, record in records.items():
        if record["module"] in fresh:
            infos[name] = info_from_record(name, record)
            counts[name] = (int(record["trainable_params"]), int(record["total_params"]))
            module_of[name] = record["module"]
    return _Catalog(infos, counts, module_of, tuple(sorted(set(current) - fresh)))


def stale_modules() -> tuple[str, ...]:
    """Family modules whose catalogue entries are out of date (edited or new since generated)."""
    return _shipped().stale


def import_family(module: str) -> None:
    """Import one family module, which registers its models (needs Keras)."""
    importlib.import_module(f"{__package__}.{module}")


def import_all_families() -> None:
    """Import every family module (needs Keras).

    The registry then holds every model's real entry, and Keras knows kerasdl's custom layers,
    so ``keras.saving.load_model("runs/<run>/model.keras")`` can deserialise any zoo model.
    """
    for module in family_modules():
        import_family(module)


def _import_stale() -> None:
    for module in _shipped().stale:
        import_family(module)


# --------------------------------------------------------------------------- lookups


def list_models() -> list[str]:
    """Every registered model name, sorted (no Keras import while the catalogue is current)."""
    _import_stale()
    return sorted(set(_shipped().infos) | set(_REGISTRY))


def _unknown(name: Any) -> UnknownNameError:
    return UnknownNameError("model", str(name), list_models())


def _entry(name: str) -> _Entry:
    """The registered entry of ``name``, importing its family module on first use."""
    try:
        if name in _REGISTRY:
            return _REGISTRY[name]
    except TypeError:  # an unhashable "name" such as a list
        raise _unknown(name) from None
    module = _shipped().module_of.get(name)
    if module is not None:
        import_family(module)
    else:
        _import_stale()
    if name not in _REGISTRY:
        raise _unknown(name)
    return _REGISTRY[name]


def model_info(name: str) -> ModelInfo:
    """The :class:`ModelInfo` of a registered model; unknown name -> ``UnknownNameError``.

    Reads the shipped catalogue when the model's module is not imported: no Keras import.
    """
    try:
        if name in _REGISTRY:
            return _REGISTRY[name].info
        if name in _shipped().infos:
            return _shipped().infos[name]
    except TypeError:
        raise _unknown(name) from None
    return _entry(name).info


def param_counts(name: str) -> tuple[int, int] | None:
    """``(trainable, total)`` parameters of ``name`` at its default input and class count.

    ``total`` is Keras' ``count_params()`` (it includes BatchNorm moving statistics, as
    keras.applications counts); ``trainable`` is how torchvision and most papers count. Read
    from the shipped catalogue, never built; None for a model it does not cover (registered at
    run time, or its module edited since the catalogue was generated). Unknown name ->
    ``UnknownNameError``.
    """
    model_info(name)  # the one-line error for an unknown name
    return _shipped().counts.get(name)


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
    name: str | None = None,
    /,
    *,
    input_shape: Sequence[int] | None = None,
    num_classes: int | None = None,
    weights: str | None = None,
    **overrides: Any,
):
    """Build the registered model ``name`` as a functional ``keras.Model`` that outputs logits.

    ``name`` is positional-only so that ``name=`` can rename the Keras model:
    ``build_model("mlp", name="my_mlp", ...)``. Called with no positional name,
    ``build_model(name="mlp", ...)`` still means the registry name.

    Args:
        name: a name from :func:`list_models`.
        input_shape: one example's shape, without the batch axis, e.g. ``(28, 28, 1)``;
            default: the model's ``model_info(name).default_input_shape``.
        num_classes: size of the linear output (logits); ``1`` for regression; default: the
            model's ``model_info(name).default_num_classes``.
        **overrides: keyword arguments of the family builder (``model_info(name).overrides``),
            e.g. ``activation="tanh"``, ``include_top=False, pooling="avg"``, ``name="my_net"``.
        weights: None (fresh initialisation) or ``"imagenet"``: keras.applications' ImageNet
            weights, for the models with a keras.applications twin (:mod:`kerasdl.pretrained`;
            read from Keras's cache, downloaded unless ``KERASDL_OFFLINE=1``). With
            ``include_top=False`` the ``_notop`` file; with another class count than 1000 the
            classifier stays freshly initialised.

    Raises:
        UnknownNameError: unknown model name (with closest-name suggestions), unknown
            override keyword or unknown activation name.
        KerasdlUsageError: an input shape or override value the architecture cannot take.
    """
    if name is None:
        if "name" not in overrides:
            raise TypeError("build_model() missing the model name, e.g. build_model('mlp', ...)")
        name = overrides.pop("name")
    info = model_info(name)  # unknown names and options fail here, before Keras is imported
    valid = info.overrides
    for key in overrides:
        if key not in valid:
            raise UnknownNameError(
                f"{name} option",
                key,
                valid,
                extra="(valid options: " + ", ".join(valid) + ")",
            )
    if input_shape is None:
        input_shape = info.default_input_shape
    if num_classes is None:
        num_classes = info.default_num_classes
    input_shape, num_classes = _check_input_shape(input_shape), _check_num_classes(num_classes)
    if weights is None:
        return _entry(name).fn(input_shape, num_classes, **overrides)
    from kerasdl import pretrained  # no Keras import: refusals come before any layer is built

    include_top = overrides.get("include_top", True)
    pretrained.check_pretrained(name, weights, include_top=include_top)
    model = _entry(name).fn(input_shape, num_classes, **overrides)
    pretrained.load_imagenet_weights(model, name, include_top=include_top)
    return model
