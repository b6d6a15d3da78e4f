"""ImageNet weights for the zoo: keras.applications' weight files loaded into kerasdl's builders.

Every kerasdl model that shares a name with a keras.applications model (its *twin*, the table
:data:`IMAGENET_TWINS`) computes the same function given the same weights, layer for layer and in
the same order (``tests/test_zoo_applications.py`` checks each pair by transplanting a randomly
initialised keras.applications model and comparing logits). So keras.applications' ImageNet
weight files load into ours by position: the i-th weighted layer of the file goes into the i-th
weighted layer of our model, and every array's shape must agree (a mismatch is an error naming
the layer, never a silent partial load).

Files: the ones ``keras.applications.X(weights="imagenet")`` uses, read from Keras's cache
``$KERAS_HOME/models/<file>`` (``~/.keras/models/<file>`` when ``KERAS_HOME`` is unset) and
downloaded into it (with Keras's md5 check) only when downloads are allowed: the same policy as
the datasets (``download=None`` means allowed unless ``KERASDL_OFFLINE=1``; ``--download`` /
``--no-download`` decide explicitly). ``include_top=True`` reads the full file (its 1000-class
classifier is copied when ``num_classes == 1000`` and otherwise left freshly initialised: a new
head); ``include_top=False`` reads the smaller ``_notop`` file.

Preprocessing: the weights expect keras.applications' input scaling for that family (e.g.
``keras.applications.resnet50.preprocess_input``: BGR, ImageNet means subtracted); kerasdl's data
pipeline standardises the inputs instead, which fine-tuning absorbs. EfficientNet's in-model
``Normalization`` layer is never copied from the file (the file stores standard deviations where
Keras reads variances, which keras.applications corrects with an extra layer); with
``include_preprocessing=True`` our model holds the correct ImageNet statistics itself.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Sequence

from kerasdl.data.info import download_allowed
from kerasdl.errors import KerasdlUsageError

__all__ = [
    "IMAGENET_TWINS",
    "WEIGHTS",
    "check_pretrained",
    "WeightsFile",
    "imagenet_weights_file",
    "keras_cache_dir",
    "load_imagenet_weights",
    "read_h5_weights",
    "transplant",
    "weights_from_model",
]

_KA = "https://storage.googleapis.com/tensorflow/keras-applications/"
_EFF = "https://storage.googleapis.com/keras-applications/"
_SUFFIX = "_weights_tf_dim_ordering_tf_kernels"

# kerasdl name -> (keras.applications class, folder of its files, md5 of the full file, md5 of
# the _notop file): the files, URLs and sums keras.applications (Keras 3) downloads.
_KA_FILES = {
    "resnet50": ("ResNet50", "resnet", "2cb95161c43110f7111970584f804107",
                 "4d473c1dd8becc155b73f8504c6f6626"),
    "resnet101": ("ResNet101", "resnet", "f1aeb4b969a6efcfb50fad2f0c20cfc5",
                  "88cf7a10940856eca736dc7b7e228a21"),
    "resnet152": ("ResNet152", "resnet", "100835be76be38e30d865e96f2aaae62",
                  "ee4c566cf9a93f14d82f913c2dc6dd0c"),
    "resnet50v2": ("ResNet50V2", "resnet", "3ef43a0b657b3be2300d5770ece849e0",
                   "fac2f116257151a9d068a22e544a4917"),
    "resnet101v2": ("ResNet101V2", "resnet", "6343647c601c52e1368623803854d971",
                    "c0ed64b8031c3730f411d2eb4eea35b5"),
    "resnet152v2": ("ResNet152V2", "resnet", "a49b44d1979771252814e80f8ec446f9",
                    "ed17cf2e0169df9d443503ef94b23b33"),
    "vgg16": ("VGG16", "vgg16", "64373286793e3c8b2b4e3219cbf3544b",
              "6d6bbae143d832006294945121d1f1fc"),
    "vgg19": ("VGG19", "vgg19", "cbe5617147190e668d6c5d5026f83318",
              "253f8cb515780f3b799900260a226db6"),
    "densenet121": ("DenseNet121", "densenet", "9d60b8095a5708f2dcce2bca79d332c7",
                    "30ee3e1110167f948a6b9946edeeb738"),
    "densenet169": ("DenseNet169", "densenet", "d699b8f76981ab1b30698df4c175e90b",
                    "b8c4d4c20dd625c148057b9ff1c1176b"),
    "densenet201": ("DenseNet201", "densenet", "1ceb130c1ea1b78c3bf6114dbdfd8807",
                    "c13680b51ded0fb44dff2d8f86ac8bb1"),
    "xception": ("Xception", "xception", "0a58e3b7378bc2990ea3b43d5981f1f6",
                 "b0042744bf5b25fce3cb969f33bebb97"),
}
_EFFICIENTNET_MD5 = {
    "b0": ("902e53a9f72be733fc0bcb005b3ebbac", "50bc09e76180e00e4465e1a485ddc09d"),
    "b1": ("1d254153d4ab51201f1646940f018540", "74c4e6b3e1f6a1eea24c589628592432"),
    "b2": ("b15cce36ff4dcbd00b6dd88e7857a6ad", "111f8e2ac8aa800a7a99e3239f7bfb39"),
    "b3": ("ffd1fdc53d0ce67064dc6a9c7960ede0", "af6d107764bb5b1abb91932881670226"),
    "b4": ("18c95ad55216b8f92d7e70b3a046e2fc", "ebc24e6d6c33eaebbd558eafbeedf1ba"),
    "b5": ("ace28f2a6363774853a83a0b21b9421a", "38879255a25d3c92d5e44e04ae6cec6f"),
    "b6": ("165f6e37dce68623721b423839de8be5", "9ecce42647a20130c1f39a5d4cb75743"),
    "b7": ("8c03f828fec3ef71311cd463b6759d99", "cbcfe4450ddf6f3ad90b1b398090fe4a"),
}
# kerasdl name -> (keras.applications class, full file URL, its md5, _notop URL, its md5).
_FILES: dict[str, tuple[str, str, str, str, str]] = {
    name: (cls, f"{_KA}{folder}/{name}{_SUFFIX}.h5", top, f"{_KA}{folder}/{name}{_SUFFIX}_notop.h5",
           notop)
    for name, (cls, folder, top, notop) in _KA_FILES.items()
}
_FILES.update({
    f"efficientnet_{v}": (f"EfficientNet{v.upper()}", f"{_EFF}efficientnet{v}.h5", top,
                          f"{_EFF}efficientnet{v}_notop.h5", notop)
    for v, (top, notop) in _EFFICIENTNET_MD5.items()
})

#: The values ``build_model(weights=...)`` and ``--pretrained`` take.
WEIGHTS = ("imagenet",)

#: kerasdl model name -> the keras.applications model it computes the same function as.
IMAGENET_TWINS: dict[str, str] = {name: row[0] for name, row in _FILES.items()}

# The classifier keras.applications' full files carry (1000 ImageNet classes).
IMAGENET_CLASSES = 1000
# Layers never copied from a file: EfficientNet's input normalisation (see the module docstring).
_NORMALIZATION_PREFIX = "normalization"
_OUR_NORMALIZATION = "preprocess_normalize"
_HEAD = "head_logits"


@dataclasses.dataclass(frozen=True)
class WeightsFile:
    """One keras.applications weight file: its name in Keras's cache, URL and md5 sum."""

    file_name: str
    url: str
    md5: str


def imagenet_weights_file(name: str, include_top: bool = True) -> WeightsFile:
    """The keras.applications weight file for the kerasdl model ``name`` (full or ``_notop``).

    Raises a one-line :class:`KerasdlUsageError` listing the names that have ImageNet weights
    when ``name`` has no keras.applications twin.
    """
    if name not in _FILES:
        raise KerasdlUsageError(
            f"no ImageNet weights for model {name!r}; models with ImageNet weights "
            f"(keras.applications twins): {', '.join(sorted(_FILES))}"
        )
    _, top_url, top_md5, notop_url, notop_md5 = _FILES[name]
    url, md5 = (top_url, top_md5) if include_top else (notop_url, notop_md5)
    return WeightsFile(url.rsplit("/", 1)[1], url, md5)


def keras_cache_dir() -> str:
    """Keras's cache folder for application weights: ``$KERAS_HOME/models`` or
    ``~/.keras/models`` (read at call time, so a changed ``KERAS_HOME`` takes effect)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "models")


_download_allowed = download_allowed  # the datasets' policy (kerasdl.data.info)


def _fetch(weights: WeightsFile, download: bool | None) -> str:
    """The cached file's path; download it into Keras's cache first when allowed."""
    cache = keras_cache_dir()
    path = os.path.join(cache, weights.file_name)
    if os.path.isfile(path):
        return path
    if not _download_allowed(download):
        raise KerasdlUsageError(_offline_message(weights))
    import keras

    try:
        return keras.utils.get_file(weights.file_name, weights.url, file_hash=weights.md5,
                                    cache_dir=os.path.dirname(cache), cache_subdir="models")
    except Exception as exc:  # network errors come in many types; name the file and the fix
        raise KerasdlUsageError(
            f"could not download ImageNet weights {weights.url} ({type(exc).__name__}: {exc}); "
            f"download it by hand and put it at {path}"
        ) from exc


def read_h5_weights(path: str) -> list[tuple[str, list[Any]]]:
    """``[(layer_name, [arrays in the layer's weight order]), ...]`` of a Keras HDF5 weights
    file, weighted layers only, in the file's order (the legacy ``save_weights`` layout, also
    inside a full-model file's ``model_weights`` group)."""
    import h5py
    import numpy as np

    def text(value):
        return value.decode("utf8") if isinstance(value, bytes) else str(value)

    layers = []
    with h5py.File(path, "r") as f:
        group = f["model_weights"] if "model_weights" in f and "layer_names" not in f.attrs else f
        for layer_name in (text(n) for n in group.attrs["layer_names"]):
            g = group[layer_name]
            arrays = [np.asarray(g[text(w)]) for w in g.attrs.get("weight_names", [])]
            if arrays:
                layers.append((layer_name, arrays))
    return layers


def weights_from_model(model) -> list[tuple[str, list[Any]]]:
    """``[(layer_name, arrays), ...]`` of a Keras model's weighted layers, in order (the same
    layout as :func:`read_h5_weights`, e.g. to transplant a keras.applications model)."""
    return [(layer.name, layer.get_weights()) for layer in model.layers if layer.weights]


def transplant(
    source: Sequence[tuple[str, Sequence[Any]]],
    model,
    *,
    new_head: bool = False,
    copy_normalization: bool = False,
) -> dict:
    """Copy ``source``'s weights into ``model`` by position: the i-th weighted layer of each.

    Every array's shape must agree; the first mismatch (or a different number of weighted layers)
    raises ``ValueError`` naming both layers and their shapes, before any weight is set.
    ``new_head=True`` leaves ``head_logits`` (the last layer, a different class count) as
    initialised. Input normalisation layers (EfficientNet's) are skipped on both sides unless
    ``copy_normalization=True``.
    """
    src = list(source)
    dst = [layer for layer in model.layers if layer.weights]
    if not copy_normalization:
        src = [(n, a) for n, a in src if not n.startswith(_NORMALIZATION_PREFIX)]
        dst = [layer for layer in dst if layer.name != _OUR_NORMALIZATION]
    if len(src) != len(dst):
        raise ValueError(
            f"{model.name}: the source has {len(src)} weighted layers, the model {len(dst)}; "
            "the architectures differ"
        )
    pairs = []
    for (src_name, arrays), layer in zip(src, dst):
        if new_head and layer.name == _HEAD:
            continue
        have = [tuple(w.shape) for w in layer.weights]
        got = [tuple(getattr(a, "shape", ())) for a in arrays]
        if have != got:
            raise ValueError(
                f"{model.name}: layer {layer.name} has weight shapes {have} but the source layer "
                f"{src_name} at the same position has {got}"
            )
        pairs.append((layer, arrays))
    for layer, arrays in pairs:
        layer.set_weights(list(arrays))
        if layer.__class__.__name__ == "Normalization":
            layer.finalize_state()  # it computes with the mean / variance it derives from them here
    return {"copied_layers": len(pairs), "new_head": new_head}


def _check_weights_value(weights: Any) -> None:
    if weights not in WEIGHTS:
        raise KerasdlUsageError(
            f"weights must be None or 'imagenet' (keras.applications' ImageNet weights). "
            f"Received: weights={weights!r}"
        )


def check_pretrained(name: str, weights: Any, *, include_top: bool = True,
                     download: bool | None = None) -> WeightsFile:
    """Refuse, with one line and before anything is built, what :func:`load_imagenet_weights`
    would refuse: another ``weights`` value, a model without a twin, a weight file that is not
    cached while downloads are off. Returns the file (cheap: no Keras import)."""
    _check_weights_value(weights)
    file = imagenet_weights_file(name, include_top)
    path = os.path.join(keras_cache_dir(), file.file_name)
    if not os.path.isfile(path) and not _download_allowed(download):
        raise KerasdlUsageError(_offline_message(file))
    return file


def _offline_message(weights: WeightsFile) -> str:
    path = os.path.join(keras_cache_dir(), weights.file_name)
    return (f"ImageNet weights file {weights.file_name} is not cached and downloads are off "
            f"(KERASDL_OFFLINE=1 or --no-download): download {weights.url} and put it at {path}")


def load_imagenet_weights(model, name: str, *, include_top: bool = True,
                          download: bool | None = None) -> dict:
    """Load keras.applications' ImageNet weights for ``name`` into ``model`` (built by
    ``build_model(name, ...)`` with the same ``include_top``); returns what was loaded.

    With ``include_top`` and a class count other than 1000, the classifier ``head_logits``
    stays freshly initialised (listed under ``"reinitialised"``, as
    :func:`kerasdl.engine.transfer.transfer_weights` reports a new head). Raises
    :class:`KerasdlUsageError` when ``name`` has no twin, the file is not cached and may not be
    downloaded (the message names the file, its URL and where to put it), or the model's shapes
    cannot take the weights (another channel count; VGG's dense layers at another input size).
    """
    weights = imagenet_weights_file(name, include_top)
    path = _fetch(weights, download)
    new_head = include_top and model.get_layer(_HEAD).units != IMAGENET_CLASSES
    try:
        source = read_h5_weights(path)
    except (OSError, KeyError) as exc:  # a truncated download, or not a Keras weights file
        raise KerasdlUsageError(
            f"cannot read ImageNet weights file {path} ({exc}); delete it and download "
            f"{weights.url} again"
        ) from None
    try:
        report = transplant(source, model, new_head=new_head)
    except ValueError as exc:
        vgg = "; with include_top=True, VGG's dense layers need 224x224" if "vgg" in name else ""
        raise KerasdlUsageError(
            f"ImageNet weights do not fit this {name}: {exc} (they need 3-channel RGB inputs{vgg})"
        ) from None
    return {"weights": "imagenet", "file": path, **report,
            "reinitialised": [_HEAD] if new_head else []}
