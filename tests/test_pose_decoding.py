"""Decoding: peaks, PAF grouping, lifting to 3D and occluded-joint inference, checked on ground-truth maps."""

import numpy as np
import pytest
import tensorflow as tf

from pose_tl.data.people.engine import render_people_frame
from pose_tl.data.people.skeleton import FLIP_INDEX, JOINT, LIMBS, NUM_JOINTS, OUT_OF_FRAME, PAF_LIMBS, VISIBLE
from pose_tl.data.people.targets import joint_depth_targets, joint_heatmaps, part_affinity_fields
from pose_tl.data.people.tfds_builder import default_settings
from pose_tl.decoding.flip_test import mirrored_limbs
from pose_tl.decoding.grouping import greedy_matches, group_people
from pose_tl.decoding.lifting import depth_at_keypoints, lift_to_camera_space
from pose_tl.decoding.occlusion import DEFAULT_BONE_LENGTHS, bone_length_statistics, infer_missing_joints
from pose_tl.decoding.peaks import find_peaks, largest
from pose_tl.decoding.people import decode_people

STRIDE = 4


def test_peaks_are_local_maxima_with_subpixel_refinement():
    maps = np.zeros((1, 12, 12, 2), np.float32)
    ys, xs = np.mgrid[0:12, 0:12] + 0.5
    maps[0, :, :, 0] = np.exp(-((xs - 3.3) ** 2 + (ys - 4.6) ** 2) / 2)
    maps[0, :, :, 0] += 0.8 * np.exp(-((xs - 9.0) ** 2 + (ys - 9.0) ** 2) / 2)
    xy, scores = find_peaks(tf.constant(maps), threshold=0.2, max_peaks=4)
    found = xy.numpy()[0, 0][scores.numpy()[0, 0] > 0]
    assert len(found) == 2
    assert np.allclose(found[0], (3.3, 4.6), atol=0.2) and np.allclose(found[1], (9.0, 9.0), atol=0.2)
    assert np.all(scores.numpy()[0, 1] == 0)  # an empty map has no peak



@pytest.mark.parametrize("k", [1, 2, 8])
def test_largest_is_top_k_ties_included(k):
    rng = np.random.default_rng(k)
    values = rng.integers(0, 4, (3, 5, 20)).astype(np.float32)  # many ties, and zeros as where there is no peak
    values[0, 0] = 0.0  # a map without a peak: every candidate ties
    expected = tf.math.top_k(values, k=k)
    for compute in (lambda v: largest(v, k), tf.function(lambda v: largest(v, k), jit_compile=True)):
        best, where = compute(tf.constant(values))
        np.testing.assert_array_equal(where.numpy(), expected.indices.numpy())
        np.testing.assert_array_equal(best.numpy(), expected.values.numpy())


@pytest.mark.parametrize("centre", [(3.3, 4.6), (5.45, 6.05), (7.0, 2.5)])
def test_subpixel_refinement_is_exact_for_a_gaussian_peak(centre):
    """A parabola through the log of the samples is exact for a Gaussian: what stride-4 maps of far people need."""
    ys, xs = np.mgrid[0:12, 0:12] + 0.5
    maps = np.exp(-((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2) / 2).astype(np.float32)[None, :, :, None]
    xy, scores = find_peaks(tf.constant(maps), threshold=0.2, max_peaks=1)
    assert np.allclose(xy.numpy()[0, 0, 0], centre, atol=1e-3)

@pytest.mark.parametrize("seed", range(5))
def test_greedy_matching_in_rounds_equals_one_pair_at_a_time(seed):
    rng = np.random.default_rng(seed)
    scores = np.where(rng.uniform(size=(8, 8)) < 0.4, 0.0, rng.uniform(size=(8, 8))).astype(np.float32)
    expected, remaining = np.full(8, -1), scores.copy()
    while remaining.max() > 0:
        row, col = np.unravel_index(np.argmax(remaining), remaining.shape)
        expected[row] = col
        remaining[row, :] = 0
        remaining[:, col] = 0
    assert np.array_equal(greedy_matches(tf.constant(scores)).numpy(), expected)


def ground_truth_frame(index, people=(2, 2), distance_m=(2.0, 3.5)):
    frame = render_people_frame(4, index, default_settings(people=people, noise="clean", distance_m=distance_m))
    visibility = tf.constant(frame.visibility.astype(np.int32))
    heatmaps = joint_heatmaps(tf.constant(frame.joints_2d), visibility, (30, 40), STRIDE, 1.5)
    pafs = part_affinity_fields(tf.constant(frame.joints_2d), visibility, (30, 40), STRIDE, 1.0)
    return frame, heatmaps[None], pafs[None]


@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_decoding_ground_truth_maps_recovers_the_people(index):
    frame, heatmaps, pafs = ground_truth_frame(index)
    out = decode_people(heatmaps, pafs, frame.depth_mm[None] / 1000.0, frame.intrinsics[None], stride=STRIDE,
                        surface_offset_m=0.05)
    count = int(out["num_people"][0])
    assert count >= 1
    detected = out["keypoint_scores"].numpy()[0] > 0
    keypoints = out["keypoints_2d"].numpy()[0]
    xyz = out["keypoints_3d"].numpy()[0]
    matched_people = set()
    for person in range(count):
        mine = detected[person]
        errors = [np.linalg.norm(keypoints[person] - frame.joints_2d[g], axis=-1)[mine & (frame.visibility[g] > 0)]
                  for g in range(frame.num_people)]
        best = int(np.argmin([e.mean() if e.size else np.inf for e in errors]))
        matched_people.add(best)
        assert errors[best].size and np.median(errors[best]) < 1.0  # px at input resolution
        assert np.mean(errors[best] < 1.5) >= 0.8
        error_3d = np.linalg.norm(xyz[person] - frame.joints_3d[best], axis=-1)[mine]
        assert np.median(error_3d) < 0.12
    assert matched_people == set(range(frame.num_people))
    # nearly every joint in the frame is found (occluded ones too: their heatmaps are trained)
    assert detected[:count].sum() >= (frame.visibility > 0).sum() * 0.9


def test_a_batch_decodes_as_each_frame_alone():
    """Decoding is batched (no per-frame loop): frames with different people must not leak into one another."""
    frames = [ground_truth_frame(index, people=people) for index, people in ((0, (1, 1)), (1, (3, 3)), (2, (2, 2)))]
    depth = np.stack([frame.depth_mm / 1000.0 for frame, _, _ in frames]).astype(np.float32)
    intrinsics = np.stack([frame.intrinsics for frame, _, _ in frames]).astype(np.float32)
    intrinsics[1, :2] *= 1.2  # a different camera in one frame
    heatmaps = tf.concat([maps for _, maps, _ in frames], 0)
    pafs = tf.concat([maps for _, _, maps in frames], 0)
    together = decode_people(heatmaps, pafs, depth, intrinsics, stride=STRIDE)
    assert together["num_people"].numpy().tolist() == [1, 3, 2]
    for i in range(len(frames)):
        alone = decode_people(heatmaps[i:i + 1], pafs[i:i + 1], depth[i:i + 1], intrinsics[i:i + 1], stride=STRIDE)
        for name, value in alone.items():
            np.testing.assert_allclose(np.asarray(together[name][i], np.float64), np.asarray(value[0], np.float64),
                                       atol=1e-5, err_msg=name)


def test_the_decoding_graph_has_no_loops_or_conditionals():
    """What lets it run as a few hundred batched ops and convert to ONNX and TFLite node for node."""
    frame, heatmaps, pafs = ground_truth_frame(0)
    decode = tf.function(lambda *args: decode_people(*args, stride=STRIDE))
    graph = decode.get_concrete_function(heatmaps, pafs, tf.constant(frame.depth_mm[None] / 1000.0, tf.float32),
                                         tf.constant(frame.intrinsics[None], tf.float32)).graph
    kinds = {op.type for op in graph.get_operations()}
    assert not kinds & {"While", "StatelessWhile", "If", "StatelessIf", "TensorListReserve", "TensorListFromTensor"}
    assert "GatherNd" in kinds  # it did build the decoding


@pytest.mark.parametrize("seed", range(4))
def test_people_assembled_in_loops_are_those_of_the_unrolled_graph(seed):
    """The loop form (what the SavedModel compiles with XLA) runs the very same limb step as the unrolled graph."""
    rng = np.random.default_rng(seed)
    frames = int(rng.integers(1, 4))
    heatmaps = tf.constant(rng.uniform(size=(frames, 24, 32, NUM_JOINTS)).astype(np.float32) ** rng.choice([2, 8]))
    pafs = tf.constant(rng.uniform(-1, 1, (frames, 24, 32, 2 * len(PAF_LIMBS))).astype(np.float32))
    xy, scores = find_peaks(heatmaps, threshold=0.2, max_peaks=8)
    unrolled = tf.function(lambda *args: group_people(*args), autograph=False)(xy, scores, pafs)
    looped = tf.function(lambda *args: group_people(*args, loop=True), autograph=False)(xy, scores, pafs)
    assert unrolled[3].numpy().sum() >= frames  # random maps make people
    for a, b in zip(unrolled, looped):  # the same people; scores summed in another order differ in the last bit
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("shape", [(2, 10), (3,)])
def test_missing_joints_inferred_in_a_loop_are_those_of_the_unrolled_graph(shape):
    rng = np.random.default_rng(len(shape))
    xyz = tf.constant(rng.uniform(-1, 3, (*shape, NUM_JOINTS, 3)).astype(np.float32))
    found = tf.constant(rng.uniform(size=(*shape, NUM_JOINTS)) < 0.4)
    unrolled = infer_missing_joints(xyz, found)
    looped = tf.function(lambda *args: infer_missing_joints(*args, loop=True), autograph=False)(xyz, found)
    assert unrolled[1].numpy().sum() > 0
    np.testing.assert_array_equal(unrolled[1].numpy(), looped[1].numpy())
    np.testing.assert_allclose(unrolled[0].numpy(), looped[0].numpy(), atol=1e-6)


def test_decoding_compiled_with_xla_finds_the_people_of_tensorflow_ops():
    frames = [ground_truth_frame(index, people=people) for index, people in ((0, (1, 1)), (1, (3, 3)), (2, (2, 2)))]
    depth = np.stack([frame.depth_mm / 1000.0 for frame, _, _ in frames]).astype(np.float32)
    intrinsics = np.stack([frame.intrinsics for frame, _, _ in frames]).astype(np.float32)
    heatmaps = tf.concat([maps for _, maps, _ in frames], 0)
    pafs = tf.concat([maps for _, _, maps in frames], 0)
    plain = decode_people(heatmaps, pafs, depth, intrinsics, stride=STRIDE)
    compiled = tf.function(lambda *args: decode_people(*args, stride=STRIDE, loop=True), autograph=False,
                           jit_compile=True)(heatmaps, pafs, depth, intrinsics)
    assert compiled["num_people"].numpy().tolist() == [1, 3, 2]
    for name, value in plain.items():  # relative too: a joint inferred near the camera plane projects far out
        np.testing.assert_allclose(np.asarray(compiled[name], np.float64), np.asarray(value, np.float64), atol=1e-4,
                                   rtol=1e-5, err_msg=name)


def test_learned_joint_depths_lift_occluded_joints_that_the_surface_offsets_cannot():
    """Read at the peaks, ground-truth joint-depth maps put joints behind an arm or another person at their depth;
    the fixed skin-to-centre offsets read the occluder's surface there."""
    errors = {"fixed": [], "learned": []}
    for index in range(4):
        frame, heatmaps, pafs = ground_truth_frame(index, people=(2, 3))
        depth_m = frame.depth_mm / 1000.0
        maps = joint_depth_targets(frame.joints_2d, frame.joints_3d, frame.visibility.astype(np.int32),
                                   depth_m.astype(np.float32), (30, 40), STRIDE)[..., :NUM_JOINTS]
        for name, joint_depth in (("fixed", None), ("learned", maps[None])):
            out = decode_people(heatmaps, pafs, depth_m[None], frame.intrinsics[None], stride=STRIDE,
                                joint_depth=joint_depth)
            xyz, found = out["keypoints_3d"].numpy()[0], out["keypoint_scores"].numpy()[0] > 0
            for person in range(int(out["num_people"][0])):
                gaps = [np.nanmean(np.linalg.norm(out["keypoints_2d"].numpy()[0, person] - frame.joints_2d[g], axis=-1))
                        for g in range(frame.num_people)]
                g = int(np.argmin(gaps))
                occluded = found[person] & (frame.visibility[g] == 1)
                errors[name] += list(np.linalg.norm(xyz[person] - frame.joints_3d[g], axis=-1)[occluded])
    fixed, learned = np.array(errors["fixed"]), np.array(errors["learned"])
    assert learned.size >= 10 and learned.size == fixed.size
    assert np.mean(learned <= 0.1) >= 0.8 and np.mean(learned <= 0.1) >= np.mean(fixed <= 0.1) + 0.3


def test_far_people_keep_their_shoulders():
    """At 4.5-5 m a neck-shoulder limb is under an output pixel long and crosses no PAF pixel: joined by proximity."""
    shoulders, kept = 0, 0
    for index in range(6):
        frame, heatmaps, pafs = ground_truth_frame(index, people=(1, 1), distance_m=(4.5, 5.0))
        out = decode_people(heatmaps, pafs, frame.depth_mm[None] / 1000.0, frame.intrinsics[None], stride=STRIDE)
        assert int(out["num_people"][0]) == 1
        for joint in (JOINT["right_shoulder"], JOINT["left_shoulder"]):
            if frame.visibility[0, joint] > 0:
                shoulders += 1
                kept += int(out["keypoint_scores"].numpy()[0, 0, joint] > 0)
    assert shoulders >= 8 and kept == shoulders


def fully_visible_person_frame():
    """(frame, heatmaps, pafs) of the first rendered frame holding one person with every joint visible."""
    for index in range(40):
        frame, heatmaps, pafs = ground_truth_frame(index, people=(1, 1))
        if frame.num_people == 1 and np.all(frame.visibility == VISIBLE):
            return frame, heatmaps, pafs
    pytest.skip("no fully visible person in the first frames")


def test_a_person_with_all_joints_visible_is_one_skeleton():
    frame, heatmaps, pafs = fully_visible_person_frame()
    out = decode_people(heatmaps, pafs, frame.depth_mm[None] / 1000.0, frame.intrinsics[None], stride=STRIDE)
    assert int(out["num_people"][0]) == 1
    assert np.all(out["keypoint_scores"].numpy()[0, 0] > 0)  # every joint detected in 2D
    # at most a couple of depths come from neighbours (a hand in front of a hip hides the hip's surface)
    assert out["keypoint_inferred"].numpy()[0, 0].sum() <= 2
    error_3d = np.linalg.norm(out["keypoints_3d"].numpy()[0, 0] - frame.joints_3d[0], axis=-1)
    assert np.median(error_3d) < 0.1


def test_a_person_whose_head_and_neck_left_the_frame_is_still_one_skeleton():
    """The tree hangs everything from the neck; the extra shoulder and hip fields join the arms and legs without it."""
    frame, _, _ = fully_visible_person_frame()
    visibility = frame.visibility.astype(np.int32).copy()
    visibility[0, [JOINT["head"], JOINT["neck"]]] = OUT_OF_FRAME  # as if cut by the top edge
    heatmaps = joint_heatmaps(tf.constant(frame.joints_2d), tf.constant(visibility), (30, 40), STRIDE, 1.5)[None]
    pafs = part_affinity_fields(tf.constant(frame.joints_2d), tf.constant(visibility), (30, 40), STRIDE, 1.0)[None]
    assert pafs.shape[-1] == 2 * len(PAF_LIMBS)
    out = decode_people(heatmaps, pafs, frame.depth_mm[None] / 1000.0, frame.intrinsics[None], stride=STRIDE)
    assert int(out["num_people"][0]) == 1
    found = out["keypoint_scores"].numpy()[0, 0] > 0
    assert found.sum() == NUM_JOINTS - 2 and not found[JOINT["head"]] and not found[JOINT["neck"]]


def test_depth_reading_ignores_holes_and_the_background_behind_an_edge():
    depth = np.full((20, 20), 4.0, np.float32)  # wall
    depth[:, :10] = 2.0  # body on the left half
    depth[8, 8] = 0.0  # a hole under the joint
    z = depth_at_keypoints(tf.constant(depth), tf.constant([[[8.5, 8.5], [9.9, 5.0]]], tf.float32))
    assert np.allclose(z.numpy(), 2.0)


def test_lifting_inverts_the_projection():
    intrinsics = np.array([200.0, 200.0, 40.0, 30.0], np.float32)
    depth = np.full((60, 80), 2.5, np.float32)
    xyz, has = lift_to_camera_space(tf.constant([[[60.0, 10.0]]]), tf.constant(depth), intrinsics,
                                    surface_offset_m=0.1)
    assert has.numpy().all()
    assert np.allclose(xyz.numpy()[0, 0], [(60 - 40) * 2.6 / 200, (10 - 30) * 2.6 / 200, 2.6])


def test_missing_joints_are_inferred_from_connected_ones():
    xyz = np.zeros((1, NUM_JOINTS, 3), np.float32)
    xyz[0, JOINT["right_shoulder"]] = (0.2, 0.0, 2.0)
    xyz[0, JOINT["right_elbow"]] = (0.2, 0.3, 2.0)  # the upper arm hangs down
    found = np.zeros((1, NUM_JOINTS), bool)
    found[0, [JOINT["right_shoulder"], JOINT["right_elbow"]]] = True
    filled, inferred = infer_missing_joints(tf.constant(xyz), tf.constant(found))
    hand = filled.numpy()[0, JOINT["right_hand"]]
    forearm = DEFAULT_BONE_LENGTHS[LIMBS.index((JOINT["right_elbow"], JOINT["right_hand"]))]
    assert np.allclose(hand, (0.2, 0.3 + forearm, 2.0), atol=1e-5)  # continues the arm's direction
    assert inferred.numpy()[0, JOINT["right_hand"]] and not inferred.numpy()[0, JOINT["right_elbow"]]
    assert inferred.numpy()[0].sum() == NUM_JOINTS - 2  # the chain reaches every joint


def test_bone_length_statistics_from_labels():
    frame = render_people_frame(1, 0, default_settings(people=(3, 3), noise="clean"))
    lengths = bone_length_statistics(frame.joints_3d, frame.visibility)
    assert len(lengths) == len(LIMBS)
    assert all(0.08 < length < 0.7 for length in lengths)


def test_per_joint_surface_offsets_move_each_joint_to_its_centre():
    from pose_tl.decoding.lifting import JOINT_SURFACE_OFFSETS_M

    depth = np.full((60, 80), 2.5, np.float32)
    keypoints = np.full((1, NUM_JOINTS, 2), 40.0, np.float32)
    xyz, _ = lift_to_camera_space(tf.constant(keypoints), tf.constant(depth), np.array([200, 200, 40, 30], np.float32),
                                  surface_offset_m=tf.constant(JOINT_SURFACE_OFFSETS_M))
    assert np.allclose(xyz.numpy()[0, :, 2], 2.5 + np.asarray(JOINT_SURFACE_OFFSETS_M))
    assert JOINT_SURFACE_OFFSETS_M[JOINT["torso"]] > JOINT_SURFACE_OFFSETS_M[JOINT["right_hand"]]


def side_agnostic(heatmaps, pafs):
    """The maps of a network that cannot tell a person's front from their back: each left/right joint's heatmap the
    larger of its own and its twin's, each field the sum of its own and its mirror limb's (reversed where the mirror
    limb runs the other way, as the shoulder-shoulder one does)."""
    maps = tf.maximum(heatmaps, tf.gather(heatmaps, FLIP_INDEX, axis=-1))
    twins, reversed_direction = zip(*mirrored_limbs())
    signs = [-1.0 if reverse else 1.0 for reverse in reversed_direction]
    fields = tf.reshape(pafs, [*pafs.shape[:-1], len(PAF_LIMBS), 2])
    fields = fields + tf.gather(fields, twins, axis=-2) * tf.constant(signs)[:, None]
    return maps, tf.reshape(fields, pafs.shape)


def test_side_agnostic_maps_give_one_skeleton_per_person_with_two_shoulders():
    """Maps with a peak on both shoulders in both shoulder maps: each neck takes two different shoulders (not one
    twice), and the arm left over on the other side is not a second person."""
    decoded, people, apart, kept_apart = 0, 0, 0, 0
    for index in range(8):
        frame, heatmaps, pafs = ground_truth_frame(index, people=(1, 3))
        maps, fields = side_agnostic(heatmaps, pafs)
        out = decode_people(maps, fields, frame.depth_mm[None] / 1000.0, frame.intrinsics[None], stride=STRIDE)
        count, keypoints = int(out["num_people"][0]), out["keypoints_2d"].numpy()[0]
        decoded, people = decoded + count, people + frame.num_people
        shoulders = [JOINT["right_shoulder"], JOINT["left_shoulder"]]
        for person in range(count):
            truth = int(np.argmin(np.linalg.norm(frame.joints_2d[:, JOINT["neck"]] - keypoints[person, JOINT["neck"]],
                                                 axis=-1)))
            gap = np.linalg.norm(np.subtract(*frame.joints_2d[truth, shoulders]))
            if np.all(frame.visibility[truth, shoulders] == VISIBLE) and gap >= 2 * STRIDE:
                apart += 1
                kept_apart += int(np.linalg.norm(np.subtract(*keypoints[person, shoulders])) > STRIDE)
    assert people >= 10 and decoded <= people + 1  # matched limb by limb: 29 for 15 people
    assert apart >= 5 and kept_apart >= 0.8 * apart  # limb by limb: none


def test_a_mirrored_fragment_of_a_person_is_a_duplicate_and_another_person_is_not():
    from pose_tl.decoding.sides import twin_duplicates

    rng = np.random.default_rng(0)
    person = rng.uniform(5, 25, (NUM_JOINTS, 2)).astype(np.float32)
    found = np.ones(NUM_JOINTS, bool)
    arm = [JOINT["left_shoulder"], JOINT["left_elbow"], JOINT["left_hand"]]
    fragment = np.zeros_like(person)  # the person's left arm, found again in the right arm's maps
    fragment[[FLIP_INDEX[j] for j in arm]] = person[arm] + 0.3
    fragment_found = np.zeros(NUM_JOINTS, bool)
    fragment_found[[FLIP_INDEX[j] for j in arm]] = True
    other = person + 6.0  # someone else, close by
    keypoints = tf.constant(np.stack([person, fragment, other])[None])
    duplicate = twin_duplicates(keypoints, tf.constant(np.stack([found, fragment_found, found])[None]))
    assert duplicate.numpy().tolist() == [[False, True, False]]
    # order matters: the best-supported person comes first and is never the duplicate
    reordered = twin_duplicates(tf.constant(np.stack([fragment, person])[None]),
                                tf.constant(np.stack([fragment_found, found])[None]))
    assert reordered.numpy().tolist() == [[False, False]]  # 3 of the person's 15 joints: not half


def test_people_left_without_a_joint_are_dropped_and_the_rest_move_up():
    """Slot 0 was grouped from peaks all below `min_joint_score`: nothing to place it by, so it is not a person."""
    from pose_tl.decoding.people import complete_people

    keypoints = np.zeros((1, 3, NUM_JOINTS, 2), np.float32)
    keypoints[0, :2] = np.stack([np.linspace(4, 10, NUM_JOINTS), np.linspace(2, 10, NUM_JOINTS)], -1)
    scores = np.zeros((1, 3, NUM_JOINTS), np.float32)
    scores[0, 0] = 0.25  # found as peaks (>= 0.2), every one too weak to keep
    scores[0, 1, :5] = 0.9
    people = (tf.constant(keypoints), tf.constant(scores), tf.constant([[0.6, 0.5, 0.0]]), tf.constant([2]))
    depth, intrinsics = tf.fill([1, 48, 64], 2.0), tf.constant([[50.0, 50.0, 32.0, 24.0]])
    out = complete_people(people, depth, intrinsics, stride=STRIDE, min_joint_score=0.3)
    assert out["num_people"].numpy().tolist() == [1]
    np.testing.assert_allclose(out["keypoints_2d"].numpy()[0, 0, :5], keypoints[0, 1, :5] * STRIDE)
    np.testing.assert_allclose(out["person_scores"].numpy()[0], [0.5, 0.0, 0.0])
    assert not out["keypoint_inferred"].numpy()[0, 1:].any() and np.all(out["keypoints_3d"].numpy()[0, 1:] == 0)


def test_joints_inferred_at_or_behind_the_camera_are_left_out():
    """Random maps and depths group into junk people, some of whose bone chains, continued, run towards the camera:
    no inferred joint may land nearer than `MIN_INFERRED_DEPTH_M` (it would project anywhere)."""
    from pose_tl.decoding.people import MIN_INFERRED_DEPTH_M

    inferred_depths = []
    for seed in range(6):
        rng = np.random.default_rng(seed)
        heatmaps = tf.constant(rng.uniform(0, 1, (4, 12, 16, NUM_JOINTS)).astype(np.float32))
        pafs = tf.constant(rng.uniform(-1, 1, (4, 12, 16, 2 * len(PAF_LIMBS))).astype(np.float32))
        depth = tf.constant(rng.uniform(0.5, 5.0, (4, 48, 64)).astype(np.float32))
        out = decode_people(heatmaps, pafs, depth, tf.constant([[50.0, 50.0, 32.0, 24.0]] * 4), stride=STRIDE)
        inferred_depths.append(out["keypoints_3d"].numpy()[..., 2][out["keypoint_inferred"].numpy()])
    inferred_depths = np.concatenate(inferred_depths)
    assert len(inferred_depths) > 500 and inferred_depths.min() >= MIN_INFERRED_DEPTH_M


def test_the_depth_read_is_the_lower_median_of_the_foreground_readings():
    """Windows with holes, ties and background farther than the foreground band: the reading is the lower median
    of the foreground readings (as a sort would find it), 0 where the window reads nothing."""
    from pose_tl.decoding.lifting import FOREGROUND_BAND_M, ranks

    rng = np.random.default_rng(0)
    depth = rng.choice([0.0, 1.5, 1.6, 1.6, 1.7, 2.0, 2.05, 3.5], size=(3, 40, 50)).astype(np.float32)
    depth[2, :12, :12] = 0.0  # a window of holes only
    keypoints = rng.uniform([2, 2], [48, 38], size=(3, 20, 2)).astype(np.float32)
    keypoints[2, 0] = (5.5, 5.5)
    z = depth_at_keypoints(tf.constant(depth), tf.constant(keypoints)).numpy()
    for frame in range(3):
        for (x, y), read in zip(keypoints[frame].astype(int), z[frame]):
            window = depth[frame, max(y - 2, 0):y + 3, max(x - 2, 0):x + 3].ravel()
            valid = window[window > 0]
            if not valid.size:
                assert read == 0.0
                continue
            foreground = np.sort(valid[valid <= valid.min() + FOREGROUND_BAND_M])
            assert read == foreground[(foreground.size - 1) // 2]
    assert z[2, 0] == 0.0 and (z > 0).sum() > 30
    np.testing.assert_array_equal(ranks(tf.constant([[3.0, 1.0, 3.0, 0.5]])).numpy(), [[2, 1, 3, 0]])
