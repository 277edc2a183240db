"""The built-in toy source: depth frames of one solid (sphere, box, cylinder, cone) in a room, class = solid.

It lets `make demo` and the tests train offline on real 16-bit PNG files until the synthetic people engine lands.
Rendering is vectorised NumPy sphere tracing of signed distance functions (no OpenGL); the sensor model adds
noise growing with the square of distance (Kinect-like, Nguyen et al. 2012), millimetre quantisation, holes at
depth edges and random dropouts.
"""

from pathlib import Path

import numpy as np

from pose_tl.data.depth_io import write_depth_png

SHAPE_CLASSES = ("box", "cone", "cylinder", "sphere")
RENDERER_VERSION = 2  # part of the cache key: bump when frames change
MAX_RANGE_M = 8.0
MARCH_STEPS = 96


def _rotate_y(points, angle):
    c, s = np.cos(angle), np.sin(angle)
    x, y, z = points[..., 0], points[..., 1], points[..., 2]
    return np.stack([c * x + s * z, y, -s * x + c * z], axis=-1)


def _sdf(kind, p, size):
    """Signed distance to a solid centred at the origin, y pointing down (camera convention)."""
    if kind == "sphere":
        return np.linalg.norm(p, axis=-1) - size
    if kind == "box":
        q = np.abs(p) - np.array([size, size * 0.8, size * 0.6])
        return np.linalg.norm(np.maximum(q, 0), axis=-1) + np.minimum(q.max(axis=-1), 0)
    radial = np.linalg.norm(p[..., [0, 2]], axis=-1)
    if kind == "cylinder":
        d = np.stack([radial - size * 0.6, np.abs(p[..., 1]) - size], axis=-1)
        return np.minimum(d.max(axis=-1), 0) + np.linalg.norm(np.maximum(d, 0), axis=-1)
    if kind == "cone":  # apex up (negative y), base radius = size at y = +size
        height = 2 * size
        along = (p[..., 1] + size) / height  # 0 at apex, 1 at base
        radius_here = np.clip(along, 0, 1) * size
        side = (radial - radius_here) * height / np.hypot(height, size)
        caps = np.maximum(-along, along - 1) * height
        return np.maximum(side, caps)
    raise ValueError(f"`kind` must be one of {SHAPE_CLASSES}. Received: {kind!r}")


def render_shape_frame(kind, rng, height=96, width=128, clean=False):
    """One float32 metres [H, W] frame of `kind` standing on the floor in front of a wall."""
    fx = 0.9 * width  # ~58 degree horizontal field of view, like Kinect v2's depth camera
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    rays_camera = np.stack([(u - width / 2 + 0.5) / fx, (v - height / 2 + 0.5) / fx, np.ones_like(u)], axis=-1)
    # World frame: level, y down. The camera is tilted down; a point t * ray lies at camera depth z = t because
    # every camera ray has z = 1 and rotation keeps t.
    tilt = np.deg2rad(rng.uniform(10.0, 25.0))
    c, s = np.cos(tilt), np.sin(tilt)
    rays = np.stack([rays_camera[..., 0], c * rays_camera[..., 1] + s * rays_camera[..., 2],
                     -s * rays_camera[..., 1] + c * rays_camera[..., 2]], axis=-1)
    camera_height = rng.uniform(0.8, 1.4)
    wall_z = rng.uniform(3.8, 5.0)
    floor_t = np.where(rays[..., 1] > 1e-6, camera_height / np.maximum(rays[..., 1], 1e-6), np.inf)
    wall_t = np.where(rays[..., 2] > 1e-6, wall_z / np.maximum(rays[..., 2], 1e-6), np.inf)
    depth = np.minimum(np.minimum(floor_t, wall_t), MAX_RANGE_M)

    size = rng.uniform(0.3, 0.5)
    z = rng.uniform(1.5, 2.8)
    x = rng.uniform(-0.3, 0.3) * z
    half_height = {"box": 0.8, "cone": 1.0, "cylinder": 1.0, "sphere": 1.0}[kind] * size
    centre = np.array([x, camera_height - half_height, z])
    angle = rng.uniform(0, 2 * np.pi)
    t = np.full((height, width), 0.5)
    for _ in range(MARCH_STEPS):
        local = _rotate_y(rays * t[..., None] - centre, -angle)
        step = _sdf(kind, local, size)
        t = t + np.maximum(step, 1e-4)
        t = np.minimum(t, MAX_RANGE_M)
    hit = _sdf(kind, _rotate_y(rays * t[..., None] - centre, -angle), size) < 2e-3
    depth = np.where(hit & (t < depth), t, depth).astype(np.float32)
    if not clean:
        depth = _apply_sensor_model(depth, rng)
    return depth


def _apply_sensor_model(depth, rng):
    sigma = 0.0012 + 0.0019 * (depth - 0.4) ** 2  # axial noise, metres, grows with z^2
    noisy = depth + rng.normal(size=depth.shape) * sigma
    edges = np.zeros_like(depth, dtype=bool)
    gy, gx = np.abs(np.diff(depth, axis=0)), np.abs(np.diff(depth, axis=1))
    edges[1:, :] |= gy > 0.08
    edges[:, 1:] |= gx > 0.08
    dropout = rng.random(depth.shape) < 0.005
    noisy[edges & (rng.random(depth.shape) < 0.7) | dropout] = 0.0
    return np.round(noisy * 1000.0).astype(np.float32) / 1000.0


def write_shapes_dataset(root, *, samples_per_class, image_size, seed):
    """Write `root/<class>/<index>.png` for every class; skip if a complete set is already there.

    Returns:
        The root folder.
    """
    root = Path(root)
    marker = root / ".complete"
    if marker.is_file():
        return root
    rng = np.random.default_rng(seed)
    for kind in SHAPE_CLASSES:
        folder = root / kind
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(samples_per_class):
            write_depth_png(folder / f"{index:05d}.png", render_shape_frame(kind, rng, *image_size))
    marker.write_text(f"samples_per_class={samples_per_class} image_size={list(image_size)} seed={seed}\n")
    return root
