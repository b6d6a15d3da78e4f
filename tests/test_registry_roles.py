"""The registry holds components, not only classifiers (issue #14): roles, required arguments
with defaults, companions, the role filter, and presets registered from tables."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from kerasdl.errors import KerasdlUsageError, UnknownNameError
from kerasdl.models import ROLES, build_model, list_models, model_info, param_counts, registry


def _counts(model) -> tuple[int, int]:
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights), model.count_params()


def test_roles_of_the_zoo():
    assert ROLES[:2] == ("classifier", "segmenter") and "encoder" in ROLES and "critic" in ROLES
    assert model_info("resnet18").role == "classifier" and model_info("mlp").role == "classifier"
    unet = model_info("unet")
    assert (unet.role, unet.task) == ("segmenter", "segmentation")
    assert unet.required == ("input_shape", "num_classes") and unet.defaults == {}
    assert unet.companion == ""
    assert "unet" in list_models(role="segmenter") and "resnet18" not in list_models(role="segmenter")
    assert "resnet18" in list_models(role="classifier")
    assert list_models(task="segmentation") == list_models(role="segmenter")
    assert list_models() == sorted(list_models(role="classifier") + list_models(role="segmenter")
                                   + [n for r in ROLES[2:] for n in list_models(role=r)])
    with pytest.raises(UnknownNameError, match="did you mean 'encoder'") as exc:
        list_models(role="encodr")
    assert "\n" not in str(exc.value)


def _encoder(input_shape, latent_dim, *, units=4, name="tiny_encoder"):
    inputs = keras.Input(input_shape, name="input")
    x = keras.layers.Dense(units, name="hidden")(inputs)
    return keras.Model(inputs, keras.layers.Dense(latent_dim, name="z")(x), name=name)


def _decoder(latent_dim, output_shape, *, name="tiny_decoder"):
    inputs = keras.Input((latent_dim,), name="z")
    x = keras.layers.Dense(int(np.prod(output_shape)), name="out")(inputs)
    return keras.Model(inputs, keras.layers.Reshape(output_shape)(x), name=name)


@pytest.fixture
def components():
    names = ("tiny_encoder_test", "tiny_decoder_test")
    try:
        @registry.register_model(names[0], builder=_encoder, family="tiny_ae", role="encoder",
                                 paper="none", required=("input_shape", "latent_dim"),
                                 defaults={"latent_dim": 3}, default_input_shape=(5,),
                                 companion=names[1])
        def tiny_encoder_test(input_shape, latent_dim, **overrides):
            return _encoder(input_shape, latent_dim, **{"name": names[0], **overrides})

        registry.register_presets(_decoder, {names[1]: dict(notes="mirror", preset={})},
                                  family="tiny_ae", role="decoder", paper="none",
                                  required=("latent_dim", "output_shape"),
                                  defaults={"latent_dim": 3, "output_shape": [5]})
        yield names
    finally:
        for name in names:
            registry._REGISTRY.pop(name, None)


def test_a_component_builds_with_its_defaults_and_overrides(components):
    encoder, decoder = components
    info = model_info(encoder)
    assert (info.role, info.task, info.required) == ("encoder", "encoder", ("input_shape", "latent_dim"))
    assert info.defaults == {"latent_dim": 3} and info.overrides == ("name", "units")
    assert info.companion == decoder and info.default_arguments() == {"input_shape": (5,), "latent_dim": 3}
    assert encoder in list_models(role="encoder") and decoder in list_models(role="decoder")
    assert encoder not in list_models(role="decoder") + list_models(role="classifier")
    assert json.loads(json.dumps(model_info(decoder).to_dict()))["defaults"] == {"latent_dim": 3,
                                                                                 "output_shape": [5]}
    assert model_info(decoder).defaults["output_shape"] == (5,)  # stored as the catalogue writes it

    model = build_model(encoder)  # every required argument from the defaults
    assert model.name == encoder and tuple(model.input_shape) == (None, 5)
    assert tuple(model.output_shape) == (None, 3)
    model = build_model(encoder, input_shape=(7,), latent_dim=2, units=6, name="enc")
    assert model.name == "enc" and tuple(model.output_shape) == (None, 2)
    assert model.get_layer("hidden").units == 6

    dec = build_model(decoder, latent_dim=2, output_shape=(2, 3))
    assert dec.name == decoder and tuple(dec.input_shape) == (None, 2)
    assert tuple(dec.output_shape) == (None, 2, 3)
    assert tuple(build_model(decoder).output_shape) == (None, 5)


def test_a_component_refuses_unknown_options_in_one_line(components):
    encoder, decoder = components
    for name, kwargs, fragment in [
        (encoder, {"latnt_dim": 2}, "did you mean 'latent_dim'"),
        (encoder, {"num_classes": 3}, "unknown tiny_encoder_test option 'num_classes'"),
        (decoder, {"input_shape": (5,)}, "unknown tiny_decoder_test option 'input_shape'"),
    ]:
        with pytest.raises(UnknownNameError, match=fragment) as exc:
            build_model(name, **kwargs)
        assert "\n" not in str(exc.value) and "latent_dim" in str(exc.value)
    with pytest.raises(KerasdlUsageError, match="output_shape must be a non-empty tuple") as exc:
        build_model(decoder, output_shape=(0, 3))
    assert "\n" not in str(exc.value)


def test_registration_refuses_duplicates_and_missing_defaults(components):
    encoder, decoder = components
    with pytest.raises(ValueError, match="already registered"):
        registry.register_presets(_decoder, {decoder: {}}, family="x", role="decoder", paper="",
                                  required=("latent_dim", "output_shape"),
                                  defaults={"latent_dim": 3, "output_shape": (5,)})
    with pytest.raises(ValueError, match="no default for required"):
        registry.register_model("tiny_nodefault_test", builder=_encoder, family="x", paper="",
                                role="encoder", required=("input_shape", "latent_dim"),
                                default_input_shape=(5,))(lambda *a, **k: None)
    with pytest.raises(ValueError, match="role"):
        registry.register_model("tiny_badrole_test", builder=_encoder, family="x", paper="",
                                role="autoencoder", required=("input_shape", "latent_dim"),
                                defaults={"latent_dim": 2}, default_input_shape=(5,))(lambda: None)
    assert "tiny_nodefault_test" not in list_models() and "tiny_badrole_test" not in list_models()


@pytest.mark.parametrize("name", ["resnet18", "resnet20"])
def test_the_resnet_preset_table_builds_the_catalogued_models(name):
    from kerasdl.models import resnet

    assert name in (resnet.IMAGENET_PRESETS if name == "resnet18" else resnet.CIFAR_PRESETS)
    model = build_model(name)
    assert model.name == name and model.get_layer("stage3_block2_conv2") is not None
    assert _counts(model) == param_counts(name)
    assert model_info(name).overrides == registry._builder_keywords(
        resnet.ResNet if name == "resnet18" else resnet.CifarResNet)


def test_models_command_role_filter():
    from click.testing import CliRunner

    from kerasdl.cli.main import cli

    result = CliRunner().invoke(cli, ["models", "--role", "segmenter", "--no-params"])
    assert result.exit_code == 0, result.output
    assert [line.split("\t")[0] for line in result.output.splitlines()[1:]] == ["unet"]
    result = CliRunner().invoke(cli, ["models", "--role", "encodr"])
    assert result.exit_code == 2 and "did you mean 'encoder'" in result.output


def test_to_dict_keeps_a_classifiers_dict_and_adds_a_components_fields(components):
    encoder, _ = components
    assert "role" not in model_info("resnet18").to_dict()  # as before roles
    d = model_info(encoder).to_dict()
    assert (d["role"], d["required"], d["defaults"]) == ("encoder", ["input_shape", "latent_dim"],
                                                         {"latent_dim": 3})
    assert registry.info_from_record(encoder, d) == model_info(encoder)
    assert registry.info_from_record("unet", model_info("unet").to_dict()).role == "segmenter"
