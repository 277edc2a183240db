"""Which way each decoded person faces, told from a crop of its own depth, and skeletons turned to agree; TF ops.

A full-frame network sees a person's relief (nose, chest, shoulder blades: centimetres) as a sliver of its depth
range and learns nearly the same heatmap for a left joint and its right twin, so which side is which is a guess.
Cut out and measured from the person's own depth, stretched over +-`DEPTH_WINDOW_M`, the same relief tells facing the
camera from back turned (a small CNN: `pose_tl.models.facing`). The skeleton's own facing follows from its joints:
seen upright, a person facing the camera has its left shoulder, hip, elbow, knee... on the image's right. Where the
two disagree and both are clear, the pair (the two shoulders, the two knees...) is exchanged, each pair on its own.

Crops are read with `gather_nd` at nearest pixels (not `crop_and_resize`), which TFLite and tf2onnx convert as is.
"""

import tensorflow as tf

from pose_tl.data.people.skeleton import FLIP_INDEX, JOINT, NUM_JOINTS
from pose_tl.decoding.indexing import batch_index_like
from pose_tl.decoding.lifting import depth_at_keypoints

CROP_SIZE = (64, 32)  # height, width: a standing person's proportions
DEPTH_WINDOW_M = 0.5  # depth relative to the person's trunk, +-; farther pixels are background
BACKGROUND = 1.5  # crop value of background and holes (the person's pixels lie in [-1, 1])
BOX_MARGIN = 0.2  # of the joints' extent, on each side: the head and feet reach past their joints
TRUNK = tuple(JOINT[name] for name in ("neck", "torso", "right_shoulder", "left_shoulder", "right_hip", "left_hip"))
# The right joint of each left/right pair; each pair is turned on its own, by where its two joints lie across the
# body (on an accuracy benchmark HED model, turning each pair rather than whole arms and legs by their roots gave
# PCK@0.2 +0.6 points, OKS AP +1.1: the network's knees and feet are swapped independently of its hips).
TWINS = tuple(JOINT[f"right_{part}"] for part in ("shoulder", "elbow", "hand", "hip", "knee", "foot"))
# A pair is turned only where the classifier is this sure, either way, and its two joints lie this far apart across
# the body (in units of the person's height in pixels): side-on people, whose left and right are a matter of which
# limb is nearer, are left as decoded.
TURN_PROBABILITY = 0.75
MIN_ACROSS = 0.04


def person_boxes(keypoints, found):
    """Boxes [N, P, 4] (y0, x0, y1, x1, pixels) of `CROP_SIZE`'s aspect ratio around each person's found joints.

    Args:
        keypoints: [N, P, J, 2] (x, y) pixels; found: [N, P, J] bool.
    """
    big = 1e9
    mask = tf.expand_dims(found, -1)
    low = tf.reduce_min(tf.where(mask, keypoints, big), axis=2)  # [N, P, 2]
    high = tf.reduce_max(tf.where(mask, keypoints, -big), axis=2)
    any_found = tf.reduce_any(found, axis=2, keepdims=True)
    low, high = tf.where(any_found, low, 0.0), tf.where(any_found, high, 0.0)
    centre, extent = (low + high) / 2.0, (high - low) * (1.0 + 2.0 * BOX_MARGIN)
    aspect = CROP_SIZE[0] / CROP_SIZE[1]
    height = tf.maximum(tf.maximum(extent[..., 1], extent[..., 0] * aspect), 8.0)  # at least a few pixels
    half_h, half_w = height / 2.0, height / aspect / 2.0
    return tf.stack([centre[..., 1] - half_h, centre[..., 0] - half_w, centre[..., 1] + half_h,
                     centre[..., 0] + half_w], axis=-1)


def trunk_depth(depth_m, keypoints, found):
    """[N, P] each person's depth (metres): the mean robust depth at its found trunk joints, else at any found
    joint; 0 where none reads."""
    readings = depth_at_keypoints(depth_m, keypoints)  # [N, P, J]
    valid = found & (readings > 0)
    in_trunk = tf.reduce_any(tf.one_hot(TRUNK, NUM_JOINTS, on_value=True, off_value=False, dtype=tf.bool), axis=0)
    trunk = valid & in_trunk
    use = tf.where(tf.reduce_any(trunk, axis=-1, keepdims=True), trunk, valid)
    weights = tf.cast(use, tf.float32)
    return tf.math.divide_no_nan(tf.reduce_sum(readings * weights, -1), tf.reduce_sum(weights, -1))


def person_crops(depth_m, keypoints, found, window_m=DEPTH_WINDOW_M):
    """[N, P, h, w, 1] each person's depth relative to its trunk, / `window_m`; `BACKGROUND` elsewhere.

    Args:
        depth_m: [N, H, W] metres (0: no reading); keypoints: [N, P, J, 2] pixels of that frame; found: [N, P, J].
    """
    depth_m = tf.cast(depth_m, tf.float32)
    height, width = tf.shape(depth_m)[1], tf.shape(depth_m)[2]
    boxes = person_boxes(keypoints, found)  # [N, P, 4]
    reference = trunk_depth(depth_m, keypoints, found)
    rows = (tf.range(CROP_SIZE[0], dtype=tf.float32) + 0.5) / CROP_SIZE[0]
    cols = (tf.range(CROP_SIZE[1], dtype=tf.float32) + 0.5) / CROP_SIZE[1]
    y = boxes[..., 0, None] + rows * (boxes[..., 2] - boxes[..., 0])[..., None]  # [N, P, h]
    x = boxes[..., 1, None] + cols * (boxes[..., 3] - boxes[..., 1])[..., None]  # [N, P, w]
    y = tf.broadcast_to(y[..., :, None], tf.concat([tf.shape(y), [CROP_SIZE[1]]], 0))  # [N, P, h, w]
    x = tf.broadcast_to(x[..., None, :], tf.shape(y))
    row, col = tf.cast(tf.floor(y), tf.int32), tf.cast(tf.floor(x), tf.int32)
    inside = (row >= 0) & (row < height) & (col >= 0) & (col < width)
    values = tf.gather_nd(depth_m, tf.stack([batch_index_like(row), tf.clip_by_value(row, 0, height - 1),
                                             tf.clip_by_value(col, 0, width - 1)], axis=-1))
    reference = reference[..., None, None]
    relative = (values - reference) / window_m
    person = inside & (values > 0) & (tf.abs(relative) <= 1.0) & (reference > 0)  # TFLite: no bool [..., None]
    return tf.where(person, relative, BACKGROUND)[..., None]


def skeleton_facing(keypoints, found):
    """[N, P, len(TWINS)] how far each pair's left joint lies right of its right twin, across the body, per person
    height: > 0 where the decoded pair says the person faces the camera (0 where either is not found)."""
    def at(joint):
        return keypoints[:, :, joint], tf.cast(found[:, :, joint], tf.float32)[..., None]

    (neck, has_neck), (torso, has_torso) = at(JOINT["neck"]), at(JOINT["torso"])
    (left_hip, has_left_hip), (right_hip, has_right_hip) = at(JOINT["left_hip"]), at(JOINT["right_hip"])
    hips = has_left_hip * has_right_hip
    lower = hips * (left_hip + right_hip) / 2.0 + (1.0 - hips) * torso
    has_up = has_neck * tf.maximum(hips, has_torso)
    up = has_up * (neck - lower) + (1.0 - has_up) * tf.constant([0.0, -1.0])  # image y points down
    up = up / tf.maximum(tf.norm(up, axis=-1, keepdims=True), 1e-6)
    mask = tf.expand_dims(found, -1)
    extent = (tf.reduce_max(tf.where(mask, keypoints, -1e9), axis=2)
              - tf.reduce_min(tf.where(mask, keypoints, 1e9), axis=2))[..., 1]  # [N, P] height in pixels
    extent = tf.maximum(extent, 1.0)
    columns = []
    for right in TWINS:
        (left_joint, has_left), (right_joint, has_right) = at(FLIP_INDEX[right]), at(right)
        across = (left_joint - right_joint) * has_left * has_right
        columns.append((up[..., 0] * across[..., 1] - up[..., 1] * across[..., 0]) / extent)
    return tf.stack(columns, axis=-1)


def turn_to_facing(keypoints, keypoint_scores, facing_probability, found):
    """(keypoints, keypoint_scores) with each left/right pair that disagrees with the classifier exchanged.

    Args:
        keypoints: [N, P, J, 2]; keypoint_scores: [N, P, J]; facing_probability: [N, P] that each person faces the
            camera; found: [N, P, J] the joints the skeleton's own facing is read from.
    """
    turn = twin_turns(keypoints, facing_probability, found)
    return exchanged(keypoints, turn), exchanged(keypoint_scores, turn)


def twin_turns(keypoints, facing_probability, found):
    """[N, P, J] bool: the joints `turn_to_facing` exchanges with their twins (both of each pair it turns)."""
    says = skeleton_facing(keypoints, found)  # [N, P, len(TWINS)]
    sure_towards = tf.expand_dims(facing_probability >= TURN_PROBABILITY, -1)  # TFLite: no bool [..., None]
    sure_away = tf.expand_dims(facing_probability <= 1.0 - TURN_PROBABILITY, -1)
    turn = (sure_towards & (says <= -MIN_ACROSS)) | (sure_away & (says >= MIN_ACROSS))  # [N, P, len(TWINS)]
    joint_turn = [tf.zeros_like(turn[..., 0])] * NUM_JOINTS
    for pair, right in enumerate(TWINS):
        joint_turn[right] = joint_turn[FLIP_INDEX[right]] = turn[..., pair]
    return tf.stack(joint_turn, axis=-1)  # [N, P, J]


def exchanged(values, joint_turn):
    """Per-joint `values` [N, P, J, ...] with the joints of `joint_turn` [N, P, J] taking their twins' values."""
    turn = tf.reshape(joint_turn, tf.concat([tf.shape(joint_turn), tf.ones([values.shape.rank - 3], tf.int32)], 0))
    return tf.where(turn, tf.gather(values, FLIP_INDEX, axis=2), values)


def could_turn(keypoints, found, num_people):
    """[N, P] the person slots `turn_to_facing` can act on, whatever the classifier says: the first `num_people` [N]
    of each frame, with a left/right pair that lies clearly across the body (`skeleton_facing`)."""
    person = tf.range(tf.shape(keypoints)[1])[None, :] < tf.cast(num_people, tf.int32)[:, None]
    return person & tf.reduce_any(tf.abs(skeleton_facing(keypoints, found)) >= MIN_ACROSS, axis=-1)


def facing_probabilities(classify, crops, wanted=None):
    """[N, P] the probability that each person slot faces the camera, `classify(crops [M, h, w, 1]) -> [M, 1]` (the
    facing classifier, `pose_tl.models.facing`) applied to `crops` [N, P, h, w, 1]; slots not `wanted` read 0.5
    (unsure: never turned). See `on_person_slots`."""
    return on_person_slots(classify, crops, wanted, 0.5)[..., 0]


def on_person_slots(network, crops, wanted=None, fill=0.0):
    """`network(crops [M, h, w, 1]) -> [M, ...]` applied to the person slots of `crops` [N, P, h, w, 1]: [N, P, ...].

    With `wanted` [N, P] bool, only those slots are computed, which is what the work costs with TensorFlow's kernels
    (XLA's convolutions are slower on CPU); the others read `fill`. Without, every slot is (a static graph, as TFLite
    and ONNX conversion want).
    """
    shape = tf.shape(crops)
    if wanted is None:
        flat = tf.reshape(crops, [-1, *crops.shape[2:]])
        out = tf.cast(network(flat), tf.float32)
        return tf.reshape(out, tf.concat([shape[:2], tf.shape(out)[1:]], 0))
    slots = tf.where(wanted)  # [M, 2]
    count = tf.shape(slots)[0]
    # Where none is wanted, one crop is computed and dropped: a batch of none fails in TensorFlow's fused convolution
    # ("input depth must be evenly divisible by filter depth"). Only then: at a few people a frame each crop more is
    # ~0.5 ms of the refiner's call on this CPU.
    padded = tf.concat([slots, tf.zeros([1, 2], slots.dtype)], axis=0)[:tf.maximum(count, 1)]
    out = tf.cast(network(tf.gather_nd(crops, padded)), tf.float32)[:count]
    filled = tf.fill(tf.concat([shape[:2], tf.shape(out)[1:]], 0), tf.constant(fill, tf.float32))
    return tf.tensor_scatter_nd_update(filled, slots, out)
