"""Detection training data: people frames -> the same augmentation as pose -> RPN and box-head targets.

Each element is ({depth, rois}, {rpn_objectness, rpn_deltas, class_logits, box_deltas}); see
`pose_tl.detection.targets` for what the targets hold and why the RoIs are sampled here.
"""

import tensorflow as tf

from pose_tl.data.pose_data import people_splits
from pose_tl.detection.boxes import anchor_grid, xywh_pixels_to_normalised
from pose_tl.detection.targets import head_targets, rpn_targets
from pose_tl.models.classifier import DEPTH_INPUT
from pose_tl.models.detector import BOX_DELTAS, CLASS_LOGITS, ROIS_INPUT, RPN_DELTAS, RPN_OBJECTNESS

MIN_BOX_PX = 2.0  # a person narrower or shorter than this is always an ignore region


def detection_class_names(detection_config, data_config):
    """`person`, or the synthetic pose classes (one detection class each)."""
    if detection_config.classes == "pose_class":
        return list(data_config.synthetic.pose_classes)
    return ["person"]


def is_ignore_region(width, height, frame_width, frame_height, ignore_below):
    """Whether a person's visible box (pixels) is a sliver to ignore; works on NumPy and TensorFlow values alike."""
    return ((width < MIN_BOX_PX) | (height < MIN_BOX_PX) | (width < ignore_below * frame_width)
            | (height < ignore_below * frame_height))


def gt_boxes_and_classes(frame, by_pose_class, input_size, ignore_below=0.0):
    """Normalised (ymin, xmin, ymax, xmax) boxes [P', 4] and class ids 1..C [P'] of the people to find, and the
    normalised boxes of the ignore regions [P'', 4] (slivers, `is_ignore_region`)."""
    boxes = frame["boxes"]
    present = (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
    if by_pose_class:
        present &= frame["pose_classes"] >= 0
    ignore = present & is_ignore_region(boxes[:, 2], boxes[:, 3], float(input_size[1]), float(input_size[0]),
                                        ignore_below)
    keep = present & ~ignore
    classes = frame["pose_classes"] + 1 if by_pose_class else tf.ones_like(frame["pose_classes"])
    normalised = xywh_pixels_to_normalised(boxes, *input_size)
    return tf.boolean_mask(normalised, keep), tf.boolean_mask(classes, keep), tf.boolean_mask(normalised, ignore)


def detection_splits(data_config, detection_config, *, seed, input_size, proposal_fn=None,
                     splits=("train", "validation"), for_training=True):
    """Batched detector training datasets of the recipe's people for `splits`.

    Args:
        proposal_fn: optional fn(depth [H, W, 1] metres, intrinsics [4]) -> normalised boxes [M, 4] added to the
            head's candidate RoIs (the depth proposals, when the recipe uses them).
    """
    stride = detection_config.feature_stride
    anchors = tf.constant(anchor_grid(input_size, stride, detection_config.anchor_sizes,
                                      detection_config.anchor_ratios))
    aspect = input_size[1] / input_size[0]
    by_pose_class = detection_config.classes == "pose_class"

    def frame_targets(frame):
        gt_boxes, gt_classes, ignored = gt_boxes_and_classes(frame, by_pose_class, input_size,
                                                             detection_config.ignore_below)
        seed_pair = frame["seed"] + 17  # a stateless seed pair of this frame, distinct from augmentation's
        objectness, rpn_deltas = rpn_targets(gt_boxes, anchors, seed_pair, aspect, ignored)
        proposals = (proposal_fn(frame["depth"], frame["intrinsics"]) if proposal_fn is not None
                     else tf.zeros([0, 4]))
        rois, classes, deltas = head_targets(gt_boxes, gt_classes, proposals, anchors,
                                             detection_config.rois_per_image, seed_pair + 3, aspect, ignored)
        inputs = {DEPTH_INPUT: frame["depth"], ROIS_INPUT: rois}
        return inputs, {RPN_OBJECTNESS: objectness, RPN_DELTAS: rpn_deltas, CLASS_LOGITS: classes,
                        BOX_DELTAS: deltas}

    return people_splits(data_config, seed=seed, input_size=input_size, splits=splits, for_training=for_training,
                         frame_targets=frame_targets)
