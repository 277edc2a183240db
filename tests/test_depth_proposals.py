"""Depth proposals: a hand-made scene, recall on synthetic people, holes, batching under tf.function, margins."""

import types

import numpy as np
import pytest
import tensorflow as tf

from pose_tl.data.people.engine import render_people_frame, scaled_intrinsics
from pose_tl.data.people.skeleton import POSE_CLASSES
from pose_tl.detection.depth_proposals import depth_proposals

HEIGHT, WIDTH = 120, 160
SIGNATURE = [tf.TensorSpec([None, None, None], tf.float32), tf.TensorSpec([None, 4], tf.float32)]


def box_scene(tilt_deg=5.0, camera_height_m=1.0, wall_m=4.0, person=((-0.25, 0.25), (0.0, 1.75), (2.6, 2.9))):
    """Floor, a far wall and a box "person" (world x, height, forward ranges), ray-cast for a camera tilted down.

    Returns depth [H, W] metres, intrinsics [4], the person's true box (ymin, xmin, ymax, xmax) in pixels and what
    each pixel sees [H, W] (0 floor, 1 wall, 2 person).
    """
    intrinsics = scaled_intrinsics(HEIGHT, WIDTH)
    fx, fy, cx, cy = intrinsics
    v, u = np.mgrid[0:HEIGHT, 0:WIDTH] + 0.5
    rays = np.stack([(u - cx) / fx, (v - cy) / fy, np.ones_like(u)], -1)  # camera frame, z = 1
    t = np.deg2rad(tilt_deg)
    # World frame: x right, y up, z forward-horizontal, camera at (0, camera_height_m, 0).
    world = np.stack([rays[..., 0], -rays[..., 1] * np.cos(t) - np.sin(t), -rays[..., 1] * np.sin(t) + np.cos(t)], -1)
    origin = np.array([0.0, camera_height_m, 0.0])
    with np.errstate(divide="ignore", invalid="ignore"):
        floor = np.where(world[..., 1] < 0, -camera_height_m / world[..., 1], np.inf)
        wall = np.where(world[..., 2] > 0, wall_m / world[..., 2], np.inf)
        near = np.full(rays.shape[:-1], -np.inf)
        far = np.full(rays.shape[:-1], np.inf)
        for axis, (low, high) in enumerate(person):  # slab test
            a, b = (low - origin[axis]) / world[..., axis], (high - origin[axis]) / world[..., axis]
            near, far = np.maximum(near, np.minimum(a, b)), np.minimum(far, np.maximum(a, b))
    body = np.where((near <= far) & (near > 0), near, np.inf)
    surfaces = np.stack([floor, wall, body])
    depth = surfaces.min(0)  # ray parameter = camera depth, as rays have z = 1
    rows, cols = np.nonzero(body <= depth)
    true_box = np.array([rows.min(), cols.min(), rows.max() + 1, cols.max() + 1], np.float64)
    return depth.astype(np.float32), intrinsics.astype(np.float32), true_box, surfaces.argmin(0)


def engine_settings(**changes):
    fields = dict(image_size=(HEIGHT, WIDTH), people=(1, 3), pose_classes=POSE_CLASSES, noise="kinect",
                  flying_pixels=False, dropout_rate=0.003, camera_height_m=(0.8, 2.0), camera_tilt_deg=(0.0, 25.0),
                  distance_m=(1.5, 5.0), facing_deg=(-180.0, 180.0))
    fields.update(changes)
    return types.SimpleNamespace(**fields)


def pixel_boxes(boxes):
    """Normalised (ymin, xmin, ymax, xmax) -> pixels of the HEIGHT x WIDTH frame."""
    return np.asarray(boxes) * [HEIGHT, WIDTH, HEIGHT, WIDTH]


def iou(box, boxes):
    """IoU of one (ymin, xmin, ymax, xmax) box with each of boxes [N, 4]."""
    inter = (np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
             * np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None))
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return inter / (area(box) + area(boxes) - inter)


@pytest.fixture(scope="module")
def proposals():
    return tf.function(depth_proposals, input_signature=SIGNATURE)


@pytest.mark.parametrize("scene", [{}, dict(tilt_deg=0.0, person=((0.5, 1.0), (0.0, 1.75), (3.5, 3.8)))])
def test_box_person_in_a_room(proposals, scene):
    depth, intrinsics, true_box, seen = box_scene(**scene)
    assert 0.55 < (seen == 1).mean() < 0.7  # the wall: more than max_area_fraction of the frame
    boxes, valid = (t.numpy()[0] for t in proposals(depth[None], intrinsics[None]))
    found = pixel_boxes(boxes[valid])
    assert len(found) > 0
    assert iou(true_box, found[:1])[0] >= 0.7  # the first proposal: the largest segment, tight
    # Neither the wall (too big) nor the floor (removed by its normals) is proposed, not even a seam where they meet.
    assert (iou(np.array([0, 0, HEIGHT, WIDTH]), found) < 0.5).all()
    for ymin, xmin, ymax, xmax in found.round().astype(int):
        assert (seen[ymin:ymax, xmin:xmax] == 0).mean() < 0.5
    # The person stands on the floor: its box reaches the floor, no further.
    best = found[np.argmax(iou(true_box, found))]
    assert abs(best[2] - true_box[2]) <= 3


@pytest.mark.parametrize("noise, flying", [("clean", False), ("kinect", False), ("kinect", True)])
def test_recall_on_synthetic_people(proposals, noise, flying):
    frames = [render_people_frame(31, index, engine_settings(noise=noise, flying_pixels=flying), stream=2)
              for index in range(48)]
    depth = np.stack([frame.depth_mm / 1000.0 for frame in frames]).astype(np.float32)
    boxes, valid = (t.numpy() for t in proposals(depth, np.stack([frame.intrinsics for frame in frames])))
    hits = people = 0
    for frame, frame_boxes, frame_valid in zip(frames, boxes, valid):
        found = pixel_boxes(frame_boxes[frame_valid])
        for x, y, w, h in frame.boxes:
            if w * h >= 0.01 * HEIGHT * WIDTH:
                people += 1
                hits += len(found) > 0 and iou(np.array([y, x, y + h, x + w]), found).max() >= 0.5
    recall = hits / people
    print(f"{noise} (flying pixels {flying}): recall@0.5 {recall:.3f} of {people} people")
    assert people >= 60
    assert recall >= 0.8


def test_holes_shapes_and_batching(proposals):
    boxes, valid = proposals(tf.zeros([1, HEIGHT, WIDTH]), tf.constant([scaled_intrinsics(HEIGHT, WIDTH)], tf.float32))
    assert boxes.dtype == tf.float32 and valid.dtype == tf.bool
    assert boxes.shape == (1, 48, 4) and valid.shape == (1, 48)
    assert not valid.numpy().any() and not boxes.numpy().any()
    boxes, valid = proposals(tf.zeros([0, HEIGHT, WIDTH]), tf.zeros([0, 4]))  # an empty batch
    assert boxes.shape == (0, 48, 4) and valid.shape == (0, 48)

    scene, intrinsics, _, _ = box_scene()
    person = engine_settings(people=(2, 2))
    frame = render_people_frame(5, 0, person)
    depths = np.stack([scene, frame.depth_mm / 1000.0]).astype(np.float32)
    all_intrinsics = np.stack([intrinsics, frame.intrinsics])
    boxes, valid = (t.numpy() for t in proposals(depths, all_intrinsics))
    assert valid.any(1).all()
    for index in range(2):
        one_boxes, one_valid = proposals(depths[index:index + 1], all_intrinsics[index:index + 1])
        np.testing.assert_array_equal(one_valid.numpy()[0], valid[index])
        np.testing.assert_allclose(one_boxes.numpy()[0], boxes[index], atol=1e-6)
    assert not np.array_equal(valid[0], valid[1]) or not np.allclose(boxes[0], boxes[1])
    # Valid rows first, padding rows zero; boxes inside the frame.
    for frame_boxes, frame_valid in zip(boxes, valid):
        assert not frame_valid[np.argmin(frame_valid):].any()
        assert not frame_boxes[~frame_valid].any()
        assert (frame_boxes >= 0).all() and (frame_boxes <= 1).all()

    # Another frame size (a crop: same intrinsics) through the same traced function.
    boxes, valid = proposals(depths[:, :97, :133], all_intrinsics)
    assert boxes.shape == (2, 48, 4) and valid.numpy().any(1).all()


def test_segment_extents_are_the_segments_pixel_count_and_bounds():
    from pose_tl.detection.depth_proposals import _segment_extents

    rng = np.random.default_rng(2)
    h, w, segments = 6, 9, 12
    ids = rng.integers(0, segments - 2, h * w)  # the last two segments stay empty
    rows, cols = np.repeat(np.arange(h), w), np.tile(np.arange(w), h)
    count, top, left, bottom, right = (t.numpy() for t in _segment_extents(
        tf.constant(ids, tf.int32), tf.constant(rows, tf.int32), tf.constant(cols, tf.int32), segments, h, w))
    for segment in range(segments):
        mine = ids == segment
        assert count[segment] == mine.sum()
        if mine.any():
            assert (top[segment], left[segment]) == (rows[mine].min(), cols[mine].min())
            assert (bottom[segment], right[segment]) == (rows[mine].max() + 1, cols[mine].max() + 1)
        else:
            assert bottom[segment] <= top[segment] and right[segment] <= left[segment]


def test_portable_proposals_equal_the_default_ones():
    scene, intrinsics, _, _ = box_scene()
    frame = render_people_frame(5, 1, engine_settings(people=(3, 3)))
    depths = np.stack([scene, frame.depth_mm / 1000.0]).astype(np.float32)
    all_intrinsics = np.stack([intrinsics, frame.intrinsics]).astype(np.float32)
    default, portable = (depth_proposals(depths, all_intrinsics, portable=flag) for flag in (False, True))
    assert default[1].numpy().any(1).all()
    for ours, theirs in zip(portable, default):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_margins_nest_unless_clipped():
    depth, intrinsics, _, _ = box_scene()
    boxes, valid = (t.numpy()[0] for t in depth_proposals(depth[None], intrinsics[None], margins=(0.0, 0.1)))
    tight, grown = boxes[0::2][valid[0::2]], boxes[1::2][valid[1::2]]
    assert len(tight) > 0 and np.array_equal(valid[0::2], valid[1::2])
    extent = np.concatenate([tight[:, 2:] - tight[:, :2]] * 2, 1)
    np.testing.assert_allclose(grown, np.clip(tight + 0.1 * extent * [-1, -1, 1, 1], 0.0, 1.0), atol=1e-6)
    assert (grown[:, :2] <= tight[:, :2]).all() and (grown[:, 2:] >= tight[:, 2:]).all()
    assert (grown[:, 2:] - grown[:, :2] > tight[:, 2:] - tight[:, :2]).any()
