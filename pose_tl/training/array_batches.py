"""Shuffled batches of in-memory examples as a `tf.data.Dataset`, for `Model.fit` on arrays too large to copy.

`Model.fit(x, y, shuffle=True)` on arrays feeds them through Keras's array adapter, a parallel `tf.data` gather over
the whole arrays. On a 2-core AMD EPYC (AVX512_BF16, no AMX) that held the joint refiner's steps of 64 crops (each
with ~150 KB of target maps) at ~534 ms whatever the precision, though a step alone took ~280 ms in bfloat16 and
~450 ms in float32; batches gathered by NumPy in a generator and prefetched let the steps run at ~285 ms in bfloat16
(README, *Benchmarks*). The order comes from the caller's NumPy generator, so a seeded run repeats itself.

The examples are read through a `gather(index)` function, so a caller can build each batch from what it holds (the
joint refiner mirrors half of its crops per batch rather than storing them twice) and change what it holds between
passes. One dataset serves every epoch: a dataset made per epoch by `Dataset.from_generator` keeps its generator, and
whatever that reaches, alive after the epoch (~1 GB more a refiner epoch on the accuracy benchmark's data, until the
machine ran out of memory).
"""

import numpy as np
import tensorflow as tf

from pose_tl.data.prefetching import prefetched

PREFETCH_BATCHES = 2


def shuffled_batches(gather, count, batch_size, rng):
    """A dataset of (inputs, targets) batches of `batch_size` (the last may be smaller) of `count` examples: each pass
    orders them by a permutation drawn from the NumPy generator `rng` and calls `gather(index)` -> (inputs [B, ...],
    targets [B, ...] or a dict of them) for the examples at each batch's `index` (sorted int64 [B]). Each call must
    give arrays of the shapes and dtypes of the first batch but for B (the dataset says its length)."""
    inputs, targets = _checked(gather(np.arange(min(count, batch_size))))

    def batches():
        order = rng.permutation(count)
        for start in range(0, count, batch_size):
            index = np.sort(order[start:start + batch_size])  # sorted: NumPy gathers rows in memory order
            yield _checked(gather(index), len(index))

    def spec(array):
        return tf.TensorSpec((None, *array.shape[1:]), tf.as_dtype(array.dtype))

    signature = (spec(inputs), {name: spec(array) for name, array in targets.items()}
                 if isinstance(targets, dict) else spec(targets))
    dataset = tf.data.Dataset.from_generator(batches, output_signature=signature)
    # Its length told, so `fit` knows an epoch's steps (unknown, it warns that the input ran out of data).
    length = tf.data.experimental.assert_cardinality(-(-count // batch_size))
    return prefetched(dataset.apply(length), PREFETCH_BATCHES)


def array_gather(inputs, targets):
    """`gather` of `shuffled_batches` over whole arrays: inputs [M, ...] and targets [M, ...] or a dict of them."""
    _checked((inputs, targets))

    def gather(index):
        return inputs[index], ({name: array[index] for name, array in targets.items()}
                               if isinstance(targets, dict) else targets[index])

    return gather


def _checked(batch, size=None):
    inputs, targets = batch
    size = len(inputs) if size is None else size
    for array in [inputs, *(targets.values() if isinstance(targets, dict) else [targets])]:
        if len(array) != size:
            raise ValueError(f"every array of a batch must hold {size} examples, as its inputs do. "
                             f"Received: {len(array)}")
    return batch
