"""Joint candidates + part affinity fields -> people (Cao et al., CVPR 2017), in TensorFlow ops, for a batch.

For every limb, each (parent candidate, child candidate) pair is scored by the mean alignment of the PAF with the
segment between them, sampled at `SAMPLES` points; pairs are matched greedily by score, one-to-one. People are then
assembled along the skeleton tree (limbs in `LIMBS` order, parents first): a matched pair extends the person that
holds either end, or starts a new one. The extra limbs that follow the tree in `PAF_LIMBS` (shoulder-shoulder,
hip-hip, shoulder-hip) then join fragments of one person that the tree left apart (a neck outside the frame) when
they have no joint in common. At most `max_people` people are kept, by score.

Every frame of the batch and every limb is scored and matched at once, and each loop runs over a size known when
the graph is built (candidates per joint, limbs), unrolled: the graph has no loop, no conditional and no per-frame
map, so its op count does not grow with the batch, and it converts to ONNX and TFLite node for node (no tensor
has more than 5 dimensions, TFLite's limit). With `loop=True` the people are assembled in `tf.while_loop`s over the
limbs instead, running the same limb step: what the SavedModel compiles with XLA, whose compile time grows with
the graph.
"""

import numpy as np
import tensorflow as tf

from pose_tl.data.people.skeleton import LIMBS, NUM_JOINTS, PAF_LIMBS
from pose_tl.decoding.indexing import PerJoint, batch_index_like, pixel_indices, take
from pose_tl.decoding.sides import separate_twin_children, twin_duplicates

SAMPLES = 10
MIN_ALIGNED_SHARE = 0.7  # share of samples whose PAF agrees with the segment
ALIGNMENT_THRESHOLD = 0.05
SHORT_LIMB_PX = 4.0
TINY_LIMB_PX = 1.5
TINY_LIMB_SCORE = 0.2
PARENTS = [parent for parent, _ in PAF_LIMBS]
CHILDREN = [child for _, child in PAF_LIMBS]


def limb_scores(xy, scores, pafs):
    """[N, L, K, K] connection scores of every limb of `PAF_LIMBS`, parent candidates (rows) by child candidates.

    Args:
        xy: [N, J, K, 2] candidates (output pixels); scores: [N, J, K] (0 = none); pafs: [N, H, W, 2L].
    """
    frames, height, width = tf.shape(pafs)[0], tf.shape(pafs)[1], tf.shape(pafs)[2]
    limbs, k = len(PAF_LIMBS), xy.shape[2]
    vectors = tf.reshape(tf.cast(pafs, tf.float32), [-1, 2])  # one row per (frame, y, x, limb)
    # x and y apart, and the pairs' samples flattened: at most 5 dimensions
    a, b = tf.gather(xy, PARENTS, axis=1), tf.gather(xy, CHILDREN, axis=1)  # [N, L, K, 2]
    ax, ay = a[..., 0][..., :, None], a[..., 1][..., :, None]  # [N, L, K, 1]
    vx, vy = b[..., 0][..., None, :] - ax, b[..., 1][..., None, :] - ay  # [N, L, K, K]
    length = tf.sqrt(vx * vx + vy * vy)
    ux, uy = vx / tf.maximum(length, 1e-6), vy / tf.maximum(length, 1e-6)
    steps = tf.linspace(0.0, 1.0, SAMPLES)
    points = tf.stack([tf.reshape(ax[..., None] + steps * vx[..., None], [frames, limbs, -1]),
                       tf.reshape(ay[..., None] + steps * vy[..., None], [frames, limbs, -1])], axis=3)
    y, x = pixel_indices(points, height, width)  # [N, L, K * K * S]
    # flat row numbers and one gather: about half the time of gather_nd's (frame, y, x, limb) index rows
    row = ((tf.reshape(tf.range(frames), [-1, 1, 1]) * height + y) * width + x) * limbs + tf.reshape(
        tf.range(limbs), [1, -1, 1])
    sampled = tf.gather(vectors, row)  # [N, L, K * K * S, 2]
    field_x = tf.reshape(sampled[..., 0], [frames, limbs, k, k, SAMPLES])
    field_y = tf.reshape(sampled[..., 1], [frames, limbs, k, k, SAMPLES])
    alignment = field_x * ux[..., None] + field_y * uy[..., None]  # [N, L, K, K, S]
    aligned_share = tf.reduce_mean(tf.cast(alignment > ALIGNMENT_THRESHOLD, tf.float32), axis=-1)
    score = tf.reduce_mean(alignment, axis=-1)
    # Limbs a few pixels long cross only a pixel or two of field: judge those by the mean alignment alone.
    aligned = (aligned_share >= MIN_ALIGNED_SHARE) | ((length < SHORT_LIMB_PX) & (score > ALIGNMENT_THRESHOLD))
    # Limbs under a pixel and a half (a far person's neck-shoulder) may cross no field pixel at all: the nearer
    # such a pair, the more it scores, without the field.
    tiny = length < TINY_LIMB_PX
    score = tf.where(tiny, tf.maximum(score, TINY_LIMB_SCORE * (1.0 - length / TINY_LIMB_PX) + 1e-3), score)
    aligned = aligned | tiny
    has_parent = tf.gather(scores, PARENTS, axis=1)[..., :, None] > 0
    has_child = tf.gather(scores, CHILDREN, axis=1)[..., None, :] > 0
    valid = aligned & (score > 0) & has_parent & has_child
    return tf.where(valid, score, tf.zeros_like(score))


def greedy_matches(score_matrix):
    """One-to-one pairs in decreasing score: [..., K] child index per parent candidate (-1: none).

    Greedy matching in rounds: every pair that is the best of both its row and its column would be taken by the
    one-pair-at-a-time greedy too (nothing that outscores it competes for its row or column), so each round takes
    all of them at once and removes their rows and columns. A round takes at least the top-scoring pair left, so K
    rounds (K known when the graph is built) finish every matrix; the rounds after the last pair change nothing.
    """
    k = score_matrix.shape[-1]
    matrix = tf.convert_to_tensor(score_matrix)
    match = -tf.ones_like(matrix[..., 0], tf.int32)
    for _ in range(k):
        row_best = tf.argmax(matrix, axis=-1, output_type=tf.int32)  # [..., K] best column of each row
        col_best = tf.argmax(matrix, axis=-2, output_type=tf.int32)  # [..., K] best row of each column
        best_of_row = row_best[..., :, None] == tf.range(k)  # [..., row, column]
        best_of_column = col_best[..., None, :] == tf.range(k)[:, None]
        mutual_pairs = best_of_row & best_of_column & (matrix > 0)
        mutual = tf.reduce_any(mutual_pairs, axis=-1)
        match = tf.where(mutual, row_best, match)
        taken_columns = tf.reduce_any(mutual_pairs, axis=-2)
        matrix = tf.where(mutual[..., :, None] | taken_columns[..., None, :], tf.zeros_like(matrix), matrix)
    return match


def _merge_split_people(person_joint, owner, limb_total, parent, child, matches):
    """A matched pair whose ends belong to two people with no joint in common joins them into one (OpenPose).

    All pairs of the limb at once. That is what taking them one by one gives: a person holds one candidate per
    joint and matching is one-to-one, so a person in two pairs shares a joint with one of the others, and those
    pairs never merge; the merging pairs are on people no other merging pair touches.

    Args:
        person_joint: [N, C, J]; owner: [N, J, K]; limb_total: [N, C]; matches: [N, K] of this limb.
    """
    slots = tf.range(person_joint.shape[1])
    a = owner[:, parent]  # [N, K] the parent candidate's person
    b = take(owner[:, child], tf.maximum(matches, 0))  # the matched child's person
    row_a = take(person_joint, tf.maximum(a, 0))  # [N, K, J]
    row_b = take(person_joint, tf.maximum(b, 0))
    disjoint = tf.reduce_all((row_a < 0) | (row_b < 0), axis=-1)
    merge = (matches >= 0) & (a >= 0) & (b >= 0) & tf.not_equal(a, b) & disjoint  # [N, K]
    into = (a[:, :, None] == slots) & merge[:, :, None]  # [N, K, C]: pair i's merged person goes to slot c
    emptied = tf.reduce_any((b[:, :, None] == slots) & merge[:, :, None], axis=1)  # [N, C]
    joined = tf.where(row_a >= 0, row_a, row_b)  # [N, K, J]
    joined_at_slot = tf.reduce_max(tf.where(into[..., None], joined[:, :, None, :], -1), axis=1)  # [N, C, J]
    gaining = tf.reduce_any(into, axis=1)
    person_joint = tf.where(gaining[..., None], joined_at_slot,
                            tf.where(emptied[..., None], -tf.ones_like(person_joint), person_joint))
    gained = tf.reduce_sum(tf.where(into, take(limb_total, tf.maximum(b, 0))[:, :, None], 0.0), axis=1)
    limb_total = tf.where(emptied, 0.0, limb_total + gained)
    relabel = (owner[..., None] == b[:, None, None, :]) & merge[:, None, None, :]  # [N, J, K, pair]
    owner = tf.where(tf.reduce_any(relabel, axis=-1), tf.reduce_max(tf.where(relabel, a[:, None, None, :], -1), -1),
                     owner)
    return person_joint, owner, limb_total


def _add_limb(state, parent, child, matches, pair_scores, merge):
    """One limb's matched pairs added to the people: `state` (owner: each candidate's person slot, a `PerJoint` of
    [N, K]; slot_joint: each slot's candidate, a `PerJoint` of [N, C]; limb_total [N, C]; next_slot [N]) -> the
    next state.

    `parent` and `child` are ints (the unrolled graph) or scalar tensors (a loop); `matches` [N, K] and
    `pair_scores` [N, K, K] are this limb's; `merge`: join people the pair links (extra limbs only).
    """
    owner, slot_joint, limb_total, next_slot = state
    k, capacity = owner[0].shape[1], slot_joint[0].shape[1]
    candidates, slots = tf.constant(np.arange(k, dtype=np.int32)), tf.constant(np.arange(capacity, dtype=np.int32))
    has_match = matches >= 0
    child_index = tf.maximum(matches, 0)
    parent_owner = owner[parent]
    child_owner = take(owner[child], child_index)
    # a pair joins the parent's person, else the child's, else starts a new person; a pair whose ends are in two
    # people already (only an extra limb's can be) is left to the merge below
    has_match = has_match & ~((parent_owner >= 0) & (child_owner >= 0) & tf.not_equal(parent_owner, child_owner))
    # nor does a pair replace a joint its person already holds (an extra limb reaching a second left shoulder)
    holds_child = take(slot_joint[child], tf.maximum(parent_owner, 0)) >= 0
    holds_parent = take(slot_joint[parent], tf.maximum(child_owner, 0)) >= 0
    has_match = has_match & ~((parent_owner >= 0) & (child_owner < 0) & holds_child) & ~(
        (child_owner >= 0) & (parent_owner < 0) & holds_parent)
    starts = tf.cast(has_match & (parent_owner < 0) & (child_owner < 0), tf.int32)
    new_slots = next_slot[:, None] + tf.cumsum(starts, axis=1) - 1
    slot = tf.where(parent_owner >= 0, parent_owner, tf.where(child_owner >= 0, child_owner, new_slots))
    next_slot = next_slot + tf.reduce_sum(starts, axis=1)
    # dense updates (one pair per slot): in_slot[n, i, c] says parent candidate i's pair goes to person slot c
    in_slot = (slot[:, :, None] == slots) & has_match[:, :, None]  # [N, K, C]
    filled = tf.reduce_any(in_slot, axis=1)  # [N, C]
    slot_joint = slot_joint.replaced(parent, tf.where(
        filled, tf.reduce_max(tf.where(in_slot, candidates[:, None], -1), axis=1), slot_joint[parent]))
    slot_joint = slot_joint.replaced(child, tf.where(
        filled, tf.reduce_max(tf.where(in_slot, child_index[:, :, None], -1), axis=1), slot_joint[child]))
    child_pick = (child_index[:, :, None] == candidates) & has_match[:, :, None]  # [N, parent K, child K]
    child_slot = tf.reduce_max(tf.where(child_pick, slot[:, :, None], -1), axis=1)
    owner = owner.replaced(child, tf.where(tf.reduce_any(child_pick, axis=1), child_slot, owner[child]))
    owner = owner.replaced(parent, tf.where(has_match, slot, parent_owner))
    gained = tf.reduce_sum(tf.where(child_pick, pair_scores, 0.0), axis=-1)  # [N, K]
    limb_total = limb_total + tf.reduce_sum(tf.where(in_slot, gained[:, :, None], 0.0), axis=1)
    if merge:  # along the tree, a child joint has no person yet: nothing to merge
        person_joint, owned, limb_total = _merge_split_people(slot_joint.stacked(axis=-1), owner.stacked(),
                                                              limb_total, parent, child, matches)
        slot_joint, owner = slot_joint.from_stacked(person_joint, axis=-1), owner.from_stacked(owned)
    return owner, slot_joint, limb_total, next_slot


def _add_limbs(state, first, stop, all_matches, pair_scores, merge, loop):
    """Limbs `first` .. `stop - 1` of `PAF_LIMBS` in order: unrolled, or in a `tf.while_loop` (one copy of the
    step, which XLA compiles several times faster than the unrolled graph)."""
    if not loop:
        for limb in range(first, stop):
            state = _add_limb(state, PARENTS[limb], CHILDREN[limb], all_matches[:, limb], pair_scores[:, limb], merge)
        return state
    parents, children = tf.constant(PARENTS, tf.int32), tf.constant(CHILDREN, tf.int32)

    def step(limb, owner, slot_joint, limb_total, next_slot):
        owner, slot_joint, limb_total, next_slot = _add_limb(
            (PerJoint(owner, -2), PerJoint(slot_joint, -2), limb_total, next_slot), parents[limb], children[limb],
            tf.gather(all_matches, limb, axis=1), tf.gather(pair_scores, limb, axis=1), merge)
        return limb + 1, owner.entries, slot_joint.entries, limb_total, next_slot

    owner, slot_joint, limb_total, next_slot = state
    _, owner, slot_joint, limb_total, next_slot = tf.while_loop(
        lambda limb, *_: limb < stop, step, (tf.constant(first), owner.stacked(), slot_joint.stacked(), limb_total,
                                             next_slot))
    return PerJoint(owner, -2), PerJoint(slot_joint, -2), limb_total, next_slot


def group_people(xy, scores, pafs, max_people=10, min_joints=3, loop=False):
    """Assemble people in a batch of frames.

    Args:
        xy: [N, J, K, 2] joint candidates (output pixels), K known when the graph is built; scores: [N, J, K]
            (0 = no candidate); pafs: [N, H, W, 2L].
        loop: add the limbs in two `tf.while_loop`s instead of unrolled (the same result; for XLA, whose compile
            time grows with the graph; TFLite and ONNX run the unrolled graph faster).

    Returns:
        keypoints [N, P, J, 2], keypoint_scores [N, P, J] (0 = not found), person_scores [N, P], num_people [N],
        with P = `max_people`, people sorted by score; groups of fewer than `min_joints` joints are dropped.
    """
    xy, scores = tf.cast(xy, tf.float32), tf.cast(scores, tf.float32)
    frames, k = tf.shape(xy)[0], xy.shape[2]
    capacity = NUM_JOINTS * k  # enough slots for every candidate to start a person
    pair_scores = separate_twin_children(limb_scores(xy, scores, pafs), xy, scores)  # [N, L, K, K]
    all_matches = greedy_matches(pair_scores)  # [N, L, K]
    state = (PerJoint([-tf.ones([frames, k], tf.int32)] * NUM_JOINTS, -2),
             PerJoint([-tf.ones([frames, capacity], tf.int32)] * NUM_JOINTS, -2),
             tf.zeros([frames, capacity], tf.float32), tf.zeros([frames], tf.int32))
    state = _add_limbs(state, 0, len(LIMBS), all_matches, pair_scores, False, loop)
    _, slot_joint, limb_total, _ = _add_limbs(state, len(LIMBS), len(PAF_LIMBS), all_matches, pair_scores, True,
                                              loop)
    return _ranked_people(xy, scores, slot_joint.stacked(axis=-1), limb_total, max_people, min_joints)


def _ranked_people(xy, scores, person_joint, limb_total, max_people, min_joints):
    """The `max_people` best-scoring assembled people of each frame, padded with zeros.

    The `max_people` with the most support (the sum of their joints' and limbs' scores) are kept, less those that
    repeat a better-supported person's twin joints (`sides.twin_duplicates`), then ranked by mean score.
    """
    found = person_joint >= 0  # [N, C, J]
    safe = tf.maximum(person_joint, 0)
    joint_ids = tf.broadcast_to(tf.range(NUM_JOINTS), tf.shape(safe))
    index = tf.stack([batch_index_like(safe), joint_ids, safe], axis=-1)
    keypoints = tf.gather_nd(xy, index)  # [N, C, J, 2]
    keypoint_scores = tf.where(found, tf.gather_nd(scores, index), 0.0)
    count = tf.reduce_sum(tf.cast(found, tf.float32), axis=-1)
    # fewer joints: a fragment, not a person
    support = tf.where(count >= min_joints, tf.reduce_sum(keypoint_scores, -1) + limb_total, 0.0)
    person_scores = tf.math.divide_no_nan(support, 2.0 * count)
    kept = min(max_people, person_joint.shape[1])
    _, order = tf.math.top_k(support, k=kept)  # [N, kept], ties: the earlier slot first
    keypoints, keypoint_scores, person_scores = (take(v, order) for v in (keypoints, keypoint_scores, person_scores))
    person_scores = tf.where(twin_duplicates(keypoints, keypoint_scores > 0), 0.0, person_scores)
    best, order = tf.math.top_k(person_scores, k=kept)
    valid = best > 0
    keypoints = tf.where(valid[..., None, None], take(keypoints, order), 0.0)
    keypoint_scores = tf.where(valid[..., None], take(keypoint_scores, order), 0.0)
    person_scores = tf.where(valid, best, 0.0)
    pad = [[0, 0], [0, max_people - kept]]
    return (tf.pad(keypoints, pad + [[0, 0], [0, 0]]), tf.pad(keypoint_scores, pad + [[0, 0]]),
            tf.pad(person_scores, pad), tf.reduce_sum(tf.cast(valid, tf.int32), axis=-1))
