"""The joint refiner: crops and targets in agreement, its peaks mapped back to the frame, and people refined."""

import numpy as np
import pytest
import tensorflow as tf

from pose_tl.data.people.engine import render_people_frame
from pose_tl.data.people.skeleton import FLIP_INDEX, JOINT, NUM_JOINTS
from pose_tl.data.people.tfds_builder import default_settings
from pose_tl.decoding.facing import on_person_slots, person_boxes
from pose_tl.decoding.refining import (REFINED_MIN_PEAK, REFINER_CROP_SIZE, REFINER_STRIDE, frame_to_heatmap,
                                       heatmap_to_frame, refine_people, refiner_heatmaps)
from pose_tl.training.refiner import gaussian_heatmaps, refiner_examples

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
    refined, refined_scores, _, count = refine_people(people, tf.constant(maps[None, None]), stride=stride)
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
    assert calls == [6, 3]  # every slot; the two wanted plus one dropped (an empty batch fails in TensorFlow)


def test_refiner_examples_have_their_targets_at_the_labelled_joints():
    settings = default_settings(people=(1, 3), distance_m=(1.5, 4.0))
    frames = [render_people_frame(7, index, settings) for index in range(6)]
    crops, targets, joints, in_frame, boxes = refiner_examples(frames)
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


def test_flip_averaged_refiner_heatmaps_treat_a_mirrored_person_as_its_mirror_image():
    from pose_tl.models.refiner import build_joint_refiner

    refiner = build_joint_refiner(seed=2, base_filters=4)
    crops = tf.random.uniform((3, *REFINER_CROP_SIZE, 1), seed=4)
    mirrored = tf.reverse(crops, axis=[2])

    def unmirrored(heatmaps):
        return tf.gather(tf.reverse(heatmaps, axis=[2]), list(FLIP_INDEX), axis=-1).numpy()

    plain = refiner_heatmaps(refiner, crops)
    assert plain.dtype == tf.float32 and plain.shape == (3, *HEATMAP_SIZE, NUM_JOINTS)
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
