"""Flip test: the maps of a mirrored frame, mirrored back, are the maps of the frame; flip-tested models are
mirror-symmetric (through the CLI: tests/test_pose_slice.py)."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
from test_people_augment import clean_frame

from pose_tl.config.schema import ModelConfig, PoseHeadConfig
from pose_tl.data.people.augment_people import flip_people_frame
from pose_tl.data.people.skeleton import FLIP_INDEX, JOINT, NUM_JOINTS, PAF_LIMBS
from pose_tl.data.pose_data import pose_targets
from pose_tl.decoding.flip_test import mirrored_limbs, unmirror_maps
from pose_tl.export.pose_saved_model import make_pose_predictor


def batched_targets(frame):
    targets, _ = pose_targets(frame, output_size=(15, 20), stride=4, sigma=1.0, paf_width=1.0, stages=1,
                              joint_depth=True)
    depth_values, depth_weights = tf.split(targets.pop("joint_depth"), 2, axis=-1)  # values, then weights
    targets.update(joint_depth=depth_values, joint_depth_weights=depth_weights)
    return {name: value[None] for name, value in targets.items()}


def test_mirrored_limbs_pair_left_and_right_and_reverse_the_cross_limbs():
    pairs = mirrored_limbs()
    index = {limb: i for i, limb in enumerate(PAF_LIMBS)}
    for limb, (source, reversed_direction) in zip(PAF_LIMBS, pairs):
        mirror = (FLIP_INDEX[limb[0]], FLIP_INDEX[limb[1]])
        assert PAF_LIMBS[source] == (mirror[::-1] if reversed_direction else mirror)
    across = index[(JOINT["right_shoulder"], JOINT["left_shoulder"])]
    assert pairs[across] == (across, True)  # mirrored, right -> left shoulder runs left -> right: reversed
    assert pairs[pairs[0][0]][0] == 0  # the mirror of the mirror is the limb itself


@pytest.mark.parametrize("people", [(1, 1), (2, 2)])
def test_unmirrored_targets_of_the_mirrored_frame_are_the_targets_of_the_frame(people):
    _, frame = clean_frame(index=5, people=people)
    plain = batched_targets(frame)
    unmirrored = unmirror_maps(batched_targets(flip_people_frame(frame)))
    for name, value in plain.items():
        assert float(tf.reduce_max(tf.abs(value))) > 0.05, name  # people are in the maps
        np.testing.assert_allclose(unmirrored[name].numpy(), value.numpy(), atol=1e-4, err_msg=name)


def small_pose_model(joint_depth=True):
    from pose_tl.models.factory import build_pose_model

    config = ModelConfig(input_size=(32, 48), pose=PoseHeadConfig(output_stride=4, channels=8, stages=1,
                                                                    joint_depth=joint_depth))
    config = dataclasses.replace(config, backbone=dataclasses.replace(config.backbone, weights="none"))
    return build_pose_model(config, NUM_JOINTS, len(PAF_LIMBS))


def test_flip_tested_maps_of_a_mirrored_frame_are_the_mirrored_maps():
    model = small_pose_model()
    depth = np.random.default_rng(0).uniform(1500, 4000, (2, 32, 48)).astype(np.uint16)
    intrinsics = np.tile(np.float32([[40, 40, 24, 16]]), (2, 1))
    mirrored_intrinsics = np.tile(np.float32([[40, 40, 48 - 24, 16]]), (2, 1))

    def mirror_gap(flip_test):
        predict = make_pose_predictor(model, output_stride=4, flip_test=flip_test, compiled_decoding=False)
        maps = predict(tf.constant(depth), tf.constant(intrinsics))["heatmaps"]
        mirrored = predict(tf.constant(depth[:, :, ::-1].copy()), tf.constant(mirrored_intrinsics))["heatmaps"]
        return float(tf.reduce_max(tf.abs(unmirror_maps({"heatmaps": mirrored})["heatmaps"] - maps)))

    assert mirror_gap(flip_test=False) > 1e-3  # a random network is not symmetric...
    assert mirror_gap(flip_test=True) < 1e-5  # ...its flip test is
