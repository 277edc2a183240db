"""Choosing the Keras dtype policy: bfloat16 where the CPU multiplies it natively, float16 on GPUs, else float32.

Outputs stay float32 either way: the head's softmax and the depth preprocessing run in float32.
"""

import contextlib
from pathlib import Path

import keras

CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_native_bf16(cpuinfo=Path("/proc/cpuinfo")):
    try:
        flags = cpuinfo.read_text()
    except OSError:
        return False
    return any(flag in flags.split() for flag in CPU_BF16_FLAGS)


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
