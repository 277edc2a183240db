"""A left joint and its right twin kept on different limbs in the joint refiner's answer.

A refiner that has not learned which of a person's two arms is the left one (the demo's budget: `make demo`) puts
peaks on both arms in both arms' heatmaps, and the strongest peak of each is often the same arm: both joints land on
one limb and the other limb is lost. On the demo's validation people (its refiner of commit 0b5f0ec), of 976 labelled
twin pairs, 236 had both joints right and 619 had one on its twin's place, the twin on its own place in 600 of those
(a `/tmp` script): twins on one limb, not a person turned round. Taking the twin whose second peak adds more to the
pair to that peak finds both limbs; which of them is the left one is then for the refiner's facing answer to say
(`refining.crop_peaks`, `facing.twin_turns`), for those pairs only: where the heatmaps put the twins apart
themselves, they already tell left from right. A twin moves only to a second peak at least `SECOND_PEAK_SHARE` of its
strongest: a weaker one is more often the other limb's echo than a limb of its own (feet together, hands joined,
where the twins' strongest peaks rightly lie close). README, *Benchmarks, pose*.
"""

import tensorflow as tf

from pose_tl.data.people.skeleton import FLIP_INDEX
from pose_tl.decoding.facing import TWINS

TWIN_RADIUS_CELLS = 1.5  # twins' strongest peaks closer than this (heatmap cells) are one limb found twice
# On the accuracy benchmark's HED model (trained at commit 56ea324; validation split), moving to second peaks of at
# least 0.3, 0.5, 0.7, 0.8, 0.9 of the strongest gave PCK@0.2 0.822, 0.823, 0.829, 0.828, 0.825; on the demo run's
# (91b38c4), 0.3 to 0.8: 0.679, 0.689, 0.700, 0.690, and 0.605 moving none (README, *Benchmarks, pose*).
SECOND_PEAK_SHARE = 0.7


def twins_apart(xy, peaks, min_peak):
    """(xy [M, J, 2] heatmap coordinates, peaks [M, J], moved [M, J] bool) each joint's peak from its two strongest
    (xy [M, J, 2, 2], peaks [M, J, 2]: `peaks.find_peaks` with `max_peaks=2`): the strongest, except where a
    left/right pair's strongest lie within `TWIN_RADIUS_CELLS`; there the twin whose second peak adds more to the
    pair's summed height moves to it, if that peak reaches `min_peak` and `SECOND_PEAK_SHARE` of the twin's strongest.
    Elsewhere (twins apart already, a twin hidden, no second peak) both stay where they were. `moved`: both joints
    of each pair put apart here."""
    joints_xy, joints_peak = tf.unstack(xy[:, :, 0], axis=1), tf.unstack(peaks[:, :, 0], axis=1)
    moved = [tf.zeros_like(peaks[:, 0, 0], tf.bool)] * len(FLIP_INDEX)
    for right in TWINS:
        left = FLIP_INDEX[right]
        collapsed = tf.norm(xy[:, left, 0] - xy[:, right, 0], axis=-1) < TWIN_RADIUS_CELLS
        right_moves = peaks[:, left, 0] + peaks[:, right, 1] >= peaks[:, left, 1] + peaks[:, right, 0]
        second = tf.where(right_moves, peaks[:, right, 1], peaks[:, left, 1])
        strongest = tf.where(right_moves, peaks[:, right, 0], peaks[:, left, 0])
        apart = collapsed & (second >= min_peak) & (second >= SECOND_PEAK_SHARE * strongest)
        moved[right] = moved[left] = apart
        for joint, moves in ((right, apart & right_moves), (left, apart & ~right_moves)):
            joints_xy[joint] = tf.where(tf.expand_dims(moves, -1), xy[:, joint, 1], xy[:, joint, 0])
            joints_peak[joint] = tf.where(moves, peaks[:, joint, 1], peaks[:, joint, 0])
    return tf.stack(joints_xy, axis=1), tf.stack(joints_peak, axis=1), tf.stack(moved, axis=1)
