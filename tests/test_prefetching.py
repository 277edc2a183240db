"""`prefetched`: the pipelines' last step, prefetch with tf.data's autotuning thread off."""

import numpy as np
import tensorflow as tf

from pose_tl.data.prefetching import prefetched, without_autotuning


def test_prefetched_yields_the_same_batches_without_an_autotuning_thread():
    dataset = tf.data.Dataset.range(10).map(lambda x: x * 2, num_parallel_calls=tf.data.AUTOTUNE).batch(4)
    assert dataset.options().autotune.enabled is not False
    fed = prefetched(dataset)
    assert fed.options().autotune.enabled is False
    assert [batch.tolist() for batch in fed.as_numpy_iterator()] == [[0, 2, 4, 6], [8, 10, 12, 14], [16, 18]]


def test_other_options_are_kept():
    options = tf.data.Options()
    options.deterministic = True
    dataset = without_autotuning(tf.data.Dataset.from_tensor_slices(np.arange(3)).with_options(options))
    assert dataset.options().deterministic is True and dataset.options().autotune.enabled is False
