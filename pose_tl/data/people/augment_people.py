"""Joint-aware augmentation in TensorFlow ops: labels move with the pixels.

A frame is a dict of tensors: `depth` float32 metres [H, W, 1], `joints_2d` [P, J, 2] pixels, `joints_3d` [P, J, 3]
camera metres, `visibility` [P, J] int, `boxes` [P, 4] (x, y, w, h) pixels, `intrinsics` [4] (fx, fy, cx, cy).
Pixel coordinates are continuous: pixel column i covers [i, i + 1).
"""

import tensorflow as tf

from pose_tl.data.people.skeleton import FLIP_INDEX, OUT_OF_FRAME


def flip_people_frame(frame):
    """Mirror left-right: the image, x coordinates, left/right joint identities, X in 3D and the principal point.

    The mirrored image is exactly the image of the scene mirrored in X seen by a camera with cx' = W - cx.
    """
    width = tf.cast(tf.shape(frame["depth"])[1], tf.float32)
    flip = tf.constant(FLIP_INDEX, tf.int32)
    joints_2d = tf.gather(frame["joints_2d"], flip, axis=1)
    joints_3d = tf.gather(frame["joints_3d"], flip, axis=1)
    fx, fy, cx, cy = tf.unstack(frame["intrinsics"])
    x, y, w, h = tf.unstack(frame["boxes"], axis=-1)
    return {**frame,
            "depth": tf.reverse(frame["depth"], axis=[1]),
            "joints_2d": tf.stack([width - joints_2d[..., 0], joints_2d[..., 1]], axis=-1),
            "joints_3d": tf.stack([-joints_3d[..., 0], joints_3d[..., 1], joints_3d[..., 2]], axis=-1),
            "visibility": tf.gather(frame["visibility"], flip, axis=1),
            "boxes": tf.stack([width - x - w, y, w, h], axis=-1),
            "intrinsics": tf.stack([fx, fy, width - cx, cy])}


def crop_and_resize_people_frame(frame, top, left, crop_height, crop_width, output_size):
    """Crop a window and resize it (nearest neighbour) to `output_size`; joints, boxes and intrinsics follow.

    Joints that leave the window become out of frame (visibility 0); boxes are clipped to the window.
    """
    out_h, out_w = output_size
    top_f, left_f = tf.cast(top, tf.float32), tf.cast(left, tf.float32)
    sx = out_w / tf.cast(crop_width, tf.float32)
    sy = out_h / tf.cast(crop_height, tf.float32)
    depth = frame["depth"][top:top + crop_height, left:left + crop_width, :]
    depth = tf.image.resize(depth, output_size, method="nearest")
    joints_2d = tf.stack([(frame["joints_2d"][..., 0] - left_f) * sx, (frame["joints_2d"][..., 1] - top_f) * sy], -1)
    inside = ((joints_2d[..., 0] >= 0) & (joints_2d[..., 0] < out_w) & (joints_2d[..., 1] >= 0)
              & (joints_2d[..., 1] < out_h))
    visibility = tf.where(inside, frame["visibility"], tf.cast(OUT_OF_FRAME, frame["visibility"].dtype))
    x, y, w, h = tf.unstack(frame["boxes"], axis=-1)
    x0 = tf.clip_by_value((x - left_f) * sx, 0.0, float(out_w))
    y0 = tf.clip_by_value((y - top_f) * sy, 0.0, float(out_h))
    x1 = tf.clip_by_value((x + w - left_f) * sx, 0.0, float(out_w))
    y1 = tf.clip_by_value((y + h - top_f) * sy, 0.0, float(out_h))
    fx, fy, cx, cy = tf.unstack(frame["intrinsics"])
    return {**frame, "depth": depth, "joints_2d": joints_2d, "visibility": visibility,
            "boxes": tf.stack([x0, y0, x1 - x0, y1 - y0], axis=-1),
            "intrinsics": tf.stack([fx * sx, fy * sy, (cx - left_f) * sx, (cy - top_f) * sy])}


def shift_people_depth(frame, shift_m):
    """Move the scene `shift_m` metres along the optical axis: valid depth and every 3D joint's z together."""
    depth = frame["depth"]
    shifted = tf.where(depth > 0, tf.maximum(depth + shift_m, 0.0), depth)
    joints_3d = frame["joints_3d"] + tf.stack([0.0, 0.0, shift_m])
    return {**frame, "depth": shifted, "joints_3d": joints_3d}


def random_people_augment(frame, augment, output_size, seed):
    """Random crop/scale, flip and depth shift driven by the recipe's `AugmentConfig` and a stateless seed."""
    shape = tf.shape(frame["depth"])
    height, width = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
    scale = tf.random.stateless_uniform([], seed, augment.crop_scale[0], augment.crop_scale[1])
    crop_h = tf.maximum(1, tf.cast(height * tf.sqrt(scale), tf.int32))
    crop_w = tf.maximum(1, tf.cast(width * tf.sqrt(scale), tf.int32))
    offsets = tf.random.stateless_uniform([2], seed + 1)
    top = tf.cast(offsets[0] * tf.cast(shape[0] - crop_h + 1, tf.float32), tf.int32)
    left = tf.cast(offsets[1] * tf.cast(shape[1] - crop_w + 1, tf.float32), tf.int32)
    frame = crop_and_resize_people_frame(frame, top, left, crop_h, crop_w, output_size)
    if augment.horizontal_flip:
        flip = tf.random.stateless_uniform([], seed + 2) < 0.5
        frame = tf.cond(flip, lambda: flip_people_frame(frame), lambda: frame)
    if augment.depth_shift_m > 0:
        shift = tf.random.stateless_uniform([], seed + 3, -augment.depth_shift_m, augment.depth_shift_m)
        frame = shift_people_depth(frame, shift)
    return frame
