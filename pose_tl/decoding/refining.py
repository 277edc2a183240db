"""Each decoded person's joints found again by the joint refiner (`pose_tl.models.refiner`) in a crop of its own
depth, and mapped back to the frame; TF ops.

The crop is cut around the joints the bottom-up head grouped (`facing.person_boxes`), from the person's depth relative
to its trunk over +-`REFINER_DEPTH_WINDOW_M` (wider than the facing classifier's: a reaching arm or a step towards the
camera stays in range). The refiner answers one heatmap per joint at half the crop's resolution; each joint's
strongest peak, sub-pixel refined (`peaks.find_peaks`), replaces the grouped joint where it reaches
`REFINED_MIN_PEAK`, and its height becomes the joint's score. `REFINE_PASSES` passes: each after the first cuts the
crop again around the joints the last one found (better centred and sized than the grouped joints, as the crops cut at
the labels it was trained on), as iterative top-down refiners do.
"""

import tensorflow as tf

from pose_tl.data.people.skeleton import FLIP_INDEX
from pose_tl.decoding.facing import CROP_SIZE, person_boxes, person_crops
from pose_tl.decoding.peaks import find_peaks

REFINER_CROP_SIZE = CROP_SIZE  # height, width
REFINER_STRIDE = 2  # crop pixels per heatmap cell
REFINER_DEPTH_WINDOW_M = 0.8
REFINED_MIN_PEAK = 0.1  # a weaker peak (the joint outside the crop, or unsure) leaves the grouped joint as it was
REFINER_HEATMAP_SIGMA = 1.0  # the training targets' std, in heatmap cells
# On the accuracy benchmark's HED refiner, test people cut around shaken labels (as decoding's joints differ from
# them): PCK@0.2 0.866 after one pass, 0.888 after two, 0.894 after three (README, pose accuracy).
REFINE_PASSES = 2


def refiner_heatmaps(refiner, crops, flip=False):
    """`refiner(crops [M, h, w, 1])` heatmaps [M, h / 2, w / 2, J], float32; with `flip`, averaged with its heatmaps
    of the mirrored crops (left and right joints exchanged back), as the flip test does for the frame: one call on
    2M crops."""
    if not flip:
        return tf.cast(refiner(crops), tf.float32)
    count = tf.shape(crops)[0]
    heatmaps = tf.cast(refiner(tf.concat([crops, tf.reverse(crops, axis=[2])], axis=0)), tf.float32)
    mirrored = tf.gather(tf.reverse(heatmaps[count:], axis=[2]), list(FLIP_INDEX), axis=-1)
    return (heatmaps[:count] + mirrored) / 2.0


def refiner_crops(depth_m, keypoints, found):
    """[N, P, h, w, 1] each person's crop for the refiner: depth_m [N, H, W] metres, keypoints [N, P, J, 2] pixels of
    that frame, found [N, P, J] the joints to cut around."""
    return person_crops(tf.cast(depth_m, tf.float32), keypoints, found, window_m=REFINER_DEPTH_WINDOW_M)


def heatmap_to_frame(xy, boxes, heatmap_size):
    """Heatmap coordinates xy [..., 2] (x, y; a cell spans [i, i + 1)) of crops cut from `boxes` [..., 4] (y0, x0,
    y1, x1 frame pixels) -> frame pixels [..., 2]."""
    height, width = heatmap_size
    x = boxes[..., 1] + xy[..., 0] / width * (boxes[..., 3] - boxes[..., 1])
    y = boxes[..., 0] + xy[..., 1] / height * (boxes[..., 2] - boxes[..., 0])
    return tf.stack([x, y], axis=-1)


def frame_to_heatmap(xy, boxes, heatmap_size):
    """The inverse of `heatmap_to_frame` (for training targets)."""
    height, width = heatmap_size
    x = (xy[..., 0] - boxes[..., 1]) / (boxes[..., 3] - boxes[..., 1]) * width
    y = (xy[..., 1] - boxes[..., 0]) / (boxes[..., 2] - boxes[..., 0]) * height
    return tf.stack([x, y], axis=-1)


def refined_joints(heatmaps, keypoints, found):
    """(keypoints [N, P, J, 2] frame pixels, peaks [N, P, J]) read from the refiner's `heatmaps` [N, P, h, w, J] of
    crops cut around `keypoints` [N, P, J, 2] (frame pixels) at their `found` [N, P, J] joints."""
    heatmaps = tf.cast(heatmaps, tf.float32)
    shape = tf.shape(heatmaps)
    flat = tf.reshape(heatmaps, [-1, *heatmaps.shape[2:]])  # [N * P, h, w, J]
    xy, peak = find_peaks(flat, threshold=0.0, max_peaks=1)  # [N * P, J, 1, 2], [N * P, J, 1]
    xy = tf.reshape(xy[:, :, 0], tf.concat([shape[:2], [-1, 2]], 0))
    peak = tf.reshape(peak[:, :, 0], tf.concat([shape[:2], [-1]], 0))
    boxes = person_boxes(keypoints, found)[:, :, None]  # [N, P, 1, 4]
    return heatmap_to_frame(xy, boxes, heatmaps.shape[2:4]), peak


def refine_people(people, heatmaps, *, stride, min_joint_score=0.3):
    """Assembled `people` (output-map pixels; `people.assemble_people`) with each joint the refiner's `heatmaps`
    [N, P, h, w, J] peak at `REFINED_MIN_PEAK` or above moved there, its score the peak's height (at most 1).
    `stride`: the crops' depth pixels per output pixel, a number or (x, y) (`people.refining_crops`)."""
    keypoints, keypoint_scores, person_scores, count = people
    stride = tf.cast(stride, tf.float32)
    refined, peak = refined_joints(heatmaps, keypoints * stride, keypoint_scores >= min_joint_score)
    use = (peak >= REFINED_MIN_PEAK) & tf.expand_dims(present_slots(count, tf.shape(keypoints)[1]), -1)
    keypoints = tf.where(tf.expand_dims(use, -1), refined / stride, keypoints)  # TFLite: no bool [..., None]
    keypoint_scores = tf.where(use, tf.minimum(peak, 1.0), keypoint_scores)
    return keypoints, keypoint_scores, person_scores, count


def present_slots(count, slots):
    """[N, slots] bool: the person slots that hold one of the `count` [N] people (the first of each frame)."""
    return tf.range(slots)[None, :] < tf.cast(count, tf.int32)[:, None]
