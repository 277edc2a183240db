"""A person's left and right twin joints (shoulders, hips) taken at two different places, in TensorFlow ops.

Depth shows little of which way a person faces, so a network trained with mirrored frames learns nearly the same
heatmap for a left joint and its right twin (a peak on both shoulders in both maps) and nearly the same field for
the two limbs that reach them. Matched limb by limb, the neck then takes one shoulder as its right and as its left
shoulder; the other shoulder, and the arm hanging from it, start a fragment of a person. Here the two limbs from a
parent to twin joints are decided together: each parent candidate keeps only the twin pair of children, at two
different places, with the most evidence (both fields' scores plus both heatmap peaks, so the network's weak side
cues pick which is which). Where no such pair exists, the limbs stay as they were. The twin maps' peaks at the
places a person took (its left arm, found again in the right arm's maps) then assemble into a mirrored fragment of
that person, which `twin_duplicates` finds.
"""

import tensorflow as tf

from pose_tl.data.people.skeleton import FLIP_INDEX, LIMBS, PAF_LIMBS

# Candidates of twin joints this close (output pixels) are one peak seen in both maps. Peaks of one map are at least
# two pixels apart (3x3 suppression); a far person's shoulders can be under two.
SAME_PLACE_PX = 1.0


def _twin_limbs():
    """(right limb, left limb) index pairs of `PAF_LIMBS`: tree limbs from one middle joint to two twin joints."""
    pairs = []
    for index, (parent, child) in enumerate(LIMBS):
        twin = FLIP_INDEX[child]
        if FLIP_INDEX[parent] == parent and twin != child and index < PAF_LIMBS.index((parent, twin)):
            pairs.append((index, PAF_LIMBS.index((parent, twin))))
    return tuple(pairs)


TWIN_LIMBS = _twin_limbs()  # (neck -> shoulders), (torso -> hips)


def separate_twin_children(pair_scores, xy, scores):
    """`pair_scores` [N, L, K, K] (parent by child candidates, `grouping.limb_scores`) with each parent's twin
    children decided together: in the two limbs' rows of a parent candidate that has a pair of valid children at
    two places, every other child is zeroed.

    Args:
        xy: [N, J, K, 2] joint candidates (output pixels); scores: [N, J, K] their heatmap peaks (0 = none).
    """
    k = pair_scores.shape[-1]
    candidates = tf.range(k)
    # Limb scores, peaks and places are each read by one gather: sliced once per twin, the peaks made XLA repeat the
    # peak search for each slice (8 ms more per batch of 8 on 2 CPU cores).
    twin_scores = tf.gather(pair_scores, [limb for pair in TWIN_LIMBS for limb in pair], axis=1)
    children = [PAF_LIMBS[limb][1] for pair in TWIN_LIMBS for limb in pair]
    peaks, places = tf.gather(scores, children, axis=1), tf.gather(xy, children, axis=1)  # [N, 4, K], [N, 4, K, 2]
    keep = [tf.ones_like(twin_scores[:, 0])]  # [N, K, K] per slot: slot 0 keeps everything (the other limbs)
    slot_of_limb = [0] * pair_scores.shape[1]
    for pair, (right_limb, left_limb) in enumerate(TWIN_LIMBS):
        right, left = 2 * pair, 2 * pair + 1
        right_scores, left_scores = twin_scores[:, right], twin_scores[:, left]  # [N, parent, child]
        evidence = ((right_scores + peaks[:, right][:, None, :])[..., :, None]
                    + (left_scores + peaks[:, left][:, None, :])[..., None, :])  # [N, parent, right, left]
        gap = places[:, right][:, :, None, :] - places[:, left][:, None, :, :]  # [N, right, left, 2]
        apart = tf.reduce_sum(gap * gap, axis=-1) > SAME_PLACE_PX ** 2
        allowed = (right_scores > 0)[..., :, None] & (left_scores > 0)[..., None, :] & apart[:, None]
        ranked = tf.reshape(tf.where(allowed, evidence, -1.0), [-1, k, k * k])  # [N, parent, right * left]
        best = tf.argmax(ranked, axis=-1, output_type=tf.int32)
        undecided = (tf.reduce_max(ranked, axis=-1) <= 0)[..., None]  # [N, parent, 1]
        for limb, child in ((right_limb, best // k), (left_limb, best % k)):
            slot_of_limb[limb] = len(keep)
            keep.append(tf.cast(undecided | tf.equal(candidates, child[..., None]), pair_scores.dtype))
    return pair_scores * tf.gather(tf.stack(keep, axis=1), slot_of_limb, axis=1)


def twin_duplicates(keypoints, found):
    """[N, P] True for a person at least half of whose joints lie on the twin joints of a person before it.

    The caller orders people by support (more joints and more evidence first), so such a fragment comes after the
    person it repeats.

    Args:
        keypoints: [N, P, J, 2] output pixels; found: [N, P, J] bool.
    """
    twins = tf.gather(keypoints, FLIP_INDEX, axis=2)
    twin_found = tf.gather(found, FLIP_INDEX, axis=2)
    gap = keypoints[:, :, None] - twins[:, None, :]  # [N, person, earlier person, J, 2]
    same_place = ((tf.reduce_sum(gap * gap, axis=-1) <= SAME_PLACE_PX ** 2)
                  & found[:, :, None] & twin_found[:, None, :])
    shared = tf.reduce_sum(tf.cast(same_place, tf.float32), axis=-1)  # [N, person, earlier person]
    people = keypoints.shape[1]
    earlier = tf.constant([[q < p for q in range(people)] for p in range(people)])
    count = tf.reduce_sum(tf.cast(found, tf.float32), axis=-1)
    return tf.reduce_any(earlier & (2.0 * shared >= count[..., None]) & (shared > 0), axis=-1)

