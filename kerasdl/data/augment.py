"""Data augmentation applied in the tf.data pipeline, on the training split only.

``--augment`` takes ``auto``, ``none``, a named policy, or a comma list of transforms and
policies (``--augment standard,cutout``). Every transform works on a whole batch of normalised
images ``x = (raw - mean) / std`` of shape ``(B, H, W, C)`` with vectorised, *stateless* random
ops, all in **one** ``map`` stage: the random seeds come from a seeded ``tf.data.Dataset.random``
stream zipped with the batches (re-randomised each epoch, reproducibly), so the same seed gives
the same batches, epoch after epoch, on every run.

Transforms, applied in this fixed order whatever order they are named in (geometry first, then
colour, then noise, then erasing, then the batch-level label mixers; the torchvision order):

==========  =====================================================================================
crop        random resized crop ("crop and scale", Szegedy et al. 2015): a box of 50-100% of the
            image area with aspect ratio 3/4-4/3 (a side that would leave the image is clipped),
            resized back to ``H x W`` bilinearly. Not pad-and-crop: that is ``translate``.
flip        horizontal mirror with probability 1/2 (not for digits: a mirrored 3 is no digit)
vflip       vertical mirror (rows reversed) with probability 1/2
rotate      rotation about the image centre by an angle uniform in +-15 degrees (positive is
            counter-clockwise on screen), bilinear, zero fill
translate   integer shift by up to 8% of each side (2 pixels on 28x28 MNIST), zero fill; the
            default (LeCun et al. 1998, Simard et al. 2003: small shifts are the cheapest way to
            multiply a small digit set)
jitter      colour jitter in raw pixel units (torchvision's ColorJitter definitions, fixed order):
            brightness ``b x``, contrast ``c x + (1 - c) mean(luma)``, saturation
            ``s x + (1 - s) luma``, with b, c, s uniform in [0.8, 1.2], and a hue rotation by up to
            +-0.05 of a turn (+-18 degrees) about the grey axis in YIQ space. **Rule:** saturation
            and hue need colour, so they run on 3-channel (RGB) images only; grayscale and other
            channel counts get brightness and contrast (the mean taken over all channels). No
            clipping to the stored range (the network sees normalised floats either way).
noise       additive Gaussian noise of std 0.1 in normalised units, i.e. a tenth of the
            per-channel pixel standard deviation (the pipeline standardises every channel)
cutout      random erasing of one square of side ``round(0.4 * min(H, W))`` per image (11 px on
            28, 13 px on 32; DeVries & Taylor 2017 used 0.5 of the side on CIFAR-10 and 0.25 on
            CIFAR-100), set to 0 = the channel mean, kept inside the image so every example loses
            the same area: "information loss" the network must learn to tolerate
mixup       batch-level: ``x = lam x_i + (1 - lam) x_j`` and the same mix of the one-hot labels,
            one ``lam ~ Beta(0.2, 0.2)`` per batch and ``j`` a random permutation of the batch
            (Zhang et al. 2018, "mixup: Beyond Empirical Risk Minimization")
cutmix      batch-level: a box of area ``1 - lam`` (``lam ~ Beta(1, 1)``, centre uniform, clipped
            to the image) is pasted from ``x_j``; the labels mix by the kept-area fraction
            (Yun et al. 2019, "CutMix"). With both mixup and cutmix each batch uses one of them,
            chosen by a fair coin (timm's switch).
==========  =====================================================================================

Zero fill (translate, rotate) and erasing (cutout) write 0 in normalised units, the channel mean.

Policies: ``auto`` = ``translate`` for classification images of at least 16x16 pixels, nothing
otherwise (tabular data, tiny images, segmentation); ``none``; ``light`` = translate, rotate
(digits and other sets where mirroring changes the class); ``standard`` = translate, flip (natural
images such as CIFAR: He et al. 2016's pad-4-and-crop is a translation with zero fill, plus a
horizontal flip).

What fits which data: geometric transforms and cutout move or erase pixels but not a segmentation
mask, so segmentation takes only ``jitter`` and ``noise``; transforms that need ``(H, W, C)``
images are refused for tabular inputs, where ``noise`` and ``mixup`` still apply (Zhang et al. also
mixed UCI tables); the label mixers need class labels.

**Soft targets.** mixup and cutmix turn the class ids of the training batches into probability
rows ``(B, num_classes)``; validation and test batches keep their class ids. Training then uses a
loss that takes both forms: the default sparse cross-entropy becomes ``categorical_crossentropy``
(:func:`soft_target_loss`; the same value on class ids, so validation loss means what it did), and
the accuracy metric becomes :func:`accuracy_metric`, which compares ``argmax`` of soft targets (the
dominant class of a mix) and class ids alike. ``binary_crossentropy`` (one logit) is refused.

:func:`preview` (``kerasdl augment-preview``) writes a PNG grid of training examples before and
after the transforms.

Importing this module does not import TensorFlow (``kerasdl --help`` and ``RunConfig.validate``
read the names); TensorFlow is imported when a transform runs.
"""

from __future__ import annotations

import math
import zlib
from typing import NamedTuple

from kerasdl.errors import KerasdlUsageError, UnknownNameError

MAX_SHIFT_FRACTION = 0.08  # of the image side: 2 pixels on 28x28 MNIST
FLIP_PROBABILITY = 0.5
CROP_AREA = (0.5, 1.0)  # fraction of the image area kept by `crop`
CROP_RATIO = (3 / 4, 4 / 3)  # width / height of the crop box, log-uniform
MAX_ROTATION_DEGREES = 15.0
BRIGHTNESS = CONTRAST = SATURATION = 0.2  # factors uniform in [1 - 0.2, 1 + 0.2]
HUE = 0.05  # fraction of a full turn: +-18 degrees
NOISE_STD = 0.1  # normalised units (the channel's pixel std is 1)
CUTOUT_FRACTION = 0.4  # square side, of the shorter image side
MIXUP_ALPHA = 0.2  # Zhang et al. 2018 use 0.1-0.4 on ImageNet, 1.0 on CIFAR
CUTMIX_ALPHA = 1.0  # Yun et al. 2019: lam uniform
MIX_SWITCH_PROBABILITY = 0.5  # with both mixers: P(mixup) per batch

LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, as tf.image.rgb_to_grayscale
RGB_TO_YIQ = ((0.299, 0.587, 0.114), (0.596, -0.274, -0.322), (0.211, -0.523, 0.312))


class Transform(NamedTuple):
    kind: str  # "geometric" | "photometric" | "erasing" | "label mixing"
    image_only: bool  # needs (H, W, C) inputs
    description: str


# In the order they are applied.
TRANSFORMS: dict[str, Transform] = {
    "crop": Transform("geometric", True, "random resized crop, 50-100% of the area, aspect 3/4-4/3"),
    "flip": Transform("geometric", True, "horizontal mirror, p=0.5"),
    "vflip": Transform("geometric", True, "vertical mirror, p=0.5"),
    "rotate": Transform("geometric", True, "rotation by up to +-15 degrees"),
    "translate": Transform("geometric", True, "shift by up to 8% of each side"),
    "jitter": Transform("photometric", True, "brightness, contrast (+ saturation, hue on RGB) +-20%"),
    "noise": Transform("photometric", False, "Gaussian noise, std 0.1 of the channel std"),
    "cutout": Transform("erasing", True, "erase one square of 0.4 x the shorter side"),
    "mixup": Transform("label mixing", False, "blend image pairs and labels, Beta(0.2, 0.2)"),
    "cutmix": Transform("label mixing", True, "paste a box from another image, labels by area"),
}
POLICIES: dict[str, tuple[str, ...]] = {
    "light": ("translate", "rotate"),  # digits: no mirroring
    "standard": ("translate", "flip"),  # natural images (He et al. 2016's CIFAR recipe)
}
AUGMENTATIONS = ("auto", "none", *POLICIES, *TRANSFORMS)
SEGMENTATION_SAFE = ("jitter", "noise")  # leave every pixel where its mask label is
HELP = ("Training augmentation: auto (translate for images >= 16 px), none, policies light "
        "(translate,rotate) and standard (translate,flip), or a comma list of "
        f"{', '.join(TRANSFORMS)}.")


# ---- names ---------------------------------------------------------------------------------------
def parse(spec) -> list[str] | None:
    """The transforms ``spec`` names, policies expanded, in application order; None for ``auto``.

    Needs no data: :class:`~kerasdl.config.RunConfig` calls it to refuse unknown names early.
    """
    if isinstance(spec, (list, tuple)):
        spec = ",".join(str(s) for s in spec)
    names = [s.strip() for s in str(spec).split(",") if s.strip()]
    for name in names:
        if name not in AUGMENTATIONS:
            raise UnknownNameError("augmentation", name, AUGMENTATIONS)
    if names in (["auto"], []):
        return None
    for alone in ("auto", "none"):
        if alone in names and len(names) > 1:
            raise KerasdlUsageError(f"augmentation {alone!r} stands alone. Received: augment={spec!r}")
    wanted = {t for name in names for t in POLICIES.get(name, (name,)) if t != "none"}
    return [name for name in TRANSFORMS if name in wanted]


def resolve(spec, input_shape, task: str = "classification") -> list[str]:
    """The list of transforms ``spec`` means for inputs of ``input_shape`` and a ``task`` dataset."""
    names = parse(spec)
    is_image = len(input_shape) == 3
    if names is None:  # auto
        wanted = is_image and min(input_shape[:2]) >= 16 and task == "classification"
        return ["translate"] if wanted else []
    if names and task == "segmentation":
        bad = [n for n in names if n not in SEGMENTATION_SAFE]
        if bad:
            raise KerasdlUsageError(
                f"augmentation {','.join(bad)} would move, erase or mix the images but not their masks; "
                f"segmentation takes only {', '.join(SEGMENTATION_SAFE)} (or --augment none)"
            )
    bad = [n for n in names if TRANSFORMS[n].image_only and not is_image]
    if bad:
        raise KerasdlUsageError(
            f"augmentation {','.join(bad)} needs image inputs (height, width, channels). "
            f"Received: input_shape={tuple(input_shape)}"
        )
    if mixes_labels(names) and task != "classification":
        raise KerasdlUsageError(
            f"augmentation {','.join(n for n in names if TRANSFORMS[n].kind == 'label mixing')} mixes "
            f"class labels; a {task} dataset has none to mix"
        )
    return names


def mixes_labels(names) -> bool:
    """True when the transforms turn class ids into soft targets (mixup, cutmix)."""
    return any(TRANSFORMS[n].kind == "label mixing" for n in names)


def soft_target_loss(loss: str) -> str:
    """The loss to train with when the training labels are soft targets.

    Sparse cross-entropy takes class ids only, so it becomes ``categorical_crossentropy``: the same
    value on the class ids of the validation split, and it takes the soft rows of the training
    batches. The other classification losses of :mod:`kerasdl.tasks.losses` take both forms already.
    """
    if loss == "sparse_categorical_crossentropy":
        return "categorical_crossentropy"
    if loss == "binary_crossentropy":
        raise KerasdlUsageError(
            "mixup and cutmix make soft targets over the classes, and binary_crossentropy trains one "
            "logit; use the default loss or categorical_crossentropy"
        )
    return loss


def soft_accuracy(y_true, y_pred):
    """Per-example accuracy for class ids ``(B,)``/``(B, 1)`` or soft targets ``(B, C)`` (argmax).

    Chosen from the static shapes, like the losses, so one compiled metric serves soft training
    batches and validation class ids alike (keras's ``"accuracy"`` fixes one form on first use).
    """
    from keras import ops

    if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == y_pred.shape[-1] != 1:
        y_true = ops.argmax(y_true, axis=-1)
    elif len(y_true.shape) == len(y_pred.shape):
        y_true = ops.squeeze(y_true, axis=-1)
    predicted = ops.argmax(y_pred, axis=-1)
    return ops.cast(ops.equal(ops.cast(y_true, "int32"), ops.cast(predicted, "int32")), "float32")


def accuracy_metric():
    """``accuracy`` that takes soft targets and class ids (see :func:`soft_accuracy`)."""
    import keras

    return keras.metrics.MeanMetricWrapper(soft_accuracy, name="accuracy")


# ---- the transforms (x: (B, H, W, C) float32 normalised; seed: int32 (2,)) -------------------------
class _LazyTF:
    """``tensorflow``, imported on first use (see the module docstring)."""

    def __getattr__(self, attr):
        import tensorflow

        return getattr(tensorflow, attr)


tf = _LazyTF()


def _split(seed, n: int):
    """``n`` independent stateless seeds from one."""
    return tf.unstack(tf.random.experimental.stateless_split(seed, n))


def translate(x, seed, max_dy: int, max_dx: int):
    """Shift each image by integers in ``[-max_dy, max_dy] x [-max_dx, max_dx]``, zero fill."""
    height, width = x.shape[1], x.shape[2]
    n = tf.shape(x)[0]
    dy = tf.random.stateless_uniform([n], seed, -max_dy, max_dy + 1, dtype=tf.int32)
    dx = tf.random.stateless_uniform([n], seed + 1, -max_dx, max_dx + 1, dtype=tf.int32)
    padded = tf.pad(x, [[0, 0], [max_dy, max_dy], [max_dx, max_dx], [0, 0]])  # zero fill
    rows = tf.range(height)[None, :] + max_dy - dy[:, None]  # (B, H) source rows
    cols = tf.range(width)[None, :] + max_dx - dx[:, None]  # (B, W) source columns
    x = tf.gather(padded, rows, axis=1, batch_dims=1)  # (B, H, W + 2 max_dx, C)
    return tf.gather(x, cols, axis=2, batch_dims=1)  # (B, H, W, C)


def _mirror(x, seed, axis: int):
    coin = tf.random.stateless_uniform([tf.shape(x)[0]], seed) < FLIP_PROBABILITY  # (B,)
    return tf.where(coin[:, None, None, None], tf.reverse(x, axis=[axis]), x)


def flip(x, seed):
    """Mirror left-right (columns reversed) with probability 1/2 per image."""
    return _mirror(x, seed, axis=2)


def vflip(x, seed):
    """Mirror top-bottom (rows reversed) with probability 1/2 per image."""
    return _mirror(x, seed, axis=1)


def crop_boxes(n, seed, area=CROP_AREA, ratio=CROP_RATIO, aspect: float = 1.0):
    """``(n, 4)`` boxes ``[y1, x1, y2, x2]`` (fractions of the image) for :func:`crop`.

    ``aspect`` is the image's height / width, so that ``ratio`` is the box's width / height in
    pixels. A side longer than the image is clipped to it (the box then keeps less area).
    """
    s_area, s_ratio, s_y, s_x = _split(seed, 4)
    scale = tf.random.stateless_uniform([n], s_area, area[0], area[1])
    r = tf.exp(tf.random.stateless_uniform([n], s_ratio, math.log(ratio[0]), math.log(ratio[1])))
    fw = tf.minimum(tf.sqrt(scale * r * aspect), 1.0)  # box width / image width
    fh = tf.minimum(tf.sqrt(scale / r / aspect), 1.0)
    y1 = tf.random.stateless_uniform([n], s_y) * (1.0 - fh)
    x1 = tf.random.stateless_uniform([n], s_x) * (1.0 - fw)
    return tf.stack([y1, x1, y1 + fh, x1 + fw], axis=1)


def crop(x, seed):
    """Random resized crop: a box of 50-100% of the area, resized back bilinearly."""
    height, width = x.shape[1], x.shape[2]
    n = tf.shape(x)[0]
    boxes = crop_boxes(n, seed, aspect=height / width)
    return tf.image.crop_and_resize(x, boxes, tf.range(n), [height, width], method="bilinear")


def rotation_angles(n, seed, max_degrees: float = MAX_ROTATION_DEGREES):
    """The ``(n,)`` angles in radians that :func:`rotate` uses for ``seed``."""
    limit = math.radians(max_degrees)
    return tf.random.stateless_uniform([n], seed, -limit, limit)


def rotate(x, seed, max_degrees: float = MAX_ROTATION_DEGREES):
    """Rotate each image about its centre (counter-clockwise on screen for a positive angle)."""
    height, width = x.shape[1], x.shape[2]
    theta = rotation_angles(tf.shape(x)[0], seed, max_degrees)
    cos, sin = tf.cos(theta), tf.sin(theta)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    # Output pixel (col, row) reads the input at R(-theta) about the centre (ImageProjectiveTransform
    # maps output to input coordinates): [a0 a1 a2 b0 b1 b2 c0 c1].
    zeros = tf.zeros_like(cos)
    transforms = tf.stack([cos, -sin, cx - cos * cx + sin * cy,
                           sin, cos, cy - sin * cx - cos * cy, zeros, zeros], axis=1)  # (B, 8)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=x, transforms=transforms, output_shape=[height, width], fill_value=0.0,
        interpolation="BILINEAR", fill_mode="CONSTANT")


def _yiq_hue_matrices(theta):
    """``(B, 3, 3)`` RGB -> RGB matrices that rotate the chroma plane (I, Q) by ``theta``."""
    import numpy as np

    to_yiq = np.asarray(RGB_TO_YIQ, dtype=np.float64)
    from_yiq = tf.constant(np.linalg.inv(to_yiq), tf.float32)
    cos, sin = tf.cos(theta), tf.sin(theta)
    one, zero = tf.ones_like(cos), tf.zeros_like(cos)
    rotation = tf.reshape(tf.stack([one, zero, zero, zero, cos, -sin, zero, sin, cos], axis=1), [-1, 3, 3])
    return tf.matmul(from_yiq[None], tf.matmul(rotation, tf.constant(to_yiq, tf.float32)[None]))


def jitter(x, seed, mean=0.0, std=1.0):
    """Colour jitter in raw units (``raw = x std + mean``); see the module docstring for the rule."""
    import numpy as np

    channels = x.shape[-1]
    mean = tf.constant(np.asarray(mean, np.float32))
    std = tf.constant(np.asarray(std, np.float32))
    n = tf.shape(x)[0]
    s_b, s_c, s_s, s_h = _split(seed, 4)

    def factor(s, amount):
        return tf.random.stateless_uniform([n], s, 1.0 - amount, 1.0 + amount)[:, None, None, None]

    raw = x * std + mean  # (B, H, W, C)
    luma = tf.constant(LUMA, tf.float32)
    raw = factor(s_b, BRIGHTNESS) * raw  # blend with black
    gray = tf.reduce_sum(raw * luma, -1, keepdims=True) if channels == 3 else raw
    c = factor(s_c, CONTRAST)
    raw = c * raw + (1.0 - c) * tf.reduce_mean(gray, axis=[1, 2, 3], keepdims=True)  # blend with mean grey
    if channels == 3:  # colour needs colour channels
        s = factor(s_s, SATURATION)
        raw = s * raw + (1.0 - s) * tf.reduce_sum(raw * luma, -1, keepdims=True)  # blend with own grey
        theta = 2.0 * math.pi * tf.random.stateless_uniform([n], s_h, -HUE, HUE)
        raw = tf.einsum("bij,bhwj->bhwi", _yiq_hue_matrices(theta), raw)
    return (raw - mean) / std


def noise(x, seed, std: float = NOISE_STD):
    """Add ``N(0, std^2)`` per value (normalised units)."""
    return x + std * tf.random.stateless_normal(tf.shape(x), seed)


def cutout_size(height: int, width: int) -> int:
    return max(1, round(CUTOUT_FRACTION * min(height, width)))


def cutout(x, seed):
    """Set one ``size x size`` square per image (inside the image) to 0, the channel mean."""
    height, width = x.shape[1], x.shape[2]
    size = cutout_size(height, width)
    n = tf.shape(x)[0]
    s_y, s_x = _split(seed, 2)
    y0 = tf.random.stateless_uniform([n], s_y, 0, height - size + 1, dtype=tf.int32)[:, None]
    x0 = tf.random.stateless_uniform([n], s_x, 0, width - size + 1, dtype=tf.int32)[:, None]
    rows, cols = tf.range(height)[None, :], tf.range(width)[None, :]
    inside_r = (rows >= y0) & (rows < y0 + size)  # (B, H)
    inside_c = (cols >= x0) & (cols < x0 + size)  # (B, W)
    hole = inside_r[:, :, None, None] & inside_c[:, None, :, None]  # (B, H, W, 1)
    return tf.where(hole, tf.zeros_like(x), x)


def _beta(seed, alpha: float):
    """One ``Beta(alpha, alpha)`` sample, as ``G1 / (G1 + G2)`` of two Gamma(alpha) draws."""
    s1, s2 = _split(seed, 2)
    g1 = tf.random.stateless_gamma([], s1, alpha)
    g2 = tf.random.stateless_gamma([], s2, alpha)
    return tf.math.divide_no_nan(g1, g1 + g2)  # both underflowing to 0 (p ~ 1e-15): lam = 0


def _partners(n, seed):
    """A random permutation of the batch: example ``i`` is mixed with ``perm[i]``."""
    return tf.argsort(tf.random.stateless_uniform([n], seed))


def mixup(x, y, seed, alpha: float = MIXUP_ALPHA):
    """``lam x + (1 - lam) x[perm]`` and the same mix of the targets ``y`` (B, C); one lam per batch."""
    s_lam, s_perm = _split(seed, 2)
    lam = _beta(s_lam, alpha)
    perm = _partners(tf.shape(x)[0], s_perm)
    return lam * x + (1.0 - lam) * tf.gather(x, perm), lam * y + (1.0 - lam) * tf.gather(y, perm)


def cutmix(x, y, seed, alpha: float = CUTMIX_ALPHA):
    """Paste a box of ``x[perm]`` (area ~ ``1 - lam``); targets mixed by the kept-area fraction."""
    height, width = x.shape[1], x.shape[2]
    s_lam, s_perm, s_y, s_x = _split(seed, 4)
    lam = _beta(s_lam, alpha)
    cut = tf.sqrt(1.0 - lam)  # Yun et al.'s reference code: side ratio sqrt(1 - lam), centre uniform
    cut_h = tf.cast(cut * height, tf.int32)
    cut_w = tf.cast(cut * width, tf.int32)
    cy = tf.random.stateless_uniform([], s_y, 0, height, dtype=tf.int32)
    cx = tf.random.stateless_uniform([], s_x, 0, width, dtype=tf.int32)
    y1, y2 = tf.clip_by_value(cy - cut_h // 2, 0, height), tf.clip_by_value(cy + cut_h // 2, 0, height)
    x1, x2 = tf.clip_by_value(cx - cut_w // 2, 0, width), tf.clip_by_value(cx + cut_w // 2, 0, width)
    rows, cols = tf.range(height), tf.range(width)
    box = ((rows >= y1) & (rows < y2))[:, None] & ((cols >= x1) & (cols < x2))[None, :]  # (H, W)
    kept = 1.0 - tf.cast((y2 - y1) * (x2 - x1), tf.float32) / float(height * width)
    perm = _partners(tf.shape(x)[0], s_perm)
    x = tf.where(box[None, :, :, None], tf.gather(x, perm), x)
    return x, kept * y + (1.0 - kept) * tf.gather(y, perm)


def _mix(x, y, seed, names, num_classes: int):
    """Class ids -> one-hot rows, then mixup and/or cutmix (one of them per batch when both)."""
    y = tf.one_hot(tf.reshape(tf.cast(y, tf.int32), [-1]), num_classes)  # (B, C)
    if "mixup" in names and "cutmix" in names:
        s_coin, s_mix = _split(seed, 2)
        coin = tf.random.stateless_uniform([], s_coin) < MIX_SWITCH_PROBABILITY
        return tf.cond(coin, lambda: mixup(x, y, s_mix), lambda: cutmix(x, y, s_mix))
    return mixup(x, y, seed) if "mixup" in names else cutmix(x, y, seed)


def _seed_for(name: str, seed):
    """The stateless seed of one transform: ``translate`` keeps the batch seed itself (the stream
    of the original single-transform pipeline, so ``auto`` batches stay bit-identical); the others
    fold in a fixed number derived from their name, independent of list order."""
    if name == "translate":
        return seed
    return tf.random.experimental.stateless_fold_in(seed, zlib.crc32(name.encode()) & 0x7FFFFFFF)


def apply(dataset, names: list[str], input_shape, seed: int, *, num_classes: int | None = None,
          mean=0.0, std=1.0):
    """Map the transforms over a batched ``(x, y)`` dataset of normalised inputs: one map stage.

    ``names`` come from :func:`resolve`; ``num_classes`` is needed by mixup/cutmix (the labels
    become ``(B, num_classes)`` soft targets); ``mean``/``std`` (the dataset's normalisation,
    :class:`~kerasdl.data.DatasetInfo`) let ``jitter`` work in raw pixel units.
    """
    import tensorflow as _tf

    if not names:
        return dataset
    names = [n for n in TRANSFORMS if n in names]  # application order
    if mixes_labels(names) and not num_classes:
        raise ValueError(f"mixup/cutmix need num_classes. Received: num_classes={num_classes!r}")
    steps = []
    if "translate" in names:
        height, width = int(input_shape[0]), int(input_shape[1])
        max_dy = max(1, round(MAX_SHIFT_FRACTION * height))
        max_dx = max(1, round(MAX_SHIFT_FRACTION * width))
    for name in names:
        if name == "translate":
            steps.append((name, lambda x, s: translate(x, s, max_dy, max_dx)))
        elif name == "jitter":
            steps.append((name, lambda x, s: jitter(x, s, mean, std)))
        elif TRANSFORMS[name].kind != "label mixing":
            steps.append((name, globals()[name]))
    mixers = [n for n in names if TRANSFORMS[n].kind == "label mixing"]
    seeds = _tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)

    def augment(batch, seed_pair):
        x, y = batch
        if not x.shape[1:].is_fully_defined():  # the transforms read H, W, C from the static shape
            x = _tf.ensure_shape(x, [None, *input_shape])
        stateless_seed = _tf.cast(seed_pair % (2**31 - 1), _tf.int32)
        for name, fn in steps:
            x = fn(x, _seed_for(name, stateless_seed))
            x.set_shape([None, *input_shape])  # graph-time only: keep H, W, C static for the next step
        if mixers:
            x, y = _mix(x, y, _seed_for("mix", stateless_seed), mixers, num_classes)
        return x, y

    return _tf.data.Dataset.zip((dataset, seeds)).map(augment, num_parallel_calls=_tf.data.AUTOTUNE)


# ---- a look at the result ------------------------------------------------------------------------
def preview(dataset_name: str, names="auto", path: str = "augmentation.png", seed: int = 0, n: int = 16, *,
            data_dir: str | None = None, download: bool | None = None, image_size=None) -> str:
    """Write a PNG grid of ``n`` training examples, each original above its augmented version.

    ``names`` is an ``--augment`` value (or a list of names); the examples are the first ``n`` of
    the seeded training order. Mixed targets are shown as the two classes with their weights.
    Returns ``path``.
    """
    import numpy as np

    from kerasdl.data import load_dataset

    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 256:
        raise KerasdlUsageError(f"n must be an integer in 1..256. Received: n={n!r}")
    parse(names)  # unknown names fail before any data is read
    ds, info = load_dataset(dataset_name, "train", batch_size=n, data_dir=data_dir, download=download,
                            seed=seed, image_size=tuple(image_size) if image_size else None)
    if not info.is_image:
        raise KerasdlUsageError(f"augment-preview needs an image dataset; {dataset_name} has "
                                f"input_shape={tuple(info.input_shape)}")
    transforms = resolve(names, info.input_shape, info.task)
    x0, y0 = next(iter(ds))
    first = tf.data.Dataset.from_tensors((x0, y0))  # the same examples, before and after
    x1, y1 = next(iter(apply(first, transforms, info.input_shape, seed, num_classes=info.num_classes,
                             mean=info.mean, std=info.std)))
    mean, std = np.asarray(info.mean, np.float32), np.asarray(info.std, np.float32)
    raw0, raw1 = x0.numpy() * std + mean, x1.numpy() * std + mean
    title = f"{info.name}: {', '.join(transforms) or 'no augmentation'} (seed {seed})"
    return _grid(raw0, y0.numpy(), raw1, y1.numpy(), info, path, title)


def _label(y, class_names) -> str:
    def name(k):
        return str(class_names[k]) if k < len(class_names) else str(k)

    if getattr(y, "ndim", 0) == 0:
        return name(int(y))
    top = sorted(range(len(y)), key=lambda k: -y[k])[:2]
    parts = [f"{name(k)} {y[k]:.2f}" for k in top if y[k] > 1e-3]
    return " + ".join(parts)


def _grid(raw0, y0, raw1, y1, info, path: str, title: str) -> str:
    import numpy as np

    from kerasdl import plots

    plt = plots.plt
    n = len(raw0)
    cols = min(n, 8)
    rows = math.ceil(n / cols)

    def shown(img):
        if info.raw_dtype == "uint8":
            img = img / 255.0
        else:  # unknown range: stretch each image
            img = (img - img.min()) / max(float(img.max() - img.min()), 1e-12)
        img = np.clip(img, 0.0, 1.0)
        return img if img.shape[-1] == 3 else img[..., 0]

    fig, axes = plt.subplots(2 * rows, cols, figsize=(1.5 * cols, 3.2 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i in range(n):
        r, c = 2 * (i // cols), i % cols
        for ax, img, y, kind in ((axes[r][c], raw0[i], y0[i], "original"), (axes[r + 1][c], raw1[i], y1[i], "")):
            ax.imshow(shown(img), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
            label = _label(y, info.class_names) if info.task == "classification" else ""  # not masks
            ax.set_title(label + (f"\n{kind}" if kind else ""), fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return plots.save(fig, path)
