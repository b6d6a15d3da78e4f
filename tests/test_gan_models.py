"""GAN family (models/gan.py): generator and discriminator builders at tiny sizes, unconditional and
conditional, their registry entries (roles, required arguments, defaults, companions) and the
one-line refusals."""

from __future__ import annotations

import re

import numpy as np
import pytest

from kerasdl.errors import KerasdlUsageError
from kerasdl.models import build_model, list_models, model_info

GENERATORS = ("mlp_generator", "dcgan_generator")
DISCRIMINATORS = ("mlp_discriminator", "dcgan_discriminator")
TINY = {"mlp": dict(width=8), "dcgan": dict(filters=4)}  # tiny bodies: seconds on CPU
HIERARCHICAL = re.compile(r"^[a-z]+\d*_[a-z0-9_]+$")  # block_role, e.g. deconv1_conv

# (generator, shape): vectors for mlp (a coin, 2-D points), images for dcgan (mnist5k, CIFAR, 64x64)
CASES = [("mlp_generator", (1,)), ("mlp_generator", (2,)), ("dcgan_generator", (28, 28, 1)),
         ("dcgan_generator", (32, 32, 3)), ("dcgan_generator", (64, 64, 3))]


def _tiny(name):
    return TINY[name.split("_")[0]]


def _names_ok(model):
    names = [layer.name for layer in model.layers]
    assert len(set(names)) == len(names), names
    inputs = [t.name for t in model.inputs]
    assert inputs == ["input", "input_label"][: len(inputs)], inputs
    for layer_name in set(names) - set(inputs):
        assert HIERARCHICAL.match(layer_name), f"{layer_name!r} is not block_role in {names}"


def _assert_one_line(excinfo) -> str:
    message = str(excinfo.value)
    assert message and "\n" not in message
    return message


def test_registry_roles_required_defaults_and_companions():
    assert list_models(role="generator") == sorted(GENERATORS)
    assert list_models(role="discriminator") == sorted(DISCRIMINATORS)
    for gen, dis in zip(GENERATORS, DISCRIMINATORS):
        g, d = model_info(gen), model_info(dis)
        assert (g.role, g.family, g.task, g.companion) == ("generator", "gan", "gan", dis)
        assert (d.role, d.family, d.task) == ("discriminator", "gan", "gan")
        assert g.required == ("latent_dim", "output_shape") and d.required == ("input_shape",)
        assert g.is_component and d.is_component
        assert {"num_classes", "norm", "kernel_initializer"} <= set(g.overrides)
        assert {"num_classes", "norm", "dropout"} <= set(d.overrides)
    assert model_info("mlp_generator").default_arguments() == {"latent_dim": 64, "output_shape": (2,)}
    assert model_info("dcgan_generator").default_arguments() == {"latent_dim": 64,
                                                                "output_shape": (28, 28, 1)}
    assert model_info("mlp_discriminator").default_arguments() == {"input_shape": (2,)}
    assert model_info("dcgan_discriminator").default_arguments() == {"input_shape": (28, 28, 1)}


@pytest.mark.parametrize("name", GENERATORS + DISCRIMINATORS)
def test_every_entry_builds_at_its_defaults(name):
    model = build_model(name, **_tiny(name))
    assert model.name == name
    info = model_info(name)
    if info.role == "generator":
        assert tuple(model.output_shape[1:]) == info.defaults["output_shape"]
    else:
        assert tuple(model.output_shape) == (None, 1)


@pytest.mark.parametrize("num_classes", [0, 3])
@pytest.mark.parametrize("gen,shape", CASES)
def test_generator_and_its_discriminator(gen, shape, num_classes):
    latent, batch = 5, 4
    g = build_model(gen, latent_dim=latent, output_shape=shape, num_classes=num_classes, **_tiny(gen))
    d = build_model(model_info(gen).companion, input_shape=shape, num_classes=num_classes, **_tiny(gen))
    _names_ok(g)
    _names_ok(d)
    rng = np.random.default_rng(0)
    z = (rng.normal(size=(batch, latent)) * 50).astype("float32")  # large z: saturates a tanh
    labels = np.arange(batch, dtype="int32") % max(num_classes, 1)
    conditional = num_classes > 0
    assert len(g.inputs) == len(d.inputs) == (2 if conditional else 1)
    if conditional:
        assert tuple(g.inputs[1].shape) == (None,) and tuple(d.inputs[1].shape) == (None,)
    x = np.asarray(g([z, labels] if conditional else z, training=False))
    assert x.shape == (batch, *shape) and np.all(np.isfinite(x))
    if gen == "dcgan_generator":
        assert g.layers[-1].name == "output_act" and np.abs(x).max() <= 1.0  # tanh
    else:
        assert g.layers[-1].name == "output_reshape"  # linear: standardised vectors
    logit = np.asarray(d([x, labels] if conditional else x, training=False))
    assert logit.shape == (batch, 1) and np.all(np.isfinite(logit))  # ONE logit, no sigmoid
    assert d.layers[-1].name == "head_logits" and d.layers[-1].activation.__name__ == "linear"


def test_conditioning_changes_the_outputs():
    g = build_model("mlp_generator", latent_dim=3, output_shape=(2,), num_classes=4, width=8)
    d = build_model("dcgan_discriminator", input_shape=(28, 28, 1), num_classes=4, filters=4)
    z = np.ones((4, 3), "float32")
    out = np.asarray(g([z, np.arange(4)]))
    assert not np.allclose(out[0], out[1])  # same z, other label
    assert g.get_layer("label_embed").input_dim == 4
    assert tuple(d.get_layer("label_concat").output.shape) == (None, 28, 28, 2)  # the label channel
    x = np.zeros((4, 28, 28, 1), "float32")
    logits = np.asarray(d([x, np.arange(4)]))
    assert not np.allclose(logits[0], logits[1])


def test_dcgan_layout_follows_the_image_size():
    for shape, stages, base in [((28, 28, 1), 2, 7), ((32, 32, 3), 3, 4), ((64, 64, 3), 4, 4)]:
        g = build_model("dcgan_generator", latent_dim=2, output_shape=shape, filters=2)
        top = 2 * 2 ** (stages - 1)  # filters=2 on the last hidden map, doubled per stage down
        assert tuple(g.get_layer("project_reshape").output.shape) == (None, base, base, top)
        convs = [layer for layer in g.layers if layer.name.endswith(("_conv", "_deconv"))]
        assert len(convs) == stages and all(c.strides == (2, 2) for c in convs)
        assert convs[0].kernel_size == (5, 5)
        d = build_model("dcgan_discriminator", input_shape=shape, filters=2)
        assert len([layer for layer in d.layers if layer.name.endswith("_conv")]) == stages
        assert tuple(d.get_layer("features_flatten").output.shape) == (None, base * base * top)
    g = build_model("dcgan_generator", latent_dim=2, filters=2, kernel_size=4)
    assert g.get_layer("deconv1_conv").kernel_size == (4, 4)


def test_discriminator_norm_options():
    def norms(model):
        return [type(layer).__name__ for layer in model.layers if layer.name.endswith(("_bn", "_ln"))]

    batch = build_model("dcgan_discriminator", input_shape=(32, 32, 3), filters=2)
    assert norms(batch) == ["BatchNormalization"] * 2  # 3 convs, the first unnormalised
    assert batch.get_layer("conv1_conv").use_bias and not batch.get_layer("conv2_conv").use_bias
    assert "LeakyReLU" in type(batch.get_layer("conv1_act")).__name__
    assert batch.get_layer("conv1_act").negative_slope == pytest.approx(0.2)
    critic = build_model("dcgan_discriminator", input_shape=(32, 32, 3), filters=2, norm="layer")
    assert norms(critic) == ["GroupNormalization"] * 2  # layer norm over (H, W, C): WGAN-GP
    assert critic.get_layer("conv2_ln").groups == 1
    assert norms(build_model("dcgan_discriminator", filters=2, norm="none")) == []
    assert norms(build_model("mlp_discriminator", width=4)) == []
    assert norms(build_model("mlp_discriminator", width=4, norm="layer")) == ["LayerNormalization"] * 2
    g = build_model("dcgan_generator", latent_dim=2, filters=2)
    assert norms(g) == ["BatchNormalization"] * 2  # project + deconv1, never the output


def test_mlp_width_and_depth():
    g = build_model("mlp_generator", latent_dim=2, output_shape=(1,), width=[8, 4, 3], depth=3)
    assert [g.get_layer(f"dense{i}_linear").units for i in (1, 2, 3)] == [8, 4, 3]
    d = build_model("mlp_discriminator", input_shape=(1,), width=6, depth=1, dropout=0.5)
    assert d.get_layer("dense1_linear").units == 6 and d.get_layer("dense1_dropout").rate == 0.5
    with pytest.raises(KerasdlUsageError, match="width has 2 entries but depth=3"):
        build_model("mlp_generator", width=[4, 4], depth=3)


@pytest.mark.parametrize("name,kwargs,fragment", [
    ("dcgan_generator", dict(output_shape=(2,)), "needs (height, width, channels)"),
    ("dcgan_generator", dict(output_shape=(7, 7, 1)), "sides must be even"),
    ("dcgan_generator", dict(output_shape=(27, 28, 1)), "sides must be even"),
    ("dcgan_discriminator", dict(input_shape=(6, 6, 3)), "sides must be even"),
    ("dcgan_discriminator", dict(norm="spectral"), "norm must be one of"),
    ("mlp_generator", dict(num_classes=-1), "num_classes must be an integer >= 0"),
    ("mlp_generator", dict(latent_dim=0), "latent_dim must be an integer >= 1"),
    ("mlp_discriminator", dict(dropout=1.0), "dropout must be a number in [0, 1)"),
    ("mlp_generator", dict(output_activation="maxout"), "output_activation must keep"),
])
def test_bad_arguments_are_refused_in_one_line(name, kwargs, fragment):
    with pytest.raises(KerasdlUsageError) as excinfo:
        build_model(name, **{**_tiny(name), **kwargs})
    assert fragment in _assert_one_line(excinfo)


def test_models_train_one_step():
    """Gradients reach every kernel of a conditional DCGAN generator through its discriminator."""
    import keras

    g = build_model("dcgan_generator", latent_dim=4, output_shape=(28, 28, 1), num_classes=2, filters=2)
    d = build_model("dcgan_discriminator", input_shape=(28, 28, 1), num_classes=2, filters=2)
    z, y = keras.Input((4,)), keras.Input((), dtype="int32")
    d.trainable = False
    stacked = keras.Model([z, y], d([g([z, y]), y]))
    stacked.compile(optimizer=keras.optimizers.SGD(0.1),
                    loss=keras.losses.BinaryCrossentropy(from_logits=True))
    before = [np.array(w) for w in g.trainable_weights]
    rng = np.random.default_rng(0)
    loss = stacked.train_on_batch([rng.normal(size=(4, 4)).astype("float32"), np.array([0, 1, 0, 1])],
                                  np.ones((4, 1), "float32"))
    assert np.isfinite(loss)
    frozen = [w.path for b, w in zip(before, g.trainable_weights)
              if b.ndim >= 2 and np.array_equal(b, np.array(w))]
    assert not frozen, f"kernels without a gradient: {frozen}"  # kernels and the label embedding
