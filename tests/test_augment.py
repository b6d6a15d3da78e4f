"""Each augmentation against its defining behaviour, checked with NumPy written from the definition.

Batches go through the real pipeline (``augment.apply`` on a ``tf.data`` dataset) unless a test
needs the sampled parameters (rotation angles), where it calls the transform with a fixed
stateless seed. Expected values come from geometry and arithmetic on the inputs (a shifted copy,
a mirrored copy, a rotated centroid, a pixel count), never from the module's own code. The default
``auto`` pipeline is pinned to hashes computed with the code before the augmentation suite existed.
"""

from __future__ import annotations

import hashlib
import math
from types import SimpleNamespace

import numpy as np
import pytest

from kerasdl.data import augment
from kerasdl.config import RunConfig
from kerasdl.errors import KerasdlUsageError, UnknownNameError

tf = pytest.importorskip("tensorflow")


def batches(names, x, y=None, *, seed=0, num_classes=None, batch_size=None, mean=0.0, std=1.0, epochs=1):
    """Run ``x`` (and labels ``y``) through ``augment.apply``; a list of (x, y) numpy batches."""
    x = np.asarray(x, np.float32)
    y = np.arange(len(x), dtype=np.int32) % 10 if y is None else np.asarray(y)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size or len(x))
    out = augment.apply(ds, names, x.shape[1:], seed, num_classes=num_classes, mean=mean, std=std)
    return [(bx.numpy(), by.numpy()) for _ in range(epochs) for bx, by in out]


def one_batch(names, x, y=None, **kw):
    (bx, by), = batches(names, x, y, **kw)
    return bx, by


def random_images(n, shape, seed=0):
    return np.random.default_rng(seed).normal(size=(n, *shape)).astype(np.float32)


# ---- the default path is unchanged ----------------------------------------------------------------
def pin_input(shape, n=100):
    """Arithmetic (not RNG) test images, so the pin does not depend on NumPy's generators."""
    size = n * int(np.prod(shape))
    x = ((np.arange(size, dtype=np.int64) * 2654435761) % 1009).astype(np.float32).reshape(n, *shape) / 1009.0
    return tf.data.Dataset.from_tensor_slices((x, np.arange(n, dtype=np.int32) % 10)).batch(32)


def digest(ds, epochs=2, take=-1):
    h = hashlib.sha256()
    for _ in range(epochs):
        for x, y in ds.take(take):
            h.update(x.numpy().tobytes())
            h.update(y.numpy().tobytes())
    return h.hexdigest()


# sha256 of two epochs of `auto` batches, computed with kerasdl/data/augment.py as of commit 82bfcb1
# (translate only), before this suite was added: the default must stay bit-identical.
PINNED = {
    ((28, 28, 1), 0): "323bbc3f46285586a46468c77db3acf9bf304d961545ef6dfcc4d5d15ff943c0",
    ((28, 28, 1), 7): "8d116ae001bb3eaba83405c1827d5baeb9fefff72f67739a46fc9712890b8ad3",
    ((32, 32, 3), 0): "18ec51be6e04be79e7ea806cbb04561bd3f31d56b82df85d1548bcb14611a84a",
    ((32, 32, 3), 7): "c46f0a0a4e94c55cfed9c95749fdd168615fa7f9403308df9211573596df82e4",
    ((16, 20, 2), 0): "c6eab1f6ba05569efe29f6c250db0508cb95e688332f9faf63f6e62a347fd9b1",
    ((16, 20, 2), 7): "5a5f3bad45c3e0f7da8ff6b30f2e45a5f5c3cf551b7c24787aab840c474d2a29",
}
PINNED_MNIST5K = "c698da3affdbb0c9eff0a4c99058cf3eb9d559a09f25a86792e338c01f202800"  # 3 batches of 64, seed 3


@pytest.mark.parametrize("shape,seed", list(PINNED))
def test_auto_batches_are_bit_identical_to_the_pinned_reference(shape, seed):
    names = augment.resolve("auto", shape)
    assert names == ["translate"]
    assert digest(augment.apply(pin_input(shape), names, shape, seed)) == PINNED[(shape, seed)]


def test_auto_on_mnist5k_is_bit_identical_to_the_pinned_reference(data_dir):
    from kerasdl.data import load_dataset

    ds, info = load_dataset("mnist5k", "train", batch_size=64, data_dir=data_dir, shuffle=False)
    names = augment.resolve("auto", info.input_shape, info.task)
    # The arguments train() passes: the extra ones must not touch the translate path.
    out = augment.apply(ds, names, info.input_shape, 3, num_classes=info.num_classes, mean=info.mean, std=info.std)
    assert digest(out, epochs=2, take=3) == PINNED_MNIST5K


def test_translate_alone_is_one_map_stage_over_the_seed_zip():
    ds = pin_input((28, 28, 1))
    out = augment.apply(ds, ["translate"], (28, 28, 1), 0)
    assert type(out).__name__ == "_ParallelMapDataset"
    assert type(out._input_dataset).__name__ == "_ZipDataset"
    assert out._input_dataset._datasets[0] is ds
    assert augment.apply(ds, [], (28, 28, 1), 0) is ds  # none: the dataset untouched


# ---- names, policies, refusals ----------------------------------------------------------------------
def test_resolve_auto_policies_and_order():
    assert augment.resolve("auto", (28, 28, 1)) == ["translate"]
    assert augment.resolve("auto", (8, 8, 1)) == []  # tiny images
    assert augment.resolve("auto", (4,)) == []
    assert augment.resolve("auto", (64, 64, 3), "segmentation") == []
    assert augment.resolve("none", (28, 28, 1)) == []
    assert augment.resolve("light", (28, 28, 1)) == ["rotate", "translate"]
    assert augment.resolve("standard", (32, 32, 3)) == ["flip", "translate"]
    # Application order is fixed whatever the order named; duplicates collapse.
    assert augment.resolve("mixup, cutout,flip,standard", (32, 32, 3)) == ["flip", "translate", "cutout", "mixup"]
    assert augment.resolve(["noise", "jitter"], (32, 32, 3)) == ["jitter", "noise"]
    for name in augment.TRANSFORMS:
        assert augment.resolve(name, (32, 32, 3)) == [name]
        assert name in augment.HELP


def test_unknown_names_are_refused_with_suggestions():
    with pytest.raises(UnknownNameError, match=r"unknown augmentation 'rotat'; did you mean 'rotate'"):
        augment.resolve("flip,rotat", (28, 28, 1))
    with pytest.raises(UnknownNameError) as err:
        RunConfig(augment="cutot").validate()  # refused by the config, before any data is read
    assert "cutout" in err.value.suggestions
    with pytest.raises(KerasdlUsageError, match="'none' stands alone"):
        augment.parse("none,flip")


@pytest.mark.parametrize("spec,shape,task,pattern", [
    ("translate", (64, 64, 3), "segmentation", "not their masks"),
    ("flip,noise", (64, 64, 3), "segmentation", "flip would move"),
    ("cutout", (64, 64, 3), "segmentation", "not their masks"),
    ("mixup", (64, 64, 3), "segmentation", "not their masks"),
    ("flip", (4,), "classification", r"needs image inputs .*Received: input_shape=\(4,\)"),
    ("standard", (13,), "classification", "flip,translate needs image inputs"),
    ("cutmix", (4,), "classification", "needs image inputs"),
    ("mixup", (10,), "regression", "mixes class labels"),
])
def test_refusals_are_one_line_usage_errors(spec, shape, task, pattern):
    with pytest.raises(KerasdlUsageError, match=pattern) as err:
        augment.resolve(spec, shape, task)
    assert "\n" not in str(err.value)


def test_what_fits_segmentation_and_tables_is_accepted():
    assert augment.resolve("jitter,noise", (64, 64, 3), "segmentation") == ["jitter", "noise"]
    assert augment.resolve("noise,mixup", (4,)) == ["noise", "mixup"]
    x = random_images(32, (4,))
    bx, by = one_batch(["noise", "mixup"], x, num_classes=10)
    assert bx.shape == (32, 4) and by.shape == (32, 10)


# ---- geometric ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,axis", [("flip", 2), ("vflip", 1)])
def test_mirrors_flip_half_the_images_and_keep_labels(name, axis):
    x = random_images(400, (12, 10, 2))
    y = np.arange(400) % 7
    bx, by = one_batch([name], x, y)
    mirrored = np.flip(x, axis=axis)
    same = np.all(bx == x, axis=(1, 2, 3))
    flipped = np.all(bx == mirrored, axis=(1, 2, 3))
    assert np.all(same ^ flipped)  # each image is itself or its exact mirror
    assert np.array_equal(np.flip(bx[flipped], axis=axis), x[flipped])  # mirroring twice: identity
    assert 0.5 - 0.1 < flipped.mean() < 0.5 + 0.1  # p = 1/2, n = 400: 4 sigma
    assert np.array_equal(by, y)


def shifted(img, dy, dx):
    """``img`` moved down by dy and right by dx, zero fill (a reference written from scratch)."""
    h, w = img.shape[:2]
    out = np.zeros_like(img)
    for r in range(h):
        for c in range(w):
            if 0 <= r - dy < h and 0 <= c - dx < w:
                out[r, c] = img[r - dy, c - dx]
    return out


def test_translate_is_an_integer_shift_with_zero_fill():
    x = random_images(24, (28, 28, 1)) + 5.0  # no zeros inside the images
    y = np.arange(24) % 10
    bx, by = one_batch(["translate"], x, y)
    assert bx.shape == x.shape and np.array_equal(by, y)
    shifts = []
    for img, out in zip(x, bx):
        found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if np.array_equal(shifted(img, dy, dx), out)]
        assert len(found) == 1, "every output is exactly one shift of at most 2 pixels (8% of 28)"
        shifts.append(found[0])
    assert len(set(shifts)) > 5


def test_crop_is_a_resized_box_of_half_to_all_of_the_area():
    h, w = 24, 32
    ramp = np.zeros((64, h, w, 2), np.float32)
    ramp[..., 0] = np.arange(w)[None, None, :]  # column index
    ramp[..., 1] = np.arange(h)[None, :, None]  # row index
    y = np.arange(64) % 10
    bx, by = one_batch(["crop"], ramp, y)
    assert bx.shape == ramp.shape and np.array_equal(by, y)
    areas = []
    for out in bx:
        # Bilinear resampling of a linear ramp is linear: col(c) = x0 + c * fw, row(r) = y0 + r * fh.
        fw = (out[0, -1, 0] - out[0, 0, 0]) / (w - 1)
        fh = (out[-1, 0, 1] - out[0, 0, 1]) / (h - 1)
        np.testing.assert_allclose(out[..., 0], np.broadcast_to(out[0, 0, 0] + np.arange(w) * fw, (h, w)), atol=1e-3)
        np.testing.assert_allclose(out[..., 1], np.broadcast_to(out[0, 0, 1] + np.arange(h)[:, None] * fh, (h, w)),
                                   atol=1e-3)
        assert out[..., 0].min() >= -1e-3 and out[..., 0].max() <= w - 1 + 1e-3  # inside the image
        assert out[..., 1].min() >= -1e-3 and out[..., 1].max() <= h - 1 + 1e-3
        assert 3 / 4 - 1e-3 <= (fw * w) / (fh * h) <= 4 / 3 + 1e-3  # aspect ratio of the box in pixels
        areas.append(fw * fh)
    assert min(areas) >= 0.5 - 1e-3 and max(areas) <= 1 + 1e-3
    assert max(areas) - min(areas) > 0.2  # it does scale


def test_rotate_turns_about_the_centre_by_the_sampled_angle():
    n, size, r = 16, 29, 8.0
    seed = tf.constant([3, 4], tf.int32)
    angles = augment.rotation_angles(n, seed).numpy()
    assert np.all(np.abs(angles) <= math.radians(15) + 1e-6) and np.ptp(angles) > math.radians(10)
    c = (size - 1) / 2
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float32)
    blob = np.exp(-((rows - c) ** 2 + (cols - c - r) ** 2) / (2 * 1.5**2))  # a spot r pixels right of centre
    x = np.repeat(blob[None, :, :, None], n, axis=0).astype(np.float32)
    x[:, int(c), int(c), 0] = 7.0  # a marked centre pixel
    out = augment.rotate(tf.constant(x), seed).numpy()
    np.testing.assert_allclose(out[:, int(c), int(c), 0], 7.0, atol=1e-4)  # the centre stays put
    for theta, img in zip(angles, out[..., 0]):
        spot = np.where(np.hypot(rows - c, cols - c) > 3, img, 0.0)
        cy, cx = (spot * rows).sum() / spot.sum(), (spot * cols).sum() / spot.sum()
        # Counter-clockwise on screen (rows grow downwards): right of centre moves up for theta > 0.
        assert abs(cy - (c - r * math.sin(theta))) < 0.1 and abs(cx - (c + r * math.cos(theta))) < 0.1


# ---- photometric, noise, erasing --------------------------------------------------------------------
LUMA = np.array([0.299, 0.587, 0.114])


def per_image_fit(u, v):
    """Least-squares v = a u + b per image; (slopes, max residual)."""
    slopes, worst = [], 0.0
    for ui, vi in zip(u, v):
        a, b = np.polyfit(ui.ravel(), vi.ravel(), 1)
        slopes.append(a)
        worst = max(worst, float(np.abs(a * ui.ravel() + b - vi.ravel()).max()))
    return np.array(slopes), worst


def test_jitter_rgb_brightness_contrast_keep_grey_grey_and_luma_affine():
    mean, std = np.array([120.0, 110.0, 100.0]), np.array([60.0, 50.0, 70.0])
    rng = np.random.default_rng(1)
    colour = rng.uniform(0, 255, size=(32, 16, 16, 3))
    grey = np.repeat(rng.uniform(0, 255, size=(32, 16, 16, 1)), 3, axis=-1)
    raw_in = np.concatenate([colour, grey])
    bx, _ = one_batch(["jitter"], (raw_in - mean) / std, mean=mean.tolist(), std=std.tolist())
    raw_out = bx.astype(np.float64) * std + mean
    # Saturation and hue only move colour: a grey image stays grey...
    np.testing.assert_allclose(raw_out[32:, ..., 0], raw_out[32:, ..., 1], atol=2e-3)
    np.testing.assert_allclose(raw_out[32:, ..., 0], raw_out[32:, ..., 2], atol=2e-3)
    # ...and neither changes luma: luma_out = b c luma_in + const, with b, c in [0.8, 1.2].
    slopes, worst = per_image_fit(raw_in @ LUMA, raw_out @ LUMA)
    assert worst < 0.02 and np.all((slopes > 0.64 - 1e-4) & (slopes < 1.44 + 1e-4))
    ratio = (raw_out @ LUMA).mean(axis=(1, 2)) / (raw_in @ LUMA).mean(axis=(1, 2))
    assert np.all((ratio > 0.8 - 1e-4) & (ratio < 1.2 + 1e-4))  # contrast keeps the mean, brightness scales it
    assert np.ptp(slopes) > 0.1  # factors differ per image
    # On colour images saturation/hue act: the RGB values are no longer that one affine map of the input.
    _, rgb_worst = per_image_fit(raw_in[:32], raw_out[:32])
    assert rgb_worst > 1.0


@pytest.mark.parametrize("channels", [1, 2])
def test_jitter_without_three_channels_is_brightness_and_contrast_only(channels):
    mean, std = [33.0] * channels, [78.0] * channels
    raw_in = np.random.default_rng(2).uniform(0, 255, size=(32, 14, 14, channels))
    bx, _ = one_batch(["jitter"], (raw_in - 33.0) / 78.0, mean=mean, std=std)
    raw_out = bx.astype(np.float64) * 78.0 + 33.0
    slopes, worst = per_image_fit(raw_in, raw_out)  # one affine map per image, shared by the channels
    assert worst < 0.02 and np.all((slopes > 0.64 - 1e-4) & (slopes < 1.44 + 1e-4))
    ratio = raw_out.mean(axis=(1, 2, 3)) / raw_in.mean(axis=(1, 2, 3))
    assert np.all((ratio > 0.8 - 1e-4) & (ratio < 1.2 + 1e-4))


def test_noise_is_gaussian_with_the_stated_std():
    x = random_images(64, (32, 32, 3))
    y = np.arange(64) % 10
    bx, by = one_batch(["noise"], x, y)
    residual = (bx - x).astype(np.float64).ravel()  # 196,608 values: std of the std ~ 0.16%
    assert abs(residual.std() - 0.1) < 0.003 and abs(residual.mean()) < 0.002
    assert abs(np.mean(np.abs(residual) < 0.1) - 0.6827) < 0.01  # the one-sigma mass of a Gaussian
    assert np.array_equal(by, y)


@pytest.mark.parametrize("shape,side", [((28, 28, 1), 11), ((32, 32, 3), 13), ((20, 36, 2), 8)])
def test_cutout_zeroes_exactly_one_square_of_the_stated_size(shape, side):
    x = np.abs(random_images(48, shape)) + 1.0  # no zeros of its own
    y = np.arange(48) % 10
    bx, by = one_batch(["cutout"], x, y)
    corners = set()
    for img, out in zip(x, bx):
        zero = out == 0
        assert np.all(zero == zero[..., :1])  # every channel of the erased pixels
        rows, cols = np.nonzero(zero[..., 0])
        assert zero[..., 0].sum() == side * side
        assert rows.max() - rows.min() + 1 == side and cols.max() - cols.min() + 1 == side
        assert np.array_equal(out[~zero], img[~zero])  # everything else untouched
        corners.add((rows.min(), cols.min()))
    assert len(corners) > 10 and np.array_equal(by, y)


# ---- label mixing ---------------------------------------------------------------------------------
def constant_images(n, shape=(12, 12, 1)):
    """Image k is filled with the value k + 1 and labelled k: a pixel tells where it came from."""
    return np.ones((n, *shape), np.float32) * (np.arange(n, dtype=np.float32) + 1)[:, None, None, None], np.arange(n)


def test_mixup_targets_are_convex_combinations_matching_the_pixel_mix():
    n = 16
    x, y = constant_images(n)
    lams = []
    for bx, soft in batches(["mixup"], x, y, num_classes=n, epochs=6):  # each epoch draws anew
        assert soft.shape == (n, n)
        np.testing.assert_allclose(soft.sum(axis=1), 1.0, atol=1e-6)
        assert np.all(soft >= 0) and np.all((soft > 1e-7).sum(axis=1) <= 2)
        # The image is the same mix of the two images as the target is of their one-hot labels.
        np.testing.assert_allclose(bx[:, 0, 0, 0], soft @ (np.arange(n) + 1.0), rtol=1e-5)
        assert np.all(bx == bx[:, :1, :1, :1])
        # One lam per batch, and the partners are a permutation of the batch.
        own = soft[np.arange(n), y]
        mixed = own < 1 - 1e-6
        if mixed.any():
            np.testing.assert_allclose(own[mixed], own[mixed][0], atol=1e-6)
            lams.append(own[mixed][0])
        partner = np.where(mixed, np.argmax(np.where(np.eye(n, dtype=bool), -1, soft), axis=1), y)
        assert sorted(partner) == list(range(n))
    # Beta(0.2, 0.2) is U-shaped: most lams sit near 0 or 1.
    assert len(lams) >= 4 and np.median(np.minimum(lams, 1 - np.array(lams))) < 0.3


def test_cutmix_lambda_is_the_kept_area_fraction():
    n, shape = 12, (20, 16, 1)
    x, y = constant_images(n, shape)
    seen_box = 0
    for bx, soft in batches(["cutmix"], x, y, num_classes=n, epochs=6):
        np.testing.assert_allclose(soft.sum(axis=1), 1.0, atol=1e-6)
        boxes = set()
        for i in range(n):
            own = bx[i, ..., 0] == i + 1
            np.testing.assert_allclose(soft[i, i], own.mean(), atol=1e-6)  # label weight = kept area
            if not own.all() and soft[i, i] < 1:
                pasted = bx[i, ..., 0][~own]
                j = int(pasted[0]) - 1
                assert np.all(pasted == j + 1)  # the box comes from one partner image
                np.testing.assert_allclose(soft[i, j], 1 - own.mean(), atol=1e-6)
                rows, cols = np.nonzero(~own)
                assert (~own).sum() == (np.ptp(rows) + 1) * (np.ptp(cols) + 1)  # a rectangle
                boxes.add((rows.min(), rows.max(), cols.min(), cols.max()))
        assert len(boxes) <= 1  # one box per batch
        seen_box += len(boxes)
    assert seen_box >= 3


def test_mixup_and_cutmix_together_use_one_per_batch():
    n = 8
    x, y = constant_images(n)
    kinds = set()
    for bx, soft in batches(["mixup", "cutmix"], x, y, num_classes=n, epochs=16):
        np.testing.assert_allclose(soft.sum(axis=1), 1.0, atol=1e-6)
        if np.all(soft.max(axis=1) == 1):
            continue  # lam at an end: nothing to tell apart
        constant = np.all(bx == bx[:, :1, :1, :1])
        pure = np.all(np.isin(bx, np.arange(n) + 1.0))
        assert constant != pure or np.all(soft.max(axis=1) == 1)
        kinds.add("mixup" if constant else "cutmix")
    assert kinds == {"mixup", "cutmix"}


# ---- determinism ----------------------------------------------------------------------------------
def test_same_seed_same_batches_different_seeds_and_epochs_differ():
    x = random_images(40, (20, 20, 3))
    everything = augment.resolve(",".join(augment.TRANSFORMS), (20, 20, 3))
    kw = dict(num_classes=10, batch_size=16, epochs=2, mean=[1.0, 2.0, 3.0], std=[2.0, 2.0, 2.0])
    a = batches(everything, x, seed=5, **kw)
    b = batches(everything, x, seed=5, **kw)  # a new pipeline, built from scratch
    c = batches(everything, x, seed=6, **kw)
    assert len(a) == 6
    for (ax, ay), (bx_, by_) in zip(a, b):
        assert np.array_equal(ax, bx_) and np.array_equal(ay, by_)
    assert not np.array_equal(a[0][0], c[0][0])
    assert not np.array_equal(a[0][0], a[3][0])  # epoch 2 draws new transforms


# ---- training with soft targets -------------------------------------------------------------------
def test_mixup_trains_on_soft_targets_and_validates_on_class_ids():
    import keras

    from kerasdl.tasks import supervised as training

    info = SimpleNamespace(task="classification", input_shape=(6, 6, 1), num_classes=3)
    config = RunConfig(augment="mixup")
    loss = training.make_loss(config, info)
    assert loss.loss == "categorical_crossentropy"
    assert training.make_loss(RunConfig(augment="translate"), info).loss == "sparse_categorical_crossentropy"
    with pytest.raises(KerasdlUsageError, match="binary_crossentropy trains one logit"):
        training.make_loss(RunConfig(augment="cutmix", loss="binary_crossentropy"),
                           SimpleNamespace(task="classification", input_shape=(6, 6, 1), num_classes=2))

    rng = np.random.default_rng(0)
    x = rng.normal(size=(48, 6, 6, 1)).astype(np.float32)
    y = (np.arange(48) % 3).astype(np.int32)
    train_ds = augment.apply(tf.data.Dataset.from_tensor_slices((x, y)).batch(16), ["mixup"], (6, 6, 1), 0,
                             num_classes=3)
    val_ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Flatten(), keras.layers.Dense(3)])
    model.compile(optimizer="adam", loss=loss, metrics=training.make_metrics(config, info))
    history = model.fit(train_ds, validation_data=val_ds, epochs=2, verbose=0, shuffle=False)
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(history.history)
    # Validation figures are the plain ones on class ids: sparse cross-entropy and argmax accuracy.
    logits = model.predict(x, verbose=0).astype(np.float64)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    val_loss, val_acc = model.evaluate(val_ds, verbose=0)
    np.testing.assert_allclose(val_loss, -log_p[np.arange(48), y].mean(), rtol=1e-4)
    np.testing.assert_allclose(val_acc, np.mean(logits.argmax(1) == y), atol=1e-6)
    # The metric reads soft targets by their dominant class.
    soft = np.array([[0.7, 0.3, 0.0], [0.2, 0.0, 0.8]], np.float32)
    pred = np.array([[2.0, 1.0, 0.0], [3.0, 0.0, 1.0]], np.float32)
    np.testing.assert_array_equal(augment.soft_accuracy(soft, pred), [1.0, 0.0])
    np.testing.assert_array_equal(augment.soft_accuracy(np.array([0, 0]), pred), [1.0, 1.0])


# ---- preview ----------------------------------------------------------------------------------------
def test_preview_writes_a_png_grid(data_dir, tmp_path):
    import matplotlib.image

    path = augment.preview("mnist5k", "rotate,cutout", str(tmp_path / "grid.png"), seed=1, n=6, data_dir=data_dir)
    assert path == str(tmp_path / "grid.png")
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 100 and image.shape[1] > 300
    with pytest.raises(KerasdlUsageError, match="needs an image dataset"):
        augment.preview("iris", "none", str(tmp_path / "x.png"), data_dir=data_dir)


def test_cli_augment_preview_help_and_bad_name(run_cli, tmp_path):
    proc = run_cli("augment-preview", "--help", cwd=tmp_path, check=0)
    assert "kerasdl augment-preview --dataset mnist5k --augment rotate,cutout" in proc.stdout
    assert "cutmix" in proc.stdout
    proc = run_cli("augment-preview", "--augment", "rotate,cutot", "--out", "p.png", cwd=tmp_path, check=2)
    assert proc.stderr.startswith("Error: unknown augmentation 'cutot'; did you mean 'cutout'")
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "p.png").exists()
