"""The joint refiner: crops and targets in agreement, its peaks mapped back to the frame, and people refined."""

import numpy as np
import pytest
import tensorflow as tf

from pose_tl.data.people.engine import render_people_frame
from pose_tl.data.people.skeleton import FLIP_INDEX, JOINT, NUM_JOINTS
from pose_tl.data.people.tfds_builder import default_settings
from pose_tl.decoding.facing import on_person_slots, person_boxes
from pose_tl.decoding.refining import (REFINED_MIN_PEAK, REFINER_CROP_SIZE, REFINER_STRIDE, RefinedDepths,
                                       frame_to_heatmap, heatmap_to_frame, refine_people, refiner_heatmaps)
from pose_tl.training.refiner import DEPTH_RADIUS, gaussian_heatmaps, joint_depth_maps, refiner_examples
from pose_tl.training.shaken_copies import mirrored_joint_depth_maps

HEATMAP_SIZE = (REFINER_CROP_SIZE[0] // REFINER_STRIDE, REFINER_CROP_SIZE[1] // REFINER_STRIDE)


def standing_person(x0=20.0, y0=10.0, scale=1.0):
    """[J, 2] a person's joints in frame pixels, roughly upright."""
    rng = np.random.default_rng(3)
    offsets = np.stack([rng.uniform(-8, 8, NUM_JOINTS), np.linspace(0, 40, NUM_JOINTS)], axis=-1)
    return (np.array([x0, y0]) + offsets * scale).astype(np.float32)


def test_heatmap_and_frame_coordinates_are_inverse():
    joints = standing_person()[None, None]  # [1, 1, J, 2]
    boxes = person_boxes(joints, tf.ones(joints.shape[:3], tf.bool))[:, :, None]
    cells = frame_to_heatmap(joints, boxes, HEATMAP_SIZE)
    np.testing.assert_allclose(heatmap_to_frame(cells, boxes, HEATMAP_SIZE).numpy(), joints, atol=1e-4)
    assert np.all((cells.numpy() > 0) & (cells.numpy() < np.array(HEATMAP_SIZE[::-1])))  # within the crop


def test_refine_people_moves_joints_to_the_refiners_peaks_and_keeps_the_weak_ones():
    stride = 4
    truth = standing_person()  # where the refiner says the joints are
    grouped = truth + np.float32(3.0)  # the bottom-up head's, 3 pixels off
    keypoints = (grouped / stride)[None, None]  # output-map pixels, [1, 1, J, 2]
    scores = np.full((1, 1, NUM_JOINTS), 0.9, np.float32)
    boxes = person_boxes(grouped[None, None], tf.ones((1, 1, NUM_JOINTS), tf.bool))[0, 0].numpy()
    cells = frame_to_heatmap(truth[None], boxes[None, None], HEATMAP_SIZE).numpy()[0]
    maps = gaussian_heatmaps(cells, np.ones(NUM_JOINTS, bool), HEATMAP_SIZE)
    weak = [0, 5]
    maps[..., weak] *= REFINED_MIN_PEAK / 2  # unsure: the grouped joint stays
    maps[..., 7] *= 0.6
    people = (tf.constant(keypoints), tf.constant(scores), tf.constant([[0.8]]), tf.constant([1]))
    (refined, refined_scores, _, count), depths = refine_people(people, tf.constant(maps[None, None]), stride=stride)
    assert depths is None  # a refiner of heatmaps alone
    refined = refined.numpy()[0, 0] * stride
    strong = [j for j in range(NUM_JOINTS) if j not in weak]
    np.testing.assert_allclose(refined[strong], truth[strong], atol=0.05)  # sub-pixel: Gaussian peaks are exact
    np.testing.assert_allclose(refined[weak], grouped[weak], atol=1e-5)
    assert refined_scores.numpy()[0, 0, 7] == pytest.approx(maps[..., 7].max())  # the peak cell's height, < 0.6
    assert refined_scores.numpy()[0, 0, weak].tolist() == pytest.approx([0.9, 0.9]) and int(count[0]) == 1


def test_on_person_slots_computes_the_wanted_slots_only():
    crops = tf.random.uniform((2, 3, 4, 2, 1), seed=1)
    calls = []

    def network(batch):
        calls.append(int(batch.shape[0]))
        return tf.reduce_sum(batch, axis=[1, 2, 3])[:, None] * tf.ones((1, 5))

    every = on_person_slots(network, crops).numpy()
    wanted = tf.constant([[True, False, True], [False, False, False]])
    some = on_person_slots(network, crops, wanted, fill=-1.0).numpy()
    assert every.shape == some.shape == (2, 3, 5)
    np.testing.assert_allclose(some[wanted.numpy()], every[wanted.numpy()], rtol=1e-6)
    assert np.all(some[~wanted.numpy()] == -1.0)
    none = on_person_slots(network, crops, tf.zeros((2, 3), tf.bool), fill=0.5).numpy()
    assert none.shape == (2, 3, 5) and np.all(none == 0.5)
    assert calls == [6, 2, 1]  # every slot; the two wanted; where none is, one dropped (an empty batch fails)


def test_refiner_examples_have_their_targets_at_the_labelled_joints():
    settings = default_settings(people=(1, 3), distance_m=(1.5, 4.0))
    frames = [render_people_frame(7, index, settings) for index in range(6)]
    crops, targets, _, joints, in_frame, boxes, _, _, _ = refiner_examples(frames)
    assert crops.shape[1:] == (*REFINER_CROP_SIZE, 1) and targets.shape[1:] == (*HEATMAP_SIZE, NUM_JOINTS)
    assert len(crops) == len(targets) == len(joints) >= len(frames)
    person = (crops[..., 0] < 1.0).mean(axis=(1, 2))
    assert np.all(person > 0.05)  # each crop shows its person (background reads 1.5)
    peak = targets.reshape(len(targets), -1, NUM_JOINTS).argmax(axis=1)
    rows, cols = np.unravel_index(peak, HEATMAP_SIZE)
    found = heatmap_to_frame(np.stack([cols + 0.5, rows + 0.5], -1).astype(np.float32), boxes[:, None],
                             HEATMAP_SIZE).numpy()
    inside = in_frame & np.all((frame_to_heatmap(joints, boxes[:, None], HEATMAP_SIZE).numpy() >= 0)
                               & (frame_to_heatmap(joints, boxes[:, None], HEATMAP_SIZE).numpy()
                                  < np.array(HEATMAP_SIZE[::-1])), axis=-1)
    cell = (boxes[:, 2] - boxes[:, 0])[:, None] / HEATMAP_SIZE[0]
    assert inside.mean() > 0.8
    assert np.all(np.linalg.norm(found - joints, axis=-1)[inside] <= cell.repeat(NUM_JOINTS, 1)[inside])
    assert np.all(targets.max(axis=(1, 2))[~in_frame] == 0.0)  # no target where the joint is out of the frame


def test_mirrored_targets_are_the_targets_of_the_mirrored_person():
    cells = np.array([[3.5 + j % 5, 2.0 + 2 * j] for j in range(NUM_JOINTS)], np.float32)
    maps = gaussian_heatmaps(cells, np.ones(NUM_JOINTS, bool), HEATMAP_SIZE)
    mirrored_cells = cells.copy()
    mirrored_cells[:, 0] = HEATMAP_SIZE[1] - cells[:, 0]
    expected = gaussian_heatmaps(mirrored_cells[list(FLIP_INDEX)], np.ones(NUM_JOINTS, bool), HEATMAP_SIZE)
    np.testing.assert_allclose(maps[:, ::-1][..., list(FLIP_INDEX)], expected, atol=1e-6)  # as training mirrors


def two_people_maps():
    """(frame, heatmaps [1, 30, 40, J], pafs) of a rendered frame of two people: the head's maps at their labels."""
    from pose_tl.data.people.targets import joint_heatmaps, part_affinity_fields

    settings = default_settings(people=(2, 2), noise="clean", distance_m=(2.0, 3.5))
    frame = render_people_frame(5, 1, settings)
    visibility = tf.constant(frame.visibility.astype(np.int32))
    heatmaps = joint_heatmaps(tf.constant(frame.joints_2d), visibility, (30, 40), 4, 1.5)[None]
    pafs = part_affinity_fields(tf.constant(frame.joints_2d), visibility, (30, 40), 4, 1.0)[None]
    return frame, heatmaps, pafs


def test_decode_people_with_a_refiner_moves_present_people_only_where_it_is_sure():
    from pose_tl.decoding.people import decode_people

    frame, heatmaps, pafs = two_people_maps()
    centre = np.zeros((*HEATMAP_SIZE, NUM_JOINTS), np.float32)
    centre[HEATMAP_SIZE[0] // 2, HEATMAP_SIZE[1] // 2] = 0.5  # every joint at the crop's centre, half sure

    def decode(joint_refiner):
        out = decode_people(heatmaps, pafs, frame.depth_mm[None] / 1000.0, frame.intrinsics[None], stride=4,
                            joint_refiner=joint_refiner)
        return {name: value.numpy()[0] for name, value in out.items()}

    unsure = decode(lambda crops: tf.zeros([tf.shape(crops)[0], *HEATMAP_SIZE, NUM_JOINTS]))
    grouped = decode(None)
    assert grouped["num_people"] == 2
    for name in ("keypoints_2d", "keypoint_scores", "keypoints_3d"):
        np.testing.assert_array_equal(unsure[name], grouped[name], err_msg=name)
    sure = decode(lambda crops: tf.tile(centre[None], [tf.shape(crops)[0], 1, 1, 1]))
    assert sure["num_people"] == 2
    for person in range(2):
        detected = sure["keypoint_scores"][person] > 0
        assert detected.sum() >= 10 and np.allclose(sure["keypoint_scores"][person][detected], 0.5)
        placed = sure["keypoints_2d"][person][detected]
        assert np.ptp(placed, axis=0).max() < 1e-3  # all at one point: the centre of the person's box
        assert np.linalg.norm(placed[0] - grouped["keypoints_2d"][person, JOINT["torso"]]) < 20


@pytest.mark.parametrize("joint_depths", [False, True])
def test_flip_averaged_refiner_heatmaps_treat_a_mirrored_person_as_its_mirror_image(joint_depths):
    from pose_tl.models.refiner import build_joint_refiner

    refiner = build_joint_refiner(seed=2, base_filters=4, joint_depths=joint_depths)
    crops = tf.random.uniform((3, *REFINER_CROP_SIZE, 1), seed=4)
    mirrored = tf.reverse(crops, axis=[2])
    blocks = 3 if joint_depths else 1  # heatmaps, depths behind the surface and behind the trunk
    channels = blocks * NUM_JOINTS
    # A mirror exchanges left and right joints: their heatmaps and (with joint depths) their depths alike.
    order = [j + NUM_JOINTS * block for block in range(blocks) for j in FLIP_INDEX]

    def unmirrored(maps):
        return tf.gather(tf.reverse(maps, axis=[2]), order, axis=-1).numpy()

    plain = refiner_heatmaps(refiner, crops)
    assert plain.dtype == tf.float32 and plain.shape == (3, *HEATMAP_SIZE, channels)
    assert not np.allclose(unmirrored(refiner_heatmaps(refiner, mirrored)), plain.numpy(), atol=1e-3)
    flipped = refiner_heatmaps(refiner, crops, flip=True)
    np.testing.assert_allclose(unmirrored(refiner_heatmaps(refiner, mirrored, flip=True)), flipped.numpy(), atol=1e-5)
    np.testing.assert_allclose(flipped.numpy(), (plain.numpy() + unmirrored(refiner_heatmaps(refiner, mirrored))) / 2,
                               atol=1e-5)


def test_each_refiner_pass_cuts_the_crops_around_the_joints_the_last_one_found():
    """A refiner that puts every joint 3 cells right of its crop's centre: the first pass moves each person's joints to
    one point, the second cuts the smallest box around that point and moves them 3 of its (smaller) cells further."""
    from pose_tl.decoding.facing import CROP_SIZE
    from pose_tl.decoding.people import decode_people

    frame, heatmaps, pafs = two_people_maps()
    right_of_centre = np.zeros((*HEATMAP_SIZE, NUM_JOINTS), np.float32)
    right_of_centre[HEATMAP_SIZE[0] // 2, HEATMAP_SIZE[1] // 2 + 3] = 1.0
    refiner = lambda crops: tf.tile(right_of_centre[None], [tf.shape(crops)[0], 1, 1, 1])  # noqa: E731

    def decode(passes):
        out = decode_people(heatmaps, pafs, frame.depth_mm[None] / 1000.0, frame.intrinsics[None], stride=4,
                            joint_refiner=refiner, refine_passes=passes)
        assert int(out["num_people"][0]) == 2
        return out["keypoints_2d"].numpy()[0, :2], out["keypoint_scores"].numpy()[0, :2]

    (once, once_scores), (twice, twice_scores) = decode(1), decode(2)
    box_height = 8.0  # `person_boxes`: at least 8 pixels high, of the crop's aspect
    box_size = np.array([box_height * CROP_SIZE[1] / CROP_SIZE[0], box_height])  # (width, height)
    peak_cell = np.array([HEATMAP_SIZE[1] // 2 + 3, HEATMAP_SIZE[0] // 2]) + 0.5  # (x, y), a cell's centre
    further = (peak_cell - np.array(HEATMAP_SIZE[::-1]) / 2) / np.array(HEATMAP_SIZE[::-1]) * box_size
    for person in range(2):
        moved = once_scores[person] == 1.0
        assert moved.sum() >= 10 and np.ptp(once[person][moved], axis=0).max() < 1e-3  # all at one point
        np.testing.assert_allclose(twice[person][moved] - once[person][moved], np.tile(further, (moved.sum(), 1)),
                                   atol=1e-3)
        np.testing.assert_array_equal(twice_scores[person], once_scores[person])


def test_refiner_examples_give_each_joint_its_depth_behind_the_surface_around_it():
    from pose_tl.decoding.lifting import depth_at_keypoints

    settings = default_settings(people=(1, 3), distance_m=(1.5, 4.0))
    frames = [render_people_frame(7, index, settings) for index in range(6)]
    crops, _, depths, joints, in_frame, boxes, offsets, _, _ = refiner_examples(frames)
    assert depths.shape == (len(crops), *HEATMAP_SIZE, 4 * NUM_JOINTS)  # behind the surface, then the trunk
    value, weight = depths[..., :NUM_JOINTS], depths[..., NUM_JOINTS:2 * NUM_JOINTS]
    known = np.isfinite(offsets)
    assert known.sum() > 0.8 * in_frame.sum() and not np.any(known & ~in_frame)
    assert np.all(weight.max(axis=(1, 2))[known] == 1.0) and np.all(weight.max(axis=(1, 2))[~known] == 0.0)
    cells = np.pi * DEPTH_RADIUS ** 2
    assert np.all(weight.sum(axis=(1, 2))[known] <= cells + 4)  # a disc of cells around the joint, cut at the crop
    np.testing.assert_allclose(value.max(axis=(1, 2))[known & (offsets > 0)], offsets[known & (offsets > 0)],
                               atol=1e-6)  # one value on every supervised cell
    # the offsets are the labelled z less the depth lifting reads there; a hidden joint lies well behind it
    behind = {1: [], 2: []}  # occluded, visible
    for frame in frames:
        people = [p for p in range(frame.num_people) if (frame.visibility[p] == 2).sum() >= 4]
        one = refiner_examples([frame])
        if not people:
            assert one is None
            continue
        surface = depth_at_keypoints(frame.depth_mm / 1000.0, np.nan_to_num(frame.joints_2d[people])).numpy()
        expected, got = frame.joints_3d[people, :, 2] - surface, one[6]
        assert len(got) == len(people)
        np.testing.assert_allclose(got[np.isfinite(got)], expected[np.isfinite(got)], atol=1e-5)
        for visibility in behind:
            behind[visibility].extend(got[np.isfinite(got) & (frame.visibility[people] == visibility)])
    assert np.median(behind[1]) > np.median(behind[2]) + 0.05


def test_mirrored_joint_depth_maps_are_those_of_the_mirrored_person():
    cells = np.array([[3.5 + j % 5, 2.0 + 2 * j] for j in range(NUM_JOINTS)], np.float32)
    offsets = np.linspace(0.02, 0.3, NUM_JOINTS).astype(np.float32)
    offsets[4] = np.nan
    maps = joint_depth_maps(cells, offsets, HEATMAP_SIZE)
    mirrored_cells = cells.copy()
    mirrored_cells[:, 0] = HEATMAP_SIZE[1] - cells[:, 0]
    expected = joint_depth_maps(mirrored_cells[list(FLIP_INDEX)], offsets[list(FLIP_INDEX)], HEATMAP_SIZE)
    np.testing.assert_allclose(mirrored_joint_depth_maps(maps[None])[0], expected, atol=1e-6)


def test_refine_people_reads_the_refiners_joint_depths_at_its_peaks():
    stride = 4
    truth = standing_person()
    keypoints = ((truth + np.float32(3.0)) / stride)[None, None]
    boxes = person_boxes(truth[None, None] + 3.0, tf.ones((1, 1, NUM_JOINTS), tf.bool))[0, 0].numpy()
    cells = frame_to_heatmap(truth[None], boxes[None, None], HEATMAP_SIZE).numpy()[0]
    heatmaps = gaussian_heatmaps(cells, np.ones(NUM_JOINTS, bool), HEATMAP_SIZE)
    heatmaps[..., 0] *= REFINED_MIN_PEAK / 2  # not moved
    depths = np.zeros((*HEATMAP_SIZE, NUM_JOINTS), np.float32)
    column, row = np.floor(cells).astype(int).T
    depths[row, column, np.arange(NUM_JOINTS)] = np.linspace(0.05, 0.4, NUM_JOINTS)  # only at each joint's cell
    people = (tf.constant(keypoints), tf.constant(np.full((1, 1, NUM_JOINTS), 0.9, np.float32)),
              tf.constant([[0.8]]), tf.constant([1]))
    maps = np.concatenate([heatmaps, depths], axis=-1)[None, None]
    _, refined = refine_people(people, tf.constant(maps), stride=stride)
    read, moved = refined.offsets, refined.moved
    assert not refined.from_trunk.numpy().any()  # a refiner without depths behind the trunk
    np.testing.assert_allclose(read.numpy()[0, 0], np.linspace(0.05, 0.4, NUM_JOINTS), atol=1e-6)
    assert moved.numpy()[0, 0].tolist() == [False] + [True] * (NUM_JOINTS - 1)


def test_lifting_takes_the_refiners_joint_depths_for_the_joints_it_moved():
    from pose_tl.decoding.lifting import JOINT_SURFACE_OFFSETS_M
    from pose_tl.decoding.people import complete_people

    frame, _, _ = two_people_maps()
    stride = 4
    keypoints = tf.constant(np.nan_to_num(frame.joints_2d)[None] / stride, tf.float32)
    scores = tf.constant((frame.visibility == 2)[None].astype(np.float32))
    people = (keypoints, scores, tf.constant([[0.9, 0.8]]), tf.constant([2]))
    depth_m, intrinsics = frame.depth_mm[None] / 1000.0, frame.intrinsics[None]
    fixed = np.broadcast_to(np.float32(JOINT_SURFACE_OFFSETS_M), (1, 2, NUM_JOINTS))
    hand = JOINT["left_hand"]
    deeper = fixed.copy()
    deeper[..., hand] += 0.03  # a little deeper: not far enough for the occlusion test to call it hidden

    def lifted(offsets_and_moved):
        refined_depths = None
        if offsets_and_moved is not None:
            offsets, moved = offsets_and_moved
            refined_depths = RefinedDepths(offsets, moved, tf.zeros_like(offsets), tf.zeros_like(moved))
        out = complete_people(people, depth_m, intrinsics, stride=stride, refined_depths=refined_depths)
        return out["keypoints_3d"].numpy()[0, :2], out["keypoint_scores"].numpy()[0, :2] > 0

    plain, found = lifted(None)
    everywhere = tf.ones((1, 2, NUM_JOINTS), tf.bool)
    same, _ = lifted((tf.constant(fixed), everywhere))
    np.testing.assert_allclose(same, plain, atol=1e-6)  # the fixed offsets again: nothing moves
    moved, _ = lifted((tf.constant(deeper), everywhere))
    assert found[:, hand].any()
    z_gain = (moved - plain)[..., 2]
    np.testing.assert_allclose(z_gain[found[:, hand], hand], 0.03, atol=1e-5)
    others = np.ones(NUM_JOINTS, bool)
    others[hand] = False
    np.testing.assert_allclose(moved[:, others], plain[:, others], atol=1e-6)
    not_moved = everywhere.numpy().copy()
    not_moved[..., hand] = False
    kept, _ = lifted((tf.constant(deeper), tf.constant(not_moved)))
    np.testing.assert_allclose(kept, plain, atol=1e-6)  # the refiner did not move the hand: its depth is not read


def occluded_person_frame():
    """(depth [1, H, W] metres, person's joints [J, 2] frame pixels, the hand's index): a person standing on a flat
    surface 3 m away, its left hand behind a board 1.5 m from the camera (nearer than the refiner's crop shows)."""
    joints = standing_person(x0=60.0, y0=10.0, scale=2.0)  # joints >= 5.7 pixels apart in y
    hand = JOINT["left_hand"]
    depth = np.full((1, 120, 160), 3.0, np.float32)
    column, row = np.round(joints[hand]).astype(int)
    depth[0, row - 1:row + 2, column - 1:column + 2] = 1.5  # seen by no other joint's depth window (5 x 5)
    return depth, joints, hand


def test_behind_occluder_names_joints_whose_surface_the_crop_cannot_show():
    from pose_tl.decoding.refining import REFINER_DEPTH_WINDOW_M, behind_occluder

    reference = np.float32(3.0)
    surface = np.array([3.0, 2.5, 3.0 - REFINER_DEPTH_WINDOW_M + 0.01, 1.5, 0.0, 4.5], np.float32)
    assert np.asarray(behind_occluder(surface, reference)).tolist() == [False, False, False, True, True, False]
    assert not np.asarray(behind_occluder(surface, np.float32(0.0))).any()  # no trunk depth: nothing to place by


def test_refine_people_places_a_joint_behind_a_near_occluder_from_the_trunk():
    from pose_tl.decoding.people import complete_people

    depth, truth, hand = occluded_person_frame()
    stride = 4
    boxes = person_boxes(truth[None, None], tf.ones((1, 1, NUM_JOINTS), tf.bool))[0, 0].numpy()
    cells = frame_to_heatmap(truth[None], boxes[None, None], HEATMAP_SIZE).numpy()[0]
    heatmaps = gaussian_heatmaps(cells, np.ones(NUM_JOINTS, bool), HEATMAP_SIZE)
    surface_depths = np.full((*HEATMAP_SIZE, NUM_JOINTS), 0.02, np.float32)
    trunk_depths = np.full((*HEATMAP_SIZE, NUM_JOINTS), 0.25, np.float32)  # 25 cm behind the trunk
    maps = tf.constant(np.concatenate([heatmaps, surface_depths, trunk_depths], axis=-1)[None, None])
    people = (tf.constant((truth / stride)[None, None]), tf.constant(np.full((1, 1, NUM_JOINTS), 0.9, np.float32)),
              tf.constant([[0.8]]), tf.constant([1]))
    people, refined = refine_people(people, maps, stride=stride, depth_m=depth)
    expected = np.zeros(NUM_JOINTS, bool)
    expected[hand] = True
    assert refined.from_trunk.numpy()[0, 0].tolist() == expected.tolist()  # the others: their surface is in view
    assert refined.trunk_z.numpy()[0, 0, hand] == pytest.approx(3.25, abs=1e-5)
    _, without_frame = refine_people(people, maps, stride=stride)
    assert not without_frame.from_trunk.numpy().any()  # no frame given: depths behind the surface only

    intrinsics = np.array([[120.0, 120.0, 80.0, 60.0]], np.float32)
    out = complete_people(people, depth, intrinsics, stride=stride, refined_depths=refined)
    xyz = out["keypoints_3d"].numpy()[0, 0]
    assert xyz[hand, 2] == pytest.approx(3.25, abs=1e-5)  # not the board's 1.5 m + 2 cm
    pixel = out["keypoints_2d"].numpy()[0, 0, hand]
    np.testing.assert_allclose(xyz[hand, :2], (pixel - [80.0, 60.0]) * 3.25 / 120.0, atol=1e-4)
    others = np.arange(NUM_JOINTS) != hand
    np.testing.assert_allclose(xyz[others, 2], 3.02, atol=1e-5)  # read at the surface, 2 cm behind it


def test_refiner_examples_give_each_joint_its_depth_behind_the_trunk():
    from pose_tl.decoding.facing import trunk_depth
    from pose_tl.decoding.refining import behind_occluder

    settings = default_settings(people=(2, 3), distance_m=(1.5, 5.0))
    frames = [render_people_frame(3, index, settings) for index in range(16)]
    examples = refiner_examples(frames)
    crops, depths, offsets, trunk_offsets = examples[0], examples[2], examples[6], examples[7]
    value, weight = depths[..., 2 * NUM_JOINTS:3 * NUM_JOINTS], depths[..., 3 * NUM_JOINTS:]
    known = np.isfinite(trunk_offsets)
    assert np.all(weight.max(axis=(1, 2))[known] == 1.0) and np.all(weight.max(axis=(1, 2))[~known] == 0.0)
    np.testing.assert_allclose(np.where(weight > 0, value, -9.0).max(axis=(1, 2))[known], trunk_offsets[known],
                               atol=1e-6)
    hidden_far, checked = 0, 0
    for frame in frames:
        people = [p for p in range(frame.num_people) if (frame.visibility[p] == 2).sum() >= 4]
        if not people:
            continue
        one = refiner_examples([frame])
        labels = np.nan_to_num(frame.joints_2d[people]).astype(np.float32)[None]
        depth_m = (frame.depth_mm / 1000.0).astype(np.float32)[None]
        reference = trunk_depth(depth_m, labels, (frame.visibility[people] == 2)[None]).numpy()[0][:, None]
        expected = frame.joints_3d[people, :, 2] - reference
        got = one[7]
        np.testing.assert_allclose(got[np.isfinite(got)], expected[np.isfinite(got)], atol=1e-5)
        from pose_tl.decoding.lifting import depth_at_keypoints
        surface = depth_at_keypoints(depth_m, labels).numpy()[0]
        hidden = np.asarray(behind_occluder(surface, reference)) & np.isfinite(got)
        assert not np.isfinite(one[6][hidden]).any()  # no depth behind a surface the crop cannot show
        hidden_far += int(hidden.sum())
        checked += int(np.isfinite(got).sum())
    assert checked > 100 and hidden_far > 0


def test_refiner_training_shakes_its_oldest_copy_again_before_each_later_epoch(monkeypatch):
    from pose_tl.training import refiner as training
    from pose_tl.training.shaken_copies import ShakenCopies

    settings = default_settings(people=(1, 2), distance_m=(1.5, 3.0))
    frames = [render_people_frame(11, index, settings) for index in range(4)]
    drawn, held = [], []
    real_examples, real_replace = training.refiner_examples, ShakenCopies.replace_oldest

    def recording_examples(frames, rng=None):
        examples = real_examples(frames, rng)
        if rng is not None:
            drawn.append(examples)
        return examples

    def recording_replace(self, copy):
        real_replace(self, copy)
        held.append(self.arrays[0].reshape(-1, self.people, *self.arrays[0].shape[1:]).copy())

    monkeypatch.setattr(training, "refiner_examples", recording_examples)
    monkeypatch.setattr(ShakenCopies, "replace_oldest", recording_replace)
    model, report = training.train_joint_refiner(frames, frames[:1], epochs=3, seed=5, base_filters=4,
                                                 log=lambda _: None)
    assert model is not None and report["train_examples"] == 2 * training.COPIES * len(drawn[0][0])
    assert len(drawn) == training.COPIES + 2 * training.RESHAKEN_COPIES == len(held) + training.COPIES
    crops = [copy[0] for copy in drawn]
    for replaced, copies in enumerate(held, start=1):  # after each new shake: the oldest out, the newest in
        alive = crops[replaced:training.COPIES + replaced]
        assert sorted(_slot_of(copies, crop) for crop in alive) == list(range(training.COPIES))
    assert not np.array_equal(drawn[0][0], drawn[-1][0])  # a new shake cuts other crops


def _slot_of(copies, crop):
    return next(slot for slot, held in enumerate(copies) if np.array_equal(held, crop))


def test_facing_labels_say_which_way_each_person_faces_the_camera():
    from pose_tl.training.refiner import facing_labels

    def person(left_x, forward_z=0.0):
        """A trunk 3 m ahead: hips 0.3 m apart (the left at `left_x`), neck above; `forward_z` turns it side-on."""
        joints = np.zeros((NUM_JOINTS, 3), np.float32)
        joints[:, 2] = 3.0
        joints[JOINT["left_hip"]] = (left_x, 0.0, 3.0 + forward_z)
        joints[JOINT["right_hip"]] = (-left_x, 0.0, 3.0 - forward_z)
        joints[JOINT["neck"]] = (0.0, -0.5, 3.0)
        return joints

    side_on = person(0.0, forward_z=0.15)
    unlabelled = person(0.15)
    unlabelled[JOINT["neck"]] = np.nan
    labels = facing_labels(np.stack([person(0.15), person(-0.15), side_on, unlabelled]))
    np.testing.assert_array_equal(labels, [1.0, 0.0, -1.0, -1.0])  # its left on the camera's right: faces it


def test_a_refiner_trained_with_its_facing_answer_reports_it():
    from pose_tl.decoding.refining import REFINER_FACING
    from pose_tl.training.refiner import train_joint_refiner

    settings = default_settings(people=(1, 2), distance_m=(1.5, 3.0))
    frames = [render_people_frame(11, index, settings) for index in range(4)]
    model, report = train_joint_refiner(frames, frames[:2], epochs=1, seed=5, base_filters=4, facing=True,
                                        log=lambda _: None)
    assert REFINER_FACING in model.output_names and 0.0 <= report["validation_facing_accuracy"] <= 1.0
    crops = tf.zeros((2, *REFINER_CROP_SIZE, 1))
    assert model(crops)[REFINER_FACING].shape == (2, 1)
    from pose_tl.training.refiner import facing_accuracy

    assert facing_accuracy(model, crops.numpy(), np.array([-1, -1])) is None  # no one labelled: None, not NaN
    plain, _ = train_joint_refiner(frames, frames[:2], epochs=1, seed=5, base_filters=4, log=lambda _: None)
    assert REFINER_FACING not in plain.output_names
