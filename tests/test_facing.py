"""Which way people face: the 3D label, the skeleton's own facing, person crops, and turning arms and legs."""

import numpy as np
import pytest
import tensorflow as tf

from pose_tl.data.people.engine import render_people_frame
from pose_tl.data.people.skeleton import FLIP_INDEX, JOINT, NUM_JOINTS, VISIBLE
from pose_tl.data.people.targets import joint_heatmaps, part_affinity_fields
from pose_tl.data.people.tfds_builder import default_settings
from pose_tl.decoding.facing import (BACKGROUND, CROP_SIZE, TWINS, could_turn, facing_probabilities, person_crops,
                                     skeleton_facing, turn_to_facing)
from pose_tl.decoding.people import decode_people
from pose_tl.training.facing import facing_cosine, facing_examples

STRIDE = 4
FRONT, BACK = (-30.0, 30.0), (150.0, 210.0)


def frames_facing(heading, count=4, people=(1, 2)):
    settings = default_settings(people=people, noise="clean", distance_m=(2.0, 3.5), facing_deg=heading)
    return [render_people_frame(5, index, settings) for index in range(count)]


@pytest.mark.parametrize("heading, sign", [(FRONT, 1.0), (BACK, -1.0)])
def test_the_facing_label_and_the_skeletons_own_facing_agree_on_rendered_people(heading, sign):
    checked = 0
    for frame in frames_facing(heading):
        assert np.all(sign * facing_cosine(frame.joints_3d) > 0.5)
        found = frame.visibility == VISIBLE
        says = skeleton_facing(tf.constant(frame.joints_2d[None], tf.float32), tf.constant(found[None])).numpy()[0]
        roots = [TWINS.index(JOINT["right_shoulder"]), TWINS.index(JOINT["right_hip"])]
        both = found[:, [JOINT["left_shoulder"], JOINT["left_hip"]]] & found[:, [JOINT["right_shoulder"],
                                                                                  JOINT["right_hip"]]]
        assert np.all(sign * says[:, roots][both] > 0)
        checked += both.sum()
    assert checked >= 8


def standing_person(facing_camera=True):
    """Joints (x, y) of an upright person 40 px tall seen from the front (its left on the image's right) or back."""
    side = 1.0 if facing_camera else -1.0
    places = {"head": (0, -18), "neck": (0, -12), "torso": (0, -2), "shoulder": (5, -11), "elbow": (7, -4),
              "hand": (8, 3), "hip": (3, 6), "knee": (3, 14), "foot": (3, 22)}
    keypoints = np.zeros((NUM_JOINTS, 2), np.float32)
    for name, index in JOINT.items():
        part = name.split("_")[-1]
        x, y = places[part]
        x = -side * x if name.startswith("right_") else side * x
        keypoints[index] = (30 + x, 30 + y)
    return keypoints


def test_arms_and_legs_that_disagree_with_a_sure_classifier_are_exchanged_with_their_twins():
    person = standing_person(facing_camera=True)
    arm = [JOINT[f"{side}_{part}"] for side in ("right", "left") for part in ("shoulder", "elbow", "hand")]
    wrong_arms = person.copy()
    wrong_arms[arm] = person[[FLIP_INDEX[j] for j in arm]]
    keypoints = tf.constant(np.stack([person, wrong_arms, wrong_arms])[None])
    scores = tf.constant(np.tile(np.arange(NUM_JOINTS, dtype=np.float32)[None, None], [1, 3, 1]) / 20 + 0.1)
    found = tf.ones([1, 3, NUM_JOINTS], tf.bool)
    turned, turned_scores = turn_to_facing(keypoints, scores, tf.constant([[0.95, 0.95, 0.6]]), found)
    turned, turned_scores = turned.numpy()[0], turned_scores.numpy()[0]
    np.testing.assert_array_equal(turned[0], person)  # agrees: untouched
    np.testing.assert_array_equal(turned[1], person)  # the arms turned back, the legs left as they were
    expected_scores = scores.numpy()[0, 1].copy()
    expected_scores[arm] = expected_scores[[FLIP_INDEX[j] for j in arm]]
    np.testing.assert_array_equal(turned_scores[1], expected_scores)  # scores travel with their joints
    np.testing.assert_array_equal(turned[2], wrong_arms)  # the classifier is not sure: as decoded
    away, _ = turn_to_facing(tf.constant(person[None, None]), scores[:, :1], tf.constant([[0.02]]), found[:, :1])
    np.testing.assert_array_equal(away.numpy()[0, 0], person[list(FLIP_INDEX)])  # back turned: all turned


def test_each_pair_is_turned_on_its_own():
    """Knees and feet swapped under hips the right way round (the network's legs cross independently of its hips):
    the knees and feet are turned back, the hips stay."""
    person = standing_person(facing_camera=True)
    lower_legs = [JOINT[f"{side}_{part}"] for side in ("right", "left") for part in ("knee", "foot")]
    crossed = person.copy()
    crossed[lower_legs] = person[[FLIP_INDEX[j] for j in lower_legs]]
    turned, _ = turn_to_facing(tf.constant(crossed[None, None]), tf.ones([1, 1, NUM_JOINTS]), tf.constant([[0.9]]),
                               tf.ones([1, 1, NUM_JOINTS], tf.bool))
    np.testing.assert_array_equal(turned.numpy()[0, 0], person)


def test_a_side_on_skeleton_is_never_turned():
    person = standing_person()
    side_on = person.copy()
    side_on[:, 0] = 30.0  # shoulders and hips one above the other: which is left is a matter of depth
    keypoints = tf.constant(side_on[None, None])
    turned, _ = turn_to_facing(keypoints, tf.ones([1, 1, NUM_JOINTS]), tf.constant([[0.0]]),
                               tf.ones([1, 1, NUM_JOINTS], tf.bool))
    np.testing.assert_array_equal(turned.numpy()[0, 0], side_on)


def test_a_crop_is_the_person_relative_to_its_trunk_and_background_elsewhere():
    depth = np.full((1, 60, 60), 4.0, np.float32)
    depth[0, 10:55, 24:37] = 2.0  # the person, a slab 2 m away in front of a wall at 4 m
    depth[0, 20:25, 28:33] = 1.9  # a 10 cm bump
    depth[0, 40:42, 24:37] = 0.0  # a hole
    keypoints = tf.constant(standing_person()[None, None])
    crops = person_crops(tf.constant(depth), keypoints, tf.ones([1, 1, NUM_JOINTS], tf.bool)).numpy()[0, 0, ..., 0]
    assert crops.shape == CROP_SIZE
    values = np.unique(np.round(crops.astype(np.float64), 3))
    assert set(values) == {BACKGROUND, 0.0, -0.2}  # the wall 2 m behind and the hole are background
    assert crops[:, 0].tolist() == [BACKGROUND] * CROP_SIZE[0]  # the box is wider than the slab
    nobody = person_crops(tf.constant(depth), keypoints, tf.zeros([1, 1, NUM_JOINTS], tf.bool)).numpy()
    assert np.all(nobody == BACKGROUND)


def test_training_examples_are_labelled_by_the_way_people_face():
    front, back = (facing_examples(frames_facing(heading)) for heading in (FRONT, BACK))
    for (crops, labels), label in ((front, 1.0), (back, 0.0)):
        assert len(labels) >= 4 and np.all(labels == label) and crops.shape[1:] == (*CROP_SIZE, 1)
        assert np.all(np.abs(crops[crops != BACKGROUND]) <= 1.0) and np.mean(crops != BACKGROUND) > 0.2


@pytest.mark.parametrize("heading, probability", [(FRONT, 1.0), (BACK, 0.0)])
def test_decoding_with_a_facing_classifier_turns_skeletons_drawn_the_wrong_way_round(heading, probability):
    """Maps drawn with every person's left and right exchanged (a network that took fronts for backs) decode into
    mirror-image skeletons; with a classifier that knows which way they face, into the true ones (those with both
    shoulders in view)."""
    classifier = lambda crops: tf.fill([tf.shape(crops)[0], 1], probability)  # noqa: E731
    right_shoulder, turned_back, people = JOINT["right_shoulder"], 0, 0
    for frame in frames_facing(heading):
        visibility = tf.constant(frame.visibility.astype(np.int32))
        swapped_2d, swapped_visibility = (tf.gather(v, FLIP_INDEX, axis=1)
                                          for v in (tf.constant(frame.joints_2d), visibility))
        heatmaps = joint_heatmaps(swapped_2d, swapped_visibility, (30, 40), STRIDE, 1.5)[None]
        pafs = part_affinity_fields(swapped_2d, swapped_visibility, (30, 40), STRIDE, 1.0)[None]
        for facing_classifier in (None, classifier):
            out = decode_people(heatmaps, pafs, frame.depth_mm[None] / 1000.0, frame.intrinsics[None], stride=STRIDE,
                                facing_classifier=facing_classifier)
            keypoints, scores = out["keypoints_2d"].numpy()[0], out["keypoint_scores"].numpy()[0]
            for person in range(int(out["num_people"][0])):
                if min(scores[person, right_shoulder], scores[person, FLIP_INDEX[right_shoulder]]) == 0:
                    continue  # one side only (at the frame's edge): nothing tells its left from its right
                necks = frame.joints_2d[:, JOINT["neck"]]
                truth = int(np.argmin(np.linalg.norm(necks - keypoints[person, JOINT["neck"]], axis=-1)))
                right = np.linalg.norm(keypoints[person, right_shoulder] - frame.joints_2d[truth, right_shoulder]) < 3
                if facing_classifier is None:
                    people += 1
                    assert not right  # the mirror-image skeleton
                else:
                    turned_back += int(right)
    assert people >= 4 and turned_back == people


def test_shaken_training_examples_keep_their_labels_and_move_the_crops():
    frames = frames_facing(FRONT)
    plain_crops, plain_labels = facing_examples(frames)
    shaken_crops, shaken_labels = facing_examples(frames, np.random.default_rng(0))
    assert len(shaken_labels) >= len(plain_labels) - 2 and np.all(shaken_labels == 1.0)
    count = min(len(plain_labels), len(shaken_labels))
    assert np.mean(plain_crops[:count] != shaken_crops[:count]) > 0.1


def test_only_the_wanted_slots_are_classified_and_frames_with_none_wanted_do_not_fail():
    from pose_tl.models.facing import build_facing_classifier

    classifier = build_facing_classifier(seed=3)
    model = lambda batch: classifier(batch, training=False)  # noqa: E731
    crops = tf.constant(np.random.default_rng(0).uniform(-1, 1.5, (2, 4, *CROP_SIZE, 1)).astype(np.float32))
    every_slot = facing_probabilities(model, crops).numpy()
    graph = tf.function(lambda wanted: facing_probabilities(model, crops, wanted))
    wanted = np.array([[True, False, True, False], [False] * 4])
    some = graph(tf.constant(wanted)).numpy()
    np.testing.assert_allclose(some[wanted], every_slot[wanted], atol=1e-5)
    assert np.all(some[~wanted] == 0.5)
    assert np.all(graph(tf.zeros([2, 4], tf.bool)).numpy() == 0.5)


def test_could_turn_picks_the_people_whose_arms_or_legs_lie_clearly_across_the_body():
    keypoints = np.zeros((1, 4, NUM_JOINTS, 2), np.float32)
    found = np.zeros((1, 4, NUM_JOINTS), bool)
    for person, shoulder_gap in enumerate((20.0, 20.0, 0.5, 20.0)):  # pixels between the shoulders
        x = 50.0 * person
        keypoints[0, person, JOINT["neck"]] = (x, 10)
        keypoints[0, person, JOINT["torso"]] = (x, 40)
        keypoints[0, person, JOINT["right_foot"]] = (x, 110)
        keypoints[0, person, JOINT["right_shoulder"]] = (x - shoulder_gap / 2, 15)
        keypoints[0, person, JOINT["left_shoulder"]] = (x + shoulder_gap / 2, 15)
        found[0, person, [JOINT[name] for name in ("neck", "torso", "right_foot", "right_shoulder")]] = True
        found[0, person, JOINT["left_shoulder"]] = person != 1  # person 1: one shoulder only
    turnable = could_turn(tf.constant(keypoints), tf.constant(found), tf.constant([3])).numpy()[0]
    # 0: shoulders 20 px apart on a 100 px person; 1: one shoulder; 2: side-on (0.5 px); 3: not a person (count 3)
    assert turnable.tolist() == [True, False, False, False]


def test_classifying_only_the_people_it_could_turn_decodes_what_classifying_every_slot_does():
    from pose_tl.decoding.people import assemble_people, complete_people, facing_crops, turnable_people

    classify = lambda crops: tf.sigmoid(50.0 * tf.reduce_mean(crops, axis=[1, 2]))  # noqa: E731  (some sure, some not)
    compared, turned = 0, 0
    for frame in frames_facing(BACK):
        visibility = tf.constant(frame.visibility.astype(np.int32))
        heatmaps = joint_heatmaps(tf.constant(frame.joints_2d), visibility, (30, 40), STRIDE, 1.5)[None]
        pafs = part_affinity_fields(tf.constant(frame.joints_2d), visibility, (30, 40), STRIDE, 1.0)[None]
        depth, intrinsics = frame.depth_mm[None] / 1000.0, frame.intrinsics[None]
        people = assemble_people(heatmaps, pafs)
        crops = facing_crops(depth, people, stride=STRIDE)
        outputs = [complete_people(people, depth, intrinsics, stride=STRIDE,
                                   facing_probability=facing_probabilities(classify, crops, wanted))
                   for wanted in (None, turnable_people(people))]
        untouched = complete_people(people, depth, intrinsics, stride=STRIDE)
        for name in ("keypoints_2d", "keypoints_3d", "keypoint_scores"):
            np.testing.assert_allclose(outputs[1][name], outputs[0][name], atol=1e-5, err_msg=name)
        compared += int(people[3][0])
        turned += int(np.any(outputs[0]["keypoints_2d"].numpy() != untouched["keypoints_2d"].numpy()))
    assert compared >= 4 and turned >= 1


def test_the_facing_classifier_runs_in_the_pose_networks_precision():
    import keras

    from pose_tl.export.pose_saved_model import computing_like
    from pose_tl.models.facing import build_facing_classifier
    from pose_tl.training.precision import compute_policy, dtype_policy

    with dtype_policy("mixed_bfloat16"):
        network = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3)])
    classifier = build_facing_classifier(seed=3)
    assert computing_like(classifier, classifier) is classifier and computing_like(network, None) is None
    in_bfloat16 = computing_like(network, classifier)
    assert compute_policy(classifier) == "float32" and compute_policy(in_bfloat16) == "mixed_bfloat16"
    crops = tf.constant(np.random.default_rng(0).uniform(-1, 1.5, (16, *CROP_SIZE, 1)).astype(np.float32))
    reference = classifier(crops).numpy()
    np.testing.assert_allclose(tf.cast(in_bfloat16(crops), tf.float32).numpy(), reference, atol=0.01)
    assert np.ptp(reference) > 1e-4  # the crops are told apart: the comparison is not of constants
