"""Shuffled batches of in-memory NumPy arrays as a `tf.data.Dataset`, for `Model.fit` on arrays too large to copy.

`Model.fit(x, y, shuffle=True)` on arrays feeds them through Keras's array adapter, a parallel `tf.data` gather over
the whole arrays. On a 2-core AMD EPYC (AVX512_BF16, no AMX) that held the joint refiner's steps of 64 crops (each
with ~150 KB of target maps) at ~534 ms whatever the precision, though a step alone took ~280 ms in bfloat16 and
~450 ms in float32; batches gathered by NumPy in a generator and prefetched let the steps run at ~285 ms in bfloat16
(README, *Benchmarks*). The order comes from the caller's NumPy generator, so a seeded run repeats itself.

One dataset serves every epoch, and reads the arrays anew at each: a dataset made per epoch by
`Dataset.from_generator` keeps its generator, and so the arrays, alive after the epoch (~1 GB more a refiner epoch on
the accuracy benchmark's data, until the machine ran out of memory).
"""

import numpy as np
import tensorflow as tf

PREFETCH_BATCHES = 2


def shuffled_batches(arrays, batch_size, rng):
    """A dataset of (inputs, targets) batches of `batch_size` (the last may be smaller): each pass over it calls
    `arrays()` -> (inputs [M, ...], targets [M, ...] or a dict of them) and orders them by a permutation drawn from the
    NumPy generator `rng`. Every call must return arrays of the same shapes (the dataset says its length)."""
    inputs, targets = arrays()
    count = _checked_count(inputs, targets)

    def batches():
        inputs, targets = arrays()
        if _checked_count(inputs, targets) != count:
            raise ValueError(f"`arrays()` must return {count} examples each time, as at first. "
                             f"Received: {len(inputs)}")
        order = rng.permutation(count)
        for start in range(0, count, batch_size):
            index = np.sort(order[start:start + batch_size])  # sorted: NumPy gathers rows in memory order
            yield inputs[index], ({name: array[index] for name, array in targets.items()}
                                  if isinstance(targets, dict) else targets[index])

    def spec(array):
        return tf.TensorSpec((None, *array.shape[1:]), tf.as_dtype(array.dtype))

    signature = (spec(inputs), {name: spec(array) for name, array in targets.items()}
                 if isinstance(targets, dict) else spec(targets))
    del inputs, targets  # the dataset reads them through `arrays` only
    dataset = tf.data.Dataset.from_generator(batches, output_signature=signature)
    # Its length told, so `fit` knows an epoch's steps (unknown, it warns that the input ran out of data).
    length = tf.data.experimental.assert_cardinality(-(-count // batch_size))
    return dataset.apply(length).prefetch(PREFETCH_BATCHES)


def _checked_count(inputs, targets):
    count = len(inputs)
    for array in (targets.values() if isinstance(targets, dict) else [targets]):
        if len(array) != count:
            raise ValueError(f"every target array must hold {count} examples, as `inputs` does. "
                             f"Received: {len(array)}")
    return count
