"""Choosing the Keras dtype policy: bfloat16 where the CPU multiplies it natively, float16 on GPUs, else float32.

Outputs stay float32 either way: the head's softmax and the depth preprocessing run in float32.
"""

import collections
import contextlib
from pathlib import Path

import keras

CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_native_bf16(cpuinfo=Path("/proc/cpuinfo")):
    return _cpu_has_any(CPU_BF16_FLAGS, cpuinfo)


def _cpu_has_any(wanted, cpuinfo):
    try:
        flags = cpuinfo.read_text()
    except OSError:
        return False
    return any(flag in flags.split() for flag in wanted)


def resolve_precision(precision):
    """`auto` -> a concrete policy name; other values pass through."""
    if precision != "auto":
        return precision
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return "mixed_float16"
    return "mixed_bfloat16" if cpu_has_native_bf16() else "float32"


@contextlib.contextmanager
def dtype_policy(policy):
    """Set the global Keras dtype policy while building and training; restore the previous one after."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield policy
    finally:
        keras.mixed_precision.set_global_policy(previous)


def copy_with_policy(model, policy):
    """A copy of `model` (same architecture, weights copied) whose every layer computes under `policy`; `model`
    itself where every layer does already."""
    return copy_with_policies(model, lambda layer_class, name: policy, global_policy=policy)


def copy_with_policies(model, policy_of, global_policy):
    """A copy of `model` (same architecture, weights copied) in which each dtype policy of its config, named `name`
    and held by a layer of class `layer_class` (nested models' layers included), becomes `policy_of(layer_class,
    name)`; sub-layers built without a dtype take `global_policy`. `model` itself where no policy changes."""
    changed = []

    def renamed(node, owner=None):
        if isinstance(node, list):
            return [renamed(value, owner) for value in node]
        if not isinstance(node, dict):
            return node
        if node.get("class_name") == "DTypePolicy":
            name = policy_of(owner, node["config"]["name"])
            changed.append(name != node["config"]["name"])
            return {**node, "config": {**node["config"], "name": name}}
        owner = node.get("class_name", owner)
        return {key: renamed(value, owner) for key, value in node.items()}

    config = renamed(keras.saving.serialize_keras_object(model))
    if not any(changed):
        return model
    with dtype_policy(global_policy):
        copy = keras.saving.deserialize_keras_object(config)
    copy.set_weights(model.get_weights())
    return copy


def compute_policy(model):
    """The dtype policy most of `model`'s convolutions (nested models included) compute under: what its network
    runs in. A loaded Functional model's own policy is the global one at loading time, not its layers'."""
    def convolutions(layers):
        for layer in layers:
            if isinstance(layer, keras.layers.Conv2D):
                yield layer.dtype_policy.name
            yield from convolutions(getattr(layer, "layers", ()))

    counts = collections.Counter(convolutions(model.layers))
    return counts.most_common(1)[0][0] if counts else model.dtype_policy.name
