"""The synthetic depth-people engine: determinism, label geometry, sensor model, handedness, poses, ray casting."""

import types

import numpy as np
import pytest

from pose_tl.data.people.body import body_capsules
from pose_tl.data.people.engine import (MAX_RANGE_M, Camera, _yaw, apply_sensor_model, render_people_frame,
                                        scaled_intrinsics)
from pose_tl.data.people.poses import ANKLE_HEIGHT, BodyShape, sample_pose, skeleton_in_body_frame
from pose_tl.data.people.render import (capsule_pixel_box, intersect_capsule, pixel_rays, render_capsules,
                                        render_planes)
from pose_tl.data.people.skeleton import JOINT, NUM_JOINTS, OCCLUDED, OUT_OF_FRAME, POSE_CLASSES, VISIBLE

SMALL = (60, 80)  # same 3:4 aspect (so the same field of view) as the recipe default 120x160, 4x fewer pixels


def settings(**changes):
    """Engine settings with the recipe defaults, at 60x80 unless changed."""
    fields = dict(image_size=SMALL, people=(1, 3), pose_classes=POSE_CLASSES, noise="kinect", flying_pixels=False,
                  dropout_rate=0.003, camera_height_m=(0.8, 2.0), camera_tilt_deg=(0.0, 25.0), distance_m=(1.5, 5.0),
                  facing_deg=(-180.0, 180.0))
    fields.update(changes)
    return types.SimpleNamespace(**fields)


@pytest.fixture(scope="module")
def frames():
    """40 default (kinect) frames at 60x80: 1-3 people, all pose classes."""
    return [render_people_frame(7, index, settings()) for index in range(40)]


@pytest.fixture(scope="module")
def clean_frames():
    return [render_people_frame(7, index, settings(noise="clean")) for index in range(40)]


def all_fields(frame):
    return {name: getattr(frame, name) for name in ("depth_mm", "instance_mask", "intrinsics", "joints_2d",
                                                      "joints_3d", "visibility", "boxes", "pose_classes")}


def people_in(frames):
    """(frame, person index) for every labelled person."""
    return [(frame, p) for frame in frames for p in range(frame.num_people)]


def project(points, intrinsics):
    fx, fy, cx, cy = intrinsics
    return np.stack([points[..., 0] / points[..., 2] * fx + cx, points[..., 1] / points[..., 2] * fy + cy], -1)


# --- determinism -------------------------------------------------------------------------------------------------

def test_same_seed_index_and_stream_give_identical_frames():
    first = render_people_frame(3, 5, settings(), stream=1)
    for index in (0, 9):  # rendering other frames in between must not matter
        render_people_frame(3, index, settings(), stream=1)
    again = render_people_frame(3, 5, settings(), stream=1)
    for name, value in all_fields(first).items():
        np.testing.assert_array_equal(value, getattr(again, name), err_msg=name)
        assert value.dtype == getattr(again, name).dtype


@pytest.mark.parametrize("other", [dict(index=6), dict(stream=2), dict(seed=4)], ids=["index", "stream", "seed"])
def test_different_index_stream_or_seed_gives_different_depth(other):
    call = dict(seed=3, index=5, stream=1)
    base = render_people_frame(call["seed"], call["index"], settings(), stream=call["stream"])
    call.update(other)
    changed = render_people_frame(call["seed"], call["index"], settings(), stream=call["stream"])
    assert not np.array_equal(base.depth_mm, changed.depth_mm)


# --- frame fields ------------------------------------------------------------------------------------------------

def test_every_field_has_the_documented_shape_and_dtype(frames):
    height, width = SMALL
    for frame in frames:
        p = frame.num_people
        assert 0 <= p <= 3  # people wholly out of view are dropped; never more than the maximum
        assert frame.depth_mm.shape == (height, width) and frame.depth_mm.dtype == np.uint16
        assert frame.instance_mask.shape == (height, width) and frame.instance_mask.dtype == np.uint8
        assert frame.intrinsics.shape == (4,) and frame.intrinsics.dtype == np.float32
        assert frame.joints_2d.shape == (p, NUM_JOINTS, 2) and frame.joints_2d.dtype == np.float32
        assert frame.joints_3d.shape == (p, NUM_JOINTS, 3) and frame.joints_3d.dtype == np.float32
        assert frame.visibility.shape == (p, NUM_JOINTS) and frame.visibility.dtype == np.int8
        assert frame.boxes.shape == (p, 4) and frame.boxes.dtype == np.float32
        assert frame.pose_classes.shape == (p,) and frame.pose_classes.dtype == np.int32
        assert frame.image_size == (height, width)
        np.testing.assert_allclose(frame.intrinsics, scaled_intrinsics(height, width), rtol=1e-6)
        for array in (frame.joints_2d, frame.joints_3d, frame.boxes):
            assert np.isfinite(array).all()  # the synthetic engine never writes NaN
        assert np.isin(frame.visibility, (OUT_OF_FRAME, OCCLUDED, VISIBLE)).all()
        assert ((frame.pose_classes >= 0) & (frame.pose_classes < len(POSE_CLASSES))).all()
        assert frame.depth_mm.max() <= MAX_RANGE_M * 1000
        assert (frame.joints_3d[..., 2] > 0).all()  # people stand in front of the camera
    assert {1, 2, 3} <= {f.num_people for f in frames}


def test_people_count_never_exceeds_the_maximum_and_one_person_is_nearly_always_labelled():
    one = settings(people=(1, 1), distance_m=(2.0, 3.0), camera_tilt_deg=(0.0, 5.0))
    counts = []
    for index in range(150):
        frame = render_people_frame(0, index, one)
        counts.append(frame.num_people)
        assert frame.num_people == frame.instance_mask.max()  # a person is dropped only when no pixel shows them
    assert set(counts) <= {0, 1}
    # A person whose ground position lies past the frame edge can fall wholly outside it and is then not labelled
    # (README: about 0.3 % of `people: [1, 1]` frames end up empty); never more than a few percent.
    assert counts.count(1) >= 0.97 * len(counts)


def test_zero_people_gives_empty_labels_and_an_empty_room():
    frame = render_people_frame(1, 0, settings(people=(0, 0), noise="clean"))
    assert frame.num_people == 0 and not frame.instance_mask.any()
    assert frame.joints_3d.shape == (0, NUM_JOINTS, 3) and frame.visibility.shape == (0, NUM_JOINTS)
    assert frame.pose_classes.shape == (0,)
    assert (frame.depth_mm > 0).all()  # walls and floor everywhere, within range


def heading_from_camera_deg(joints_3d):
    """0: the person faces the camera, 180: turns their back to it (untilted camera: y is the vertical)."""
    across = joints_3d[JOINT["left_hip"]] - joints_3d[JOINT["right_hip"]]
    forward = np.array([across[2], 0.0, -across[0]])  # up x across in the world, whose x and z are the camera's
    return float(np.degrees(np.arccos(-forward[2] / np.linalg.norm(forward))))


@pytest.mark.parametrize("facing_deg, low, high", [((-20.0, 20.0), 0.0, 20.0), ((150.0, 180.0), 150.0, 180.0)])
def test_people_face_the_camera_within_the_settings_heading(facing_deg, low, high):
    headings = []
    for index in range(8):
        frame = render_people_frame(3, index, settings(facing_deg=facing_deg, camera_tilt_deg=(0.0, 0.0),
                                                       pose_classes=("standing",)))
        headings += [heading_from_camera_deg(joints) for joints in frame.joints_3d]
    assert len(headings) >= 8
    assert all(low - 1e-6 <= h <= high + 1e-6 for h in headings), headings


def test_pose_classes_come_from_the_settings():
    chosen = ("sitting", "waving")
    for index in range(6):
        frame = render_people_frame(2, index, settings(pose_classes=chosen))
        assert {POSE_CLASSES[c] for c in frame.pose_classes} <= set(chosen)


# --- label geometry ----------------------------------------------------------------------------------------------

def test_joints_2d_are_the_pinhole_projection_of_joints_3d(frames):
    for frame in frames:
        fx, fy, cx, cy = frame.intrinsics.astype(np.float64)
        x, y, z = np.moveaxis(frame.joints_3d.astype(np.float64), -1, 0)
        np.testing.assert_allclose(frame.joints_2d[..., 0], x / z * fx + cx, atol=1e-3)
        np.testing.assert_allclose(frame.joints_2d[..., 1], y / z * fy + cy, atol=1e-3)


def test_out_of_frame_exactly_when_the_2d_joint_is_outside_the_image(frames):
    height, width = SMALL
    outside_seen = inside_seen = 0
    for frame in frames:
        u, v = frame.joints_2d[..., 0], frame.joints_2d[..., 1]
        outside = ~((u >= 0) & (u < width) & (v >= 0) & (v < height))
        np.testing.assert_array_equal(frame.visibility == OUT_OF_FRAME, outside)
        outside_seen += outside.sum()
        inside_seen += (~outside).sum()
    assert outside_seen > 0 and inside_seen > 0  # both branches exercised


def test_visible_joints_lie_on_their_own_persons_mask(frames):
    checked = occluded = 0
    for frame, person in people_in(frames):
        for joint in range(NUM_JOINTS):
            u, v = frame.joints_2d[person, joint]
            if frame.visibility[person, joint] == VISIBLE:
                assert frame.instance_mask[int(v), int(u)] == person + 1
                checked += 1
            occluded += frame.visibility[person, joint] == OCCLUDED
    assert checked > 200 and occluded > 0


def test_instance_mask_labels_exactly_the_kept_people(frames):
    for frame in frames:
        assert set(np.unique(frame.instance_mask)) == set(range(frame.num_people + 1))


def test_boxes_are_the_tight_bounds_of_each_persons_mask_inside_the_image(frames):
    height, width = SMALL
    for frame, person in people_in(frames):
        rows, cols = np.nonzero(frame.instance_mask == person + 1)
        x, y, w, h = frame.boxes[person]
        assert x >= 0 and y >= 0 and w >= 1 and h >= 1 and x + w <= width and y + h <= height
        assert x <= cols.min() and cols.max() < x + w and y <= rows.min() and rows.max() < y + h  # encloses
        np.testing.assert_array_equal([x, y, w, h], [cols.min(), rows.min(), np.ptp(cols) + 1, np.ptp(rows) + 1])


# --- depth and the sensor model ----------------------------------------------------------------------------------

def test_clean_depth_has_no_holes_and_person_surfaces_lie_near_their_joints(clean_frames):
    for frame, person in people_in(clean_frames):
        assert (frame.depth_mm > 0).all()
        surface = frame.depth_mm[frame.instance_mask == person + 1] / 1000.0
        z = frame.joints_3d[person, :, 2]
        # Surfaces are capsules around the bones: at most a trunk radius or a foot length from some joint.
        assert surface.max() < z.max() + 0.3
        assert surface.min() > z.min() - 0.3


def test_clean_and_kinect_frames_share_the_geometry(frames, clean_frames):
    for noisy, clean in zip(frames, clean_frames):
        for name in ("instance_mask", "joints_2d", "joints_3d", "visibility", "boxes", "pose_classes"):
            np.testing.assert_array_equal(getattr(noisy, name), getattr(clean, name), err_msg=name)


def test_kinect_noise_leaves_holes_and_grows_with_distance_as_nguyen(frames, clean_frames):
    noisy = np.stack([f.depth_mm for f in frames]).astype(np.float64) / 1000.0
    clean = np.stack([f.depth_mm for f in clean_frames]).astype(np.float64) / 1000.0
    assert all((f.depth_mm == 0).any() for f in frames)  # every kinect frame has holes
    assert (clean > 0).all()
    valid = noisy > 0
    error, z = (noisy - clean)[valid], clean[valid]
    stds = []
    for low, high in ((1.5, 2.5), (3.0, 4.0), (5.0, 6.0)):
        band = (z >= low) & (z < high)
        assert band.sum() > 1000
        model = np.sqrt(np.mean((0.0012 + 0.0019 * (z[band] - 0.4) ** 2) ** 2))  # Nguyen et al. 2012
        stds.append(error[band].std())
        assert stds[-1] == pytest.approx(model, rel=0.15)
    assert stds[0] < stds[1] < stds[2] and stds[2] > 5 * stds[0]


def plane(depth_m, shape=(100, 100)):
    return np.full(shape, depth_m), np.ones(shape, np.int32)


def test_sensor_model_noise_on_a_plane_grows_from_1_m_to_4_m():
    spreads = {}
    for depth_m in (1.0, 4.0):
        depth, labels = plane(depth_m)
        noisy = apply_sensor_model(depth, labels, np.random.default_rng(0), dropout_rate=0.0, flying_pixels=False)
        assert (noisy > 0).all()  # one surface, no edges, no dropouts: no holes
        np.testing.assert_allclose(noisy * 1000, np.round(noisy * 1000), atol=1e-6)  # millimetre steps
        spreads[depth_m] = (noisy - depth_m).std()
        assert abs((noisy - depth_m).mean()) < 3 * spreads[depth_m] / 100  # unbiased
    assert spreads[1.0] == pytest.approx(0.0012 + 0.0019 * 0.6 ** 2, rel=0.15)
    assert spreads[4.0] == pytest.approx(0.0012 + 0.0019 * 3.6 ** 2, rel=0.1)
    assert spreads[4.0] > 10 * spreads[1.0]


def test_sensor_model_drops_the_requested_share_of_pixels_and_everything_out_of_range():
    depth, labels = plane(2.0, (200, 200))
    noisy = apply_sensor_model(depth, labels, np.random.default_rng(1), dropout_rate=0.05, flying_pixels=False)
    assert (noisy == 0).mean() == pytest.approx(0.05, abs=0.01)
    far, labels = plane(MAX_RANGE_M + 1.0)
    assert not apply_sensor_model(far, labels, np.random.default_rng(1), 0.0, False).any()
    missing, labels = plane(0.0)
    assert not apply_sensor_model(missing, labels, np.random.default_rng(1), 0.0, False).any()


def test_sensor_model_shadows_fall_on_the_far_side_of_a_depth_edge():
    depth = np.full((200, 20), 3.0)
    depth[:, :10] = 1.0  # near object on the left, wall on the right
    labels = np.full(depth.shape, 2, np.int32)
    labels[:, :10] = 1
    noisy = apply_sensor_model(depth, labels, np.random.default_rng(2), dropout_rate=0.0, flying_pixels=False)
    holes = noisy == 0
    assert holes[:, 10].mean() == pytest.approx(0.7, abs=0.1)  # the far pixel next to the edge
    assert not holes[:, :10].any() and not holes[:, 11:].any()
    same_surface = labels.copy()
    same_surface[:] = 1  # a depth jump within one surface is not an object edge
    assert (apply_sensor_model(depth, same_surface, np.random.default_rng(2), 0.0, False) > 0).all()


# --- handedness --------------------------------------------------------------------------------------------------

def t_pose_in_camera(yaw_deg):
    """A 1.75 m person in t_pose 3 m in front of a camera 1.2 m high tilted 10 degrees down; joints and capsules."""
    shape = BodyShape(height=1.75, girth=1.0)
    joints = skeleton_in_body_frame(shape, sample_pose("t_pose", np.random.default_rng(0)))
    capsules = body_capsules(joints, shape.height, shape.girth)
    camera = Camera(scaled_intrinsics(*SMALL), height_m=1.2, tilt_deg=10.0)
    to_camera = lambda p: camera.world_to_camera(_yaw(p, yaw_deg) + np.array([0.0, 0.0, 3.0]))  # noqa: E731
    return to_camera(joints), to_camera(capsules[:, :3]), to_camera(capsules[:, 3:6]), camera.intrinsics


def test_person_facing_the_camera_has_the_right_hand_on_the_image_left():
    joints, starts, ends, intrinsics = t_pose_in_camera(180.0)
    x = project(joints, intrinsics)[:, 0]
    assert x[JOINT["right_hand"]] < x[JOINT["left_hand"]]
    assert x[JOINT["right_shoulder"]] < x[JOINT["left_shoulder"]]
    # yaw 180 really is facing the camera: the toes (the last two capsules run ankle -> toe) point at it.
    assert (ends[-2:, 2] < starts[-2:, 2] - 0.1).all()


def test_person_facing_away_has_the_right_hand_on_the_image_right():
    joints, starts, ends, intrinsics = t_pose_in_camera(0.0)
    x = project(joints, intrinsics)[:, 0]
    assert x[JOINT["right_hand"]] > x[JOINT["left_hand"]]
    assert (ends[-2:, 2] > starts[-2:, 2] + 0.1).all()  # toes point away


def test_rendered_people_are_not_mirror_images():
    """Camera frame x right, y down, z forward is right-handed, so for a real person right x up = backward: the
    knees of a sitting person (which point forward) must lie on the other side."""
    checked = 0
    for index in range(10):
        frame = render_people_frame(5, index, settings(pose_classes=("sitting",), noise="clean"))
        for joints in frame.joints_3d.astype(np.float64):
            right = joints[JOINT["right_shoulder"]] - joints[JOINT["left_shoulder"]]
            up = joints[JOINT["neck"]] - joints[JOINT["torso"]]
            knees = (joints[JOINT["right_knee"]] + joints[JOINT["left_knee"]]) / 2
            hips = (joints[JOINT["right_hip"]] + joints[JOINT["left_hip"]]) / 2
            assert np.cross(right, up) @ (knees - hips) < 0
            checked += 1
    assert checked >= 10


# --- poses -------------------------------------------------------------------------------------------------------

BODY = BodyShape(height=1.8, girth=1.0)
BONES = {("right_shoulder", "right_elbow"): 0.17, ("right_elbow", "right_hand"): 0.19,
         ("left_shoulder", "left_elbow"): 0.17, ("left_elbow", "left_hand"): 0.19,
         ("right_hip", "right_knee"): 0.245, ("right_knee", "right_foot"): 0.25,
         ("left_hip", "left_knee"): 0.245, ("left_knee", "left_foot"): 0.25}  # fractions of body height


def posed(pose_class, samples=20):
    """[samples, J, 3] body-frame joints (x right, y up, z forward) of BODY in `pose_class`."""
    rng = np.random.default_rng(11)
    return np.stack([skeleton_in_body_frame(BODY, sample_pose(pose_class, rng)) for _ in range(samples)])


def at(joints, name):
    return joints[:, JOINT[name]]


@pytest.mark.parametrize("pose_class", POSE_CLASSES)
def test_every_pose_class_keeps_bone_lengths_and_stands_on_the_floor(pose_class):
    joints = posed(pose_class)
    assert joints.shape == (20, NUM_JOINTS, 3) and np.isfinite(joints).all()
    for (a, b), fraction in BONES.items():
        np.testing.assert_allclose(np.linalg.norm(at(joints, b) - at(joints, a), axis=-1), fraction * BODY.height,
                                   rtol=1e-9, err_msg=f"{a}-{b}")
    lowest_foot = np.minimum(at(joints, "right_foot")[:, 1], at(joints, "left_foot")[:, 1])
    np.testing.assert_allclose(lowest_foot, ANKLE_HEIGHT * BODY.height)
    assert (joints[..., 1] > 0).all()  # nothing below the floor


def test_arms_up_puts_both_hands_above_the_head():
    joints = posed("arms_up")
    for hand in ("right_hand", "left_hand"):
        assert (at(joints, hand)[:, 1] > at(joints, "head")[:, 1]).all()


def test_t_pose_holds_the_hands_at_shoulder_height_and_far_apart():
    joints = posed("t_pose")
    for side in ("right", "left"):
        drop = np.abs(at(joints, f"{side}_hand")[:, 1] - at(joints, f"{side}_shoulder")[:, 1])
        assert (drop < 0.12 * BODY.height).all()
    span = at(joints, "right_hand")[:, 0] - at(joints, "left_hand")[:, 0]  # x = the person's right
    assert (span > 0.7 * BODY.height).all()
    relaxed = posed("standing")
    assert span.min() > 2 * (at(relaxed, "right_hand")[:, 0] - at(relaxed, "left_hand")[:, 0]).max()


def test_sitting_hips_are_much_lower_than_standing_hips():
    sitting, standing = posed("sitting"), posed("standing")
    assert at(sitting, "right_hip")[:, 1].max() < 0.7 * at(standing, "right_hip")[:, 1].min()
    knee_forward = at(sitting, "right_knee")[:, 2] - at(sitting, "right_hip")[:, 2]
    assert (knee_forward > 0.15 * BODY.height).all()  # thighs point forward (z)


def test_crouching_head_is_lower_than_standing_head():
    crouching, standing = posed("crouching"), posed("standing")
    assert at(crouching, "head")[:, 1].max() < 0.85 * at(standing, "head")[:, 1].min()


def test_gestures_move_the_active_limb():
    def furthest_forward_hand(joints):
        return np.maximum(at(joints, "right_hand")[:, 2], at(joints, "left_hand")[:, 2])

    def highest_hand_over_shoulder(joints):
        return np.maximum(at(joints, "right_hand")[:, 1] - at(joints, "right_shoulder")[:, 1],
                          at(joints, "left_hand")[:, 1] - at(joints, "left_shoulder")[:, 1])

    standing = posed("standing")
    assert (furthest_forward_hand(posed("pointing")) > 0.25 * BODY.height).all()
    assert (furthest_forward_hand(standing) < 0.22 * BODY.height).all()
    assert (highest_hand_over_shoulder(posed("waving")) > 0.1 * BODY.height).all()
    assert (highest_hand_over_shoulder(standing) < 0).all()
    walking = posed("walking")
    stride = np.abs(at(walking, "right_foot")[:, 2] - at(walking, "left_foot")[:, 2])
    assert (stride > 0.15 * BODY.height).all()


def test_unknown_pose_class_raises_naming_it():
    with pytest.raises(ValueError, match=r"pose_class.*'jumping'"):
        sample_pose("jumping", np.random.default_rng(0))


# --- ray casting -------------------------------------------------------------------------------------------------

def rays_through(*xy):
    """z = 1 rays with the given (x, y) slopes."""
    return np.array([[x, y, 1.0] for x, y in xy])


def test_sphere_straight_ahead_is_hit_at_its_front():
    centre, r = np.array([0.0, 0.0, 3.0]), 0.25
    depth = intersect_capsule(rays_through((0, 0), (0.05, 0), (0, -0.05)), centre, centre, r)
    assert depth[0] == pytest.approx(3.0 - r, abs=1e-12)
    # Off-centre rays: the first root of |t d - c|^2 = r^2, converted from ray length to depth.
    for ray, got in zip(rays_through((0.05, 0), (0, -0.05)), depth[1:]):
        d = ray / np.linalg.norm(ray)
        t = d @ centre - np.sqrt((d @ centre) ** 2 - centre @ centre + r * r)
        assert got == pytest.approx(t * d[2], abs=1e-12)
        assert 3.0 - r < got < 3.0


def test_horizontal_capsule_is_hit_on_its_front_surface():
    a, b, r = np.array([-0.5, 0.2, 3.0]), np.array([0.5, 0.2, 3.0]), 0.1
    # Rays in the capsule's horizontal plane (y / z = 0.2 / 2.9) at several x within its length meet the front line.
    slope = 0.2 / 2.9
    depth = intersect_capsule(rays_through((0.0, slope), (-0.1, slope), (0.15, slope)), a, b, r)
    np.testing.assert_allclose(depth, 2.9, atol=1e-9)
    # A ray aimed above the axis hits the cylinder where (y - 0.2)^2 + (z - 3)^2 = r^2 with y = 0.25 z / 3 ...
    k = 0.25 / 3.0
    z = np.roots([k * k + 1, -(2 * 0.2 * k + 6), 0.04 + 9 - r * r]).min()
    assert intersect_capsule(rays_through((0.0, k)), a, b, r)[0] == pytest.approx(z, abs=1e-9)
    # ... and a ray just past the right end hits the rounded cap: the surface lies within r of the end point.
    cap = intersect_capsule(rays_through((0.55 / 2.95, slope)), a, b, r)[0]
    point = np.array([0.55 / 2.95, slope, 1.0]) * cap
    assert np.linalg.norm(point - b) == pytest.approx(r, abs=1e-9)


def test_rays_that_miss_and_capsules_behind_the_camera_give_inf():
    a, b, r = np.array([-0.5, 0.0, 3.0]), np.array([0.5, 0.0, 3.0]), 0.1
    assert np.isinf(intersect_capsule(rays_through((0, 0.2), (0.3, 0), (-0.5, -0.5)), a, b, r)).all()
    behind = intersect_capsule(rays_through((0, 0), (0.1, 0)), a * [1, 1, -1], b * [1, 1, -1], r)
    assert np.isinf(behind).all()
    sphere = np.array([0.0, 0.0, -2.0])
    assert np.isinf(intersect_capsule(rays_through((0, 0)), sphere, sphere, 0.3)).all()


def distance_to_segment(points, a, b):
    ba = b - a
    s = np.clip((points - a) @ ba / (ba @ ba), 0.0, 1.0)
    return np.linalg.norm(points - (a + s[..., None] * ba), axis=-1)


def test_capsule_hits_lie_on_the_surface_with_nothing_nearer_and_misses_pass_outside():
    rng = np.random.default_rng(4)
    for _ in range(6):
        a = np.array([rng.uniform(-1, 1), rng.uniform(-1, 1), rng.uniform(2, 4)])
        b = a + rng.normal(size=3) * 0.4
        r = rng.uniform(0.05, 0.3)
        aim = (a + b)[:2] / (a + b)[2]  # rays scattered around the capsule's middle
        rays = np.concatenate([aim + rng.uniform(-0.3, 0.3, (4000, 2)), np.ones((4000, 1))], 1)
        depth = intersect_capsule(rays, a, b, r)
        hit = np.isfinite(depth)
        assert 100 < hit.sum() < len(rays)
        points = rays[hit] * depth[hit, None]  # z = 1 rays: the point at depth z is z * ray
        np.testing.assert_allclose(distance_to_segment(points, a, b), r, atol=1e-7)
        assert (distance_to_segment(points * (1 - 1e-3), a, b) > r).all()  # just nearer on the ray: outside
        # Misses: sample each ray densely over the capsule's depth span; nothing comes within r.
        ts = np.linspace(min(a[2], b[2]) - r, max(a[2], b[2]) + r, 400)
        samples = rays[~hit][:, None, :] * ts[None, :, None]
        assert (distance_to_segment(samples, a, b) > r - 1e-3).all()


def test_render_capsules_keeps_the_nearest_surface_and_its_label():
    height, width = SMALL
    intrinsics = scaled_intrinsics(height, width)
    rays = pixel_rays(height, width, intrinsics)
    far = np.array([-0.6, 0.0, 3.0, 0.6, 0.0, 3.0, 0.2])
    near = np.array([0.0, -0.6, 2.0, 0.0, 0.6, 2.0, 0.1])
    depth, labels = np.full((height, width), np.inf), np.zeros((height, width), np.int32)
    render_capsules(depth, labels, rays, far[None], 7, intrinsics)
    render_capsules(depth, labels, rays, near[None], 8, intrinsics)
    before = depth.copy(), labels.copy()
    render_capsules(depth, labels, rays, far[None], 9, intrinsics)  # drawn again behind: changes nothing
    np.testing.assert_array_equal(depth, before[0])
    np.testing.assert_array_equal(labels, before[1])
    expect_far = intersect_capsule(rays, far[:3], far[3:6], far[6])
    expect_near = intersect_capsule(rays, near[:3], near[3:6], near[6])
    np.testing.assert_allclose(depth, np.minimum(expect_far, expect_near))
    np.testing.assert_array_equal(labels == 8, np.isfinite(expect_near))
    np.testing.assert_array_equal(labels == 7, np.isfinite(expect_far) & ~np.isfinite(expect_near))


def test_capsule_pixel_box_covers_every_pixel_the_capsule_hits_off_axis():
    height, width = 424, 512  # full Kinect v2 depth resolution
    intrinsics = scaled_intrinsics(height, width)
    rays = pixel_rays(height, width, intrinsics)
    centre, r = np.array([1.1, 0.0, 2.0]), 0.2  # a head-sized sphere 2 m away, 29 degrees off axis
    rows, cols = np.nonzero(np.isfinite(intersect_capsule(rays, centre, centre, r)))
    top, bottom, left, right = capsule_pixel_box(centre, centre, r, intrinsics, height, width)
    assert top <= rows.min() and rows.max() < bottom and left <= cols.min() and cols.max() < right


def test_floor_seen_by_a_level_camera_is_at_height_over_ray_slope():
    height, width, camera_height = 60, 80, 1.3
    rays = pixel_rays(height, width, scaled_intrinsics(height, width))
    floor = Camera(scaled_intrinsics(height, width), camera_height, 0.0).room_planes(6.0, 3.0)[0]
    depth, index = render_planes(rays, [floor])
    below = rays[..., 1] > 0  # y down: below the horizon
    assert below.any() and (~below).any()
    np.testing.assert_allclose(depth[below], camera_height / rays[..., 1][below], rtol=1e-12)
    assert np.isinf(depth[~below]).all()
    assert (index == 0).all()


def test_room_planes_agree_with_the_cameras_world_transform():
    """Depth from the room planes, lifted to camera points and taken back to the world, lands on the floor
    (y = 0), the back wall (z = back) or a side wall (|x| = side) for a tilted camera."""
    height, width, back, side = 60, 80, 6.0, 3.0
    camera = Camera(scaled_intrinsics(height, width), height_m=1.5, tilt_deg=20.0)
    rays = pixel_rays(height, width, camera.intrinsics)
    depth, index = render_planes(rays, camera.room_planes(back, side))
    assert np.isfinite(depth).all() and set(np.unique(index)) == {0, 1, 2, 3}
    points = rays * depth[..., None]
    t = np.deg2rad(camera.tilt_deg)
    down = points[..., 1] * np.cos(t) + points[..., 2] * np.sin(t)  # inverse of world_to_camera's x-rotation
    world = np.stack([points[..., 0], camera.height_m - down, -points[..., 1] * np.sin(t) + points[..., 2] *
                      np.cos(t)], -1)
    np.testing.assert_allclose(camera.world_to_camera(world), points, atol=1e-9)
    np.testing.assert_allclose(world[index == 0][:, 1], 0.0, atol=1e-9)
    np.testing.assert_allclose(world[index == 1][:, 2], back, atol=1e-9)
    np.testing.assert_allclose(world[index == 2][:, 0], side, atol=1e-9)
    np.testing.assert_allclose(world[index == 3][:, 0], -side, atol=1e-9)
    assert (index[-1] == 0).all()  # the bottom row sees the floor


def test_flying_pixels_lie_between_the_two_surfaces():
    from pose_tl.data.people.engine import apply_sensor_model

    depth = np.full((20, 20), 3.2)
    depth[:, :10] = 3.0  # a person 20 cm in front of a wall
    labels = np.where(np.arange(20)[None, :] < 10, 100, 2).repeat(20, axis=0)
    rng = np.random.default_rng(0)
    noisy = apply_sensor_model(depth, labels, rng, dropout_rate=0.0, flying_pixels=True)
    edge_column = noisy[:, 10]
    mixed = edge_column[edge_column > 0]
    assert mixed.size > 0
    assert np.all((mixed > 3.0 + 0.02) & (mixed < 3.2 - 0.02))
