"""The last step of every pipeline pose_tl feeds to Keras: prefetch, with tf.data's autotuning thread off.

With autotuning on, each iterator runs a model-optimisation thread, and deleting the iterator (Keras does at the
end of every `fit`, of every evaluation, and the joint refiner's training fits once per epoch) waits for that
thread, which on TensorFlow 2.21 can sleep out its optimisation period first: 12-56 s with both CPU cores idle,
after 8 of the 10 training phases timed on the demo recipe (2-core AMD EPYC; a `gdb` backtrace showed the main
thread in `~RootDataset::Iterator` waiting for `Model::OptimizeLoop`). These pipelines produce batches many times
faster than a step consumes them (the pose recipe's epoch of 125 batches: ~1.3 s alone against ~30-60 s of
training), so there is little for the tuner to win: `benchmarks/train_throughput.py` read the classification
pipeline alone at ~69x what training consumes with it off, and `make demo`'s validation metrics stayed the same
to the last digit.
"""

import tensorflow as tf


def without_autotuning(dataset):
    """`dataset` whose iterators start no autotuning thread (see the module's docstring)."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def prefetched(dataset, buffer_size=tf.data.AUTOTUNE):
    """`dataset.prefetch(buffer_size)`, `without_autotuning`."""
    return without_autotuning(dataset.prefetch(buffer_size))
