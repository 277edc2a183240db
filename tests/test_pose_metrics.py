"""Pose metrics on hand-made predictions: PCK and the left/right swap diagnostic."""

import numpy as np
import pytest

from pose_tl.data.people.frame import PeopleFrame
from pose_tl.data.people.skeleton import FLIP_INDEX, JOINT, JOINT_NAMES, NUM_JOINTS, VISIBLE
from pose_tl.evaluation.pose_metrics import evaluate_pose, format_pose_report

SIDED = [j for j in range(NUM_JOINTS) if FLIP_INDEX[j] != j]
CENTRE = [j for j in range(NUM_JOINTS) if FLIP_INDEX[j] == j]


def one_person_frame():
    """A person seen from the front: right joints on the image's left, 3D labels 2 m away."""
    x = {"head": 32, "neck": 32, "torso": 32}
    for side, sign in (("right", -1), ("left", 1)):
        for name, offset in (("shoulder", 8), ("elbow", 12), ("hand", 14), ("hip", 5), ("knee", 6), ("foot", 7)):
            x[f"{side}_{name}"] = 32 + sign * offset
    y = {"head": 6, "neck": 12, "torso": 20, "shoulder": 13, "elbow": 20, "hand": 27, "hip": 28, "knee": 36,
         "foot": 44}
    joints = np.array([[x[n], y[n.split("_")[-1]]] for n in JOINT_NAMES], np.float32)[None]
    xyz = np.concatenate([(joints - 32) / 100.0, np.full((1, NUM_JOINTS, 1), 2.0)], -1).astype(np.float32)
    return PeopleFrame(depth_mm=np.zeros((48, 64), np.uint16), instance_mask=np.zeros((48, 64), np.uint8),
                       intrinsics=np.array([100, 100, 32, 24], np.float32), joints_2d=joints, joints_3d=xyz,
                       visibility=np.full((1, NUM_JOINTS), VISIBLE, np.int8),
                       boxes=np.array([[18, 6, 29, 39]], np.float32), pose_classes=np.array([0], np.int32))


def prediction_of(joints_2d, joints_3d):
    return {"num_people": 1, "keypoints_2d": joints_2d, "keypoints_3d": joints_3d,
            "keypoint_scores": np.ones((1, NUM_JOINTS)), "keypoint_inferred": np.zeros((1, NUM_JOINTS), bool),
            "person_scores": np.ones(1)}


def test_a_person_taken_for_seen_from_the_back_counts_as_swapped_not_as_hits():
    frame = one_person_frame()
    mirrored = prediction_of(frame.joints_2d[:, list(FLIP_INDEX)], frame.joints_3d[:, list(FLIP_INDEX)])
    report = evaluate_pose([mirrored], [frame])
    per_joint = report["per_joint"]
    assert report["swapped@0.2"] == 1.0
    assert all(per_joint[JOINT_NAMES[j]]["swapped@0.2"] == 1.0 and per_joint[JOINT_NAMES[j]]["pck@0.2"] == 0.0
               for j in SIDED)
    assert all(per_joint[JOINT_NAMES[j]]["swapped@0.2"] is None and per_joint[JOINT_NAMES[j]]["pck@0.2"] == 1.0
               for j in CENTRE)
    assert report["pck@0.2"] == pytest.approx(len(CENTRE) / NUM_JOINTS)
    assert "left/right swapped@0.2: 1.0000" in format_pose_report(report)


def test_right_joints_are_not_swaps_and_a_lost_hand_is_a_miss_not_a_swap():
    frame = one_person_frame()
    report = evaluate_pose([prediction_of(frame.joints_2d, frame.joints_3d)], [frame])
    assert report["pck@0.2"] == 1.0 and report["swapped@0.2"] == 0.0
    wrong = frame.joints_2d.copy()
    wrong[0, JOINT["left_hand"]] = [2.0, 2.0]  # far from both hands
    report = evaluate_pose([prediction_of(wrong, frame.joints_3d)], [frame])
    assert report["per_joint"]["left_hand"]["pck@0.2"] == 0.0
    assert report["per_joint"]["left_hand"]["swapped@0.2"] == 0.0


def test_a_joint_whose_mirror_is_unlabelled_is_neither_a_swap_nor_counted():
    frame = one_person_frame()
    frame.visibility[0, JOINT["left_hip"]] = 0  # unlabelled: the right hip has no mirror label to be swapped with
    prediction = frame.joints_2d.copy()
    prediction[0, JOINT["right_hip"]] = frame.joints_2d[0, JOINT["left_hip"]]  # where the left hip is
    prediction[0, JOINT["right_knee"]] = frame.joints_2d[0, JOINT["left_knee"]]  # a real swap
    report = evaluate_pose([prediction_of(prediction, frame.joints_3d)], [frame])
    assert report["per_joint"]["right_hip"]["swapped@0.2"] == 0.0
    assert report["per_joint"]["right_knee"]["swapped@0.2"] == 1.0
    assert report["swapped@0.2"] == pytest.approx(1 / (len(SIDED) - 2))  # both hips out of the count


def test_twin_pairs_tell_a_person_turned_round_from_twins_collapsed_on_one_limb():
    frame = one_person_frame()
    frame.joints_2d[0, JOINT["left_foot"], 0] = frame.joints_2d[0, JOINT["right_foot"], 0] + 4.0  # feet together
    right = evaluate_pose([prediction_of(frame.joints_2d, frame.joints_3d)], [frame])["twin_pairs"]
    # Pairs whose labels lie more than twice the PCK distance apart (0.2 x the torso of 16 px: 6.4 px) count: not the
    # feet, 4 px apart (a joint there could be near both labels).
    assert right == {"apart": 5, "turned@0.2": 0.0, "collapsed@0.2": 0.0}
    turned = evaluate_pose([prediction_of(frame.joints_2d[:, list(FLIP_INDEX)], frame.joints_3d)], [frame])
    assert turned["twin_pairs"] == {"apart": 5, "turned@0.2": 1.0, "collapsed@0.2": 0.0}
    collapsed = frame.joints_2d.copy()
    collapsed[0, JOINT["left_hand"]] = frame.joints_2d[0, JOINT["right_hand"]]  # both hands on the right one
    collapsed[0, JOINT["right_knee"]] = frame.joints_2d[0, JOINT["left_knee"]]  # both knees on the left one
    report = evaluate_pose([prediction_of(collapsed, frame.joints_3d)], [frame])
    assert report["twin_pairs"] == {"apart": 5, "turned@0.2": 0.0, "collapsed@0.2": pytest.approx(2 / 5)}
    assert report["per_joint"]["left_hand"]["swapped@0.2"] == 1.0  # what swapped@0.2 alone cannot tell apart
    assert "of 5 left/right pairs, turned 0.0000 (front taken for back), collapsed 0.4000" in format_pose_report(
        report)
