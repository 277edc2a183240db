"""Reading tensors at per-frame indices with plain gather_nd (no batch_dims): TFLite and tf2onnx convert it as is."""

import tensorflow as tf


def pixel_indices(points, height, width):
    """(y, x) int32 of the pixel holding each point [..., 2] (x, y in pixels), clipped to the map."""
    x = tf.clip_by_value(tf.cast(tf.floor(points[..., 0]), tf.int32), 0, width - 1)
    y = tf.clip_by_value(tf.cast(tf.floor(points[..., 1]), tf.int32), 0, height - 1)
    return y, x


def batch_index_like(index):
    """The frame number of every element of `index` [N, ...] (for gather_nd without batch_dims: TFLite, ONNX)."""
    rank = len(index.shape)
    return tf.broadcast_to(tf.reshape(tf.range(tf.shape(index)[0]), [-1] + [1] * (rank - 1)), tf.shape(index))


def with_batch(index):
    """index [N, ...] into axis 1 -> gather_nd indices [N, ..., 2] (frame, index)."""
    return tf.stack([batch_index_like(index), index], axis=len(index.shape))  # not -1: tf2onnx needs the axis


def take(values, index):
    """values [N, M, ...] read at index [N, K] per frame -> [N, K, ...]."""
    return tf.gather_nd(values, with_batch(index))
