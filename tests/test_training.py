"""Config resolution and learning-rate schedules (no training loops here)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kerasdl.config import RunConfig
from kerasdl.errors import KerasdlUsageError, UnknownNameError


def lr_curve(**kw):
    from kerasdl.engine.optim import make_schedule

    config = RunConfig(**{"epochs": 10, "learning_rate": 0.1, "schedule": "constant", **kw})
    schedule = make_schedule(config, steps_per_epoch=10)
    return np.array([float(schedule(s)) for s in range(100)])


def test_constant_and_warmup():
    assert np.allclose(lr_curve(), 0.1)
    warm = lr_curve(warmup_epochs=2)
    assert warm[0] == pytest.approx(0.1 / 20) and warm[19] == pytest.approx(0.1) and np.allclose(warm[20:], 0.1)
    assert np.all(np.diff(warm[:20]) > 0)


def test_step_decay():
    lr = lr_curve(schedule="step", lr_decay_epochs=3, lr_decay_factor=0.5)
    assert lr[29] == pytest.approx(0.1) and lr[30] == pytest.approx(0.05) and lr[60] == pytest.approx(0.025)


def test_cosine_and_onecycle():
    cos = lr_curve(schedule="cosine", min_learning_rate=0.001)
    assert cos[0] == pytest.approx(0.1) and cos[50] == pytest.approx(0.001 + 0.5 * 0.099, rel=1e-5)
    assert np.all(np.diff(cos) <= 1e-9) and cos[-1] == pytest.approx(0.001 + 0.5 * 0.099 * (1 + math.cos(math.pi * 0.99)), rel=1e-4)
    one = lr_curve(schedule="onecycle")
    peak = int(np.argmax(one))
    assert one[0] == pytest.approx(0.1 / 25) and one[peak] == pytest.approx(0.1) and 25 <= peak <= 35
    assert one[-1] < 0.001


def test_every_optimizer_builds():
    from kerasdl.config import OPTIMIZERS
    from kerasdl.engine.optim import make_optimizer

    for name in OPTIMIZERS:
        opt = make_optimizer(RunConfig(optimizer=name), steps_per_epoch=5)
        assert opt is not None
    nesterov = make_optimizer(RunConfig(optimizer="nesterov"), 5)
    assert nesterov.nesterov and nesterov.momentum == 0.9


def test_config_validation_and_yaml(tmp_path):
    with pytest.raises(KerasdlUsageError, match="Received: epochs=0"):
        RunConfig(epochs=0).validate()
    with pytest.raises(UnknownNameError, match="'adam'"):
        RunConfig(optimizer="adma").validate()
    (tmp_path / "c.yaml").write_text("epochs: 3\nbatchsize: 12\n")
    with pytest.raises(UnknownNameError, match="batch_size"):
        RunConfig.from_yaml(str(tmp_path / "c.yaml"))
    (tmp_path / "c.yaml").write_text("epochs: 3\nmodel: mlp\n")
    config = RunConfig.from_yaml(str(tmp_path / "c.yaml"), {"epochs": 5})
    assert (config.epochs, config.model, config.dataset) == (5, "mlp", "mnist5k")
    resolved = config.resolved()
    assert resolved.name.startswith("mlp-mnist5k-")
    resolved.save(str(tmp_path / "saved.yaml"))
    assert RunConfig.from_yaml(str(tmp_path / "saved.yaml")) == resolved  # round trip


def test_auxiliary_heads_default_on_from_scratch_only():
    from kerasdl.models import build_model
    from kerasdl.engine.fit import with_default_options
    from kerasdl.tasks.supervised import main_output

    assert with_default_options(RunConfig(model="googlenet")).model_options == {"aux_logits": True}
    assert with_default_options(RunConfig(model="googlenet", init_from="runs/x")).model_options == {"aux_logits": False}
    assert with_default_options(RunConfig(model="googlenet", model_options={"aux_logits": False})).model_options == {
        "aux_logits": False}
    assert with_default_options(RunConfig(model="lenet5")).model_options == {}
    model = build_model("googlenet", input_shape=(32, 32, 3), num_classes=10, aux_logits=True)
    assert len(model.outputs) == 3
    inference = main_output(model)
    assert len(inference.outputs) == 1 and inference.output_shape == (None, 10)
    assert not any(layer.name.startswith("aux") for layer in inference.layers)
