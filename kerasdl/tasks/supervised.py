"""What classification, regression and segmentation share: ``(x, y)`` data, one model of logits
(or predictions) trained by ``compile(loss, metrics) + fit``, and "normalise, forward, softmax" at
export. :mod:`.classification`, :mod:`.regression` and :mod:`.segmentation` are thin subclasses.

The loss comes from :mod:`kerasdl.tasks.losses` (any registry loss that fits the dataset), the
figures from :mod:`kerasdl.evaluation.report`; models with auxiliary heads (GoogLeNet) train every
head on the same labels (Szegedy et al. 2015) and are evaluated through the main output.
"""

from __future__ import annotations

from kerasdl import runs
from kerasdl.errors import KerasdlUsageError, first_line
from kerasdl.tasks.base import Endpoint, Task

AUX_LOSS_WEIGHT = 0.3  # Szegedy et al. 2015: auxiliary classifier losses weighted by 0.3


def make_loss(config, info):
    """The loss object for ``config.loss`` (or the task's default), checked against the task.

    Any registry loss (:mod:`kerasdl.tasks.losses`) that fits the dataset's task; ``binary_crossentropy``
    only on two-class sets, where the model then outputs one logit (``runs.output_units``).
    With mixup/cutmix the training targets are soft rows and validation keeps class ids, so the
    default sparse cross-entropy becomes ``categorical_crossentropy`` (``augment.soft_target_loss``).
    ``label_smoothing`` > 0 trains the cross-entropies on smoothed targets (Szegedy et al. 2016).
    """
    from kerasdl.data import augment
    from kerasdl.tasks import losses

    name = config.loss or losses.default_loss(info.task)
    if augment.mixes_labels(augment.resolve(config.augment, info.input_shape, info.task)):
        name = augment.soft_target_loss(name)  # mixup/cutmix: soft training targets, class ids on val
    options = {}
    if config.label_smoothing:
        if name not in losses.SMOOTHABLE:
            raise KerasdlUsageError(
                f"label_smoothing needs a cross-entropy loss ({', '.join(losses.SMOOTHABLE)}); "
                f"the run's loss is {name!r}"
            )
        options["smoothing"] = float(config.label_smoothing)
    return losses.make_loss(name, info.task, info.num_classes, dataset=config.dataset, **options)


def make_metrics(config, info) -> list:
    import keras

    if info.task == "regression":
        return ["mae"]
    if config.loss == "binary_crossentropy":
        return [keras.metrics.BinaryAccuracy(threshold=0.0, name="accuracy")]  # threshold on the logit
    if info.task == "segmentation":
        return ["accuracy", keras.metrics.MeanIoU(info.num_classes, sparse_y_pred=False, name="mean_iou")]
    from kerasdl.data import augment

    if augment.mixes_labels(augment.resolve(config.augment, info.input_shape, info.task)):
        return [augment.accuracy_metric()]  # soft training targets and validation class ids alike
    return ["accuracy"]


def main_output(model):
    """The inference model: the first output (of a model trained with auxiliary heads), uncompiled.

    Uncompiled on purpose: ``model.keras`` must load with plain ``keras.saving.load_model``, and
    a compile config naming a kerasdl loss would need ``kerasdl.tasks.losses`` registered first.
    """
    import keras

    return keras.Model(model.inputs, model.outputs[0], name=model.name)


def build_for_dataset(config, info):
    """Build ``config.model`` for the dataset's shape; a shape the model cannot take is bad input,
    and so are a model made for another task, an output the labels cannot fit and a monitor the
    run never logs (:mod:`kerasdl.tasks.checks`)."""
    from kerasdl.models import build_model
    from kerasdl.tasks import checks

    checks.check_task(config.model, config.dataset, info.task, getattr(config, "task", "auto"))
    try:
        model = build_model(
            config.model, input_shape=tuple(info.input_shape), num_classes=runs.output_units(config, info),
            **config.model_options,
        )
    except KerasdlUsageError:
        raise
    except (ValueError, TypeError) as exc:  # keras's own shape checks
        raise KerasdlUsageError(
            f"model {config.model!r} cannot take dataset {config.dataset!r} "
            f"(input_shape={tuple(info.input_shape)}): {first_line(exc)}"
        ) from None
    checks.check_built_model(model, config, info, runs.output_units(config, info), make_metrics(config, info))
    return model


class SupervisedTask(Task):
    """A model of logits (classes, mask classes) or predictions (regression) fitted to labels."""

    data_kind = "supervised"
    roles = ("classifier", "segmenter")

    def __init__(self, config, info):
        super().__init__(config, info)
        self._predicted = None  # (dataset, (logits, labels)): evaluate and plots share one forward pass

    def check(self) -> None:
        from kerasdl.tasks import checks

        checks.check_task(self.config.model, self.config.dataset, self.info.task, self.config.task)
        make_loss(self.config, self.info)  # a loss that does not fit the labels: refused now

    def prepare(self, ds, split: str):
        if split != "train":
            return ds
        from kerasdl.data import augment

        config, info = self.config, self.info
        transforms = augment.resolve(config.augment, info.input_shape, info.task)
        return augment.apply(ds, transforms, info.input_shape, config.seed, num_classes=info.num_classes,
                             mean=info.mean, std=info.std).prefetch(-1)

    def build(self):
        return build_for_dataset(self.config, self.info)

    def compile(self, model, optimizer, train_ds, val_ds, **speed):
        """One loss per head: a model with auxiliary classifiers gets the labels once per head."""
        config, info = self.config, self.info
        loss = make_loss(config, info)
        extra_heads = len(model.outputs) - 1
        if extra_heads:  # auxiliary classifiers: the same labels for every head, weighted losses
            n = extra_heads + 1
            train_ds = train_ds.map(lambda x, y: (x, (y,) * n))
            val_ds = val_ds.map(lambda x, y: (x, (y,) * n))
            model.compile(optimizer=optimizer, loss=[loss] * n,
                          loss_weights=[1.0] + [AUX_LOSS_WEIGHT] * extra_heads,
                          metrics=[make_metrics(config, info)] + [[] for _ in range(extra_heads)], **speed)
        else:
            model.compile(optimizer=optimizer, loss=loss, metrics=make_metrics(config, info), **speed)
        return train_ds, val_ds

    def inference_model(self, model):
        return main_output(model)

    def rebuild(self):
        from kerasdl.models import build_model

        config, info = self.config, self.info
        return build_model(config.model, input_shape=tuple(info.input_shape),
                           num_classes=runs.output_units(config, info), **config.model_options)

    def _logits(self, model, ds):
        from kerasdl.evaluation import report

        if self._predicted is None or self._predicted[0] is not ds:
            self._predicted = (ds, report.predict_logits(model, ds))
        return self._predicted[1]

    def evaluate(self, model, ds, **kw) -> dict:
        from kerasdl.evaluation import report

        return report.evaluate_model(model, ds, self.info, n_bins=self.config.ece_bins,
                                     predicted=self._logits(model, ds), **kw)

    def plots(self, report_: dict, model, ds, run_dir: str, split: str = "test") -> list[str]:
        from kerasdl.evaluation import report

        return report.write_plots(report_, self.info, run_dir, split, dataset=ds, predicted=self._logits(model, ds))

    def after_fit(self, model, val_ds, test_ds, run_dir: str, record: dict, title: str = "") -> None:
        """Calibration and conformal sets, fitted on validation (classifiers only)."""
        from kerasdl.evaluation import posthoc

        config = self.config
        if config.calibrate and posthoc.calibratable(self.info):
            calibrated = posthoc.calibrate(model, self.info, val_ds, test_ds, run_dir, method=config.calibration,
                                           n_bins=config.ece_bins, conformal_alpha=config.conformal_alpha,
                                           seed=config.seed, title=title)
            record["calibration"] = posthoc.summary(calibrated)

    def endpoints(self, model, run_dir: str) -> dict[str, Endpoint]:
        """``serving_default``: raw inputs -> probabilities and class (calibrated when the run was),
        or predictions for a regressor."""
        from kerasdl.tasks import serving

        serve, spec, _ = serving.supervised_serving(model, self.info, run_dir)
        return {"serving_default": Endpoint(serve, [spec])}

    def export_outputs(self, run_dir: str) -> list[str]:
        from kerasdl.tasks import serving

        return serving.supervised_outputs(self.info, run_dir)

    def tune_objectives(self) -> dict[str, str]:
        """``kerasdl tune``'s objectives, measured on the validation split after each trial: loss,
        accuracy, NLL and ECE (Guo et al. 2017), with their directions."""
        return {"val_loss": "min", "val_accuracy": "max", "val_nll": "min", "val_ece": "min"}
