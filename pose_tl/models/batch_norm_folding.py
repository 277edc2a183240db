"""Batch normalisation folded into the convolution before it, for inference.

At inference a batch normalisation is a fixed per-channel scale and shift, so a convolution followed by one is the
same convolution with scaled filters and a bias. Served, the joint refiner (`pose_tl.models.refiner`) runs on a
handful of crops per frame, where its cost is the number of ops more than their arithmetic: folding removes the
normalisations and the casts of their parameters, and leaves each convolution a bias add. The recipes' 16-filter
refiner, bfloat16, on the 2-core AMD EPYC of the README's inference table: a call on 1 crop 3.4 -> 2.4 ms, on 4
crops 3.8 -> 3.3 ms (median of 40 interleaved calls).
"""

import keras
import numpy as np


def fold_batch_norms(model):
    """A copy of the functional `model` in which each BatchNormalization whose input is a Conv2D's output (used by
    nothing else, the convolution without activation) is folded into that convolution; the same `model` where there
    is none. Inference only: the copy has no batch statistics to train."""
    pairs = foldable_pairs(model)
    if not pairs:
        return model
    folded_norms = {id(norm) for norm in pairs.values()}

    def clone(layer):
        config = layer.get_config()
        if id(layer) in folded_norms:
            return FoldedBatchNormalization(name=layer.name, dtype=layer.dtype_policy.name)
        if layer in pairs:
            config = {**config, "use_bias": True}
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone)
    for source in (layer for layer in model.layers if layer.weights):  # inputs are renamed; they hold no weights
        target = copy.get_layer(source.name)
        if source in pairs:
            kernel, bias = folded_weights(source, pairs[source])
            target.set_weights([kernel, bias])
        elif id(source) not in folded_norms:
            target.set_weights(source.get_weights())
    return copy


@keras.saving.register_keras_serializable(package="pose_tl")
class FoldedBatchNormalization(keras.layers.Layer):
    """Where a batch normalisation was, its work now done by the convolution before it: passes its input on (and
    takes the arguments the normalisation was called with)."""

    def call(self, inputs, training=None, mask=None):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape


def foldable_pairs(model):
    """{Conv2D layer: the BatchNormalization layer right after it} of `model`'s graph, where folding is exact."""
    uses = {}
    for layer in model.layers:
        for node in layer._inbound_nodes:
            for tensor in node.input_tensors:
                uses[id(tensor)] = uses.get(id(tensor), 0) + 1
    for tensor in model.outputs:
        uses[id(tensor)] = uses.get(id(tensor), 0) + 1
    layers = set(map(id, model.layers))
    pairs = {}
    for norm in model.layers:
        if not isinstance(norm, keras.layers.BatchNormalization) or len(norm._inbound_nodes) != 1:
            continue
        inputs = norm._inbound_nodes[0].input_tensors
        conv = inputs[0]._keras_history.operation if len(inputs) == 1 else None
        if (isinstance(conv, keras.layers.Conv2D) and id(conv) in layers and len(conv._inbound_nodes) == 1
                and uses.get(id(inputs[0])) == 1 and conv.get_config()["activation"] == "linear"
                and conv.data_format == "channels_last" and norm.axis in (-1, len(inputs[0].shape) - 1)):
            pairs[conv] = norm
    return pairs


def folded_weights(conv, norm):
    """(kernel, bias) of `conv` followed by `norm` at inference: y = (conv(x) + b - mean) * gamma / sqrt(var + eps)
    + beta."""
    kernel = np.asarray(conv.kernel, np.float64)
    bias = np.asarray(conv.bias, np.float64) if conv.use_bias else np.zeros(kernel.shape[-1])
    gamma = np.asarray(norm.gamma, np.float64) if norm.scale else 1.0
    beta = np.asarray(norm.beta, np.float64) if norm.center else 0.0
    mean, variance = (np.asarray(v, np.float64) for v in (norm.moving_mean, norm.moving_variance))
    scale = gamma / np.sqrt(variance + norm.epsilon)
    return (kernel * scale).astype(np.float32), ((bias - mean) * scale + beta).astype(np.float32)
