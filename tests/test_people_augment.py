"""Joint-aware augmentation: labels move with the pixels, left and right swap under a flip."""

import numpy as np
import tensorflow as tf

from pose_tl.config.schema import AugmentConfig
from pose_tl.data.people.augment_people import (crop_and_resize_people_frame, flip_people_frame,
                                                random_people_augment, shift_people_depth)
from pose_tl.data.people.engine import render_people_frame
from pose_tl.data.people.skeleton import JOINT, VISIBLE
from pose_tl.data.people.tfds_builder import default_settings


def clean_frame(index=3, people=(2, 2)):
    frame = render_people_frame(11, index, default_settings(image_size=(60, 80), people=people, noise="clean",
                                                            distance_m=(2.0, 3.5)))
    tensors = {"depth": tf.constant(frame.depth_mm[..., None].astype(np.float32) / 1000.0),
               "joints_2d": tf.constant(frame.joints_2d), "joints_3d": tf.constant(frame.joints_3d),
               "visibility": tf.constant(frame.visibility.astype(np.int32)), "boxes": tf.constant(frame.boxes),
               "intrinsics": tf.constant(frame.intrinsics)}
    return frame, tensors


def test_flipped_joints_land_on_the_flipped_body():
    frame, tensors = clean_frame()
    flipped = flip_people_frame(tensors)
    mask = frame.instance_mask[:, ::-1]
    checked = 0
    for person in range(frame.num_people):
        for joint in range(15):
            if flipped["visibility"][person, joint] != VISIBLE:
                continue
            x, y = flipped["joints_2d"][person, joint].numpy()
            assert mask[int(y), int(x)] == person + 1
            checked += 1
    assert checked > 5


def test_flip_swaps_left_and_right_and_mirrors_3d():
    frame, tensors = clean_frame()
    flipped = flip_people_frame(tensors)
    right, left = JOINT["right_hand"], JOINT["left_hand"]
    np.testing.assert_allclose(flipped["joints_3d"][:, right, 0], -frame.joints_3d[:, left, 0], rtol=1e-6)
    np.testing.assert_allclose(flipped["joints_2d"][:, right, 0], 80 - frame.joints_2d[:, left, 0], rtol=1e-5)
    # the mirrored 3D joints still project onto the mirrored 2D joints with the flipped intrinsics
    fx, fy, cx, cy = flipped["intrinsics"].numpy()
    j3, j2 = flipped["joints_3d"].numpy(), flipped["joints_2d"].numpy()
    np.testing.assert_allclose(j3[..., 0] / j3[..., 2] * fx + cx, j2[..., 0], atol=1e-3)
    np.testing.assert_allclose(flip_people_frame(flipped)["joints_2d"], tensors["joints_2d"], atol=1e-5)


def test_crop_and_resize_moves_joints_boxes_and_intrinsics():
    frame, tensors = clean_frame()
    out = crop_and_resize_people_frame(tensors, 10, 20, 40, 40, (80, 80))
    np.testing.assert_allclose(out["joints_2d"][..., 0], (frame.joints_2d[..., 0] - 20) * 2, rtol=1e-5)
    fx, fy, cx, cy = out["intrinsics"].numpy()
    j3, j2 = frame.joints_3d, out["joints_2d"].numpy()
    np.testing.assert_allclose(j3[..., 1] / j3[..., 2] * fy + cy, j2[..., 1], atol=1e-3)
    outside = (j2[..., 0] < 0) | (j2[..., 0] >= 80) | (j2[..., 1] < 0) | (j2[..., 1] >= 80)
    assert np.all(out["visibility"].numpy()[outside] == 0)
    boxes = out["boxes"].numpy()
    assert np.all(boxes[:, :2] >= 0) and np.all(boxes[:, 0] + boxes[:, 2] <= 80 + 1e-4)
    assert out["depth"].shape == (80, 80, 1)


def test_depth_shift_moves_3d_z_consistently():
    frame, tensors = clean_frame()
    out = shift_people_depth(tensors, 0.25)
    valid = frame.depth_mm > 0
    np.testing.assert_allclose(out["depth"].numpy()[..., 0][valid], frame.depth_mm[valid] / 1000.0 + 0.25, rtol=1e-5)
    assert np.all(out["depth"].numpy()[..., 0][~valid] == 0)
    np.testing.assert_allclose(out["joints_3d"][..., 2], frame.joints_3d[..., 2] + 0.25, rtol=1e-5)


def test_random_augment_is_repeatable_and_keeps_projection():
    _, tensors = clean_frame()
    augment = AugmentConfig(crop_scale=(0.6, 0.9), depth_shift_m=0.0)
    seed = tf.constant([4, 2])
    a = random_people_augment(tensors, augment, (48, 64), seed)
    b = random_people_augment(tensors, augment, (48, 64), seed)
    np.testing.assert_array_equal(a["depth"], b["depth"])
    fx, fy, cx, cy = a["intrinsics"].numpy()
    j3, j2 = a["joints_3d"].numpy(), a["joints_2d"].numpy()
    np.testing.assert_allclose(j3[..., 0] / j3[..., 2] * fx + cx, j2[..., 0], atol=1e-2)
