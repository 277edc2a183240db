"""Depth-aware augmentation in TensorFlow ops on one frame of metres [H, W, 1] (0 = no reading).

Unlike colour augmentation, every change keeps depth physically meaningful: noise and shifts touch valid pixels
only, holes are written as 0 (a missing reading, as sensors report), and resizing is nearest-neighbour so holes
never blend into surfaces.
"""

import tensorflow as tf


def resize_depth(depth, size):
    """Nearest-neighbour resize: interpolating across a hole would invent depth that no surface has."""
    return tf.image.resize(depth, size, method="nearest")


def random_crop_scale(depth, scale_range, seed):
    """Crop a random window keeping `scale` of the area (aspect ratio kept); the caller resizes it back."""
    shape = tf.shape(depth)
    height, width = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
    scale = tf.random.stateless_uniform([], seed, scale_range[0], scale_range[1])
    side = tf.sqrt(scale)
    crop_h = tf.maximum(1, tf.cast(height * side, tf.int32))
    crop_w = tf.maximum(1, tf.cast(width * side, tf.int32))
    offsets = tf.random.stateless_uniform([2], seed + 1, 0.0, 1.0)
    top = tf.cast(offsets[0] * tf.cast(shape[0] - crop_h + 1, tf.float32), tf.int32)
    left = tf.cast(offsets[1] * tf.cast(shape[1] - crop_w + 1, tf.float32), tf.int32)
    return depth[top:top + crop_h, left:left + crop_w, :]


def random_flip(depth, seed):
    flip = tf.random.stateless_uniform([], seed) < 0.5
    return tf.cond(flip, lambda: tf.reverse(depth, axis=[1]), lambda: depth)


def add_depth_noise_and_shift(depth, noise_std_m, shift_m, seed):
    """Gaussian noise and one global shift, both on valid pixels only; results <= 0 become holes."""
    valid = depth > 0.0
    noise = tf.random.stateless_normal(tf.shape(depth), seed, stddev=noise_std_m)
    shift = tf.random.stateless_uniform([], seed + 1, -shift_m, shift_m) if shift_m > 0 else 0.0
    moved = depth + noise + shift
    return tf.where(valid & (moved > 0.0), moved, tf.zeros_like(depth))


def random_holes(depth, probability, max_holes, max_fraction, seed):
    """With `probability`, zero up to `max_holes` rectangles of side up to `max_fraction` of the image side."""
    if max_holes == 0 or probability == 0 or max_fraction == 0:
        return depth
    shape = tf.shape(depth)
    height, width = shape[0], shape[1]
    rows = tf.range(height)[:, None]
    cols = tf.range(width)[None, :]
    apply = tf.random.stateless_uniform([], seed) < probability
    count = tf.random.stateless_uniform([], seed + 1, 1, max_holes + 1, dtype=tf.int32)
    boxes = tf.random.stateless_uniform([max_holes, 4], seed + 2)
    mask = tf.zeros([height, width], tf.bool)
    h_f, w_f = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    for i in range(max_holes):
        hole_h = tf.cast(boxes[i, 0] * max_fraction * h_f, tf.int32) + 1
        hole_w = tf.cast(boxes[i, 1] * max_fraction * w_f, tf.int32) + 1
        top = tf.cast(boxes[i, 2] * h_f, tf.int32)
        left = tf.cast(boxes[i, 3] * w_f, tf.int32)
        inside = (rows >= top) & (rows < top + hole_h) & (cols >= left) & (cols < left + hole_w)
        mask = mask | (inside & (i < count))
    mask = mask & apply
    return tf.where(mask[..., None], tf.zeros_like(depth), depth)


def augment_depth(depth, augment, input_size, seed):
    """Apply the recipe's augmentation to one frame and resize it to `input_size`.

    Args:
        depth: float32 metres [H, W, 1].
        augment: an `AugmentConfig`.
        input_size: (height, width) of the model input.
        seed: int32 [2] stateless seed, different per element.
    """
    depth = random_crop_scale(depth, augment.crop_scale, seed)
    depth = resize_depth(depth, input_size)
    if augment.horizontal_flip:
        depth = random_flip(depth, seed + 2)
    if augment.depth_noise_m > 0 or augment.depth_shift_m > 0:
        depth = add_depth_noise_and_shift(depth, augment.depth_noise_m, augment.depth_shift_m, seed + 3)
    return random_holes(depth, augment.hole_probability, augment.max_holes, augment.max_hole_fraction, seed + 5)
