"""Labelled depth frames -> batched, prefetched tf.data pipelines with parallel decode and augmentation."""

import numpy as np
import tensorflow as tf

from pose_tl.data.augment import augment_depth, resize_depth
from pose_tl.data.depth_io import read_depth_npy
from pose_tl.data.prefetching import prefetched
from pose_tl.models.classifier import PROBABILITIES


def decode_depth_file(path, npy_units):
    """Path string tensor -> float32 metres [H, W, 1]; PNG decodes in TF ops, .npy through NumPy."""
    def decode_png():
        png = tf.io.decode_png(tf.io.read_file(path), channels=1, dtype=tf.uint16)
        return tf.cast(png, tf.float32) / 1000.0

    def decode_npy():
        depth = tf.numpy_function(lambda p: read_depth_npy(p.decode(), npy_units), [path], tf.float32)
        return tf.reshape(depth, tf.concat([tf.shape(depth)[:2], [1]], axis=0))

    is_png = tf.strings.regex_full_match(tf.strings.lower(path), r".*\.png")
    depth = tf.ensure_shape(tf.cond(is_png, decode_png, decode_npy), [None, None, 1])
    return tf.where(tf.math.is_finite(depth) & (depth > 0.0), depth, tf.zeros_like(depth))


def labelled_file_frames(files, npy_units):
    """`LabelledFiles` -> unbatched tf.data of (depth metres [H, W, 1], class index), decoded in parallel."""
    paths = tf.constant(files.paths, tf.string)
    labels = tf.constant(np.asarray(files.labels, np.int32))
    dataset = tf.data.Dataset.from_tensor_slices((paths, labels))
    return dataset.map(lambda path, label: (decode_depth_file(path, npy_units), label),
                       num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def batch_classification_frames(frames, data_config, *, input_size, training, seed, num_frames):
    """(depth, label) frames -> ({depth: [B, H, W, 1]}, {probabilities: [B]}) batches.

    Args:
        frames: unbatched tf.data of (float32 metres [H, W, 1], int32 class index).
        data_config: the recipe's `DataConfig` (batch size, shuffle buffer, augmentation).
        input_size: (height, width) of the model input.
        training: shuffle and augment if True; otherwise deterministic order, resize only.
        seed: makes shuffling and augmentation repeatable.
        num_frames: the number of frames (bounds the shuffle buffer).
    """
    if training:
        frames = frames.shuffle(max(1, min(num_frames, data_config.shuffle_buffer)), seed=seed,
                                reshuffle_each_iteration=True)
    augment = data_config.augment if (training and data_config.augment.enabled) else None
    element_seeds = tf.data.Dataset.random(seed=seed).batch(2)

    def prepare(pair, element_seed):
        depth, label = pair
        if augment is not None:
            depth = augment_depth(depth, augment, input_size, tf.cast(element_seed % (2**31 - 1), tf.int32))
        else:
            depth = resize_depth(depth, input_size)
        return tf.ensure_shape(depth, (*input_size, 1)), {PROBABILITIES: label}

    dataset = tf.data.Dataset.zip((frames, element_seeds))
    dataset = dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return prefetched(dataset.batch(data_config.batch_size))


def make_classification_dataset(files, data_config, *, input_size, training, seed):
    """Batched classification pipeline over labelled depth files (see `batch_classification_frames`)."""
    return batch_classification_frames(labelled_file_frames(files, data_config.npy_units), data_config,
                                       input_size=input_size, training=training, seed=seed,
                                       num_frames=len(files.paths))
