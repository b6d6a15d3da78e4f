"""Transfer learning: start a model from another run's weights, optionally with a frozen backbone.

The lecture recipe, one flag each (``kerasdl train --init-from runs/<source> ...``):

1. fixed feature extractor: ``--freeze backbone`` -- only the (new) head trains;
2. fine-tune the top: ``--freeze backbone --unfreeze-last N`` -- the head and the last N
   weighted layers of the backbone train;
3. fine-tune everything with a lower learning rate: ``--freeze none --lr 1e-4``.

The backbone can also come from ImageNet: ``--pretrained imagenet`` (instead of ``--init-from``)
loads keras.applications' weights into a model that has a keras.applications twin
(:mod:`kerasdl.engine.pretrained`); ``--freeze backbone`` then trains only the new head.

Steps 2 and 3 work best started from step 1's run (``--init-from`` that run): its head is already
trained, so the first fine-tuning steps do not push large random-head gradients into the backbone.

Weights are matched by layer name (builders name layers hierarchically, so ``conv2_conv`` means
the same thing in both models) and copied where every weight's shape agrees. A layer whose
shapes differ -- the classifier ``head_logits`` when the class count changed -- keeps its fresh
initialisation: the head is replaced automatically.
"""

from __future__ import annotations

from kerasdl import runs
from kerasdl.runs.load import load_run
from kerasdl.errors import KerasdlUsageError


def transfer_weights(model, source_run: str, class_names=None) -> dict:
    """Copy the source run's best weights into ``model`` layer by layer; report what happened.

    The classifier ``head_logits`` is copied only when it predicts the same classes (same names,
    same order); a new label set always gets a fresh head, even when the count happens to agree.
    """
    source = load_run(source_run)
    by_name = {layer.name: layer for layer in source.model.layers}
    same_labels = class_names is None or list(class_names) == list(source.info.class_names)
    copied, reinitialised = [], []
    for layer in model.layers:
        if not layer.weights:
            continue
        src = by_name.get(layer.name)
        if layer.name == "head_logits" and not same_labels:
            src = None
        if src is not None and [tuple(w.shape) for w in src.weights] == [tuple(w.shape) for w in layer.weights]:
            layer.set_weights(src.get_weights())
            copied.append(layer.name)
        else:
            reinitialised.append(layer.name)
    if not copied:
        raise KerasdlUsageError(
            f"no layer of {source.config.model} (from {source_run}) matches {model.name} by name and shape; "
            "nothing to transfer"
        )
    return {"from": source_run, "source_model": source.config.model, "source_dataset": source.config.dataset,
            "copied_layers": len(copied), "reinitialised": reinitialised}


def freeze_backbone(model, head_layers: list[str], unfreeze_last: int = 0) -> dict:
    """Freeze every weighted layer except the head (the re-initialised layers) and the last N others.

    Frozen BatchNormalization layers run in inference mode in Keras 3, so their statistics stay
    those of the source data -- the standard fine-tuning practice.
    """
    head = set(head_layers) | {"head_logits"}
    backbone = [layer for layer in model.layers if layer.weights and layer.name not in head]
    if unfreeze_last > len(backbone):
        raise KerasdlUsageError(
            f"unfreeze_last={unfreeze_last} but the backbone has only {len(backbone)} weighted layers"
        )
    trainable = backbone[len(backbone) - unfreeze_last:] if unfreeze_last else []
    for layer in backbone:
        layer.trainable = layer in trainable
    return {"frozen_layers": len(backbone) - len(trainable), "unfrozen_backbone_layers": [l.name for l in trainable]}
