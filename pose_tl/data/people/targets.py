"""Training targets of the pose head, in TensorFlow ops: joint heatmaps and part affinity fields.

Heatmaps are Gaussians around each labelled joint in the frame, visible or occluded (max over people), as OpenPose
on COCO, so the skeleton tree stays connected behind occluders; part affinity fields are, for
each limb, the unit vector from parent to child joint on pixels within `paf_width` of the limb segment, averaged
where people overlap (Cao et al., CVPR 2017). Coordinates are in output pixels: input pixels / output stride.
"""

import tensorflow as tf

from pose_tl.data.people.skeleton import OUT_OF_FRAME, PAF_LIMBS
from pose_tl.decoding.lifting import depth_at_keypoints

JOINT_DEPTH_RADIUS = 1.5  # output px around a joint where its depth is supervised (decoding reads the peak pixel)


def output_grid(output_size):
    """Pixel-centre coordinates [Ho, Wo] x and y of the output map."""
    height, width = output_size
    ys, xs = tf.meshgrid(tf.range(height, dtype=tf.float32) + 0.5, tf.range(width, dtype=tf.float32) + 0.5,
                         indexing="ij")
    return xs, ys


def joint_heatmaps(joints_2d, visibility, output_size, stride, sigma):
    """[Ho, Wo, J] Gaussian maps; joints in the frame (visibility 1 or 2) get a peak.

    Args:
        joints_2d: [P, J, 2] input-pixel (x, y).
        visibility: [P, J].
        output_size: (Ho, Wo).
        stride: input pixels per output pixel.
        sigma: Gaussian std in output pixels.
    """
    xs, ys = output_grid(output_size)
    joints = tf.cast(joints_2d, tf.float32) / float(stride)  # [P, J, 2]
    dx = xs[:, :, None, None] - joints[None, None, :, :, 0]
    dy = ys[:, :, None, None] - joints[None, None, :, :, 1]
    gauss = tf.exp(-(dx * dx + dy * dy) / (2.0 * sigma * sigma))  # [Ho, Wo, P, J]
    labelled = tf.cast(visibility > OUT_OF_FRAME, tf.float32)[None, None]
    return tf.maximum(tf.reduce_max(gauss * labelled, axis=2), 0.0)  # max over no people is -inf: clamp to 0


def part_affinity_fields(joints_2d, visibility, output_size, stride, paf_width):
    """[Ho, Wo, 2L] fields, (x, y) per limb in `PAF_LIMBS` order; limbs need both joints in the frame."""
    xs, ys = output_grid(output_size)
    joints = tf.cast(joints_2d, tf.float32) / float(stride)
    parents = tf.gather(joints, [a for a, _ in PAF_LIMBS], axis=1)  # [P, L, 2]
    children = tf.gather(joints, [b for _, b in PAF_LIMBS], axis=1)
    both = (tf.gather(visibility, [a for a, _ in PAF_LIMBS], axis=1) > OUT_OF_FRAME) & (
        tf.gather(visibility, [b for _, b in PAF_LIMBS], axis=1) > OUT_OF_FRAME)
    vector = children - parents
    length = tf.norm(vector, axis=-1)  # [P, L]
    unit = vector / tf.maximum(length, 1e-6)[..., None]
    px = xs[:, :, None, None] - parents[None, None, :, :, 0]  # [Ho, Wo, P, L]
    py = ys[:, :, None, None] - parents[None, None, :, :, 1]
    along = px * unit[None, None, :, :, 0] + py * unit[None, None, :, :, 1]
    across = tf.abs(px * unit[None, None, :, :, 1] - py * unit[None, None, :, :, 0])
    on_limb = (along >= 0) & (along <= length[None, None]) & (across <= paf_width) & both[None, None] & (
        length[None, None] > 1e-6)
    weight = tf.cast(on_limb, tf.float32)  # [Ho, Wo, P, L]
    count = tf.reduce_sum(weight, axis=2)  # [Ho, Wo, L]
    field = tf.reduce_sum(weight[..., None] * unit[None, None], axis=2) / tf.maximum(count, 1.0)[..., None]
    height, width = output_size
    return tf.reshape(field, [height, width, 2 * len(PAF_LIMBS)])


def joint_depth_targets(joints_2d, joints_3d, visibility, depth_m, output_size, stride, radius=JOINT_DEPTH_RADIUS):
    """[Ho, Wo, 2J]: each joint's depth behind the surface seen at it, then the weights (1 where supervised).

    The value is the joint's z minus the depth that decoding reads at the joint (`depth_at_keypoints`): a body
    part's radius for a visible joint, more for one behind an occluder. It is set on output pixels within `radius`
    of a labelled joint (the nearest person's where two are close); joints without 3D labels or depth get no weight.

    Args:
        joints_2d: [P, J, 2] input pixels; joints_3d: [P, J, 3] metres (z 0 or NaN: unknown); visibility: [P, J].
        depth_m: [H, W] metres at the input resolution, as the model sees it (0: no reading).
    """
    joints_2d = tf.cast(joints_2d, tf.float32)
    surface = depth_at_keypoints(tf.cast(depth_m, tf.float32), joints_2d)  # [P, J]
    z = tf.cast(joints_3d, tf.float32)[..., 2]
    known = (visibility > OUT_OF_FRAME) & (surface > 0) & tf.math.is_finite(z) & (z > 0)
    offset = tf.where(known, z - surface, 0.0)
    xs, ys = output_grid(output_size)
    joints = joints_2d / float(stride)
    dx = xs[:, :, None, None] - joints[None, None, ..., 0]
    dy = ys[:, :, None, None] - joints[None, None, ..., 1]
    d2 = tf.where(known[None, None], dx * dx + dy * dy, float("inf"))  # [Ho, Wo, P, J]
    nearest = tf.reduce_min(d2, axis=2)  # [Ho, Wo, J]
    winner = tf.cast(d2 <= nearest[:, :, None, :], tf.float32) * tf.cast(tf.math.is_finite(d2), tf.float32)
    value = tf.math.divide_no_nan(tf.reduce_sum(winner * offset[None, None], axis=2), tf.reduce_sum(winner, axis=2))
    weight = tf.cast(nearest <= radius * radius, tf.float32)
    return tf.concat([value * weight, weight], axis=-1)


def known_label_mask(boxes, visibility, output_size, stride):
    """[Ho, Wo] loss weights: 0 inside the box of a person without any labelled joint, 1 elsewhere.

    Real datasets box people they did not annotate (COCO annotations with no keypoints, ITOP people without joint
    labels). Their joints are in the image but absent from the targets, so training there would teach the head that
    a body is background; OpenPose masks such regions out of the loss, and so does pose_tl.

    Args:
        boxes: [P, 4] (x, y, width, height) input pixels.
        visibility: [P, J].
    """
    xs, ys = output_grid(output_size)
    boxes = tf.cast(boxes, tf.float32) / float(stride)
    x0, y0 = boxes[:, 0], boxes[:, 1]
    x1, y1 = x0 + boxes[:, 2], y0 + boxes[:, 3]
    unlabelled = tf.reduce_all(visibility <= OUT_OF_FRAME, axis=1) & (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
    inside = ((xs[..., None] >= x0) & (xs[..., None] <= x1) & (ys[..., None] >= y0) & (ys[..., None] <= y1)
              & unlabelled[None, None])  # [Ho, Wo, P]
    return 1.0 - tf.cast(tf.reduce_any(inside, axis=-1), tf.float32)
