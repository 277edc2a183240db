"""Twins kept apart (`pose_tl.decoding.twins`) and the joint refiner's facing answer, from its maps to the turn."""

import numpy as np
import pytest
import tensorflow as tf

from pose_tl.data.people.skeleton import JOINT, NUM_JOINTS
from pose_tl.decoding.twins import SECOND_PEAK_SHARE
from pose_tl.decoding.refining import (REFINED_MIN_PEAK, REFINER_CROP_SIZE, REFINER_DEPTHS, REFINER_FACING,
                                       REFINER_HEATMAPS, REFINER_STRIDE, REFINER_TRUNK_DEPTHS, answers_facing,
                                       crop_peaks, facing_logits, refiner_heatmaps, refiner_maps)

HEATMAP_SIZE = (REFINER_CROP_SIZE[0] // REFINER_STRIDE, REFINER_CROP_SIZE[1] // REFINER_STRIDE)
LEFT, RIGHT = JOINT["left_hand"], JOINT["right_hand"]
A, B = (6, 20), (10, 8)  # (x, y) heatmap cells: two hands


def hand_maps(left, right, *, facing=True, logit=0.0):
    """Refiner maps [1, h, w, 3J (+1)] of one crop whose hand heatmaps hold peaks of the given heights at the cells
    A and B (`left` and `right`: {cell: height}), the head a single peak; depths 0; facing `logit` (0: unsure)."""
    heatmaps = np.zeros((*HEATMAP_SIZE, NUM_JOINTS), np.float32)
    heatmaps[4, 8, JOINT["head"]] = 0.9
    for joint, peaks in ((LEFT, left), (RIGHT, right)):
        for (x, y), height in peaks.items():
            heatmaps[y, x, joint] = height
    maps = [heatmaps, np.zeros((*HEATMAP_SIZE, 2 * NUM_JOINTS), np.float32)]
    if facing:
        maps.append(np.full((*HEATMAP_SIZE, 1), logit, np.float32))
    return tf.constant(np.concatenate(maps, -1)[None])


def cell(xy):
    return tuple(int(v) for v in np.floor(xy))


def test_twins_on_one_limb_are_taken_apart_the_one_adding_more_moving():
    # Both hands' strongest peak at A; moving the right hand to B adds 0.6 + 0.9, the left 0.3 + 0.8: the right moves.
    xy, peak, _, _ = crop_peaks(hand_maps({A: 0.9, B: 0.3}, {A: 0.8, B: 0.6}))
    assert cell(xy[0, LEFT]) == A and cell(xy[0, RIGHT]) == B
    np.testing.assert_allclose([peak[0, LEFT], peak[0, RIGHT]], [0.9, 0.6], atol=1e-6)
    assert cell(xy[0, JOINT["head"]]) == (8, 4)
    xy, _, _, _ = crop_peaks(hand_maps({A: 0.9, B: 0.7}, {A: 0.8, B: 0.3}))  # now the left adds more
    assert cell(xy[0, LEFT]) == B and cell(xy[0, RIGHT]) == A


def test_twins_stay_where_they_were_apart_already_or_without_a_second_limb():
    xy, _, _, _ = crop_peaks(hand_maps({A: 0.9, B: 0.3}, {B: 0.8, A: 0.6}))  # apart: each keeps its strongest
    assert cell(xy[0, LEFT]) == A and cell(xy[0, RIGHT]) == B
    weak = REFINED_MIN_PEAK / 2  # a second peak too weak to move a joint to: the twin is hidden, not lost
    xy, _, _, _ = crop_peaks(hand_maps({A: 0.9, B: weak}, {A: 0.8, B: weak}))
    assert cell(xy[0, LEFT]) == A and cell(xy[0, RIGHT]) == A


def test_a_second_peak_well_below_the_twins_strongest_is_an_echo_not_a_limb():
    # The right hand would move (0.9 + 0.5 > 0.5 + 0.8) but its second peak is 0.5 / 0.8 < SECOND_PEAK_SHARE of its
    # strongest: both hands stay on the one limb (feet together, hands joined look so).
    assert 0.5 / 0.8 < SECOND_PEAK_SHARE < 0.6 / 0.8
    xy, _, _, _ = crop_peaks(hand_maps({A: 0.9, B: 0.5}, {A: 0.8, B: 0.5}))
    assert cell(xy[0, LEFT]) == A and cell(xy[0, RIGHT]) == A


def test_only_twins_put_apart_are_turned_to_the_facing_answer():
    """Upright (no neck or hips found), a left hand on the image's left says the person faces away. Sure it faces
    the camera, the refiner's answer turns the hands it had found on one limb, not those its heatmaps found apart."""
    sure_towards = 4.0
    xy, _, _, _ = crop_peaks(hand_maps({A: 0.9, B: 0.3}, {A: 0.8, B: 0.6}, logit=sure_towards))  # put apart
    assert cell(xy[0, LEFT]) == B and cell(xy[0, RIGHT]) == A  # turned: the left hand on the image's right
    xy, _, _, _ = crop_peaks(hand_maps({A: 0.9, B: 0.3}, {B: 0.8, A: 0.6}, logit=sure_towards))  # found apart
    assert cell(xy[0, LEFT]) == A and cell(xy[0, RIGHT]) == B  # kept as its heatmaps say
    xy, _, _, _ = crop_peaks(hand_maps({A: 0.9, B: 0.3}, {A: 0.8, B: 0.6}, logit=-sure_towards))  # sure it faces away
    assert cell(xy[0, LEFT]) == A and cell(xy[0, RIGHT]) == B


def test_a_refiner_without_a_facing_answer_keeps_each_joints_strongest_peak():
    maps = hand_maps({A: 0.9, B: 0.3}, {A: 0.8, B: 0.6}, facing=False)
    assert not answers_facing(maps) and facing_logits(maps) is None
    xy, _, depths, trunk_depths = crop_peaks(maps)
    assert cell(xy[0, LEFT]) == A and cell(xy[0, RIGHT]) == A
    assert depths is not None and trunk_depths is not None


def test_the_facing_logit_rides_on_the_maps_and_survives_the_flip_test():
    rng = np.random.default_rng(0)
    crops = tf.constant(rng.uniform(size=(3, *REFINER_CROP_SIZE, 1)).astype(np.float32))

    def refiner(batch):  # a facing answer a mirror image keeps: the mean depth of the crop
        shape = (tf.shape(batch)[0], *HEATMAP_SIZE, NUM_JOINTS)
        maps = tf.reduce_mean(batch, [1, 2, 3])[:, None, None, None] * tf.ones(shape)
        return {REFINER_HEATMAPS: maps, REFINER_DEPTHS: 2.0 * maps, REFINER_TRUNK_DEPTHS: 3.0 * maps,
                REFINER_FACING: tf.reduce_mean(batch, [1, 2])}

    expected = tf.reduce_mean(crops, [1, 2, 3]).numpy()
    for flip in (False, True):
        maps = refiner_heatmaps(refiner, crops, flip)
        assert maps.shape == (3, *HEATMAP_SIZE, 3 * NUM_JOINTS + 1) and answers_facing(maps)
        np.testing.assert_allclose(facing_logits(maps).numpy(), expected, atol=1e-6)
        np.testing.assert_allclose(maps[..., 2 * NUM_JOINTS].numpy(), np.broadcast_to(3.0 * expected[:, None, None],
                                                                               (3, *HEATMAP_SIZE)), atol=1e-6)
    assert refiner_maps({REFINER_HEATMAPS: tf.zeros((2, *HEATMAP_SIZE, NUM_JOINTS))}).shape[-1] == NUM_JOINTS


def test_decoding_turns_twins_taken_apart_to_the_refiners_facing_answer_then_reads_their_depths():
    """A person facing the camera has its left hand on the image's right. A refiner that finds both hands but puts
    both twins on the image-left hand, and says the person faces the camera (or away): decoding ends with the left
    hand on the image's right (or left), each lifted with its own depth behind the surface, read where it ends."""
    from pose_tl.decoding.people import decode_people
    from test_refiner import two_people_maps

    frame, heatmaps, pafs = two_people_maps()
    h, w = HEATMAP_SIZE
    hands = np.zeros((h, w, NUM_JOINTS), np.float32)
    hands[h // 2, 3, [LEFT, RIGHT]] = (0.9, 0.8)  # image-left hand, strongest in both maps
    hands[h // 2, w - 4, [LEFT, RIGHT]] = (0.3, 0.6)  # image-right hand
    hands[2, w // 2, JOINT["neck"]] = hands[h - 12, w // 2 - 2, JOINT["right_hip"]] = 1.0
    hands[h - 12, w // 2 + 2, JOINT["left_hip"]] = 1.0
    behind = np.zeros((h, w, NUM_JOINTS), np.float32)
    behind[..., LEFT] = 0.6  # the left hand's map reads 0.6 m behind the surface wherever it is read, the right's 0

    def decode(logit, facing_classifier=None):
        def refiner(crops):
            count = tf.shape(crops)[0]
            maps = tf.tile(hands[None], [count, 1, 1, 1])
            return {REFINER_HEATMAPS: maps, REFINER_DEPTHS: tf.tile(behind[None], [count, 1, 1, 1]),
                    REFINER_TRUNK_DEPTHS: tf.zeros_like(maps), REFINER_FACING: tf.fill([count, 1], logit)}

        out = decode_people(heatmaps, pafs, frame.depth_mm[None] / 1000.0, frame.intrinsics[None], stride=4,
                            joint_refiner=refiner, refine_passes=1, facing_classifier=facing_classifier)
        assert int(out["num_people"][0]) == 2
        return ([out[key].numpy()[0, :2, joint, axis] for joint in (LEFT, RIGHT)]
                for key, axis in (("keypoints_2d", 0), ("keypoints_3d", 2)))

    (left_x, right_x), (left_z, right_z) = decode(4.0)  # faces the camera: turned
    (away_left_x, away_right_x), (away_left_z, away_right_z) = decode(-4.0)  # faces away: as taken apart
    assert np.all(np.abs(left_x - right_x) > 1.0)  # on two hands
    assert np.all(left_x > right_x) and np.all(away_left_x < away_right_x)
    # A facing classifier is not heard, nor run: the refiner turned the pairs on the joints it found.
    classifier_calls = []

    def classifier(crops):
        classifier_calls.append(crops)
        return tf.ones([tf.shape(crops)[0], 1])  # faces the camera: the opposite of the refiner's answer

    (overruled_left_x, _), _ = decode(-4.0, facing_classifier=classifier)
    np.testing.assert_allclose(overruled_left_x, away_left_x, atol=1e-4)
    assert classifier_calls == []
    np.testing.assert_allclose([left_x, right_x], [away_right_x, away_left_x], atol=1e-4)
    # Each hand's depth behind the surface is read from its own map where it ends (turned first, then read): the left
    # hand 0.6 m behind the surface on the image's right when the person faces the camera, on its left when away.
    np.testing.assert_allclose(left_z - away_right_z, 0.6, atol=1e-3)
    np.testing.assert_allclose(away_left_z - right_z, 0.6, atol=1e-3)


def test_a_facing_classifier_is_served_only_where_the_refiner_does_not_answer_facing():
    from pose_tl.export.pose_saved_model import used_facing_classifier
    from pose_tl.models.refiner import build_joint_refiner

    classifier = object()
    assert used_facing_classifier(classifier, build_joint_refiner(seed=1, base_filters=4, facing=True)) is None
    assert used_facing_classifier(classifier, build_joint_refiner(seed=1, base_filters=4, facing=False)) is classifier
    assert used_facing_classifier(classifier, None) is classifier and used_facing_classifier(None, None) is None
