"""Joint candidates + part affinity fields -> people (Cao et al., CVPR 2017), in TensorFlow ops.

For every limb, each (parent candidate, child candidate) pair is scored by the mean alignment of the PAF with the
segment between them, sampled at `SAMPLES` points; pairs are matched greedily by score, one-to-one. People are then
assembled along the skeleton tree (limbs in `LIMBS` order, parents first): a matched pair extends the person that
holds either end, or starts a new one. The extra limbs that follow the tree in `PAF_LIMBS` (shoulder-shoulder,
hip-hip, shoulder-hip) then join fragments of one person that the tree left apart (a neck outside the frame) when
they have no joint in common. At most `max_people` people are kept, by score.
"""

import tensorflow as tf

from pose_tl.data.people.skeleton import LIMBS, NUM_JOINTS, PAF_LIMBS

SAMPLES = 10
MIN_ALIGNED_SHARE = 0.7  # share of samples whose PAF agrees with the segment
ALIGNMENT_THRESHOLD = 0.05
SHORT_LIMB_PX = 4.0
TINY_LIMB_PX = 1.5
TINY_LIMB_SCORE = 0.2


def sample_at_pixels(field, points):
    """Nearest-pixel lookup of field [H, W, C] at points [..., 2] (x, y) in output pixels -> [..., C]."""
    height, width = tf.shape(field)[0], tf.shape(field)[1]
    x = tf.clip_by_value(tf.cast(tf.floor(points[..., 0]), tf.int32), 0, width - 1)
    y = tf.clip_by_value(tf.cast(tf.floor(points[..., 1]), tf.int32), 0, height - 1)
    return tf.gather_nd(field, tf.stack([y, x], axis=-1))


def limb_scores(pafs, limb, xy, scores):
    """[K, K] connection scores of `limb` between parent candidates (rows) and child candidates (columns)."""
    parent, child = PAF_LIMBS[limb]
    field = pafs[..., 2 * limb:2 * limb + 2]
    a, b = xy[parent], xy[child]  # [K, 2]
    vector = b[None, :, :] - a[:, None, :]  # [K, K, 2]
    length = tf.norm(vector, axis=-1)
    unit = vector / tf.maximum(length, 1e-6)[..., None]
    steps = tf.linspace(0.0, 1.0, SAMPLES)
    points = a[:, None, None, :] + steps[None, None, :, None] * vector[:, :, None, :]  # [K, K, S, 2]
    sampled = sample_at_pixels(field, points)
    alignment = tf.reduce_sum(sampled * unit[:, :, None, :], axis=-1)  # [K, K, S]
    aligned_share = tf.reduce_mean(tf.cast(alignment > ALIGNMENT_THRESHOLD, tf.float32), axis=-1)
    score = tf.reduce_mean(alignment, axis=-1)
    # Limbs a few pixels long cross only a pixel or two of field: judge those by the mean alignment alone.
    aligned = (aligned_share >= MIN_ALIGNED_SHARE) | ((length < SHORT_LIMB_PX) & (score > ALIGNMENT_THRESHOLD))
    # Limbs under a pixel and a half (a far person's neck-shoulder) may cross no field pixel at all: the nearer
    # such a pair, the more it scores, without the field.
    tiny = length < TINY_LIMB_PX
    score = tf.where(tiny, tf.maximum(score, TINY_LIMB_SCORE * (1.0 - length / TINY_LIMB_PX) + 1e-3), score)
    aligned = aligned | tiny
    valid = aligned & (score > 0) & (scores[parent][:, None] > 0) & (scores[child][None, :] > 0)
    return tf.where(valid, score, tf.zeros_like(score))


def greedy_matches(score_matrix):
    """One-to-one pairs in decreasing score: [K] child index per parent candidate (-1: none).

    Greedy matching in rounds: every pair that is the best of both its row and its column would be taken by the
    one-pair-at-a-time greedy too (nothing that outscores it competes for its row or column), so each round takes
    all of them at once and removes their rows and columns. A round always takes the first top-scoring pair, so
    at most K rounds; usually two or three, where one pair per step needs K steps.
    """
    k = tf.shape(score_matrix)[0]
    match = tf.fill([k], -1)

    def body(i, matrix, match):
        row_best = tf.argmax(matrix, axis=1, output_type=tf.int32)  # [K] best column of each row
        col_best = tf.argmax(matrix, axis=0, output_type=tf.int32)  # [K] best row of each column
        mutual = (tf.gather(col_best, row_best) == tf.range(k)) & (tf.reduce_max(matrix, axis=1) > 0)
        match = tf.ensure_shape(tf.where(mutual, row_best, match), score_matrix.shape[:1])
        taken_cols = tf.reduce_any(tf.one_hot(row_best, k, on_value=True, off_value=False) & mutual[:, None], axis=0)
        cleared = tf.where(mutual[:, None] | taken_cols[None, :], tf.zeros_like(matrix), matrix)
        return i + 1, tf.ensure_shape(cleared, score_matrix.shape), match

    def more(i, matrix, _):
        return (i < k) & tf.reduce_any(matrix > 0)

    _, _, match = tf.while_loop(more, body, (0, score_matrix, match))
    return match


def _merge_split_people(person_joint, owner, limb_total, parent, child, matches):
    """A matched pair whose ends belong to two people with no joint in common joins them into one (OpenPose)."""
    k = tf.shape(matches)[0]

    def body(i, person_joint, owner, limb_total):
        j = matches[i]
        a = owner[parent, i]
        b = owner[child, tf.maximum(j, 0)]
        disjoint = tf.reduce_all((person_joint[tf.maximum(a, 0)] < 0) | (person_joint[tf.maximum(b, 0)] < 0))
        merge = (j >= 0) & (a >= 0) & (b >= 0) & tf.not_equal(a, b) & disjoint

        def do_merge():
            joined = tf.where(person_joint[a] >= 0, person_joint[a], person_joint[b])
            updated = tf.tensor_scatter_nd_update(person_joint, [[a], [b]],
                                                  tf.stack([joined, -tf.ones_like(joined)]))
            totals = tf.tensor_scatter_nd_update(limb_total, [[a], [b]], tf.stack([limb_total[a] + limb_total[b], 0.0]))
            return updated, tf.where(owner == b, a, owner), totals

        person_joint, owner, limb_total = tf.cond(merge, do_merge, lambda: (person_joint, owner, limb_total))
        return i + 1, person_joint, owner, limb_total

    a = owner[parent]
    b = tf.gather(owner[child], tf.maximum(matches, 0))
    any_split = tf.reduce_any((matches >= 0) & (a >= 0) & (b >= 0) & tf.not_equal(a, b))
    return tf.cond(any_split,  # usually no pair spans two people: skip the loop
                   lambda: tf.while_loop(lambda i, *_: i < k, body, (0, person_joint, owner, limb_total))[1:],
                   lambda: (person_joint, owner, limb_total))


def group_people(xy, scores, pafs, max_people=10, min_joints=3):
    """Assemble people in one image.

    Args:
        xy: [J, K, 2] joint candidates (output pixels); scores: [J, K] (0 = no candidate); pafs: [H, W, 2L].

    Returns:
        keypoints [P, J, 2], keypoint_scores [P, J] (0 = not found), person_scores [P], num_people (scalar),
        with P = `max_people`, people sorted by score; groups of fewer than `min_joints` joints are dropped.
    """
    k = tf.shape(scores)[1]
    capacity = NUM_JOINTS * k  # enough slots for every candidate to start a person
    owner = -tf.ones([NUM_JOINTS, k], tf.int32)  # person slot of each candidate
    person_joint = -tf.ones([capacity, NUM_JOINTS], tf.int32)  # candidate index per person and joint
    limb_total = tf.zeros([capacity], tf.float32)
    next_slot = tf.constant(0)
    for limb, (parent, child) in enumerate(PAF_LIMBS):
        pair_scores = limb_scores(pafs, limb, xy, scores)
        matches = greedy_matches(pair_scores)
        parents = tf.range(k)
        has_match = matches >= 0
        child_index = tf.maximum(matches, 0)
        parent_owner = owner[parent]
        child_owner = tf.gather(owner[child], child_index)
        # a pair joins the parent's person, else the child's, else starts a new person; a pair whose ends are in two
        # people already (only an extra limb's can be) is left to the merge below
        has_match = has_match & ~((parent_owner >= 0) & (child_owner >= 0) & tf.not_equal(parent_owner, child_owner))
        # nor does a pair replace a joint its person already holds (an extra limb reaching a second left shoulder)
        holds_child = tf.gather(person_joint[:, child], tf.maximum(parent_owner, 0)) >= 0
        holds_parent = tf.gather(person_joint[:, parent], tf.maximum(child_owner, 0)) >= 0
        has_match = has_match & ~((parent_owner >= 0) & (child_owner < 0) & holds_child) & ~(
            (child_owner >= 0) & (parent_owner < 0) & holds_parent)
        starts = has_match & (parent_owner < 0) & (child_owner < 0)
        new_slots = next_slot + tf.cumsum(tf.cast(starts, tf.int32)) - 1
        slot = tf.where(parent_owner >= 0, parent_owner, tf.where(child_owner >= 0, child_owner, new_slots))
        next_slot = next_slot + tf.reduce_sum(tf.cast(starts, tf.int32))
        chosen = tf.boolean_mask(tf.stack([slot, parents, child_index], axis=-1), has_match)
        slots, parent_idx, child_idx = chosen[:, 0], chosen[:, 1], chosen[:, 2]
        person_joint = tf.tensor_scatter_nd_update(
            person_joint, tf.stack([slots, tf.fill(tf.shape(slots), parent)], -1), parent_idx)
        person_joint = tf.tensor_scatter_nd_update(
            person_joint, tf.stack([slots, tf.fill(tf.shape(slots), child)], -1), child_idx)
        owner = tf.tensor_scatter_nd_update(owner, tf.stack([tf.fill(tf.shape(parent_idx), parent), parent_idx], -1),
                                            slots)
        owner = tf.tensor_scatter_nd_update(owner, tf.stack([tf.fill(tf.shape(child_idx), child), child_idx], -1),
                                            slots)
        gained = tf.gather_nd(pair_scores, tf.stack([parent_idx, child_idx], -1))
        limb_total = tf.tensor_scatter_nd_add(limb_total, slots[:, None], gained)
        if limb >= len(LIMBS):  # along the tree, a child joint has no person yet: nothing to merge
            person_joint, owner, limb_total = _merge_split_people(person_joint, owner, limb_total, parent, child,
                                                                  matches)

    found = person_joint >= 0  # [C, J]
    safe = tf.maximum(person_joint, 0)
    joint_ids = tf.broadcast_to(tf.range(NUM_JOINTS)[None, :], tf.shape(safe))
    keypoints = tf.gather_nd(xy, tf.stack([joint_ids, safe], -1))  # [C, J, 2]
    keypoint_scores = tf.where(found, tf.gather_nd(scores, tf.stack([joint_ids, safe], -1)), 0.0)
    count = tf.reduce_sum(tf.cast(found, tf.float32), axis=-1)
    person_scores = tf.math.divide_no_nan(tf.reduce_sum(keypoint_scores, -1) + limb_total, 2.0 * count)
    person_scores = tf.where(count >= min_joints, person_scores, 0.0)  # fewer joints: a fragment, not a person
    order = tf.argsort(person_scores, direction="DESCENDING")[:max_people]
    pad = tf.maximum(max_people - tf.shape(order)[0], 0)
    order = tf.pad(order, [[0, pad]])
    valid = tf.pad(tf.ones_like(order[: max_people - pad], tf.bool), [[0, pad]]) & (
        tf.gather(person_scores, order) > 0)
    keypoints = tf.where(valid[:, None, None], tf.gather(keypoints, order), 0.0)
    keypoint_scores = tf.where(valid[:, None], tf.gather(keypoint_scores, order), 0.0)
    person_scores = tf.where(valid, tf.gather(person_scores, order), 0.0)
    return keypoints, keypoint_scores, person_scores, tf.reduce_sum(tf.cast(valid, tf.int32))
