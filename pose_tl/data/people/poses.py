"""Body proportions and poses: sampled joint directions -> 15 joints by forward kinematics.

Body frame: x = the person's right, y = up, z = the person's forward; the floor is y = 0. Every limb segment is
given by an absolute direction (elevation from hanging straight down, azimuth from sideways-out towards forward),
sampled per pose class within ranges that stay inside human joint limits.
"""

from dataclasses import dataclass

import numpy as np

from pose_tl.data.people.skeleton import JOINT, NUM_JOINTS, POSE_CLASSES

ANKLE_HEIGHT = 0.045  # fraction of body height between the floor and the "foot" (ankle) joint


@dataclass(frozen=True)
class BodyShape:
    height: float  # metres
    girth: float  # scales limb and torso radii


def sample_body(rng, height_range=(1.4, 2.0), girth_range=(0.8, 1.25)):
    return BodyShape(height=float(rng.uniform(*height_range)), girth=float(rng.uniform(*girth_range)))


def direction(elevation_deg, azimuth_deg, side):
    """Unit vector: elevation 0 hangs down, 90 is horizontal, 180 points up; azimuth 0 is sideways out (towards
    `side`, +1 right / -1 left), 90 forward, -90 backward."""
    e, a = np.deg2rad(elevation_deg), np.deg2rad(azimuth_deg)
    return np.array([side * np.sin(e) * np.cos(a), -np.cos(e), np.sin(e) * np.sin(a)])


def _u(rng, low, high):
    return float(rng.uniform(low, high))


def _arm(rng, upper, fore):
    """upper / fore: ((e_low, e_high), (a_low, a_high)) ranges for the upper arm and the forearm."""
    return (_u(rng, *upper[0]), _u(rng, *upper[1])), (_u(rng, *fore[0]), _u(rng, *fore[1]))


def _relaxed_arm(rng):
    return _arm(rng, ((3, 20), (-20, 60)), ((5, 35), (30, 90)))


def _standing_leg(rng):
    return (_u(rng, 0, 8), _u(rng, -90, 90)), (_u(rng, 0, 6), _u(rng, -90, 90))


def sample_pose(pose_class, rng):
    """Segment directions for one person: a dict with `right_arm`, `left_arm`, `right_leg`, `left_leg` (each two
    (elevation, azimuth) pairs: upper and lower segment) and `lean` (forward lean of the upper body, degrees)."""
    arms = [_relaxed_arm(rng), _relaxed_arm(rng)]
    legs = [_standing_leg(rng), _standing_leg(rng)]
    lean = _u(rng, -4, 8)
    active = int(rng.integers(2))  # the arm / leg that does the gesture
    if pose_class == "standing":
        pass
    elif pose_class == "t_pose":
        for i in range(2):
            e, a = _u(rng, 80, 100), _u(rng, -15, 15)
            arms[i] = ((e, a), (e + _u(rng, -10, 10), a + _u(rng, -15, 15)))
        legs = [((_u(rng, 2, 12), _u(rng, -30, 30)), (_u(rng, 2, 12), _u(rng, -30, 30))) for _ in range(2)]
    elif pose_class == "arms_up":
        arms = [_arm(rng, ((145, 175), (-20, 40)), ((150, 180), (0, 60))) for _ in range(2)]
    elif pose_class == "sitting":
        legs = [((_u(rng, 80, 95), _u(rng, 75, 105)), (_u(rng, 0, 20), _u(rng, 60, 120))) for _ in range(2)]
        arms = [_arm(rng, ((10, 35), (60, 100)), ((50, 85), (80, 100))) for _ in range(2)]
        lean = _u(rng, -5, 15)
    elif pose_class == "crouching":
        legs = [((_u(rng, 80, 105), _u(rng, 70, 110)), (_u(rng, 20, 45), _u(rng, -110, -70))) for _ in range(2)]
        arms = [_arm(rng, ((30, 70), (60, 100)), ((40, 90), (60, 100))) for _ in range(2)]
        lean = _u(rng, 20, 45)
    elif pose_class == "pointing":
        e, a = _u(rng, 75, 100), _u(rng, 60, 95)
        arms[active] = ((e, a), (e + _u(rng, -8, 8), a + _u(rng, -8, 8)))
    elif pose_class == "waving":
        arms[active] = _arm(rng, ((70, 110), (-10, 30)), ((140, 175), (0, 40)))
    elif pose_class == "walking":
        swing = _u(rng, 15, 30)
        legs[active] = ((swing, 90.0), (_u(rng, 0, 10), 90.0))
        legs[1 - active] = ((_u(rng, 10, 25), -90.0), (_u(rng, 20, 40), -90.0))
        arms[active] = ((_u(rng, 10, 25), -90.0), (_u(rng, 10, 30), -60.0))
        arms[1 - active] = ((_u(rng, 10, 25), 90.0), (_u(rng, 20, 45), 90.0))
    else:
        raise ValueError(f"`pose_class` must be one of {POSE_CLASSES}. Received: {pose_class!r}")
    return {"right_arm": arms[0], "left_arm": arms[1], "right_leg": legs[0], "left_leg": legs[1], "lean": lean}


def _rotate_x(points, degrees):
    """Rotate about the x axis; positive leans up-pointing vectors forward (+z)."""
    t = np.deg2rad(degrees)
    c, s = np.cos(t), np.sin(t)
    y, z = points[..., 1], points[..., 2]
    return np.stack([points[..., 0], y * c - z * s, y * s + z * c], axis=-1)


def skeleton_in_body_frame(shape, pose):
    """15 joints [J, 3] in the body frame, feet (ankles) at `ANKLE_HEIGHT * height` above the floor."""
    h = shape.height
    joints = np.zeros((NUM_JOINTS, 3))
    upper = {"torso": (0, 0.14 * h, 0), "neck": (0, 0.30 * h, 0), "head": (0, 0.40 * h, 0.01 * h),
             "right_shoulder": (0.105 * h, 0.28 * h, 0), "left_shoulder": (-0.105 * h, 0.28 * h, 0)}
    for name, position in upper.items():
        joints[JOINT[name]] = position
    for side_name, side in (("right", 1.0), ("left", -1.0)):
        (ue, ua), (fe, fa) = pose[f"{side_name}_arm"]
        shoulder = joints[JOINT[f"{side_name}_shoulder"]]
        elbow = shoulder + 0.17 * h * direction(ue, ua, side)
        joints[JOINT[f"{side_name}_elbow"]] = elbow
        joints[JOINT[f"{side_name}_hand"]] = elbow + 0.19 * h * direction(fe, fa, side)
    upper_body = [JOINT[n] for n in ("torso", "neck", "head", "right_shoulder", "left_shoulder", "right_elbow",
                                     "left_elbow", "right_hand", "left_hand")]
    joints[upper_body] = _rotate_x(joints[upper_body], pose["lean"])
    for side_name, side in (("right", 1.0), ("left", -1.0)):
        (te, ta), (se, sa) = pose[f"{side_name}_leg"]
        hip = np.array([side * 0.055 * h, 0.0, 0.0])
        knee = hip + 0.245 * h * direction(te, ta, side)
        joints[JOINT[f"{side_name}_hip"]] = hip
        joints[JOINT[f"{side_name}_knee"]] = knee
        joints[JOINT[f"{side_name}_foot"]] = knee + 0.25 * h * direction(se, sa, side)
    lowest_foot = min(joints[JOINT["right_foot"], 1], joints[JOINT["left_foot"], 1])
    joints[:, 1] += ANKLE_HEIGHT * h - lowest_foot
    return joints
