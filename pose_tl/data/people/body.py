"""Bodies as tapered capsules over the skeleton: each limb is two chained capsules, thicker near the trunk."""

import numpy as np

from pose_tl.data.people.skeleton import JOINT

# (from joint, to joint, radius at start, radius at end) as fractions of body height, before girth.
SEGMENTS = (
    ("neck", "torso", 0.080, 0.085), ("torso", "hips_centre", 0.085, 0.082),
    ("right_shoulder", "left_shoulder", 0.045, 0.045), ("right_hip", "left_hip", 0.065, 0.065),
    ("neck", "head", 0.030, 0.030),
    ("right_shoulder", "right_elbow", 0.034, 0.028), ("right_elbow", "right_hand", 0.027, 0.022),
    ("left_shoulder", "left_elbow", 0.034, 0.028), ("left_elbow", "left_hand", 0.027, 0.022),
    ("right_hip", "right_knee", 0.055, 0.038), ("right_knee", "right_foot", 0.036, 0.026),
    ("left_hip", "left_knee", 0.055, 0.038), ("left_knee", "left_foot", 0.036, 0.026),
)
HEAD_RADIUS = 0.062
HAND_RADIUS = 0.026
GIRTH_EXEMPT = ("head",)


def _named_points(joints):
    points = {name: joints[index] for name, index in JOINT.items()}
    points["hips_centre"] = (joints[JOINT["right_hip"]] + joints[JOINT["left_hip"]]) / 2
    return points


def body_capsules(joints, height, girth):
    """Capsules [K, 7]: (ax, ay, az, bx, by, bz, radius) in the joints' frame, for one person.

    Tapered segments are split in two capsules with the radius interpolated; spheres are zero-length capsules.
    """
    points = _named_points(joints)
    capsules = []
    for start, end, r0, r1 in SEGMENTS:
        a, b = points[start], points[end]
        middle = (a + b) / 2
        capsules.append([*a, *middle, r0 * height * girth])
        capsules.append([*middle, *b, (r0 + r1) / 2 * height * girth if r0 != r1 else r1 * height * girth])
    head = points["head"]
    capsules.append([*head, *head, HEAD_RADIUS * height])
    for hand in ("right_hand", "left_hand"):
        capsules.append([*points[hand], *points[hand], HAND_RADIUS * height * girth])
    for foot in ("right_foot", "left_foot"):  # feet point forward along the floor
        toe = points[foot] + np.array([0.0, -0.02 * height, 0.0]) + _forward_of(joints) * 0.11 * height
        capsules.append([*points[foot], *toe, 0.024 * height * girth])
    return np.asarray(capsules, dtype=np.float64)


def joint_radii(height, girth):
    """Approximate body radius around each joint, for deciding whether a joint is visible from the camera."""
    radii = np.full(len(JOINT), 0.03 * height * girth)
    for name, r in (("head", HEAD_RADIUS * height), ("torso", 0.085 * height * girth),
                    ("neck", 0.05 * height * girth), ("right_hip", 0.065 * height * girth),
                    ("left_hip", 0.065 * height * girth), ("right_knee", 0.037 * height * girth),
                    ("left_knee", 0.037 * height * girth)):
        radii[JOINT[name]] = r
    return radii


def _forward_of(joints):
    """The body's forward direction (horizontal): up x (right hip -> left hip)."""
    across = joints[JOINT["left_hip"]] - joints[JOINT["right_hip"]]
    forward = np.cross(np.array([0.0, 1.0, 0.0]), across)
    norm = np.linalg.norm(forward)
    return forward / norm if norm > 1e-9 else np.array([0.0, 0.0, 1.0])
