"""Each decoded person's joints found again by the joint refiner (`pose_tl.models.refiner`) in a crop of its own
depth, and mapped back to the frame; TF ops.

The crop is cut around the joints the bottom-up head grouped (`facing.person_boxes`), from the person's depth relative
to its trunk over +-`REFINER_DEPTH_WINDOW_M` (wider than the facing classifier's: a reaching arm or a step towards the
camera stays in range). The refiner answers one heatmap per joint at half the crop's resolution; each joint's
strongest peak, sub-pixel refined (`peaks.find_peaks`), replaces the grouped joint where it reaches
`REFINED_MIN_PEAK`, and its height becomes the joint's score; where the refiner also answers joint depths (metres
behind the surface seen at the joint), the one at the peak's cell replaces the full-frame network's for that joint in
lifting (`people.complete_people`). `REFINE_PASSES` passes: each after the first cuts the
crop again around the joints the last one found (better centred and sized than the grouped joints, as the crops cut at
the labels it was trained on), as iterative top-down refiners do.
"""

import tensorflow as tf

from pose_tl.data.people.skeleton import FLIP_INDEX
from pose_tl.decoding.facing import CROP_SIZE, person_boxes, person_crops
from pose_tl.decoding.indexing import batch_index_like, pixel_indices
from pose_tl.decoding.peaks import find_peaks

REFINER_CROP_SIZE = CROP_SIZE  # height, width
REFINER_STRIDE = 2  # crop pixels per heatmap cell
REFINER_DEPTH_WINDOW_M = 0.8
REFINED_MIN_PEAK = 0.1  # a weaker peak (the joint outside the crop, or unsure) leaves the grouped joint as it was
REFINER_HEATMAP_SIGMA = 1.0  # the training targets' std, in heatmap cells
# On the accuracy benchmark's HED refiner, test people cut around shaken labels (as decoding's joints differ from
# them): PCK@0.2 0.866 after one pass, 0.888 after two, 0.894 after three (README, pose accuracy).
REFINE_PASSES = 2
REFINER_HEATMAPS = "joint_heatmaps"  # the refiner's outputs (`pose_tl.models.refiner`)
REFINER_DEPTHS = "joint_depths"


def refiner_maps(outputs):
    """A refiner's answer as one float32 tensor [M, h, w, J] of heatmaps, or [M, h, w, 2J]: heatmaps then joint
    depths (a refiner with both outputs)."""
    if isinstance(outputs, dict):
        outputs = tf.concat([tf.cast(outputs[REFINER_HEATMAPS], tf.float32),
                             tf.cast(outputs[REFINER_DEPTHS], tf.float32)], axis=-1)
    return tf.cast(outputs, tf.float32)


def refiner_heatmaps(refiner, crops, flip=False):
    """`refiner(crops [M, h, w, 1])` heatmaps [M, h / 2, w / 2, J] (and joint depths: `refiner_maps`), float32; with
    `flip`, averaged with its answer for the mirrored crops (left and right joints exchanged back), as the flip test
    does for the frame: one call on 2M crops."""
    if not flip:
        return refiner_maps(refiner(crops))
    count = tf.shape(crops)[0]
    maps = refiner_maps(refiner(tf.concat([crops, tf.reverse(crops, axis=[2])], axis=0)))
    channels = list(FLIP_INDEX) * (maps.shape[-1] // len(FLIP_INDEX))  # a mirror keeps each joint's depth
    order = [index + len(FLIP_INDEX) * (position // len(FLIP_INDEX)) for position, index in enumerate(channels)]
    mirrored = tf.gather(tf.reverse(maps[count:], axis=[2]), order, axis=-1)
    return (maps[:count] + mirrored) / 2.0


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


def crop_peaks(maps):
    """(xy [M, J, 2] heatmap coordinates, peaks [M, J], joint depths [M, J] or None) of each joint's strongest peak in
    the refiner's `maps` [M, h, w, J or 2J] (`refiner_maps`), sub-pixel refined; the depths at its cell where the
    refiner answers them."""
    joints = len(FLIP_INDEX)
    xy, peak = find_peaks(maps[..., :joints], threshold=0.0, max_peaks=1)  # [M, J, 1, 2], [M, J, 1]
    xy, peak, depths = xy[:, :, 0], peak[:, :, 0], None
    if maps.shape[-1] == 2 * joints:
        y, x = pixel_indices(xy, maps.shape[1], maps.shape[2])  # [M, J]: the peak's cell
        joint = tf.broadcast_to(tf.range(joints), tf.shape(y))
        depths = tf.gather_nd(maps[..., joints:], tf.stack([batch_index_like(y), y, x, joint], axis=-1))
    return xy, peak, depths


def refined_joints(maps, keypoints, found):
    """(keypoints [N, P, J, 2] frame pixels, peaks [N, P, J], joint depths [N, P, J] or None: `crop_peaks`) read from
    the refiner's `maps` [N, P, h, w, J or 2J] of crops cut around `keypoints` [N, P, J, 2] (frame pixels) at their
    `found` [N, P, J] joints."""
    maps = tf.cast(maps, tf.float32)
    shape = tf.shape(maps)
    xy, peak, depths = crop_peaks(tf.reshape(maps, [-1, *maps.shape[2:]]))  # N * P crops
    xy = tf.reshape(xy, tf.concat([shape[:2], [-1, 2]], 0))
    per_joint = tf.concat([shape[:2], [-1]], 0)  # [N, P, J]
    peak = tf.reshape(peak, per_joint)
    depths = None if depths is None else tf.reshape(depths, per_joint)
    boxes = person_boxes(keypoints, found)[:, :, None]  # [N, P, 1, 4]
    return heatmap_to_frame(xy, boxes, maps.shape[2:4]), peak, depths


def refine_people(people, maps, *, stride, min_joint_score=0.3):
    """(people, joint depths) from assembled `people` (output-map pixels; `people.assemble_people`) with each joint
    the refiner's `maps` [N, P, h, w, J or 2J] (`refiner_maps`) peak at `REFINED_MIN_PEAK` or above moved there, its
    score the peak's height (at most 1). Joint depths: None, or where the refiner answers them, (depths [N, P, J]
    metres behind the surface at the moved joints, moved [N, P, J] bool) for `people.complete_people`.
    `stride`: the crops' depth pixels per output pixel, a number or (x, y) (`people.refining_crops`)."""
    keypoints, keypoint_scores, person_scores, count = people
    stride = tf.cast(stride, tf.float32)
    refined, peak, depths = refined_joints(maps, keypoints * stride, keypoint_scores >= min_joint_score)
    use = (peak >= REFINED_MIN_PEAK) & tf.expand_dims(present_slots(count, tf.shape(keypoints)[1]), -1)
    keypoints = tf.where(tf.expand_dims(use, -1), refined / stride, keypoints)  # TFLite: no bool [..., None]
    keypoint_scores = tf.where(use, tf.minimum(peak, 1.0), keypoint_scores)
    return (keypoints, keypoint_scores, person_scores, count), None if depths is None else (depths, use)


def present_slots(count, slots):
    """[N, slots] bool: the person slots that hold one of the `count` [N] people (the first of each frame)."""
    return tf.range(slots)[None, :] < tf.cast(count, tf.int32)[:, None]
