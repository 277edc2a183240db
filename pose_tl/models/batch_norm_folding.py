"""Batch normalisation folded into the convolution before it, for inference.

At inference a batch normalisation is a fixed per-channel scale and shift, so a convolution followed by one is the
same convolution with scaled filters and a bias. Served, the joint refiner (`pose_tl.models.refiner`) runs on a
handful of crops per frame, where its cost is the number of ops more than their arithmetic: folding removes the
normalisations and the casts of their parameters, and leaves each convolution a bias add. The recipes' 16-filter
refiner, bfloat16, on the 2-core AMD EPYC of the README's inference table: a call on 1 crop 3.4 -> 2.4 ms, on 4
crops 3.8 -> 3.3 ms (median of 40 interleaved calls).
"""

import collections

import keras
import numpy as np

from pose_tl.training.precision import dtype_policy


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


def fold_lateral_norms(model):
    """A copy of the pose `model` whose head (`pose_tl.heads.pose.PoseHead`) has each lateral batch norm folded into
    the 1x1 lateral convolution before it (the head then built without them); the same `model` where its head has
    none: `fold_batch_norms` folds a functional graph's layers and does not see into the head, a custom layer."""
    from pose_tl.heads.pose import PoseHead

    heads = {layer.name: layer for layer in model.layers if isinstance(layer, PoseHead) and layer.lateral_norm}
    if not heads:
        return model

    def unnormed(node):
        if isinstance(node, list):
            return [unnormed(value) for value in node]
        if not isinstance(node, dict):
            return node
        node = {key: unnormed(value) for key, value in node.items()}
        if node.get("class_name") == "PoseHead" and node.get("config", {}).get("name") in heads:
            node["config"] = {**node["config"], "lateral_norm": False}
        return node

    with dtype_policy(model.dtype_policy.name):
        copy = keras.saving.deserialize_keras_object(unnormed(keras.saving.serialize_keras_object(model)))
    for source in (layer for layer in model.layers if layer.weights):
        target = copy.get_layer(source.name)
        if source.name not in heads:
            target.set_weights(source.get_weights())
            continue
        for lateral, folded_lateral, norm in zip(source.laterals, target.laterals, source.lateral_norms):
            folded_lateral.set_weights(folded_weights(lateral, norm))
        for sub, folded_sub in zip(head_layers(source), head_layers(target)):
            folded_sub.set_weights(sub.get_weights())
    return copy


def head_layers(head):
    """A pose head's weighted sub-layers other than its laterals and their norms."""
    return [conv for stage in head.stage_convs for conv in stage] + head.heatmap_outs + head.paf_outs + (
        [head.depth_out] if head.depth_out is not None else [])


@keras.saving.register_keras_serializable(package="pose_tl")
class FoldedBatchNormalization(keras.layers.Layer):
    """Where a batch normalisation was, its work now done by the convolution before it: passes its input on (and
    takes the arguments the normalisation was called with)."""

    def call(self, inputs, training=None, mask=None):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape


def foldable_pairs(model):
    """{Conv2D layer: the BatchNormalization layer right after it} of `model`'s graph, where folding is exact: the
    convolution without activation, its output used by the normalisation alone."""
    return {conv: norm for conv, norm in adjacent_pairs(model)
            if isinstance(conv, keras.layers.Conv2D) and isinstance(norm, keras.layers.BatchNormalization)
            and conv.get_config()["activation"] == "linear" and conv.data_format == "channels_last"
            and norm.axis in (-1, len(conv.output.shape) - 1)}


def adjacent_pairs(model):
    """(layer, the layer after it) for each layer whose output only that next layer uses, each called once.

    A functional graph is read from the model's config (each layer's inbound nodes as `keras_history` references:
    layer name, node, tensor), which Keras keeps stable for saving, not from its private node objects."""
    if isinstance(model, keras.Sequential):
        return list(zip(model.layers, model.layers[1:]))
    config = model.get_config()
    layers = {layer.name: layer for layer in model.layers}
    inputs_of = {entry["name"]: [list(tensor_references(node)) for node in entry["inbound_nodes"]]
                 for entry in config["layers"]}
    uses = collections.Counter(reference for nodes in inputs_of.values() for node in nodes for reference in node)
    uses.update(tensor_references(config["output_layers"]))
    pairs = []
    for name, nodes in inputs_of.items():
        if len(nodes) != 1 or len(nodes[0]) != 1:  # called more than once, or on more than one tensor
            continue
        source = nodes[0][0]
        if uses[source] == 1 and len(inputs_of[source[0]]) == 1:
            pairs.append((layers[source[0]], layers[name]))
    return pairs


def tensor_references(node):
    """The (layer name, node index, tensor index) of every tensor a functional config's `node` (an inbound node, or
    the model's `output_layers`) refers to."""
    if isinstance(node, dict):
        if node.get("class_name") == "__keras_tensor__":
            yield tuple(node["config"]["keras_history"])
            return
        for value in node.values():
            yield from tensor_references(value)
    elif isinstance(node, (list, tuple)):
        if len(node) == 3 and isinstance(node[0], str) and all(isinstance(index, int) for index in node[1:]):
            yield tuple(node)  # an `output_layers` entry
            return
        for value in node:
            yield from tensor_references(value)


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
