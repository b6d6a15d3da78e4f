"""The model registry: named entry points -> functional ``keras.Model`` builders.

Modelled on timm's ``models/_registry.py``: each family module defines ONE generic builder
(``MLP``, ``LeNet``, ...) and registers its variants. An entry point binds the variant's
preset (``resnet50`` -> ``depth=50``) and forwards the user's overrides, which win over the
preset. One entry point by hand::

    @register_model("lenet5", builder=LeNet, family="lenet", task="classification",
                    paper="LeCun et al. 1998", default_input_shape=(28, 28, 1),
                    default_num_classes=10)
    def lenet5(input_shape, num_classes, **overrides):
        return LeNet(input_shape, num_classes, **{"name": "lenet5", **overrides})

or a whole table of presets at once (:func:`register_presets`; each row is the preset's
``ModelInfo`` fields plus ``preset=``, the builder keywords it binds; ``name=`` defaults to
the registry name)::

    register_presets(ResNet, {
        "resnet18": dict(paper=_V1, notes="...", preset=dict(depth=18)),
        "resnet50": dict(paper=_V1, notes="...", preset=dict(depth=50, conv_bias=True)),
    }, family="resnet", task="classification", default_input_shape=(224, 224, 3),
       default_num_classes=1000)

``builder`` tells the registry which keyword overrides are valid (the builder's keyword
parameters), so :func:`build_model` can reject a misspelt one with a one-line error that
names the valid keywords, before any layer is built.

Roles and components. Every entry has a ``role`` (:data:`ROLES`): classifiers and segmenters
(the default, from ``task``) take ``(input_shape, num_classes)``; a *component* -- an encoder,
decoder, generator, critic, ... -- names its own positional arguments in ``required`` and
their defaults in ``defaults`` (every required argument needs one, so ``build_model(name)``
always builds, as the catalogue's parameter counts need)::

    @register_model("dense_encoder", builder=DenseEncoder, family="autoencoder",
                    role="encoder", paper="Kingma & Welling 2014",
                    required=("input_shape", "latent_dim"), defaults={"latent_dim": 16},
                    default_input_shape=(28, 28, 1), companion="dense_decoder")
    def dense_encoder(input_shape, latent_dim, **overrides):
        return DenseEncoder(input_shape, latent_dim, **{"name": "dense_encoder", **overrides})

    build_model("dense_encoder", input_shape=(28, 28, 1), latent_dim=2, gaussian=True)
    build_model("dense_decoder", latent_dim=2, output_shape=(28, 28, 1))

``input_shape`` and ``num_classes`` take their defaults from ``default_input_shape`` /
``default_num_classes``; the other required arguments from ``defaults`` (JSON-safe values:
numbers, strings, booleans, None and tuples of them). ``companion`` names a paired entry (an
encoder's mirrored decoder). :func:`list_models` filters by ``role`` and ``task``.

Start-up without Keras: importing :mod:`kerasdl.models` imports no family module (and so
neither Keras nor TensorFlow). Every entry's :class:`ModelInfo` and its parameter counts are
also shipped as data in ``models/_catalog.py``, generated from the real registry by
``python benchmarks/param_counts.py --write`` (a component is counted at its defaults).
:func:`list_models`, :func:`model_info`, :func:`param_counts` and an unknown name's error read
that catalogue; :func:`build_model` imports only the family module it needs. The catalogue
records a digest of each family module's source (and of the sibling modules it imports): a
module edited since the catalogue was generated is imported for real instead, so a stale
catalogue is slower, never wrong (``tests/test_startup.py`` fails until it is regenerated).
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
    "ROLES", "ModelInfo", "register_model", "register_presets", "build_model", "list_models",
    "model_info", "param_counts",
]

# What an entry is for (ModelInfo.role). A task (kerasdl.tasks) trains the roles it lists.
ROLES = ("classifier", "segmenter", "encoder", "decoder", "generator", "discriminator", "denoiser",
         "critic", "field", "graph", "lm", "sequence")

# The positional arguments of classifiers and segmenters; not "overrides".
_REQUIRED = ("input_shape", "num_classes")


def _json_safe(value: Any, where: str) -> Any:
    """``value`` with lists made tuples (hashable, and as the catalogue writes them back)."""
    if isinstance(value, (list, tuple)):
        return tuple(_json_safe(v, where) for v in value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"{where}: defaults must be JSON-safe (numbers, strings, booleans, None, "
                    f"tuples of them); got {value!r}")


def _to_json(value: Any) -> Any:
    return [_to_json(v) for v in value] if isinstance(value, tuple) else value


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
    # What the entry is for: one of ROLES ("classifier" / "segmenter" for the task-led zoo).
    role: str = "classifier"
    # The entry point's positional arguments, in order.
    required: tuple[str, ...] = _REQUIRED
    # Defaults of the required arguments other than input_shape / num_classes (JSON-safe).
    defaults: dict[str, Any] = dataclasses.field(default_factory=dict, hash=False)
    # A paired entry, e.g. an encoder's mirrored decoder ("" if none).
    companion: str = ""

    @property
    def is_component(self) -> bool:
        """True for an encoder, decoder, ... (not a classifier or segmenter of the zoo)."""
        return self.role not in ("classifier", "segmenter") or self.required != _REQUIRED

    def to_dict(self) -> dict[str, Any]:
        """A JSON- and YAML-safe dict (tuples become lists: ``yaml.safe_dump`` rejects tuples).

        ``role``, ``required``, ``defaults`` and ``companion`` are in it for a component only:
        a classifier's or segmenter's dict is what it was before roles (its role follows from
        ``task``, see :func:`info_from_record`).
        """
        d = dataclasses.asdict(self)
        d["default_input_shape"] = list(self.default_input_shape)
        d["overrides"] = list(self.overrides)
        d["smoke_input_shape"] = list(self.smoke_input_shape)
        if self.is_component:
            d["required"] = list(self.required)
            d["defaults"] = {k: _to_json(v) for k, v in self.defaults.items()}
        else:
            for key in ("role", "required", "defaults", "companion"):
                del d[key]
        return d

    def default_arguments(self) -> dict[str, Any]:
        """Every required argument's default: ``{"input_shape": ..., "latent_dim": 16, ...}``."""
        args = dict(self.defaults)
        if "input_shape" in self.required:
            args["input_shape"] = self.default_input_shape
        if "num_classes" in self.required:
            args["num_classes"] = self.default_num_classes
        return {k: args[k] for k in self.required if k in args}


@dataclasses.dataclass(frozen=True)
class _Entry:
    fn: Callable[..., Any]
    info: ModelInfo


_REGISTRY: dict[str, _Entry] = {}


def _builder_keywords(builder: Callable[..., Any], required: Sequence[str] = _REQUIRED
                      ) -> tuple[str, ...]:
    params = inspect.signature(builder).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        raise TypeError(
            f"builder {builder.__name__} must list its keywords explicitly (no **kwargs)"
        )
    return tuple(
        sorted(
            p.name
            for p in params
            if p.name not in required
            and p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        )
    )


def _make_info(name: str, builder: Callable[..., Any], *, family: str, task: str | None,
               paper: str, default_input_shape: Sequence[int], default_num_classes: int,
               notes: str, smoke_input_shape: Sequence[int] | None, role: str | None,
               required: Sequence[str], defaults: dict[str, Any] | None,
               companion: str) -> ModelInfo:
    if role is None:
        if task is None:
            raise TypeError(f"register_model({name!r}): give task= or role=")
        role = "segmenter" if task == "segmentation" else "classifier"
    if role not in ROLES:
        raise ValueError(f"register_model({name!r}): role {role!r} is not one of {ROLES}")
    task = role if task is None else task
    required = tuple(required)
    defaults = {str(k): _json_safe(v, f"register_model({name!r})")
                for k, v in (defaults or {}).items()}
    extra = set(defaults) - (set(required) - set(_REQUIRED))
    if extra:
        raise ValueError(f"register_model({name!r}): defaults {sorted(extra)} are not required "
                         f"arguments other than input_shape / num_classes (required={required})")
    default_input_shape = tuple(int(d) for d in default_input_shape)
    missing = [r for r in required if r not in defaults
               and not (r == "input_shape" and default_input_shape)
               and not (r == "num_classes" and int(default_num_classes) >= 1)]
    if missing:
        raise ValueError(f"register_model({name!r}): no default for required {missing} "
                         "(defaults=, default_input_shape=, default_num_classes=)")
    return ModelInfo(
        name=name,
        family=family,
        task=task,
        paper=paper,
        default_input_shape=default_input_shape,
        default_num_classes=int(default_num_classes),
        notes=notes,
        smoke_input_shape=tuple(int(d) for d in (smoke_input_shape or default_input_shape)),
        overrides=_builder_keywords(builder, required),
        role=role,
        required=required,
        defaults=defaults,
        companion=companion,
    )


def _add(name: str, fn: Callable[..., Any], info: ModelInfo) -> None:
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is already registered (by {_REGISTRY[name].fn!r})")
    shipped = _shipped().infos.get(name)
    if shipped is not None and f"{__package__}.{_shipped().module_of[name]}" != fn.__module__:
        raise ValueError(f"model {name!r} is already registered (by kerasdl.models."
                         f"{_shipped().module_of[name]})")
    _REGISTRY[name] = _Entry(fn=fn, info=info)


def register_model(
    name: str,
    *,
    builder: Callable[..., Any],
    family: str,
    task: str | None = None,
    paper: str,
    default_input_shape: Sequence[int] = (),
    default_num_classes: int = 0,
    notes: str = "",
    smoke_input_shape: Sequence[int] | None = None,
    role: str | None = None,
    required: Sequence[str] = _REQUIRED,
    defaults: dict[str, Any] | None = None,
    companion: str = "",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator that registers an entry point ``fn(*required, **overrides)``.

    ``builder`` is the family's generic builder the entry point calls; its keyword
    parameters (minus the ``required`` ones) are the valid overrides. ``role`` (one of
    :data:`ROLES`) defaults to ``"segmenter"`` for ``task="segmentation"``, else
    ``"classifier"``; ``task`` defaults to the role. ``required`` names the entry point's
    positional arguments (``("input_shape", "num_classes")`` for classifiers); each needs a
    default: ``default_input_shape``, ``default_num_classes`` or ``defaults[arg]``.
    Registering the same name twice is a programming error (``ValueError``).
    """

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        info = _make_info(
            name, builder, family=family, task=task, paper=paper,
            default_input_shape=default_input_shape, default_num_classes=default_num_classes,
            notes=notes, smoke_input_shape=smoke_input_shape, role=role, required=required,
            defaults=defaults, companion=companion,
        )
        _add(name, fn, info)
        return fn

    return decorator


def register_presets(
    builder: Callable[..., Any], presets: dict[str, dict[str, Any]], **common: Any
) -> dict[str, Callable[..., Any]]:
    """Register one entry point per row of ``presets`` (a table), all calling ``builder``.

    Each row holds :func:`register_model`'s keywords for that entry (``paper``, ``notes``,
    ``family``, ...; ``common`` supplies the shared ones, a row's own win) and ``preset``: the
    builder keywords the entry binds. The entry point calls
    ``builder(*required, **{"name": <registry name>, **preset, **overrides})`` (``name`` only
    if the builder takes one), so user overrides win over the preset. The entry points belong
    to the builder's module (where the catalogue looks for them); the dict of them is returned.
    """
    takes_name = "name" in inspect.signature(builder).parameters
    entries = {}
    for name, row in presets.items():
        row = {**common, **row}
        preset = dict(row.pop("preset", {}))
        if takes_name:
            preset = {"name": name, **preset}

        def entry(*args, _preset=preset, **overrides):
            return builder(*args, **{**_preset, **overrides})

        entry.__name__ = entry.__qualname__ = name
        entry.__module__ = builder.__module__
        entry.__doc__ = f"{name}: {builder.__name__}(..., " + ", ".join(
            f"{k}={v!r}" for k, v in preset.items()) + ")"
        register_model(name, builder=builder, **row)(entry)
        entries[name] = entry
    return entries


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
        if k in fields and k not in ("name", "defaults")
    }
    kwargs["defaults"] = {k: _json_safe(v, name) for k, v in record.get("defaults", {}).items()}
    if "role" not in kwargs:  # a catalogue from before roles
        kwargs["role"] = "segmenter" if kwargs.get("task") == "segmentation" else "classifier"
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


def list_models(role: str | None = None, task: str | None = None) -> list[str]:
    """Registered model names, sorted (no Keras import while the catalogue is current).

    ``role`` (one of :data:`ROLES`) and ``task`` keep only the entries with that
    ``ModelInfo.role`` / ``ModelInfo.task``; an unknown role is a one-line error.
    """
    if role is not None and role not in ROLES:
        raise UnknownNameError("role", str(role), ROLES)
    _import_stale()
    names = sorted(set(_shipped().infos) | set(_REGISTRY))
    if role is None and task is None:
        return names
    return [n for n in names if (role is None or model_info(n).role == role)
            and (task is None or model_info(n).task == task)]


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


def _check_input_shape(input_shape: Any, what: str = "input_shape") -> tuple[int, ...]:
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
            f"{what} must be a non-empty tuple of positive integers, without the batch "
            f"dimension, e.g. (28, 28, 1). Received: {what}={input_shape!r}"
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
    """Build the registered model ``name`` as a functional ``keras.Model``.

    A classifier outputs logits (a segmenter per-pixel logits); a component (an encoder,
    decoder, ...) what its family documents. ``name`` is positional-only so that ``name=`` can
    rename the Keras model: ``build_model("mlp", name="my_mlp", ...)``. Called with no
    positional name, ``build_model(name="mlp", ...)`` still means the registry name.

    Args:
        name: a name from :func:`list_models`.
        input_shape: one example's shape, without the batch axis, e.g. ``(28, 28, 1)``;
            default: the model's ``model_info(name).default_input_shape``.
        num_classes: size of the linear output (logits); ``1`` for regression; default: the
            model's ``model_info(name).default_num_classes``.
        **overrides: a component's other required arguments (``model_info(name).required``,
            e.g. ``latent_dim=2``; default: ``model_info(name).defaults``) and keyword
            arguments of the family builder (``model_info(name).overrides``), e.g.
            ``activation="tanh"``, ``include_top=False, pooling="avg"``, ``name="my_net"``.
        weights: None (fresh initialisation) or ``"imagenet"``: keras.applications' ImageNet
            weights, for the models with a keras.applications twin
            (:mod:`kerasdl.engine.pretrained`; read from Keras's cache, downloaded unless
            ``KERASDL_OFFLINE=1``). With
            ``include_top=False`` the ``_notop`` file; with another class count than 1000 the
            classifier stays freshly initialised.

    Raises:
        UnknownNameError: unknown model name (with closest-name suggestions), unknown
            override keyword (``input_shape`` / ``num_classes`` for a component that takes
            none) or unknown activation name.
        KerasdlUsageError: an input shape or override value the architecture cannot take.
    """
    if name is None:
        if "name" not in overrides:
            raise TypeError("build_model() missing the model name, e.g. build_model('mlp', ...)")
        name = overrides.pop("name")
    info = model_info(name)  # unknown names and options fail here, before Keras is imported
    given = dict(overrides)
    if input_shape is not None:
        given["input_shape"] = input_shape
    if num_classes is not None:
        given["num_classes"] = num_classes
    arguments = info.default_arguments()
    valid = info.overrides
    others = tuple(r for r in info.required if r not in _REQUIRED)  # a component's own
    for key in given:
        if key in info.required:
            arguments[key] = given[key]
        elif key not in valid:
            options = others + valid
            raise UnknownNameError(
                f"{name} option",
                key,
                options,
                extra="(valid options: " + ", ".join(options) + ")",
            )
    overrides = {k: v for k, v in given.items() if k not in info.required}
    for key in arguments:
        if key == "num_classes":
            arguments[key] = _check_num_classes(arguments[key])
        elif key == "input_shape" or key.endswith("_shape"):
            arguments[key] = _check_input_shape(arguments[key], key)
    args = [arguments[r] for r in info.required]
    if weights is None:
        return _entry(name).fn(*args, **overrides)
    from kerasdl.engine import pretrained  # no Keras: refusals come before building

    include_top = overrides.get("include_top", True)
    pretrained.check_pretrained(name, weights, include_top=include_top)
    model = _entry(name).fn(*args, **overrides)
    pretrained.load_imagenet_weights(model, name, include_top=include_top)
    return model
