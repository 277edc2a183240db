"""Box arithmetic in TensorFlow ops: anchors, IoU, and the Faster R-CNN box-delta parameterisation.

Boxes are (ymin, xmin, ymax, xmax), normalised to [0, 1] of the image, as `tf.image.crop_and_resize`,
`tf.image.combined_non_max_suppression` and the TF Object Detection API use them. Deltas (dy, dx, dh, dw) are scaled
by `DELTA_SCALES` (Fast R-CNN's 0.1 / 0.2 target normalisation) so every regression target has a similar range.
"""

import numpy as np
import tensorflow as tf

DELTA_SCALES = (10.0, 10.0, 5.0, 5.0)
MAX_LOG_SCALE = float(np.log(1000.0 / 16.0))  # clamp dh, dw before exp (Detectron's bound)


def anchor_grid(input_size, stride, sizes, ratios):
    """[K, 4] normalised anchors, K = (H / stride) * (W / stride) * len(sizes) * len(ratios), cell-major.

    `sizes` are anchor heights in input pixels, `ratios` height / width.
    """
    height, width = input_size
    rows, cols = height // stride, width // stride
    shapes = [(size, size / ratio) for size in sizes for ratio in ratios]  # (h, w) pixels
    ys = (np.arange(rows) + 0.5) * stride
    xs = (np.arange(cols) + 0.5) * stride
    cy, cx = np.meshgrid(ys, xs, indexing="ij")
    anchors = []
    for h, w in shapes:
        anchors.append(np.stack([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2], axis=-1))
    grid = np.stack(anchors, axis=2).reshape(-1, 4)  # [rows, cols, A, 4] -> [K, 4]
    return (grid / np.array([height, width, height, width])).astype(np.float32)


def anchors_per_cell(sizes, ratios):
    return len(sizes) * len(ratios)


def _pairwise(a, b):
    """(intersection [..., N, M], area of a [..., N, 1], area of b [..., 1, M])."""
    a, b = a[..., :, None, :], b[..., None, :, :]
    top, left = tf.maximum(a[..., 0], b[..., 0]), tf.maximum(a[..., 1], b[..., 1])
    bottom, right = tf.minimum(a[..., 2], b[..., 2]), tf.minimum(a[..., 3], b[..., 3])
    inter = tf.maximum(bottom - top, 0.0) * tf.maximum(right - left, 0.0)
    return inter, (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1]), (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])


def box_iou(a, b):
    """IoU [..., N, M] of boxes a [..., N, 4] and b [..., M, 4]."""
    inter, area_a, area_b = _pairwise(a, b)
    return inter / tf.maximum(area_a + area_b - inter, 1e-9)


def box_ioa(a, b):
    """Intersection over the area of a [..., N, M]: how much of each box in a lies inside each box of b."""
    inter, area_a, _ = _pairwise(a, b)
    return inter / tf.maximum(area_a, 1e-9)


def _centres(boxes, aspect):
    """(cy, cx, h, w) with x measured in units of y (aspect = width / height of the image): square pixels."""
    h = boxes[..., 2] - boxes[..., 0]
    w = (boxes[..., 3] - boxes[..., 1]) * aspect
    return boxes[..., 0] + 0.5 * h, (boxes[..., 1] * aspect) + 0.5 * w, h, w


def encode_boxes(boxes, anchors, aspect=1.0):
    """Scaled deltas [..., 4] that move `anchors` onto `boxes`."""
    cy, cx, h, w = _centres(boxes, aspect)
    acy, acx, ah, aw = _centres(anchors, aspect)
    ah, aw = tf.maximum(ah, 1e-6), tf.maximum(aw, 1e-6)
    deltas = tf.stack([(cy - acy) / ah, (cx - acx) / aw, tf.math.log(tf.maximum(h, 1e-6) / ah),
                       tf.math.log(tf.maximum(w, 1e-6) / aw)], axis=-1)
    return deltas * tf.constant(DELTA_SCALES)


def decode_boxes(deltas, anchors, aspect=1.0):
    """Boxes [..., 4] from scaled deltas applied to `anchors` (the inverse of `encode_boxes`)."""
    deltas = tf.cast(deltas, tf.float32) / tf.constant(DELTA_SCALES)
    acy, acx, ah, aw = _centres(anchors, aspect)
    cy, cx = acy + deltas[..., 0] * ah, acx + deltas[..., 1] * aw
    h = ah * tf.exp(tf.minimum(deltas[..., 2], MAX_LOG_SCALE))
    w = aw * tf.exp(tf.minimum(deltas[..., 3], MAX_LOG_SCALE))
    return tf.stack([cy - h / 2, (cx - w / 2) / aspect, cy + h / 2, (cx + w / 2) / aspect], axis=-1)


def clip_boxes(boxes):
    return tf.clip_by_value(boxes, 0.0, 1.0)


def xywh_pixels_to_normalised(boxes, height, width):
    """COCO (x, y, w, h) pixel boxes [..., 4] -> normalised (ymin, xmin, ymax, xmax)."""
    x, y, w, h = tf.unstack(tf.cast(boxes, tf.float32), axis=-1)
    height, width = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    return tf.stack([y / height, x / width, (y + h) / height, (x + w) / width], axis=-1)
