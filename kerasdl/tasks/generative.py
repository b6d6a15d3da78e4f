"""What every sampling task shares (gan, vqvae, diffusion): scales, labels, figures and scores.

A sampling task learns p(x) (or p(x | class)) of an image or vector dataset and draws new
examples from it. The subclasses implement :meth:`GenerativeTask.generate` (``n`` examples in the
*model space* from a seed) and the training; this base class gives them the rest:

* **Scales.** The engine's batches are the dataset's normalised inputs: images in [0, 1] (the
  ``scale`` normalisation), vectors standardised per feature. A task may train in another space
  (:attr:`GenerativeTask.image_range`: GANs and diffusion models work on [-1, 1] images);
  :meth:`to_model` / :meth:`from_model` convert, and :meth:`sample` returns the user's scale:
  images in [0, 1], vectors in the dataset's own units.
* **Labels.** A conditional model (``--task-opt conditional=true``) draws the class asked for
  (``kerasdl sample --class K``) or, without one, the classes in turn (0, 1, ..., K-1, 0, ...).
* **Scores** (:meth:`evaluate`; :mod:`kerasdl.evaluation.quality`): FID (Heusel et al. 2017), KID
  with its standard deviation over subsets (Binkowski et al. 2018) and k-NN precision / recall
  (Kynkaanniemi et al. 2019) in the feature space of a *pinned local feature network*
  (:mod:`kerasdl.evaluation.feature_net`: a classifier kerasdl trains itself on the dataset, its
  weights' sha256 in the report), each beside its floor (real train vs real test) and ceiling
  (uniform noise vs real test) at the same sample count; the feature classifier's label histogram
  of the samples (mode coverage) and, for a conditional model, how often a sample is classified as
  the class it was asked for. Vector data are scored on the vectors themselves, with the mode
  coverage of :func:`mode_coverage` (the 8-Gaussian ring, the coin's P(heads)).
* **Figures**: sample grids every ``sample_every`` epochs during training
  (``plots/samples/epoch_NNN.png``, :class:`SampleGrid`) and at the end (``plots/samples.png``).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from kerasdl.errors import KerasdlUsageError
from kerasdl.tasks.base import Task

SAMPLE_GRID = 64  # examples in a sample grid
SAMPLE_DIR = os.path.join("plots", "samples")
PER_CLASS = 8  # examples per class in a conditional grid


def prior_codes(n, k: int, seed):
    """``n`` codes z ~ N(0, I_k) drawn with ``tf.random.stateless_normal`` from seed ``(seed, 0)``:
    one definition for ``kerasdl sample``, the figures and the exports' ``sample`` signatures (the
    VAE's prior, the GAN's noise)."""
    import tensorflow as tf

    return tf.random.stateless_normal(tf.stack([n, k]), seed=tf.stack([tf.cast(seed, tf.int64),
                                                                      tf.constant(0, tf.int64)]))


def scaled_to_unit(info) -> bool:
    """Images whose normalisation only divides by one constant (``--input-norm scale``: uint8 / 255,
    sklearn's digits / 16): the model sees them in [0, 1]."""
    mean, std = np.asarray(info.mean, np.float64), np.asarray(info.std, np.float64)
    return bool(np.allclose(mean, 0.0) and np.all(std > 0) and np.allclose(std, std.flat[0]))


def mode_coverage(samples: np.ndarray, centres: np.ndarray, spreads: np.ndarray, *, sigmas: float = 3.0,
                  min_fraction: float = 0.01) -> dict:
    """How ``samples`` (N, F) spread over the modes of a mixture whose component ``k`` has mean
    ``centres[k]`` and standard deviation ``spreads[k]`` (Metz et al. 2017, "Unrolled GANs": a
    sample is *high quality* within ``sigmas`` standard deviations of its nearest mode, and a mode
    is *covered* when at least ``min_fraction`` of the samples are high-quality samples of it).

    Returns ``nearest`` (each sample's nearest mode), ``fractions`` (every sample assigned to its
    nearest mode), ``high_quality`` (fraction),
    ``covered`` (list of mode indices) and ``modes_covered`` (count)."""
    samples = np.asarray(samples, np.float64).reshape(len(samples), -1)
    centres = np.asarray(centres, np.float64).reshape(len(centres), -1)
    dist = np.sqrt(((samples[:, None, :] - centres[None]) ** 2).sum(-1))  # (N, K)
    nearest = dist.argmin(1)
    near = dist[np.arange(len(samples)), nearest] <= sigmas * np.asarray(spreads, np.float64)[nearest]
    k = len(centres)
    fractions = np.bincount(nearest, minlength=k) / max(len(samples), 1)
    good = np.bincount(nearest[near], minlength=k) / max(len(samples), 1)
    covered = [int(i) for i in np.flatnonzero(good >= min_fraction)]
    return {"nearest": nearest, "fractions": [float(f) for f in fractions],
            "high_quality": float(near.mean()) if len(near) else 0.0,
            "covered": covered, "modes_covered": len(covered), "modes": k, "sigmas": sigmas}


def load_split(config, split: str, limit: int | None = None):
    """``(x normalised, labels)`` of a run's split loaded afresh (unshuffled, no augmentation)."""
    from kerasdl.data import load_splits
    from kerasdl.tasks.autoencoder import collect

    config = config.replace(augment="none") if hasattr(config, "replace") else config
    data, _ = load_splits(config, (split,), shuffle_train=False)
    return collect(data[split], limit)


def sample_quality(config, info, generated: np.ndarray, x_test: np.ndarray, train: tuple, *,
                   requested: np.ndarray | None = None, to_raw=None) -> dict:
    """The scores of ``generated`` (normalised inputs, like ``x_test``) -- one definition for every
    sampling task, the VAE included (see the module docstring).

    ``train``: ``(x_train, y_train)`` (the floor, the noise box and the modes); ``requested``: the
    classes a conditional model was asked for; ``to_raw``: normalised -> the data's units (vector
    modes). FID, KID and precision/recall compare equal counts, at most the test split's size;
    every sample counts for the label histogram, the class match and the mode coverage.
    """
    from kerasdl.evaluation import quality
    from kerasdl.evaluation.feature_net import feature_net

    seed = int(config.seed)
    x_train, y_train = train
    drawn, n = len(generated), min(len(generated), len(x_test))
    rng = np.random.default_rng(seed + 202)
    if info.is_image:
        noise = rng.uniform(0.0, 1.0, size=(n,) + tuple(info.input_shape)).astype(np.float32)
    else:  # uniform over the box the train data span
        noise = rng.uniform(x_train.min(0), x_train.max(0), size=(n,) + x_train.shape[1:]).astype(np.float32)
    net = feature_net(config, info)
    feats = {k: net.features(v) for k, v in
             (("generated", generated[:n]), ("test", x_test), ("train", x_train), ("noise", noise))}
    # KID's spread: subsets of half the samples (with all of them, every subset is the same set).
    report = quality.quality_report(feats["generated"], feats["test"], feats["train"], feats["noise"], seed=seed,
                                    kid_subset_size=max(2, n // 2))
    report["feature_net"] = net.describe()
    report["samples"] = drawn
    if report.get("ceiling") and report.get("kid_std"):  # how far below the noise ceiling, in KID stds
        report["kid_below_ceiling_std"] = float((report["ceiling"]["kid"] - report["kid"]) / report["kid_std"])
    predicted = net.predict(generated)
    if predicted is not None and net.num_classes != int(info.num_classes):
        predicted = None  # a feature classifier of other classes than the run's: no label figures
        report["labels_skipped"] = f"the feature network has {net.num_classes} classes, the run {info.num_classes}"
    if predicted is not None and info.task == "classification":
        report["labels"] = quality.label_stats(predicted, int(info.num_classes))
        if requested is not None:
            report["class_match"] = float(np.mean(predicted == requested))
    elif info.task == "classification" and y_train is not None and len(y_train):
        to_raw = to_raw or (lambda v: v)
        modes = vector_modes(to_raw(generated), to_raw(x_train), y_train, info)
        nearest = np.asarray(modes.pop("nearest"))
        report["modes"] = modes
        if requested is not None:  # vectors: the class of a sample is its nearest mode
            report["class_match"] = float(np.mean(nearest == requested))
    return report


def vector_modes(raw_gen: np.ndarray, raw_train: np.ndarray, y_train: np.ndarray, info) -> dict:
    """Mode coverage of vector samples against the classes of the train split (in the data's units):
    a class's mean is its mode, its spread the mean per-feature std (at least 0.01)."""
    k = int(info.num_classes)
    centres = np.stack([raw_train[y_train == c].mean(0) for c in range(k)])
    spreads = np.array([max(float(raw_train[y_train == c].std(0).mean()), 1e-2) for c in range(k)])
    out = mode_coverage(raw_gen, centres, spreads)
    out["class_names"] = list(info.class_names)
    out["train_fractions"] = [float(np.mean(y_train == c)) for c in range(k)]
    return out


def sample_grid_callback(task: "GenerativeTask", run_dir: str, every: int):
    """A Keras callback that writes ``plots/samples/epoch_NNN.png`` every ``every`` epochs, drawn
    from the model being trained with the run's seed (the same noise every time, so the grids show
    one set of samples improving)."""
    import keras

    class SampleGrid(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if every and (epoch + 1) % every == 0:
                path = os.path.join(run_dir, SAMPLE_DIR, f"epoch_{epoch + 1:03d}.png")
                task.sample_figure(self.model, path, title=f"{task.config.model}: epoch {epoch + 1}")

    return SampleGrid()


class GenerativeTask(Task):
    """Base class of the sampling tasks; see the module docstring."""

    data_kind = "unlabeled"
    image_range = (0.0, 1.0)  # the model's image scale; (-1, 1): tanh generators, diffusion
    serving_outputs = ("samples",)

    def __init__(self, config, info):
        super().__init__(config, info)
        self._raw: dict[str, Any] = {}  # split -> the labelled dataset prepare() received
        self._prepared: dict[str, Any] = {}

    # -- checks --------------------------------------------------------------------------------
    @property
    def conditional(self) -> bool:
        return bool(getattr(self.opts, "conditional", False))

    @property
    def num_classes(self) -> int:
        """Classes a conditional model takes (0: unconditional)."""
        return int(self.info.num_classes) if self.conditional else 0

    def check(self) -> None:
        info = self.info
        if len(info.input_shape) not in (1, 3):
            raise KerasdlUsageError(
                f"task {self.name!r} generates images (H, W, C) or vectors; dataset {info.name!r} has inputs "
                f"of shape {tuple(info.input_shape)}")
        if info.is_image and not scaled_to_unit(info):
            raise KerasdlUsageError(
                f"task {self.name!r} needs images scaled to [0, 1] (uint8 images with --input-norm scale); "
                f"dataset {info.name!r} is normalised otherwise")
        if self.conditional and (info.task != "classification" or int(info.num_classes) < 2):
            raise KerasdlUsageError(
                f"conditional=true needs class labels; dataset {info.name!r} is a {info.task} set")
        self.check_model()
        self.monitor()

    def check_label(self, label: int | None) -> None:
        """A requested class must be one this conditional model knows."""
        if label is None:
            return
        if not self.conditional:
            raise KerasdlUsageError(f"--class needs a conditional model; this {self.name} run is unconditional "
                                    f"(train it with --task-opt conditional=true)")
        k = int(self.info.num_classes)
        if not 0 <= int(label) < k:
            names = self.info.class_names
            raise KerasdlUsageError(f"class {label} is out of range: this model has {k} classes, 0..{k - 1}"
                                    + (f" ({', '.join(map(str, names[:12]))})" if names else ""))

    def check_steps(self, steps: int | None) -> None:
        """``--steps`` is for diffusion runs (subclasses that sample iteratively override this)."""
        if steps is not None:
            raise KerasdlUsageError(f"--steps is for diffusion runs; a {self.name} run draws in one pass")

    # -- data ----------------------------------------------------------------------------------
    def prepare(self, ds, split: str):
        """``(x in the model's space, labels)``: int32 class ids, zeros when unconditional."""
        import tensorflow as tf

        self._raw[split] = ds
        conditional = self.conditional
        out = ds.map(lambda x, y, *_: (self.to_model(x), tf.cast(y, tf.int32) if conditional
                                       else tf.zeros(tf.shape(x)[:1], tf.int32)))
        self._prepared[split] = out
        return out

    # -- scales --------------------------------------------------------------------------------
    def to_model(self, x):
        """Normalised inputs (TF tensors) -> the model's space."""
        lo, hi = self.image_range
        if self.info.is_image and (lo, hi) != (0.0, 1.0):
            return x * (hi - lo) + lo
        return x

    def from_model(self, x: np.ndarray) -> np.ndarray:
        """The model's space -> normalised inputs (images clipped to [0, 1])."""
        x = np.asarray(x, np.float32)
        if self.info.is_image:
            lo, hi = self.image_range
            return np.clip((x - lo) / (hi - lo), 0.0, 1.0)
        return x

    def to_raw(self, x_norm: np.ndarray) -> np.ndarray:
        """Normalised -> the user's scale: images in [0, 1] as they are, vectors in the data's units."""
        if self.info.is_image:
            return np.asarray(x_norm, np.float32)
        mean = np.asarray(self.info.mean, np.float32)
        std = np.asarray(self.info.std, np.float32)
        return (np.asarray(x_norm, np.float32) * std + mean).astype(np.float32)

    def tf_to_user(self):
        """TF twin of ``to_raw(from_model(x))``, for the export's signatures."""
        import tensorflow as tf

        if self.info.is_image:
            lo, hi = self.image_range
            return lambda x: tf.clip_by_value((tf.cast(x, tf.float32) - lo) / (hi - lo), 0.0, 1.0)
        mean = tf.constant(np.asarray(self.info.mean, np.float32))
        std = tf.constant(np.asarray(self.info.std, np.float32))
        return lambda x: tf.cast(x, tf.float32) * std + mean

    # -- sampling ------------------------------------------------------------------------------
    def requested_labels(self, n: int, label: int | None = None) -> np.ndarray | None:
        """The classes to draw: ``label`` n times, the classes in turn, or None (unconditional)."""
        if not self.conditional:
            return None
        if label is not None:
            return np.full(n, int(label), np.int32)
        return (np.arange(n) % int(self.info.num_classes)).astype(np.int32)

    def generate(self, model, n: int, seed: int, labels: np.ndarray | None = None,
                 steps: int | None = None) -> np.ndarray:
        """``n`` examples in the model's space from ``model`` (trainable, rebuilt or inference)."""
        raise NotImplementedError

    def sample(self, model, n: int, seed: int, *, label: int | None = None, steps: int | None = None) -> np.ndarray:
        """``n`` examples in the user's scale (images in [0, 1], vectors in the data's units)."""
        self.check_label(label)
        self.check_steps(steps)
        labels = self.requested_labels(int(n), label)
        return self.to_raw(self.from_model(self.generate(model, int(n), int(seed), labels, steps)))

    # -- figures -------------------------------------------------------------------------------
    def sample_figure(self, model, path: str, *, title: str = "", real: np.ndarray | None = None) -> str:
        """A grid of samples (images; a conditional model: one row per class) or, for vectors, the
        samples over the real data (scatter for 2-D, histogram for 1-D)."""
        from kerasdl.plots import generative as figs

        seed = int(self.config.seed) + 4242
        if self.info.is_image:
            if self.conditional:
                k = int(self.info.num_classes)
                labels = np.repeat(np.arange(k), PER_CLASS).astype(np.int32)
                images = self.from_model(self.generate(model, len(labels), seed, labels))
                return figs.image_grid(images, path, cols=PER_CLASS,
                                       title=f"{title} (one row per class)" if title else "one row per class")
            images = self.from_model(self.generate(model, SAMPLE_GRID, seed))
            return figs.image_grid(images, path, cols=8, title=title)
        n = 1000
        samples = self.to_raw(self.from_model(self.generate(model, n, seed, self.requested_labels(n))))
        if real is None:
            real = self._real_raw("validation")
        return figs.sample_scatter(samples, real, path, title=title, feature_names=self.info.feature_names)

    def callbacks(self, run_dir: str) -> list:
        every = int(getattr(self.opts, "sample_every", 0))
        if every <= 0:
            return []
        os.makedirs(os.path.join(run_dir, SAMPLE_DIR), exist_ok=True)
        return [sample_grid_callback(self, run_dir, every)]

    def plots(self, report: dict, model, ds, run_dir: str, split: str = "test") -> list[str]:
        from kerasdl.tasks.autoencoder import plot_path

        path, rel = plot_path(run_dir, "samples.png")
        real = None if self.info.is_image else self.to_raw(self._arrays(ds, split)[0])
        self.sample_figure(model, path, title=f"{self.config.model} on {self.config.dataset}: samples", real=real)
        return [rel]

    # -- data helpers --------------------------------------------------------------------------
    def _arrays(self, ds, split: str = "test", limit: int | None = None):
        """``(x normalised, labels)`` of the raw split behind ``ds``."""
        from kerasdl.tasks.autoencoder import collect

        if split in self._raw and ds is self._prepared.get(split):
            ds = self._raw[split]
        return collect(ds, limit)

    def _split(self, split: str, limit: int | None = None):
        """``(x, labels)`` of a split loaded afresh (unshuffled, no augmentation)."""
        return load_split(self.config, split, limit)

    def _real_raw(self, split: str) -> np.ndarray:
        if split in self._raw:
            return self.to_raw(self._arrays(self._raw[split], split)[0])
        return self.to_raw(self._split(split)[0])

    # -- evaluation ----------------------------------------------------------------------------
    def evaluate(self, model, ds, **kw) -> dict:
        """Quality of ``eval_samples`` samples against the real split behind ``ds`` (see the module
        docstring, :func:`sample_quality`); a subclass adds figures in :meth:`extra_figures`."""
        seed = int(self.config.seed)
        x_test, _ = self._arrays(ds)
        drawn = int(kw.get("samples", self.opts.eval_samples))
        requested = self.requested_labels(drawn)
        generated = self.from_model(self.generate(model, drawn, seed + 101, requested, kw.get("steps")))
        report = sample_quality(self.config, self.info, generated, x_test, self._split("train"),
                                requested=requested, to_raw=self.to_raw)
        report.update(self.extra_figures(model, generated, x_test))
        return report

    def extra_figures(self, model, generated: np.ndarray, x_test: np.ndarray) -> dict:
        """Figures a subclass adds to the report (e.g. the VQ-VAE's codebook usage)."""
        return {}

    # -- tuning --------------------------------------------------------------------------------
    def tune_objectives(self) -> dict[str, str]:
        name, mode = self.monitor()
        return {name: mode}
