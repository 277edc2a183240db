"""Each decoded person's joints found again by the joint refiner (`pose_tl.models.refiner`) in a crop of its own
depth, and mapped back to the frame; TF ops.

The crop is cut around the joints the bottom-up head grouped (`facing.person_boxes`), from the person's depth relative
to its trunk over +-`REFINER_DEPTH_WINDOW_M` (wider than the facing classifier's: a reaching arm or a step towards the
camera stays in range). The refiner answers one heatmap per joint at half the crop's resolution; each joint's
strongest peak, sub-pixel refined (`peaks.find_peaks`), replaces the grouped joint where it reaches
`REFINED_MIN_PEAK`, and its height becomes the joint's score; where the refiner also answers joint depths (metres
behind the surface seen at the joint), the one at the peak's cell replaces the full-frame network's for that joint in
lifting (`people.complete_people`); where that surface lies nearer than the crop's depth window reaches (another
person in front: the crop shows background there, `behind_occluder`), the joint is placed at the refiner's depth
behind the person's trunk instead. `REFINE_PASSES` passes: each after the first cuts the
crop again around the joints the last one found (better centred and sized than the grouped joints, as the crops cut at
the labels it was trained on), as iterative top-down refiners do.
"""

from typing import NamedTuple

import tensorflow as tf

from pose_tl.data.people.skeleton import FLIP_INDEX
from pose_tl.decoding.facing import CROP_SIZE, exchanged, person_boxes, person_crops, trunk_depth, twin_turns
from pose_tl.decoding.indexing import batch_index_like, pixel_indices
from pose_tl.decoding.lifting import depth_at_keypoints
from pose_tl.decoding.peaks import find_peaks
from pose_tl.decoding.twins import twins_apart

REFINER_CROP_SIZE = CROP_SIZE  # height, width
REFINER_STRIDE = 2  # crop pixels per heatmap cell
REFINER_DEPTH_WINDOW_M = 0.8
REFINED_MIN_PEAK = 0.1  # a weaker peak (the joint outside the crop, or unsure) leaves the grouped joint as it was
REFINER_HEATMAP_SIGMA = 1.0  # the training targets' std, in heatmap cells
# On the accuracy benchmark's HED model of commit 3af8472: PCK@0.2 0.831 with one pass, 0.840 with two, 0.854 with
# three; each pass is one more refiner run per person (README, *Benchmarks*, pose: refiner passes; *Inference*).
REFINE_PASSES = 2
REFINER_HEATMAPS = "joint_heatmaps"  # the refiner's outputs (`pose_tl.models.refiner`)
REFINER_DEPTHS = "joint_depths"
REFINER_TRUNK_DEPTHS = "joint_trunk_depths"
REFINER_FACING = "facing"  # its logit that the person faces the camera, where the refiner answers it
REFINER_OUTPUTS = (REFINER_HEATMAPS, REFINER_DEPTHS, REFINER_TRUNK_DEPTHS)  # the order of `refiner_maps`' channels


class RefinedDepths(NamedTuple):
    """Where the refiner places the joints it moved (`refine_people`), each [N, P, J]: `offsets` metres behind the
    surface seen at the joint; `moved` the joints it moved; `trunk_z` metres from the camera, its depth behind the
    person's trunk added to the trunk's (0 where it answers none); `from_trunk` the moved joints placed at `trunk_z`
    (`behind_occluder`)."""

    offsets: tf.Tensor
    moved: tf.Tensor
    trunk_z: tf.Tensor
    from_trunk: tf.Tensor


def refiner_maps(outputs):
    """A refiner's answer as one float32 tensor [M, h, w, J] of heatmaps, or [M, h, w, 2J or 3J]: heatmaps, joint
    depths behind the surface, and behind the trunk where it answers them (`REFINER_OUTPUTS`); where it also answers
    which way the person faces, one channel more, its logit (`REFINER_FACING`) on every cell (`facing_logits`)."""
    if isinstance(outputs, dict):
        maps = [tf.cast(outputs[name], tf.float32) for name in REFINER_OUTPUTS if name in outputs]
        if REFINER_FACING in outputs:
            logit = tf.cast(outputs[REFINER_FACING], tf.float32)[:, None, None, :]  # [M, 1, 1, 1]
            maps.append(tf.broadcast_to(logit, tf.concat([tf.shape(maps[0])[:3], [1]], 0)))
        outputs = tf.concat(maps, axis=-1)
    return tf.cast(outputs, tf.float32)


def answers_facing(maps):
    """Whether the refiner's `maps` [..., C] (`refiner_maps`) end in its facing logit."""
    return maps.shape[-1] % len(FLIP_INDEX) == 1


def facing_logits(maps):
    """[...] the refiner's logit that each person faces the camera, from its `maps` [..., h, w, C]; None where it
    answers none."""
    return maps[..., 0, 0, -1] if answers_facing(maps) else None


def behind_occluder(surface, reference):
    """bool: joints whose depth seen at them, `surface` (metres, 0: no reading), lies nearer than a crop measured from
    the person's trunk depth `reference` (0: none) shows (`REFINER_DEPTH_WINDOW_M`), or that read none: the crop shows
    background there, so the joint's depth is taken behind the trunk, not behind that surface."""
    return (reference > 0) & ((surface <= 0) | (surface < reference - REFINER_DEPTH_WINDOW_M))


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
    order += [maps.shape[-1] - 1] if answers_facing(maps) else []  # and which way the person faces
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
    """(xy [M, J, 2] heatmap coordinates, peaks [M, J], joint depths [M, J] or None, depths behind the trunk [M, J] or
    None) of each joint's strongest peak in the refiner's `maps` [M, h, w, C] (`refiner_maps`), sub-pixel refined;
    the depths at its cell where the refiner answers them. Where it also answers which way the person faces, left
    and right twins found on one limb are put on different limbs (`twins.twins_apart`), and each pair so put apart
    that disagrees with that answer is exchanged (`facing.twin_turns`, as for the facing classifier's) before the
    depths are read: each joint's own depth maps, where it ends, are the ones trained there. Pairs its heatmaps
    found apart keep their sides: on the accuracy benchmark's HED model (trained at commit 56ea324, test split),
    turning every pair to the answer gave PCK@0.2 0.852, mAP@10 cm 0.791; these pairs only, 0.878 / 0.818."""
    joints = len(FLIP_INDEX)
    if answers_facing(maps):
        xy, peak, moved = twins_apart(*find_peaks(maps[..., :joints], threshold=0.0, max_peaks=2), REFINED_MIN_PEAK)
        # The crop's heatmap coordinates are the frame's scaled and shifted, so the pairs read across the body alike.
        turn = twin_turns(xy[None], tf.sigmoid(facing_logits(maps))[None], peak[None] >= REFINED_MIN_PEAK)
        turn = turn & moved[None]  # only the pairs put apart: the heatmaps told the others' sides
        xy, peak = exchanged(xy[None], turn)[0], exchanged(peak[None], turn)[0]
    else:
        xy, peak = find_peaks(maps[..., :joints], threshold=0.0, max_peaks=1)  # [M, J, 1, 2], [M, J, 1]
        xy, peak = xy[:, :, 0], peak[:, :, 0]
    y, x = pixel_indices(xy, maps.shape[1], maps.shape[2])  # [M, J]: the peak's cell
    joint = tf.broadcast_to(tf.range(joints), tf.shape(y))

    def at_peaks(first_channel):
        if maps.shape[-1] // joints * joints < first_channel + joints:  # (the facing logit is no joint's)
            return None
        return tf.gather_nd(maps[..., first_channel:first_channel + joints],
                            tf.stack([batch_index_like(y), y, x, joint], axis=-1))

    return xy, peak, at_peaks(joints), at_peaks(2 * joints)


def crop_joints(maps, boxes):
    """(joints [M, J, 2] frame pixels, peaks [M, J], joint depths [M, J] or None, depths behind the trunk [M, J] or
    None: `crop_peaks`) of the refiner's `maps` [M, h, w, C] of crops cut from `boxes` [M, 4], as decoding places
    them. For measures of the refiner alone (its validation, `refiner_errors.py`)."""
    xy, peaks, depths, trunk_depths = crop_peaks(maps)
    return heatmap_to_frame(xy, boxes[:, None], maps.shape[1:3]), peaks, depths, trunk_depths


def refined_joints(maps, keypoints, found):
    """(keypoints [N, P, J, 2] frame pixels, peaks [N, P, J], joint depths [N, P, J] or None, depths behind the trunk
    [N, P, J] or None: `crop_peaks`) read from the refiner's `maps` [N, P, h, w, C] of crops cut around
    `keypoints` [N, P, J, 2] (frame pixels) at their `found` [N, P, J] joints."""
    maps = tf.cast(maps, tf.float32)
    shape = tf.shape(maps)
    xy, peak, depths, trunk_depths = crop_peaks(tf.reshape(maps, [-1, *maps.shape[2:]]))  # N * P crops
    xy = tf.reshape(xy, tf.concat([shape[:2], [-1, 2]], 0))
    per_joint = tf.concat([shape[:2], [-1]], 0)  # [N, P, J]
    peak = tf.reshape(peak, per_joint)
    depths, trunk_depths = (None if value is None else tf.reshape(value, per_joint) for value in (depths, trunk_depths))
    boxes = person_boxes(keypoints, found)[:, :, None]  # [N, P, 1, 4]
    return heatmap_to_frame(xy, boxes, maps.shape[2:4]), peak, depths, trunk_depths


def refine_people(people, maps, *, stride, depth_m=None, min_joint_score=0.3):
    """(people, joint depths) from assembled `people` (output-map pixels; `people.assemble_people`) with each joint
    the refiner's `maps` [N, P, h, w, C] (`refiner_maps`) peak at `REFINED_MIN_PEAK` or above moved there,
    its score the peak's height (at most 1). Joint depths: None where the refiner answers none, else `RefinedDepths`
    for `people.complete_people`; its depths behind the trunk are used where `depth_m` [N, H, W] (the frame the crops
    were cut from, metres) is given and the refiner answers them. `stride`: the crops' depth pixels per output pixel,
    a number or (x, y) (`people.refining_crops`)."""
    keypoints, keypoint_scores, person_scores, count = people
    stride = tf.cast(stride, tf.float32)
    cut_at, found = keypoints * stride, keypoint_scores >= min_joint_score  # as `people.refining_crops` cut them
    refined, peak, depths, trunk_depths = refined_joints(maps, cut_at, found)
    use = (peak >= REFINED_MIN_PEAK) & tf.expand_dims(present_slots(count, tf.shape(keypoints)[1]), -1)
    keypoints = tf.where(tf.expand_dims(use, -1), refined / stride, keypoints)  # TFLite: no bool [..., None]
    keypoint_scores = tf.where(use, tf.minimum(peak, 1.0), keypoint_scores)
    people = (keypoints, keypoint_scores, person_scores, count)
    if depths is None:
        return people, None
    trunk_z, from_trunk = tf.zeros_like(depths), tf.zeros_like(use)
    if trunk_depths is not None and depth_m is not None:
        depth_m = tf.cast(depth_m, tf.float32)
        reference = tf.expand_dims(trunk_depth(depth_m, cut_at, found), -1)  # the crops' (`facing.person_crops`)
        surface = depth_at_keypoints(depth_m, refined)
        from_trunk = use & behind_occluder(surface, reference)
        trunk_z = tf.where(from_trunk, reference + trunk_depths, 0.0)
    return people, RefinedDepths(depths, use, trunk_z, from_trunk)


def present_slots(count, slots):
    """[N, slots] bool: the person slots that hold one of the `count` [N] people (the first of each frame)."""
    return tf.range(slots)[None, :] < tf.cast(count, tf.int32)[:, None]
