"""The pinned local feature network behind kerasdl's sample-quality figures (FID, KID, precision/recall).

FID and KID are defined on the activations of a fixed classifier (Heusel et al. 2017 use
Inception-v3's pool3 layer, trained on ImageNet). kerasdl works offline and on small images
(8x8 digits, 28x28 MNIST), so it trains its *own* small CNN classifier on the dataset's own train
split, once, and pins it: the weights are cached on disk and their sha256 goes into every report,
so two figures are comparable exactly when they name the same sha256 (and the same n).

    (H, W, C) images in [0, 1]
    [conv 3x3 -> ReLU -> (max-pool 2x2)] x blocks   block{i}_conv, block{i}_pool  (32, then 64 filters;
                                                    pooling until the map is at most 8 x 8)
    flatten -> dense 128 -> ReLU                     top_flatten, features       (N, 128): the features
    dense K -> logits                                head_logits

Training is seeded: Glorot-uniform kernels with fixed seeds, the examples visited in an order
drawn with NumPy (seed 0) -- independent of any global seed a run has set --, no dropout, Adam
(lr 1e-3, batch 64) for about 300 steps (3 to 30 epochs; mnist5k: 6, digits: 15). The same data
on the same machine and library versions gives the same weights; other CPUs or versions may
differ in the last bits, which the sha256 records. The train split is read with the run's
dataset, image size, class subset and per-class label budget (the budget's choice of examples
always uses seed 0), with the ``scale`` input normalisation (uint8 images divided by their value
range, so ``[0, 1]``), without augmentation or shuffling.

Cache: ``<data dir>/feature_nets/<dataset>-<key>.weights.h5`` plus a ``.json`` sidecar holding
the file's sha256; ``key`` hashes :data:`FEATURE_NET_VERSION` and the training constants, the
dataset's name, source and input shape, the image size, class subset and label budget, and the
sha256 of the training arrays themselves (so a changed .npz / folder under the same name gets a
new net). Files are written atomically (temporary file + ``os.replace``) under a file lock. The
weights file is a flat HDF5 file of float32 arrays ``<layer name>:<index>`` written without
timestamps (the same weights give the same bytes, hence the same sha256; no optimizer state).
Cached files are untrusted: only these arrays are read, each checked for name, shape and
finiteness, into a freshly built architecture -- never a ``.keras`` archive, a SavedModel or a
pickle -- and a file whose sha256 differs from its sidecar, or that fails those checks, is
**retrained and rewritten** (with a warning), never used. The test accuracy is measured afresh
on every load, not read from the cache.

Datasets the CNN does not fit:

* vectors (tabular sets, 2-D point clouds): an ``identity`` net -- features are the vectors as
  given, flattened; ``sha256`` None; :meth:`FeatureNet.predict` returns None;
* images without class labels (regression or segmentation targets): a ``pixels`` net -- features
  are the flattened [0, 1] pixels (no classifier to train); ``sha256`` None; no labels.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import warnings
from typing import Any

import numpy as np

from kerasdl.errors import KerasdlUsageError

__all__ = ["FEATURE_NET_VERSION", "FeatureNet", "feature_net", "build_feature_cnn"]

# Bump when the architecture, the training recipe or the data reading changes: old caches are ignored.
FEATURE_NET_VERSION = 1
FEATURE_UNITS = 128
BATCH_SIZE = 64
TARGET_STEPS = 300  # epochs = ceil(TARGET_STEPS / steps per epoch), clipped to [MIN_EPOCHS, MAX_EPOCHS]
MIN_EPOCHS, MAX_EPOCHS = 3, 30
LEARNING_RATE = 1e-3
SEED = 0
PREDICT_BATCH = 256
WEIGHTS_FORMAT = "kerasdl-feature-net"


class FeatureNet:
    """A feature extractor for the quality figures; see the module docstring.

    ``name`` is ``"cnn"`` (the trained classifier), ``"identity"`` (vectors) or ``"pixels"``
    (unlabelled images). ``sha256`` is the cached weights file's hash (None without weights),
    ``test_accuracy`` the classifier's accuracy on the test split (None without one).
    """

    def __init__(self, name: str, input_shape: tuple, *, model=None, sha256: str | None = None,
                 test_accuracy: float | None = None, num_classes: int | None = None,
                 train_examples: int | None = None, path: str | None = None, from_cache: bool = False):
        self.name, self.input_shape = name, tuple(int(s) for s in input_shape)
        self.model, self.sha256, self.test_accuracy = model, sha256, test_accuracy
        self.num_classes, self.train_examples, self.path = num_classes, train_examples, path
        self.from_cache = from_cache  # True when the weights came from the cache (no training this time)
        self._features_model = None
        if model is not None:
            import keras

            self._features_model = keras.Model(model.input, model.get_layer("features").output,
                                               name="feature_extractor")
            self.feature_dim = int(model.get_layer("features").units)
        else:
            self.feature_dim = int(np.prod(self.input_shape))

    def _inputs(self, x) -> np.ndarray:
        x = np.asarray(x)
        if x.dtype == np.uint8 and len(self.input_shape) == 3:
            raise KerasdlUsageError("the feature net takes images scaled to [0, 1] (float); received uint8 pixels")
        shape = self.input_shape
        if len(shape) == 3 and shape[-1] == 1 and x.ndim == 3 and tuple(x.shape[1:]) == shape[:2]:
            x = x[..., None]  # (N, H, W) grayscale
        if tuple(x.shape[1:]) != shape:
            raise KerasdlUsageError(f"the feature net takes inputs of shape (N, {', '.join(map(str, shape))}). "
                                    f"Received: {tuple(x.shape)}")
        return x.astype(np.float32 if self.model is not None else np.float64)

    def features(self, x01) -> np.ndarray:
        """``(N, feature_dim)`` float64 features of ``x01`` (images in [0, 1], or vectors)."""
        x = self._inputs(x01)
        if self._features_model is None:
            return x.reshape(len(x), -1).astype(np.float64)
        if len(x) == 0:
            return np.zeros((0, self.feature_dim))
        return _batched(self._features_model, x).astype(np.float64)

    def predict(self, x01) -> np.ndarray | None:
        """The classifier's labels ``(N,)`` int64 of ``x01``; None for the identity / pixels nets."""
        if self.model is None:
            return None
        x = self._inputs(x01)
        if len(x) == 0:
            return np.zeros((0,), dtype=np.int64)
        return _batched(self.model, x).argmax(axis=-1).astype(np.int64)

    def describe(self) -> dict[str, Any]:
        """JSON-safe provenance for a report: name, sha256, feature_dim, test_accuracy,
        train_examples, path."""
        return {"name": self.name, "sha256": self.sha256, "feature_dim": self.feature_dim,
                "test_accuracy": None if self.test_accuracy is None else float(self.test_accuracy),
                "train_examples": self.train_examples, "path": self.path}

    def __repr__(self) -> str:
        return f"FeatureNet({self.name!r}, feature_dim={self.feature_dim}, sha256={self.sha256!r})"


def _batched(model, x: np.ndarray) -> np.ndarray:
    """``model(x)`` in inference mode, batch by batch (direct calls: no per-model predict function
    to trace, so calling several nets does not make TensorFlow retrace)."""
    import keras

    parts = [keras.ops.convert_to_numpy(model(x[i:i + PREDICT_BATCH], training=False))
             for i in range(0, len(x), PREDICT_BATCH)]
    return np.concatenate(parts)


# --------------------------------------------------------------------------- architecture


def build_feature_cnn(input_shape: tuple, num_classes: int, *, seed: int = SEED):
    """The feature CNN (see the module docstring) with seeded Glorot-uniform kernels."""
    import keras

    h, w, _ = (int(s) for s in input_shape)
    init = lambda i: keras.initializers.GlorotUniform(seed=seed + i)  # noqa: E731
    inputs = keras.Input(shape=tuple(input_shape), name="image")
    x, size, block = inputs, min(h, w), 0
    while block < 2 or size > 8:
        block += 1
        filters = 32 if block == 1 else 64
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", kernel_initializer=init(block),
                                name=f"block{block}_conv")(x)
        if size >= 2 and (block > 1 or size >= 16):
            x = keras.layers.MaxPooling2D(2, name=f"block{block}_pool")(x)
            size //= 2
    x = keras.layers.Flatten(name="top_flatten")(x)
    x = keras.layers.Dense(FEATURE_UNITS, activation="relu", kernel_initializer=init(100), name="features")(x)
    outputs = keras.layers.Dense(int(num_classes), kernel_initializer=init(101), name="head_logits")(x)
    return keras.Model(inputs, outputs, name="kerasdl_feature_net")


def _epochs(n_train: int) -> int:
    steps = max(1, math.ceil(n_train / BATCH_SIZE))
    return int(min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(TARGET_STEPS / steps))))


def _train(x: np.ndarray, y: np.ndarray, num_classes: int):
    """Adam on the train split, visited in an order drawn with NumPy (seed 0) for all epochs up front,
    so neither the global Keras / TensorFlow seeds (a run may have set its own) nor tf.data's
    shuffle decide it; one ``fit`` call over the concatenated epochs."""
    import keras
    import tensorflow as tf

    model = build_feature_cnn(x.shape[1:], num_classes)
    model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), steps_per_execution=16)
    rng = np.random.default_rng(SEED)
    order = np.concatenate([rng.permutation(len(x)) for _ in range(_epochs(len(x)))])
    x_all, y_all = tf.constant(x), tf.constant(y)
    ds = (tf.data.Dataset.from_tensor_slices(order).batch(BATCH_SIZE)
          .map(lambda i: (tf.gather(x_all, i), tf.gather(y_all, i))).prefetch(tf.data.AUTOTUNE))
    options = tf.data.Options()
    options.deterministic = True
    model.fit(ds.with_options(options), epochs=1, verbose=0, shuffle=False)
    return model


def _weighted_layers(model) -> list:
    return [layer for layer in model.layers if layer.weights]


# --------------------------------------------------------------------------- data and cache


def _arrays(ds) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for x, y in ds.as_numpy_iterator():
        xs.append(x)
        ys.append(y)
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys).astype(np.int64)


def _load_data(config):
    from kerasdl.data import load_splits

    plain = config.replace(augment="none", batch_size=128, input_norm="scale", seed=SEED, pretrained=None,
                           init_from=None, freeze="none", unfreeze_last=0)
    datasets, info = load_splits(plain, ("train", "test"), shuffle_train=False)
    return _arrays(datasets["train"]), _arrays(datasets["test"]), info


def _sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _cache_key(config, info, x: np.ndarray, y: np.ndarray) -> str:
    data = hashlib.sha256()
    data.update(np.ascontiguousarray(x).tobytes())
    data.update(np.ascontiguousarray(y).tobytes())
    recipe = [FEATURE_UNITS, BATCH_SIZE, TARGET_STEPS, MIN_EPOCHS, MAX_EPOCHS, LEARNING_RATE, SEED]
    meta = {"version": FEATURE_NET_VERSION, "recipe": recipe, "dataset": info.name, "source": info.source,
            "input_shape": [int(s) for s in x.shape[1:]], "num_classes": int(info.num_classes),
            "image_size": list(config.image_size) if config.image_size else None,
            "classes": [str(c) for c in config.classes] if config.classes is not None else None,
            "train_per_class": config.train_per_class, "subset_seed": SEED, "input_norm": "scale",
            "train_examples": int(len(x)), "train_sha256": data.hexdigest()}
    return hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:16]


def _slug(name: str) -> str:
    base = os.path.basename(os.path.normpath(name)) or "dataset"
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", base).strip("._") or "dataset"


def _read_weights(path: str, model) -> None:
    """Set ``model``'s weights from the HDF5 file at ``path``: exactly the datasets ``<layer>:<i>``
    the architecture has, each of its shape and a float dtype (anything else raises ValueError).
    Only arrays are read: no code, no pickle, no Keras archive."""
    import h5py

    with h5py.File(path, "r") as h:
        if h.attrs.get("format") != WEIGHTS_FORMAT or int(h.attrs.get("version", -1)) != FEATURE_NET_VERSION:
            raise ValueError("not a kerasdl feature-net weights file of this version")
        expected = {f"{layer.name}:{i}": v for layer in _weighted_layers(model) for i, v in enumerate(layer.weights)}
        if set(h.keys()) != set(expected):
            raise ValueError(f"datasets {sorted(h.keys())} != {sorted(expected)}")
        for key, variable in expected.items():
            data = h[key]
            if not isinstance(data, h5py.Dataset) or tuple(data.shape) != tuple(variable.shape) \
                    or data.dtype.kind != "f":
                raise ValueError(f"{key}: expected float {tuple(variable.shape)}")
            values = np.asarray(data[()], dtype=np.float32)
            if not np.all(np.isfinite(values)):
                raise ValueError(f"{key} holds NaN or infinite values")
            variable.assign(values)


def _write_weights(path: str, model) -> None:
    """The weights as flat HDF5 datasets ``<layer>:<i>`` without timestamps, so the same weights
    always give the same bytes (and the same sha256). The optimizer state is not kept."""
    import h5py
    import keras

    with h5py.File(path, "w") as h:
        h.attrs["format"] = WEIGHTS_FORMAT
        h.attrs["version"] = FEATURE_NET_VERSION
        for layer in _weighted_layers(model):
            for i, variable in enumerate(layer.weights):
                h.create_dataset(f"{layer.name}:{i}", data=np.asarray(keras.ops.convert_to_numpy(variable),
                                                                     dtype=np.float32), track_times=False)


def _load_cached(path: str, sidecar: str, input_shape, num_classes: int):
    """``(model, sha256)`` from a cached weights file, ``(None, None)`` without one, or
    ``(None, reason)`` when the cached file is not trusted."""
    if not os.path.exists(path):
        return None, None
    try:
        with open(sidecar, encoding="utf-8") as f:
            expected = json.load(f)["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        return None, f"no valid sidecar {os.path.basename(sidecar)} ({type(e).__name__})"
    actual = _sha256_file(path)
    if actual != expected:
        return None, f"its sha256 {actual[:12]}... differs from the recorded {str(expected)[:12]}..."
    model = build_feature_cnn(input_shape, num_classes)
    try:
        _read_weights(path, model)
    except Exception as e:  # noqa: BLE001 - any failure to read the file means: do not use it
        return None, f"cannot load it ({type(e).__name__}: {(str(e).splitlines() or [''])[0][:160]})"
    return model, actual


def _save(model, path: str, sidecar: str, meta: dict) -> str:
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    stem = os.path.basename(path)[: -len(".weights.h5")]
    tmp = os.path.join(directory, f".{stem}.tmp-{os.getpid()}.weights.h5")
    _write_weights(tmp, model)
    sha = _sha256_file(tmp)
    tmp_json = f"{sidecar}.tmp-{os.getpid()}"
    with open(tmp_json, "w", encoding="utf-8") as f:
        json.dump({**meta, "sha256": sha}, f, indent=2, sort_keys=True)
    os.replace(tmp, path)  # weights first: a crash in between leaves a mismatch, which means retrain
    os.replace(tmp_json, sidecar)
    return sha


def feature_net(config, info) -> FeatureNet:
    """The pinned feature network for a run's dataset (``config``: a :class:`kerasdl.config.RunConfig`,
    ``info``: the run's :class:`kerasdl.data.DatasetInfo`): trained once on its train split and
    cached, or the identity / pixels extractor where no classifier applies (module docstring)."""
    from kerasdl.data import default_data_dir
    from kerasdl.data.loading import _file_lock

    shape = tuple(int(s) for s in info.input_shape)
    if not info.is_image:
        return FeatureNet("identity", shape)
    if info.task != "classification":
        return FeatureNet("pixels", shape)
    (x_train, y_train), (x_test, y_test), data_info = _load_data(config)
    num_classes = int(data_info.num_classes)
    key = _cache_key(config, data_info, x_train, y_train)
    data_dir = os.path.abspath(os.path.expanduser(config.data_dir)) if config.data_dir else default_data_dir()
    directory = os.path.join(data_dir, "feature_nets")
    path = os.path.join(directory, f"{_slug(data_info.name)}-{key}.weights.h5")
    sidecar = path[: -len(".weights.h5")] + ".json"
    os.makedirs(directory, exist_ok=True)
    with _file_lock(os.path.join(directory, f".{os.path.basename(path)}.lock")):
        model, found = _load_cached(path, sidecar, x_train.shape[1:], num_classes)
        from_cache = model is not None
        if from_cache:
            sha = found
        else:
            if found is not None:  # a reason: the cached file is bad
                warnings.warn(f"feature net cache {path} is not trusted: {found}; retraining it", stacklevel=2)
            model = _train(x_train, y_train, num_classes)
            meta = {"version": FEATURE_NET_VERSION, "dataset": data_info.name, "key": key,
                    "train_examples": int(len(x_train)), "epochs": _epochs(len(x_train))}
            sha = _save(model, path, sidecar, meta)
    net = FeatureNet("cnn", x_train.shape[1:], model=model, sha256=sha, num_classes=num_classes,
                     train_examples=int(len(x_train)), path=path, from_cache=from_cache)
    net.test_accuracy = float(np.mean(net.predict(x_test) == y_test)) if len(y_test) else None
    return net
