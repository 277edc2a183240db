"""Inferring joints that were not found from connected ones: bone lengths plus limb directions.

Along the skeleton tree, a missing child joint is placed from its parent, one bone length away, in the direction of
the parent's own incoming bone (a limb continues roughly straight); a missing parent is placed from its child the
other way. Bone lengths are statistics of the training data (`bone_length_statistics`), or the engine's
proportions for a 1.7 m adult by default. Every inferred joint is flagged.
"""

import numpy as np
import tensorflow as tf

from pose_tl.data.people.skeleton import LIMBS, NUM_JOINTS
from pose_tl.decoding.indexing import PerJoint
from pose_tl.decoding.lifting import per_frame_intrinsics

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


def infer_missing_joints(xyz, found, bone_lengths=DEFAULT_BONE_LENGTHS, loop=False):
    """Fill joints of xyz [..., J, 3] where `found` [..., J] is False from connected found joints.

    Returns:
        (xyz [..., J, 3], inferred [..., J] bool); joints with no found neighbour chain stay as they were, not
        inferred. Two sweeps over `LIMBS`, unrolled (joints as lists of per-joint tensors, so an update is a list
        item, not an op) or, with `loop`, the same step in a `tf.while_loop` (for XLA, which compiles it much faster).
    """
    found = tf.cast(found, tf.bool)
    if not loop:
        tables = (PerJoint.unstacked(xyz, -2), PerJoint.unstacked(found, -1),
                  PerJoint.unstacked(tf.zeros_like(found), -1))
        for _ in range(2):
            for limb, (parent, child) in enumerate(LIMBS):
                tables = _infer_along_limb(tables, parent, child, _incoming(parent)[1], float(bone_lengths[limb]))
        return tables[0].stacked(), tables[2].stacked()
    parents, children = tf.constant([parent for parent, _ in LIMBS]), tf.constant([child for _, child in LIMBS])
    grands = tf.constant([-1 if _incoming(parent)[1] is None else _incoming(parent)[1] for parent, _ in LIMBS])
    lengths = tf.constant(bone_lengths, xyz.dtype)

    def step(i, points, known, inferred):
        limb = i % len(LIMBS)
        tables = _infer_along_limb((PerJoint(points, -2), PerJoint(known, -1), PerJoint(inferred, -1)),
                                   parents[limb], children[limb], grands[limb], lengths[limb])
        return (i + 1, *(table.entries for table in tables))

    _, points, _, inferred = tf.while_loop(lambda i, *_: i < 2 * len(LIMBS), step,
                                           (tf.constant(0), xyz, found, tf.zeros_like(found)))
    return points, inferred


def _infer_along_limb(tables, parent, child, grand, length):
    """One limb's step: a missing child placed from its parent, or a missing parent from its child.

    tables: `PerJoint`s of points [..., 3], known and inferred [...]; `grand`: the parent's own parent (None, or -1
    in a loop, for the root), whose bone gives the direction; ints (unrolled) or scalar tensors (in a loop).
    """
    points, known, inferred = tables
    down = tf.constant(DOWN, points[parent].dtype)
    direction = down
    if grand is not None:
        looped = tf.is_tensor(grand)
        grand_joint = tf.maximum(grand, 0) if looped else grand
        incoming = points[parent] - points[grand_joint]
        usable = known[parent] & known[grand_joint] & (tf.norm(incoming, axis=-1) > 1e-6)
        if looped:
            usable = usable & (grand >= 0)
        direction = tf.where(usable[..., None], tf.math.l2_normalize(incoming, axis=-1), down)
    fill_child = known[parent] & ~known[child]
    fill_parent = known[child] & ~known[parent]
    points = points.replaced(child, tf.where(fill_child[..., None], points[parent] + direction * length,
                                             points[child])).replaced(
        parent, tf.where(fill_parent[..., None], points[child] - direction * length, points[parent]))
    inferred = inferred.replaced(child, inferred[child] | fill_child).replaced(parent, inferred[parent] | fill_parent)
    known = known.replaced(child, known[child] | fill_child).replaced(parent, known[parent] | fill_parent)
    return points, known, inferred


def occluded_by_depth(xyz, found, bone_lengths=DEFAULT_BONE_LENGTHS, margin_m=0.15):
    """[..., J] True where a found joint reads a depth nearer than any connected found joint allows.

    A joint behind an occluder sits where the heatmap says in 2D, but the depth there is the occluder's surface:
    nearer than its neighbour's depth minus the bone between them.
    """
    z = tf.unstack(xyz[..., 2], NUM_JOINTS, axis=-1)
    found = tf.unstack(found, NUM_JOINTS, axis=-1)
    too_near = [tf.zeros_like(found[0])] * NUM_JOINTS
    for limb, (a, b) in enumerate(LIMBS):
        limit = float(bone_lengths[limb]) + margin_m
        both = found[a] & found[b]
        too_near[a] = too_near[a] | (both & (z[a] < z[b] - limit))
        too_near[b] = too_near[b] | (both & (z[b] < z[a] - limit))
    return tf.stack(too_near, axis=-1)


def depth_from_neighbours(keypoints, xyz, usable, target, intrinsics):
    """For joints in `target`, keep the 2D position and take z as the mean z of connected usable joints.

    keypoints [..., J, 2], xyz [..., J, 3], usable / target [..., J]; intrinsics [4], or [N, 4] for [N, ...].
    """
    z = tf.unstack(xyz[..., 2], NUM_JOINTS, axis=-1)
    weight = tf.unstack(tf.cast(usable, xyz.dtype), NUM_JOINTS, axis=-1)
    total, count = [0.0] * NUM_JOINTS, [0.0] * NUM_JOINTS
    for a, b in LIMBS:
        for joint, other in ((a, b), (b, a)):
            total[joint] = total[joint] + weight[other] * z[other]
            count[joint] = count[joint] + weight[other]
    count = tf.stack(count, axis=-1)
    z = tf.math.divide_no_nan(tf.stack(total, axis=-1), count)
    fixable = target & (count > 0)
    fx, fy, cx, cy = per_frame_intrinsics(intrinsics, len(z.shape))
    lifted = tf.stack([(keypoints[..., 0] - cx) * z / fx, (keypoints[..., 1] - cy) * z / fy, z], axis=-1)
    return tf.where(fixable[..., None], lifted, xyz), fixable
