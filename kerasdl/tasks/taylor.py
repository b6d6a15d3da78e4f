"""Input derivatives of a smooth MLP up to second order by forward propagation (Taylor mode).

A PINN's residual needs ``u``, ``du/dx_i`` and ``d2u/dx_i dx_j`` at every collocation point, then the
gradient of a loss of them with respect to the weights. Nested reverse-mode tapes
(:func:`kerasdl.tasks.pinn.field_values`) get the input derivatives by differentiating the whole
network once per order, and the weight gradient then differentiates *through those backward
passes*: on CPU, in float64, about four fifths of a Burgers step. For the networks PINNs use --
an affine input map, dense layers, smooth elementwise activations, Fourier features -- the
derivatives can instead be carried forward with the values, layer by layer (the chain rule for
jets; Griewank & Walther 2008, "Evaluating Derivatives", ch. 13; the "Taylor mode" of JAX's
``jax.experimental.jet``, Bettencourt, Johnson & Duvenaud 2019):

* affine ``z = W h + b``: ``dz_i = W dh_i``, ``d2z_ij = W d2h_ij`` (the value and every derivative
  channel go through one stacked matmul);
* elementwise ``a = s(z)``: ``da_i = s'(z) dz_i``, ``d2a_ij = s'(z) d2z_ij + s''(z) dz_i dz_j``;
* Fourier features ``[cos z, sin z]`` with ``z = 2 pi x B``: the same rule with cos / sin.

Then one reverse pass gives the weight gradient. The result equals the tapes' to rounding
(tests/test_pinn.py). :func:`supports` says whether a network is made only of such layers; the
task falls back to the tapes otherwise (third derivatives, other layers, hard-constraint
transforms of arbitrary user code).
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from kerasdl.models.pinn import FourierFeatures

__all__ = ["supports", "derivatives"]


def _activation_rule(fn):
    """``z -> (s(z), s'(z), s''(z))`` for a supported activation, else None."""
    acts = keras.activations
    if fn in (acts.linear, None):
        return "linear"
    if fn is acts.tanh:
        def rule(z):
            s = tf.tanh(z)
            d1 = 1.0 - s * s
            return s, d1, -2.0 * s * d1
        return rule
    if fn is acts.sigmoid:
        def rule(z):
            s = tf.sigmoid(z)
            d1 = s * (1.0 - s)
            return s, d1, d1 * (1.0 - 2.0 * s)
        return rule
    if fn in (acts.silu, getattr(acts, "swish", None)):
        def rule(z):
            s = tf.sigmoid(z)
            d = s * (1.0 - s)
            return z * s, s + z * d, 2.0 * d + z * d * (1.0 - 2.0 * s)
        return rule
    if fn is acts.softplus:
        def rule(z):
            s = tf.sigmoid(z)
            return tf.nn.softplus(z), s, s * (1.0 - s)
        return rule
    if fn is keras.ops.sin:
        def rule(z):
            s = tf.sin(z)
            return s, tf.cos(z), -s
        return rule
    return None


def supports(net) -> bool:
    """Is ``net`` a chain of layers this module propagates derivatives through?"""
    layers = getattr(net, "layers", None)
    if not layers or not isinstance(layers[0], keras.layers.InputLayer):
        return False
    chain = layers[1:]
    try:  # a plain chain: every layer takes the previous one's output, one input and one output
        if len(net.inputs) != 1 or len(net.outputs) != 1 or net.outputs[0] is not chain[-1].output:
            return False
        for prev, layer in zip(layers, chain):
            if layer.input is not prev.output:
                return False
    except (AttributeError, IndexError, ValueError):
        return False
    for layer in chain:
        if isinstance(layer, keras.layers.Dense):
            if _activation_rule(layer.activation) is None:
                return False
        elif isinstance(layer, keras.layers.Normalization):
            if getattr(layer, "invert", False):
                return False
        elif not isinstance(layer, FourierFeatures):
            return False
    return True


def derivatives(net, x, firsts, seconds):
    """``(u, {i: du/dx_i}, {(i, j): d2u/dx_i dx_j})`` of ``net`` at points ``x`` (N, d), each (N, out).

    ``firsts``: input indices; ``seconds``: index pairs (i <= j). Every pair's indices must be in
    ``firsts`` (the second-order rule needs the first-order channels).
    """
    firsts, seconds = list(firsts), list(seconds)
    d = x.shape[-1]
    eye = tf.eye(d, dtype=x.dtype)
    v = x
    g = [tf.broadcast_to(eye[i], tf.shape(x)) for i in firsts]  # dx/dx_i
    h = [tf.zeros_like(x) for _ in seconds]
    where = {i: k for k, i in enumerate(firsts)}

    def stacked_matmul(kernel):
        return tf.matmul(v, kernel), [tf.matmul(c, kernel) for c in g], [tf.matmul(c, kernel) for c in h]

    for layer in net.layers[1:]:
        if isinstance(layer, keras.layers.Normalization):
            mean = tf.cast(tf.convert_to_tensor(layer.mean), x.dtype)
            std = tf.maximum(tf.sqrt(tf.cast(tf.convert_to_tensor(layer.variance), x.dtype)),
                             keras.config.epsilon())
            v = (v - mean) / std
            g = [gi / std for gi in g]
            h = [hi / std for hi in h]
        elif isinstance(layer, FourierFeatures):
            kernel = 2.0 * math.pi * tf.cast(tf.convert_to_tensor(layer.kernel), x.dtype)
            z, dz, d2z = stacked_matmul(kernel)
            c, s = tf.cos(z), tf.sin(z)
            v = tf.concat([c, s], axis=-1)
            g = [tf.concat([-s * dzi, c * dzi], axis=-1) for dzi in dz]
            h = [tf.concat([-c * dz[where[i]] * dz[where[j]] - s * d2, -s * dz[where[i]] * dz[where[j]] + c * d2],
                           axis=-1)
                 for (i, j), d2 in zip(seconds, d2z)]
        else:  # Dense
            z, dz, d2z = stacked_matmul(tf.cast(tf.convert_to_tensor(layer.kernel), x.dtype))
            if layer.use_bias:
                z = z + tf.cast(tf.convert_to_tensor(layer.bias), x.dtype)
            rule = _activation_rule(layer.activation)
            if rule == "linear":
                v, g, h = z, dz, d2z
                continue
            v, s1, s2 = rule(z)
            h = [s1 * d2 + s2 * dz[where[i]] * dz[where[j]] for (i, j), d2 in zip(seconds, d2z)]
            g = [s1 * dzi for dzi in dz]
    return v, dict(zip(firsts, g)), dict(zip(seconds, h))


def fields(net, x, keys, inputs) -> dict:
    """The same dict as :func:`kerasdl.tasks.pinn.field_values` (inputs by name, ``u``, derivative
    keys of order <= 2), by forward propagation through ``net`` (:func:`supports` must hold)."""
    from kerasdl.data.pde import parse_derivative

    paths = {key: parse_derivative(key, inputs) for key in keys}
    firsts = sorted({i for p in paths.values() for i in p})
    seconds = sorted({tuple(sorted(p)) for p in paths.values() if len(p) == 2})
    u, g, h = derivatives(net, x, firsts, seconds)
    out = {name: x[:, i:i + 1] for i, name in enumerate(inputs)}
    out["u"] = u
    for key, path in paths.items():
        out[key] = g[path[0]] if len(path) == 1 else h[tuple(sorted(path))]
    return out
