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
    """A copy of `model` (same architecture, weights copied) whose every layer computes under `policy`."""
    def with_policy(node):
        if isinstance(node, dict):
            if node.get("class_name") == "DTypePolicy":
                return {**node, "config": {**node["config"], "name": policy}}
            return {key: with_policy(value) for key, value in node.items()}
        if isinstance(node, list):
            return [with_policy(value) for value in node]
        return node

    with dtype_policy(policy):  # sub-layers built without a dtype take the global policy
        copy = keras.saving.deserialize_keras_object(with_policy(keras.saving.serialize_keras_object(model)))
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
