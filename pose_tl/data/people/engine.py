"""The synthetic depth-people engine: a room, a tilted camera, 0..N articulated people, a Kinect-like sensor.

In the spirit of Shotton et al. (CVPR 2011), who trained Kinect's body-part recogniser on synthetic depth alone.
Deterministic: frame `index` of a `seed` is the same whatever order or process renders it.
"""

from dataclasses import dataclass

import numpy as np

from pose_tl.data.people.body import body_capsules, joint_radii
from pose_tl.data.people.frame import PeopleFrame
from pose_tl.data.people.poses import sample_body, sample_pose, skeleton_in_body_frame
from pose_tl.data.people.render import pixel_rays, render_capsules, render_planes
from pose_tl.data.people.skeleton import JOINT, NUM_JOINTS, OCCLUDED, OUT_OF_FRAME, POSE_CLASSES, VISIBLE

ENGINE_VERSION = 3  # part of every prepared dataset's name: bump when rendered frames change
# The fields of the recipe's `SyntheticConfig` that the renderer reads; with the seed and split sizes they name a
# prepared dataset (`tfds_builder.settings_key`).
ENGINE_SETTINGS = ("image_size", "people", "pose_classes", "noise", "flying_pixels", "dropout_rate", "camera_height_m",
                   "camera_tilt_deg", "distance_m", "facing_deg")
KINECT_V2_DEPTH = (512, 424, 365.5)  # width, height, focal length in pixels of Kinect v2's depth camera
MAX_RANGE_M = 8.0
PERSON_LABEL = 100  # surface labels >= this are people (label - PERSON_LABEL = person index)
STOOL_LABEL = 10
MIN_SEPARATION_M = 0.7
# `_yaw` of a body facing the camera: at yaw 0 the body's forward (+z) points away from it. A recipe's heading
# (`facing_deg`, 0 = facing the camera) is drawn and this added, so the default [-180, 180] draws yaw in [0, 360).
FACING_CAMERA_YAW = 180.0


@dataclass(frozen=True)
class Camera:
    intrinsics: np.ndarray  # fx, fy, cx, cy
    height_m: float
    tilt_deg: float

    def world_to_camera(self, points):
        """World (x right, y up, z forward-horizontal; floor y = 0) -> camera (x right, y down, z depth)."""
        t = np.deg2rad(self.tilt_deg)
        down = self.height_m - points[..., 1]
        z = points[..., 2]
        return np.stack([points[..., 0], down * np.cos(t) - z * np.sin(t), down * np.sin(t) + z * np.cos(t)], -1)

    def room_planes(self, back_wall_m, side_wall_m):
        t = np.deg2rad(self.tilt_deg)
        return [(np.array([0.0, np.cos(t), np.sin(t)]), self.height_m),  # floor
                (np.array([0.0, -np.sin(t), np.cos(t)]), back_wall_m),
                (np.array([1.0, 0.0, 0.0]), side_wall_m), (np.array([-1.0, 0.0, 0.0]), side_wall_m)]


def scaled_intrinsics(height, width):
    """Kinect v2 depth intrinsics scaled to the output width (square pixels, principal point at the centre)."""
    sensor_width, _, focal = KINECT_V2_DEPTH
    f = focal * width / sensor_width
    return np.array([f, f, width / 2.0, height / 2.0])


def _yaw(points, degrees):
    t = np.deg2rad(degrees)
    x, z = points[..., 0], points[..., 2]
    return np.stack([x * np.cos(t) + z * np.sin(t), points[..., 1], -x * np.sin(t) + z * np.cos(t)], -1)


def _place_people(rng, count, distance_range, half_fov_tan, back_wall_m, side_wall_m):
    """Ground positions (x, z), apart from each other and inside the room; some are cut by the frame edge."""
    positions = []
    for _ in range(count):
        for _attempt in range(20):
            z = min(rng.uniform(*distance_range), back_wall_m - 0.5)
            x = float(np.clip(rng.uniform(-1.15, 1.15) * z * half_fov_tan, 0.4 - side_wall_m, side_wall_m - 0.4))
            if all(np.hypot(x - px, z - pz) > MIN_SEPARATION_M for px, pz in positions):
                positions.append((x, z))
                break
    return positions


def apply_sensor_model(depth, labels, rng, dropout_rate, flying_pixels):
    """Kinect-like degradations on clean metres: noise growing with z^2 (Nguyen et al. 2012), shadows (holes) on
    the far side of depth edges, optional flying pixels, random dropouts, millimetre quantisation."""
    valid = depth > 0
    sigma = 0.0012 + 0.0019 * (depth - 0.4) ** 2
    noisy = np.where(valid, depth + rng.normal(size=depth.shape) * sigma, 0.0)
    holes = rng.random(depth.shape) < dropout_rate
    flying = np.zeros(depth.shape, bool)
    nearer_neighbour = depth.copy()  # for a far-side edge pixel: the depth across the edge
    for axis in (0, 1):
        near = np.take(depth, range(depth.shape[axis] - 1), axis=axis)
        far = np.take(depth, range(1, depth.shape[axis]), axis=axis)
        edge = (np.take(labels, range(depth.shape[axis] - 1), axis=axis)
                != np.take(labels, range(1, depth.shape[axis]), axis=axis)) & (np.abs(far - near) > 0.05)
        second_is_far = far > near
        pad = [(0, 0), (0, 0)]
        pad[axis] = (0, 1)
        first_mask = np.pad(edge & ~second_is_far, pad)
        nearer_neighbour = np.where(first_mask, np.pad(far, pad, mode="edge"), nearer_neighbour)
        pad[axis] = (1, 0)
        second_mask = np.pad(edge & second_is_far, pad)
        nearer_neighbour = np.where(second_mask, np.pad(near, pad, mode="edge"), nearer_neighbour)
        shadow = (first_mask | second_mask) & (rng.random(depth.shape) < 0.7)
        holes |= shadow
        flying |= (first_mask | second_mask) & ~shadow
    if flying_pixels:  # time-of-flight mixes the two surfaces: a depth between them
        mix = rng.uniform(0.2, 0.8, depth.shape)
        noisy = np.where(flying & valid, noisy + mix * (nearer_neighbour - depth), noisy)
    noisy[holes | (noisy <= 0) | (noisy > MAX_RANGE_M)] = 0.0
    return np.round(noisy * 1000.0) / 1000.0


def _visibility(joints_cam, joints_2d, radii, clean_depth, instance, person, height, width):
    trunk_radius = radii[JOINT["torso"]]
    vis = np.full(NUM_JOINTS, OUT_OF_FRAME, np.int8)
    for j in range(NUM_JOINTS):
        u, v = joints_2d[j]
        if not (0 <= u < width and 0 <= v < height) or joints_cam[j, 2] <= 0:
            continue
        row, col = int(v), int(u)
        # The joint is inside the body: its own surface may lie up to the trunk's thickness in front of it.
        own_surface = (instance[row, col] == person + 1
                       and clean_depth[row, col] > joints_cam[j, 2] - max(radii[j], trunk_radius) - 0.05)
        vis[j] = VISIBLE if own_surface else OCCLUDED
    return vis


def render_people_frame(seed, index, settings, stream=0):
    """Render frame `index` of `seed` (`stream` separates splits: train 0, validation 1, test 2).

    Args:
        settings: an object with the `ENGINE_SETTINGS` fields of the recipe's `SyntheticConfig`.

    Returns:
        A `PeopleFrame`.
    """
    rng = np.random.default_rng([seed, stream, index])
    height, width = settings.image_size
    intrinsics = scaled_intrinsics(height, width)
    camera = Camera(intrinsics, float(rng.uniform(*settings.camera_height_m)),
                    float(rng.uniform(*settings.camera_tilt_deg)))
    rays = pixel_rays(height, width, intrinsics)
    back_wall = max(rng.uniform(5.0, 7.5), settings.distance_m[1] + 1.0)
    side_wall = rng.uniform(2.5, 4.5)
    depth, labels = render_planes(rays, camera.room_planes(back_wall, side_wall))
    labels = labels + 1

    count = int(rng.integers(settings.people[0], settings.people[1] + 1))
    positions = _place_people(rng, count, settings.distance_m, (width / 2) / intrinsics[0], back_wall, side_wall)
    people = []
    for person, (x, z) in enumerate(positions):
        pose_class = settings.pose_classes[int(rng.integers(len(settings.pose_classes)))]
        shape = sample_body(rng)
        joints_body = skeleton_in_body_frame(shape, sample_pose(pose_class, rng))
        yaw = rng.uniform(*(heading + FACING_CAMERA_YAW for heading in settings.facing_deg))
        to_camera = lambda p: camera.world_to_camera(_yaw(p, yaw) + np.array([x, 0.0, z]))  # noqa: E731
        capsules = body_capsules(joints_body, shape.height, shape.girth)
        capsules_cam = np.concatenate([to_camera(capsules[:, :3]), to_camera(capsules[:, 3:6]), capsules[:, 6:]], 1)
        render_capsules(depth, labels, rays, capsules_cam, PERSON_LABEL + person, intrinsics)
        if pose_class == "sitting":
            hips = (joints_body[JOINT["right_hip"]] + joints_body[JOINT["left_hip"]]) / 2
            seat = np.array([[hips[0], hips[1] - 0.1 * shape.height, hips[2], hips[0], 0.2, hips[2], 0.16]])
            stool = np.concatenate([to_camera(seat[:, :3]), to_camera(seat[:, 3:6]), seat[:, 6:]], 1)
            render_capsules(depth, labels, rays, stool, STOOL_LABEL, intrinsics)
        people.append((to_camera(joints_body), joint_radii(shape.height, shape.girth),
                       POSE_CLASSES.index(pose_class)))

    clean = np.where(np.isfinite(depth) & (depth < MAX_RANGE_M), depth, 0.0)
    instance = np.where(labels >= PERSON_LABEL, labels - PERSON_LABEL + 1, 0).astype(np.uint8)
    sensed = clean if settings.noise == "clean" else apply_sensor_model(
        clean, labels, rng, settings.dropout_rate, settings.flying_pixels)
    return _labelled_frame(sensed, clean, instance, intrinsics, people)


def _labelled_frame(sensed, clean, instance, intrinsics, people):
    height, width = sensed.shape
    fx, fy, cx, cy = intrinsics
    joints_2d, joints_3d, visibility, boxes, classes = [], [], [], [], []
    kept_instance = np.zeros_like(instance)
    for person, (joints_cam, radii, pose_index) in enumerate(people):
        rows, cols = np.nonzero(instance == person + 1)
        if rows.size == 0:
            continue  # entirely hidden or out of frame: nothing to label
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = np.stack([joints_cam[:, 0] / joints_cam[:, 2] * fx + cx,
                           joints_cam[:, 1] / joints_cam[:, 2] * fy + cy], -1)
        kept_instance[instance == person + 1] = len(joints_2d) + 1
        visibility.append(_visibility(joints_cam, uv, radii, clean, instance, person, height, width))
        joints_2d.append(uv)
        joints_3d.append(joints_cam)
        boxes.append([cols.min(), rows.min(), cols.max() - cols.min() + 1, rows.max() - rows.min() + 1])
        classes.append(pose_index)
    count = len(joints_2d)
    return PeopleFrame(
        depth_mm=np.clip(np.round(sensed * 1000.0), 0, 65535).astype(np.uint16),
        instance_mask=kept_instance,
        intrinsics=intrinsics.astype(np.float32),
        joints_2d=np.asarray(joints_2d, np.float32).reshape(count, NUM_JOINTS, 2),
        joints_3d=np.asarray(joints_3d, np.float32).reshape(count, NUM_JOINTS, 3),
        visibility=np.asarray(visibility, np.int8).reshape(count, NUM_JOINTS),
        boxes=np.asarray(boxes, np.float32).reshape(count, 4),
        pose_classes=np.asarray(classes, np.int32),
    )
