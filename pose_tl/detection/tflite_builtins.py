"""RoIAlign and combined NMS from TFLite builtin ops, for a .tflite detector that runs without TensorFlow.

TFLite has no builtin kernel for CropAndResize or CombinedNonMaxSuppression. Here the crop is four gathers and
arithmetic that repeat `tf.image.crop_and_resize`'s bilinear sampling step for step, and combined NMS is one
NON_MAX_SUPPRESSION_V4 per frame and class (a TFLite WHILE over frames) followed by a top-k across classes. Only
the export uses them: the SavedModel and training keep the TensorFlow ops.
"""

import collections

import numpy as np
import tensorflow as tf

CombinedNms = collections.namedtuple("CombinedNms", "nmsed_boxes nmsed_scores nmsed_classes valid_detections")


def crop_and_resize_by_gathers(images, boxes, crop_size):
    """`tf.image.crop_and_resize(images, boxes, box_indices, crop_size)` (bilinear, extrapolation 0) for boxes
    [B, R, 4] of image b in row b: [B, R, crop_h, crop_w, C].

    A sample lands at y1 * (H - 1) + i * (y2 - y1) * (H - 1) / (crop_h - 1), rounded step by step as the kernel
    rounds it: a box that ends at 1.0 puts its last sample a rounding error before or past the last row, and past
    it the kernel extrapolates (0). So the division stays a division: by a constant, the converter (and Grappler)
    would make it a multiplication by the reciprocal, which rounds differently.
    """
    batch, count = tf.shape(boxes)[0], tf.shape(boxes)[1]
    unfoldable_zero = tf.minimum(batch, 0)  # 0, but not a constant
    height, width, channels = tf.shape(images)[1], tf.shape(images)[2], images.shape[-1]
    y1, x1, y2, x2 = tf.unstack(tf.cast(boxes, tf.float32), axis=-1)  # each [B, R]

    def samples(start, end, size, crop):
        """[B, R, crop] each: the pixels before and after each sample, its distance from the first, inside."""
        last = tf.cast(size - 1, tf.float32)
        scale = (end - start) * last / tf.cast(crop - 1 + unfoldable_zero, tf.float32)
        at = tf.expand_dims(start, -1) * last + tf.range(crop, dtype=tf.float32) * tf.expand_dims(scale, -1)
        inside = (at >= 0.0) & (at <= last)
        low = tf.clip_by_value(tf.floor(at), 0.0, last)
        high = tf.clip_by_value(tf.math.ceil(at), 0.0, last)
        return tf.cast(low, tf.int32), tf.cast(high, tf.int32), at - tf.floor(at), inside

    crop_h, crop_w = crop_size
    top, bottom, y_lerp, y_inside = samples(y1, y2, height, crop_h)
    left, right, x_lerp, x_inside = samples(x1, x2, width, crop_w)
    flat = tf.reshape(images, [-1, channels])
    first_pixel = tf.reshape(tf.range(batch) * height * width, [-1, 1, 1, 1])

    def pixels(rows, cols):
        index = first_pixel + tf.expand_dims(rows, -1) * width + tf.expand_dims(cols, -2)  # [B, R, crop_h, crop_w]
        return tf.reshape(tf.gather(flat, tf.reshape(index, [-1])), [batch, count, crop_h, crop_w, channels])

    x_lerp = tf.reshape(x_lerp, [batch, count, 1, crop_w, 1])
    top_left, bottom_left = pixels(top, left), pixels(bottom, left)
    upper = top_left + (pixels(top, right) - top_left) * x_lerp
    lower = bottom_left + (pixels(bottom, right) - bottom_left) * x_lerp
    crops = upper + (lower - upper) * tf.reshape(y_lerp, [batch, count, crop_h, 1, 1])
    inside = tf.logical_and(tf.expand_dims(y_inside, -1), tf.expand_dims(x_inside, -2))
    return tf.where(tf.expand_dims(inside, -1), crops, 0.0)


def roi_align_by_gathers(features, rois, size):
    """What the model's `RoiAlign(size)` layer computes (2x oversampling, then 2x2 average pooling), through
    `crop_and_resize_by_gathers`: [B, R, size, size, C] float32."""
    batch, count, channels = tf.shape(rois)[0], tf.shape(rois)[1], features.shape[-1]
    sampled = crop_and_resize_by_gathers(tf.cast(features, tf.float32), rois, (2 * size, 2 * size))
    pooled = tf.nn.avg_pool2d(tf.reshape(sampled, [-1, 2 * size, 2 * size, channels]), 2, 2, "VALID")
    return tf.reshape(pooled, [batch, count, size, size, channels])


def combined_nms_from_builtins(boxes, scores, *, max_size, iou_threshold, score_threshold):
    """`tf.image.combined_non_max_suppression(boxes, scores, max_size, max_size, ..., clip_boxes=False)` for
    per-class boxes [N, R, C, 4] and scores [N, R, C]: per class, scores strictly above `score_threshold`, greedy
    suppression above `iou_threshold`, at most `max_size`; then the `max_size` best of all classes by score,
    zero-padded. Boxes with exactly equal scores that overlap may be kept in the other order than TensorFlow's
    (whose kernel prefers the lower index; TFLite's compares scores only).

    TFLite's NMS kernel suppresses at IoU >= its threshold, TensorFlow's above it: it gets the next float32 up, and
    `iou >= next float` is `iou > threshold` for every float32 IoU.

    Returns a `CombinedNms` as TensorFlow's (classes as float32 0..C-1).
    """
    classes = scores.shape[-1]
    per_class = max_size
    iou_threshold = float(np.nextafter(np.float32(iou_threshold), np.float32(np.inf)))

    def one_frame(frame):
        frame_boxes, frame_scores = frame
        found_boxes, found_scores, found_classes, found = [], [], [], []
        for c in range(classes):
            selected, count = tf.raw_ops.NonMaxSuppressionV4(
                boxes=frame_boxes[:, c], scores=frame_scores[:, c], max_output_size=per_class,
                iou_threshold=iou_threshold, score_threshold=score_threshold, pad_to_max_output_size=True)
            found_boxes.append(tf.gather(frame_boxes[:, c], selected))
            found_scores.append(tf.gather(frame_scores[:, c], selected))
            found_classes.append(tf.fill([per_class], float(c)))
            found.append(tf.range(per_class) < count)
        found_boxes, found_scores, found_classes, found = (tf.concat(values, 0) for values in (
            found_boxes, found_scores, found_classes, found))  # classes * max_size candidates for max_size outputs
        # Selected scores are above the threshold; the rest sort below every one of them.
        best = tf.math.top_k(tf.where(found, found_scores, -np.inf), k=max_size).indices
        kept = tf.gather(found, best)
        return (tf.where(tf.expand_dims(kept, -1), tf.gather(found_boxes, best), 0.0),
                tf.where(kept, tf.gather(found_scores, best), 0.0),
                tf.where(kept, tf.gather(found_classes, best), 0.0),
                tf.reduce_sum(tf.cast(kept, tf.int32)))

    boxes = tf.ensure_shape(tf.cast(boxes, tf.float32), [None, None, classes, 4])
    nms = tf.map_fn(one_frame, (boxes, tf.cast(scores, tf.float32)),
                    fn_output_signature=(tf.TensorSpec([max_size, 4], tf.float32),
                                         tf.TensorSpec([max_size], tf.float32),
                                         tf.TensorSpec([max_size], tf.float32),
                                         tf.TensorSpec([], tf.int32)))
    return CombinedNms(*nms)
