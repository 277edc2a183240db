"""Flip test (test-time augmentation, as MMPose's `flip_test`): average the maps of a frame and of its mirror image.

The mirror image is what a camera sees of the mirrored scene, so the network's maps of it, mirrored back, are a
second opinion on the same people, with left and right joints (and limbs) exchanged. Pixel column i covers
[i, i + 1) at every stride, so mirroring the input mirrors the output grid exactly (no half-pixel shift).
"""

import tensorflow as tf

from pose_tl.data.people.skeleton import FLIP_INDEX, PAF_LIMBS
from pose_tl.models.pose_model import PAFS


def mirrored_limbs(limbs=PAF_LIMBS, flip_index=FLIP_INDEX):
    """For each limb (a, b): the index of the limb it becomes under a mirror, and whether that limb runs (b', a')."""
    index = {limb: i for i, limb in enumerate(limbs)}
    mirrored = []
    for a, b in limbs:
        a_mirror, b_mirror = flip_index[a], flip_index[b]
        if (a_mirror, b_mirror) in index:
            mirrored.append((index[(a_mirror, b_mirror)], False))
        elif (b_mirror, a_mirror) in index:
            mirrored.append((index[(b_mirror, a_mirror)], True))
        else:
            raise ValueError(f"limb {(a, b)} has no mirror image among the limbs")
    return tuple(mirrored)


def unmirror_maps(maps):
    """The maps of a mirrored frame, as maps of the frame itself: columns reversed, left and right exchanged.

    A field of limb (a, b) is the unit vector from a to b; in the mirror image it is the field of the mirrored limb
    with x negated, and negated as a whole where that limb is stored the other way round (b', a').
    """
    out = {}
    for name, value in maps.items():
        value = tf.reverse(value, axis=[2])
        if name == PAFS:
            source, reversed_direction = zip(*mirrored_limbs())
            fields = tf.gather(tf.reshape(value, tf.concat([tf.shape(value)[:3], [len(source), 2]], 0)), source, axis=3)
            x_sign = tf.constant([1.0 if reverse else -1.0 for reverse in reversed_direction], value.dtype)
            y_sign = tf.constant([-1.0 if reverse else 1.0 for reverse in reversed_direction], value.dtype)
            value = tf.reshape(fields * tf.stack([x_sign, y_sign], axis=-1), tf.shape(value))
        else:  # heatmaps and joint depths: one channel per joint
            value = tf.gather(value, FLIP_INDEX, axis=3)
        out[name] = value
    return out


def flip_test_maps(model, inputs, names):
    """`model`'s maps named `names` for `inputs` [N, H, W, 1], averaged with those of the mirrored inputs.

    One call on a batch of 2N frames: twice the network's work, the price of the flip test.
    """
    batch = tf.shape(inputs)[0]
    maps = model(tf.concat([inputs, tf.reverse(inputs, axis=[2])], axis=0), training=False)
    maps = {name: maps[name] for name in names if name in maps}
    plain = {name: value[:batch] for name, value in maps.items()}
    mirrored = unmirror_maps({name: value[batch:] for name, value in maps.items()})
    return {name: (plain[name] + mirrored[name]) / 2.0 for name in plain}
