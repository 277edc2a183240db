"""Training targets of the detector in TensorFlow ops (run in the tf.data pipeline, one frame at a time).

RPN (Faster R-CNN): anchors with IoU >= 0.7 to a ground-truth box, and each box's best anchor, are positives;
IoU < 0.3 negatives; 256 are sampled, at most half positive. Box head (Fast R-CNN): RoIs with IoU >= 0.5 are
foreground of the matched box's class, below 0.5 background; `rois` are sampled, at most 25 % foreground.
Ignore regions (slivers of people, `ignore_below`) are never positives, and an anchor or RoI lying at least half
inside one is not a negative either: COCO's crowd rule, the one evaluation applies to the same boxes.

The head's RoIs are sampled here from the ground truth jittered, random anchors and (when the recipe uses them)
depth proposals, rather than from the RPN's live output: the targets stay a pure function of the frame, so the
whole detector trains with Keras `fit` on (depth, rois) -> outputs. Each target carries its own weight channel.
"""

import tensorflow as tf

from pose_tl.detection.boxes import box_ioa, box_iou, clip_boxes, encode_boxes

RPN_SAMPLES, RPN_POSITIVE_FRACTION, RPN_POSITIVE_IOU, RPN_NEGATIVE_IOU = 256, 0.5, 0.7, 0.3
HEAD_FOREGROUND_FRACTION, HEAD_FOREGROUND_IOU = 0.25, 0.5
JITTERS_PER_BOX, RANDOM_ROIS = 8, 32
IGNORED_IOA = 0.5


def _match(boxes, gt_boxes):
    """(best IoU [N], index of the best box [N], IoU [N, P]); with no ground truth, IoU 0 everywhere."""
    iou = box_iou(boxes, gt_boxes)
    padded = tf.concat([iou, tf.zeros([tf.shape(iou)[0], 1])], axis=1)
    return tf.reduce_max(padded, axis=1), tf.argmax(padded, axis=1, output_type=tf.int32), iou


def inside_ignored(boxes, ignored):
    """[N] bool: at least `IGNORED_IOA` of the box's area lies inside one of the `ignored` regions [M, 4]."""
    ioa = tf.concat([box_ioa(boxes, ignored), tf.zeros([tf.shape(boxes)[0], 1])], axis=1)
    return tf.reduce_max(ioa, axis=1) >= IGNORED_IOA


def _sample(candidates, count, seed):
    """Bool mask choosing at most `count` of `candidates` [N] uniformly (stateless)."""
    scores = tf.where(candidates, tf.random.stateless_uniform(tf.shape(candidates), seed), -1.0)
    k = tf.minimum(count, tf.size(candidates))
    values, indices = tf.math.top_k(scores, k=k)
    chosen = tf.boolean_mask(indices, values >= 0.0)
    return tf.scatter_nd(chosen[:, None], tf.ones_like(chosen, tf.bool), tf.shape(candidates))


def rpn_targets(gt_boxes, anchors, seed, aspect, ignored=None):
    """objectness [K, 2] (label, weight) and deltas [K, 5] (4 deltas, weight) for anchors [K, 4]."""
    best, matched, iou = _match(anchors, gt_boxes)
    best_per_box = tf.reduce_max(iou, axis=0)  # [P]
    is_best = tf.reduce_any((iou >= best_per_box[None, :] - 1e-6) & (best_per_box[None, :] > 0.1), axis=1)
    positive = (best >= RPN_POSITIVE_IOU) | is_best
    negative = (best < RPN_NEGATIVE_IOU) & ~positive
    if ignored is not None:
        negative &= ~inside_ignored(anchors, ignored)
    positive = _sample(positive, int(RPN_SAMPLES * RPN_POSITIVE_FRACTION), seed)
    count = RPN_SAMPLES - tf.reduce_sum(tf.cast(positive, tf.int32))
    negative = _sample(negative, count, seed + 1)
    padded_gt = tf.concat([gt_boxes, tf.zeros([1, 4])], axis=0)
    deltas = encode_boxes(tf.gather(padded_gt, matched), anchors, aspect)
    deltas = tf.where(positive[:, None], deltas, 0.0)
    positive_f, sampled_f = tf.cast(positive, tf.float32), tf.cast(positive | negative, tf.float32)
    return tf.stack([positive_f, sampled_f], axis=1), tf.concat([deltas, positive_f[:, None]], axis=1)


def jittered_boxes(gt_boxes, seed):
    """JITTERS_PER_BOX copies of each box, shifted by up to 20 % and scaled by 0.7-1.4 per side (like proposals)."""
    count = tf.shape(gt_boxes)[0] * JITTERS_PER_BOX
    boxes = tf.repeat(gt_boxes, JITTERS_PER_BOX, axis=0)
    noise = tf.random.stateless_uniform([count, 4], seed)
    h, w = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    cy = (boxes[:, 0] + boxes[:, 2]) / 2 + (noise[:, 0] - 0.5) * 0.4 * h
    cx = (boxes[:, 1] + boxes[:, 3]) / 2 + (noise[:, 1] - 0.5) * 0.4 * w
    h, w = h * (0.7 + 0.7 * noise[:, 2]), w * (0.7 + 0.7 * noise[:, 3])
    return clip_boxes(tf.stack([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2], axis=1))


def head_targets(gt_boxes, gt_classes, proposals, anchors, rois, seed, aspect, ignored=None):
    """RoIs [R, 4] and their targets: classes [R, 2] (class id, weight) and deltas [R, 6] (4, class id, weight).

    Candidates are the ground truth itself, its jittered copies, `RANDOM_ROIS` random anchors and `proposals`.
    Class ids are 1..C; 0 is background. Unfilled rows (too few candidates) have weight 0.
    """
    random_anchors = tf.gather(anchors, tf.random.stateless_uniform([RANDOM_ROIS], seed, 0, tf.shape(anchors)[0],
                                                                    dtype=tf.int32))
    candidates = tf.concat([gt_boxes, jittered_boxes(gt_boxes, seed + 1), clip_boxes(random_anchors), proposals], 0)
    size_ok = (candidates[:, 2] - candidates[:, 0] > 1e-3) & (candidates[:, 3] - candidates[:, 1] > 1e-3)
    best, matched, _ = _match(candidates, gt_boxes)
    foreground = _sample((best >= HEAD_FOREGROUND_IOU) & size_ok, int(rois * HEAD_FOREGROUND_FRACTION), seed + 2)
    count = rois - tf.reduce_sum(tf.cast(foreground, tf.int32))
    background = (best < HEAD_FOREGROUND_IOU) & size_ok
    if ignored is not None:
        background &= ~inside_ignored(candidates, ignored)
    background = _sample(background, count, seed + 3)
    chosen = foreground | background
    order = tf.argsort(tf.cast(chosen, tf.int32) * 2 + tf.cast(foreground, tf.int32), direction="DESCENDING",
                       stable=True)
    picked = tf.concat([order, tf.zeros([rois], tf.int32)], axis=0)[:rois]  # pad when candidates < rois
    weight = tf.concat([tf.cast(tf.gather(chosen, order), tf.float32), tf.zeros([rois])], axis=0)[:rois]
    is_foreground = tf.gather(foreground, picked) & (weight > 0)
    roi_boxes = tf.gather(candidates, picked)
    padded_gt = tf.concat([gt_boxes, tf.zeros([1, 4])], axis=0)
    padded_classes = tf.concat([tf.cast(gt_classes, tf.float32), tf.zeros([1])], axis=0)
    matched = tf.gather(matched, picked)
    classes = tf.where(is_foreground, tf.gather(padded_classes, matched), 0.0)
    deltas = tf.where(is_foreground[:, None], encode_boxes(tf.gather(padded_gt, matched), roi_boxes, aspect), 0.0)
    return (roi_boxes, tf.stack([classes, weight], axis=1),
            tf.concat([deltas, classes[:, None], tf.cast(is_foreground, tf.float32)[:, None]], axis=1))
