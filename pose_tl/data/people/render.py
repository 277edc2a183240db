"""Vectorised NumPy ray casting of capsules and room planes (no OpenGL).

Camera frame: x right, y down, z forward (depth). A pixel's ray is d = ((u - cx) / fx, (v - cy) / fy, 1), so a
hit at ray parameter t has depth z = t. Capsules are intersected analytically (cylinder body + spherical caps),
each only over the pixels of its projected bounding box.
"""

import numpy as np

NEAR_M = 0.1


def pixel_rays(height, width, intrinsics):
    """Rays [H, W, 3] with z = 1."""
    fx, fy, cx, cy = intrinsics
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    return np.stack([(u + 0.5 - cx) / fx, (v + 0.5 - cy) / fy, np.ones_like(u)], axis=-1)


def intersect_capsule(rays, a, b, radius):
    """Depth of the first hit of each ray (z = 1 rays from the origin) with capsule a-b, inf where missed."""
    norm = np.linalg.norm(rays, axis=-1)
    rd = rays / norm[..., None]
    ba = b - a
    oa = -a
    baba = ba @ ba
    bard = rd @ ba
    baoa = oa @ ba
    rdoa = rd @ oa
    oaoa = oa @ oa
    t = np.full(rays.shape[:-1], np.inf)
    if baba > 1e-12:
        qa = baba - bard * bard
        qb = baba * rdoa - baoa * bard
        qc = baba * oaoa - baoa * baoa - radius * radius * baba
        disc = qb * qb - qa * qc
        with np.errstate(invalid="ignore", divide="ignore"):
            t_body = (-qb - np.sqrt(np.maximum(disc, 0))) / qa
        along = baoa + t_body * bard
        body_hit = (disc >= 0) & (qa > 1e-12) & (along > 0) & (along < baba) & (t_body > 0)
        t = np.where(body_hit, t_body, t)
    for centre in (a, b):  # spherical caps (also the whole sphere when a == b)
        oc = -centre
        half_b = rd @ oc
        c = oc @ oc - radius * radius
        disc = half_b * half_b - c
        t_cap = -half_b - np.sqrt(np.maximum(disc, 0))
        t = np.where((disc >= 0) & (t_cap > 0) & (t_cap < t), t_cap, t)
    return t * rd[..., 2]  # ray length -> depth


def capsule_pixel_box(a, b, radius, intrinsics, height, width):
    """(top, bottom, left, right) pixel bounds covering the capsule's projection, or None if not in view."""
    fx, fy, cx, cy = intrinsics
    z_min = min(a[2], b[2]) - radius
    if z_min < NEAR_M:
        return None
    xs = np.array([a[0], b[0]]) / np.array([a[2], b[2]])
    ys = np.array([a[1], b[1]]) / np.array([a[2], b[2]])
    # Off-axis, a sphere's silhouette is wider than r / z by up to 1 / cos^2 of the view angle.
    widening = 1.0 + float(np.max(xs ** 2) + np.max(ys ** 2))
    pad_x, pad_y = radius / z_min * fx * widening + 1, radius / z_min * fy * widening + 1
    left = int(np.floor(xs.min() * fx + cx - pad_x))
    right = int(np.ceil(xs.max() * fx + cx + pad_x)) + 1
    top = int(np.floor(ys.min() * fy + cy - pad_y))
    bottom = int(np.ceil(ys.max() * fy + cy + pad_y)) + 1
    left, top = max(left, 0), max(top, 0)
    right, bottom = min(right, width), min(bottom, height)
    if left >= right or top >= bottom:
        return None
    return top, bottom, left, right


def render_capsules(depth, labels, rays, capsules, label, intrinsics):
    """Draw capsules [K, 7] into `depth` / `labels` in place where nearer than what is there."""
    height, width = depth.shape
    for capsule in capsules:
        a, b, radius = capsule[:3], capsule[3:6], capsule[6]
        box = capsule_pixel_box(a, b, radius, intrinsics, height, width)
        if box is None:
            continue
        top, bottom, left, right = box
        hit = intersect_capsule(rays[top:bottom, left:right], a, b, radius)
        window = depth[top:bottom, left:right]
        nearer = hit < window
        window[nearer] = hit[nearer]
        labels[top:bottom, left:right][nearer] = label


def render_planes(rays, planes):
    """Depth and plane index of the nearest of several planes (normal n, offset c: n . p = c), inf if none."""
    depth = np.full(rays.shape[:-1], np.inf)
    index = np.zeros(rays.shape[:-1], np.int32)
    for i, (normal, offset) in enumerate(planes):
        facing = rays @ normal
        with np.errstate(divide="ignore", invalid="ignore"):
            t = offset / facing
        hit = (facing * offset > 0) & (t > 0) & (t < depth)
        depth = np.where(hit, t, depth)
        index = np.where(hit, i, index)
    return depth, index
