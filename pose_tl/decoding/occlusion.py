"""Inferring joints that were not found from connected ones: bone lengths plus limb directions.

Along the skeleton tree, a missing child joint is placed from its parent, one bone length away, in the direction of
the parent's own incoming bone (a limb continues roughly straight); a missing parent is placed from its child the
other way. Bone lengths are statistics of the training data (`bone_length_statistics`), or the engine's
proportions for a 1.7 m adult by default. Every inferred joint is flagged.
"""

import numpy as np
import tensorflow as tf

from pose_tl.data.people.skeleton import LIMBS, NUM_JOINTS

# Mean bone lengths (metres) of a 1.7 m adult in the synthetic engine's proportions, in `LIMBS` order.
DEFAULT_BONE_LENGTHS = (0.17, 0.18, 0.18, 0.29, 0.32, 0.29, 0.32, 0.27, 0.25, 0.25, 0.42, 0.43, 0.42, 0.43)
DOWN = (0.0, 1.0, 0.0)  # camera y points down: the default direction of a limb with no context


def bone_length_statistics(joints_3d, visibility, min_visibility=1):
    """Mean length per limb over people whose two joints are labelled (visibility >= `min_visibility`)."""
    joints_3d, visibility = np.asarray(joints_3d), np.asarray(visibility)
    lengths = []
    for limb, (a, b) in enumerate(LIMBS):
        both = (visibility[:, a] >= min_visibility) & (visibility[:, b] >= min_visibility)
        values = np.linalg.norm(joints_3d[both, a] - joints_3d[both, b], axis=-1)
        values = values[np.isfinite(values)]  # files without 3D labels (COCO-style) hold NaN
        lengths.append(float(values.mean()) if values.size else DEFAULT_BONE_LENGTHS[limb])
    return tuple(lengths)


def _incoming(child):
    for limb, (a, b) in enumerate(LIMBS):
        if b == child:
            return limb, a
    return None, None


def infer_missing_joints(xyz, found, bone_lengths=DEFAULT_BONE_LENGTHS):
    """Fill joints of xyz [P, J, 3] where `found` [P, J] is False from connected found joints.

    Returns:
        (xyz [P, J, 3], inferred [P, J] bool); joints with no found neighbour chain stay as they were, not inferred.
    """
    known = tf.cast(found, tf.bool)
    inferred = tf.zeros_like(known)
    down = tf.constant(DOWN, xyz.dtype)
    for _ in range(2):  # two sweeps: children from parents, then parents from children
        for limb, (parent, child) in enumerate(LIMBS):
            length = float(bone_lengths[limb])
            grand_limb, grand = _incoming(parent)
            if grand is not None:
                incoming = xyz[:, parent] - xyz[:, grand]
                usable = known[:, parent] & known[:, grand] & (tf.norm(incoming, axis=-1) > 1e-6)
                direction = tf.where(usable[:, None], tf.math.l2_normalize(incoming, axis=-1), down)
            else:
                direction = tf.broadcast_to(down, tf.shape(xyz[:, parent]))
            fill_child = known[:, parent] & ~known[:, child]
            fill_parent = known[:, child] & ~known[:, parent]
            child_xyz = tf.where(fill_child[:, None], xyz[:, parent] + direction * length, xyz[:, child])
            parent_xyz = tf.where(fill_parent[:, None], xyz[:, child] - direction * length, xyz[:, parent])
            xyz = _set_joint(_set_joint(xyz, child, child_xyz), parent, parent_xyz)
            inferred = _set_joint(_set_joint(inferred, child, inferred[:, child] | fill_child), parent,
                                  inferred[:, parent] | fill_parent)
            known = _set_joint(_set_joint(known, child, known[:, child] | fill_child), parent,
                               known[:, parent] | fill_parent)
    return xyz, inferred


def _set_joint(tensor, joint, value):
    """tensor[:, joint] = value, functionally (one select, not a restack of every joint: decoding runs it often)."""
    rank = len(tensor.shape)
    mask = tf.reshape(tf.range(NUM_JOINTS) == joint, [1, NUM_JOINTS] + [1] * (rank - 2))
    return tf.where(mask, tf.expand_dims(value, 1), tensor)


def occluded_by_depth(xyz, found, bone_lengths=DEFAULT_BONE_LENGTHS, margin_m=0.15):
    """[P, J] True where a found joint reads a depth nearer than any connected found joint allows.

    A joint behind an occluder sits where the heatmap says in 2D, but the depth there is the occluder's surface:
    nearer than its neighbour's depth minus the bone between them.
    """
    z = xyz[..., 2]
    too_near = tf.zeros_like(found)
    for limb, (a, b) in enumerate(LIMBS):
        limit = float(bone_lengths[limb]) + margin_m
        both = found[:, a] & found[:, b]
        too_near = _set_joint(too_near, a, too_near[:, a] | (both & (z[:, a] < z[:, b] - limit)))
        too_near = _set_joint(too_near, b, too_near[:, b] | (both & (z[:, b] < z[:, a] - limit)))
    return too_near


def depth_from_neighbours(keypoints, xyz, usable, target, intrinsics):
    """For joints in `target`, keep the 2D position and take z as the mean z of connected usable joints."""
    total = tf.zeros_like(xyz[..., 2])
    count = tf.zeros_like(xyz[..., 2])
    for a, b in LIMBS:
        for joint, other in ((a, b), (b, a)):
            add = tf.cast(usable[:, other], xyz.dtype)
            total = _set_joint(total, joint, total[:, joint] + add * xyz[:, other, 2])
            count = _set_joint(count, joint, count[:, joint] + add)
    z = tf.math.divide_no_nan(total, count)
    fixable = target & (count > 0)
    fx, fy, cx, cy = tf.unstack(tf.cast(intrinsics, xyz.dtype))
    lifted = tf.stack([(keypoints[..., 0] - cx) * z / fx, (keypoints[..., 1] - cy) * z / fy, z], axis=-1)
    return tf.where(fixable[..., None], lifted, xyz), fixable
