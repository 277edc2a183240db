"""Detector inference in TensorFlow ops: proposals (RPN and/or depth segments) -> box head -> per-class NMS.

Outputs follow the TF Object Detection API: `detection_boxes` [N, K, 4] normalised (ymin, xmin, ymax, xmax) of the
input frame, `detection_scores` [N, K], `detection_classes` [N, K] int32 1..C (0 in padding rows),
`detection_class_names` [N, K] strings ("" in padding), `num_detections` [N].

`[..., None]` is written `tf.expand_dims`: TFLite has no kernel for a strided slice that adds an axis.
"""

import tensorflow as tf

from pose_tl.backbones.depth_preprocessing import depth_to_metres
from pose_tl.data.augment import resize_depth
from pose_tl.detection.boxes import anchor_grid, clip_boxes, decode_boxes
from pose_tl.detection.tflite_builtins import combined_nms_from_builtins, roi_align_by_gathers
from pose_tl.models.detector import features_model_of

RPN_NMS_IOU = 0.7  # Faster R-CNN's proposal NMS


def make_detector(model, *, detection_config, class_names, input_size, portable=None):
    """fn(depth [N, H, W] uint16 mm or float metres, intrinsics [N, 4]) -> the detection dict above.

    Intrinsics (of the N frames, pixels) matter only to the depth proposals, which back-project to find the floor.
    `portable`: None (TensorFlow's ops, the fastest: the SavedModel), "onnx" or "tflite": the same detections from
    ops that tf2onnx converts (per-class NMS in shared-box form, histogram segment extents) or that TFLite has
    builtin kernels for (`pose_tl.detection.tflite_builtins`: RoIAlign by gathers, NMS per frame and class).
    """
    input_h, input_w = input_size
    config = detection_config
    # Constants are made inside `predict`, not captured from outside: tf2onnx would make a captured tensor an input.
    anchors = anchor_grid((input_h, input_w), config.feature_stride, config.anchor_sizes, config.anchor_ratios)
    aspect = input_w / input_h
    preprocessing, features_model = model.get_layer("depth_preprocessing"), features_model_of(model)
    rpn_head, roi_align, box_head = model.get_layer("rpn_head"), model.get_layer("roi_align"), model.get_layer(
        "box_head")
    num_classes = len(class_names)
    pool, rpn_nms, final_nms = roi_align, combined_nms, combined_nms
    if portable == "onnx":
        final_nms = per_class_nms
    elif portable == "tflite":
        pool = lambda inputs: roi_align_by_gathers(*inputs, roi_align.size)  # noqa: E731
        rpn_nms = final_nms = combined_nms_from_builtins

    def rpn_proposals(objectness, deltas):
        boxes = clip_boxes(decode_boxes(deltas, tf.constant(anchors), aspect))
        found = rpn_nms(tf.expand_dims(boxes, 2), tf.expand_dims(tf.sigmoid(tf.cast(objectness, tf.float32)), -1),
                    max_size=config.rpn_proposals, iou_threshold=RPN_NMS_IOU, score_threshold=0.0)
        return found.nmsed_boxes, filled_rows(found, config.rpn_proposals)

    def predict(depth, intrinsics):
        frame_h, frame_w = tf.shape(depth)[1], tf.shape(depth)[2]
        metres = resize_depth(tf.expand_dims(depth_to_metres(depth), -1), (input_h, input_w))
        features = features_model(preprocessing(metres), training=False)
        objectness, deltas = rpn_head(features)
        proposals, valid = [], []
        if config.proposals in ("rpn", "both"):
            boxes, ok = rpn_proposals(objectness, deltas)
            proposals.append(boxes)
            valid.append(ok)
        if config.proposals in ("depth", "both"):
            from pose_tl.detection.depth_proposals import depth_proposals

            sx, sy = input_w / tf.cast(frame_w, tf.float32), input_h / tf.cast(frame_h, tf.float32)
            fx, fy, cx, cy = tf.unstack(tf.cast(intrinsics, tf.float32), axis=-1)
            boxes, ok = depth_proposals(metres[..., 0], tf.stack([fx * sx, fy * sy, cx * sx, cy * sy], axis=-1),
                                        portable=portable is not None)
            proposals.append(boxes)
            valid.append(ok)
        rois, valid = tf.concat(proposals, axis=1), tf.concat(valid, axis=1)
        logits, box_deltas = box_head(pool([features, rois]))
        scores = tf.nn.softmax(tf.cast(logits, tf.float32))[..., 1:] * tf.expand_dims(tf.cast(valid, tf.float32), -1)
        per_class = tf.reshape(tf.cast(box_deltas, tf.float32), [tf.shape(rois)[0], tf.shape(rois)[1],
                                                                 num_classes + 1, 4])[:, :, 1:]
        boxes = clip_boxes(decode_boxes(per_class, tf.expand_dims(rois, 2), aspect))
        found = final_nms(boxes, scores, max_size=config.max_detections, iou_threshold=config.nms_iou,
                          score_threshold=config.score_threshold)
        filled = filled_rows(found, config.max_detections)
        classes = tf.cast(found.nmsed_classes, tf.int32)
        return {"detection_boxes": found.nmsed_boxes, "detection_scores": found.nmsed_scores,
                "detection_classes": tf.where(filled, classes + 1, 0),
                "detection_class_names": tf.where(filled, tf.gather(tf.constant(list(class_names)), classes), ""),
                "num_detections": found.valid_detections}

    return predict


def filled_rows(nms, max_size):
    """[N, max_size] bool: which output rows of an NMS hold a detection."""
    return tf.range(max_size)[None, :] < tf.expand_dims(nms.valid_detections, -1)


def combined_nms(boxes, scores, *, max_size, iou_threshold, score_threshold):
    """TensorFlow's combined NMS of boxes [N, R, 1 or C, 4] with scores [N, R, C], at most `max_size` per class and
    in all."""
    return tf.image.combined_non_max_suppression(
        boxes, scores, max_output_size_per_class=max_size, max_total_size=max_size, iou_threshold=iou_threshold,
        score_threshold=score_threshold, clip_boxes=False)


def per_class_nms(boxes, scores, *, max_size, iou_threshold, score_threshold):
    """Combined NMS of per-class boxes [N, R, C, 4] with scores [N, R, C], written in the shared-box form
    [N, R * C, 1, 4] in which row r * C + c scores only in class c.

    The same selection (other classes score 0, and TensorFlow and ONNX both keep only scores above the threshold),
    in the only form tf2onnx converts (to ONNX NonMaxSuppression, whose boxes are shared across classes).
    """
    batch, count, classes = tf.shape(scores)[0], tf.shape(scores)[1], scores.shape[-1]
    one_class_each = tf.reshape(scores[..., None] * tf.eye(classes), [batch, count * classes, classes])
    return combined_nms(tf.reshape(boxes, [batch, count * classes, 1, 4]), one_class_each, max_size=max_size,
                        iou_threshold=iou_threshold, score_threshold=score_threshold)
