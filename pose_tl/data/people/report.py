"""Seeing and summarising people frames: contact sheets and label statistics."""

from collections import Counter

import numpy as np
from PIL import Image

from pose_tl.drawing import colourise_depth, contact_sheet, draw_people
from pose_tl.data.people.skeleton import LIMBS, OCCLUDED, OUT_OF_FRAME, POSE_CLASSES, VISIBLE


def frame_tile(frame, scale=2):
    """One frame as a picture: colour-mapped depth (invalid pixels marked), skeletons, boxes and pose classes."""
    rgb = colourise_depth(frame.depth_mm.astype(np.float32) / 1000.0)
    image = Image.fromarray(rgb).resize((rgb.shape[1] * scale, rgb.shape[0] * scale), Image.NEAREST)
    labels = [POSE_CLASSES[c] if 0 <= c < len(POSE_CLASSES) else "person" for c in frame.pose_classes]
    return draw_people(image, frame.joints_2d, frame.visibility, frame.boxes, LIMBS, scale=scale, labels=labels)


def write_contact_sheet(frames, path, columns=4, scale=2, caption=None):
    tiles = [frame_tile(frame, scale) for frame in frames]
    if not tiles:
        raise ValueError("no frames to draw")
    return contact_sheet(tiles, columns, path, caption)


def people_statistics(frames):
    """Counts and shares over frames: people per frame, pose classes, joint visibility, valid depth."""
    people_per_frame = Counter()
    classes = Counter()
    visibility = Counter()
    valid_share, distances, frames_seen = [], [], 0
    for frame in frames:
        frames_seen += 1
        people_per_frame[frame.num_people] += 1
        classes.update(POSE_CLASSES[c] for c in frame.pose_classes if 0 <= c < len(POSE_CLASSES))
        visibility.update(frame.visibility.ravel().tolist())
        valid_share.append(float(np.mean(frame.depth_mm > 0)))
        distances += frame.joints_3d[:, :, 2].mean(axis=1).tolist()
    joints = sum(visibility.values()) or 1
    return {
        "frames": frames_seen,
        "people": int(sum(k * v for k, v in people_per_frame.items())),
        "people_per_frame": {str(k): v for k, v in sorted(people_per_frame.items())},
        "pose_classes": dict(sorted(classes.items())),
        "joint_visibility": {"visible": visibility[VISIBLE] / joints, "occluded": visibility[OCCLUDED] / joints,
                             "out_of_frame": visibility[OUT_OF_FRAME] / joints},
        "valid_depth_share": float(np.mean(valid_share)) if valid_share else 0.0,
        "person_distance_m": {"mean": float(np.mean(distances)), "min": float(np.min(distances)),
                              "max": float(np.max(distances))} if distances else None,
    }


def format_statistics(stats):
    lines = [f"frames: {stats['frames']}   people: {stats['people']}   "
             f"valid depth: {stats['valid_depth_share']:.1%}",
             "people per frame: " + ", ".join(f"{k}: {v}" for k, v in stats["people_per_frame"].items()),
             "pose classes: " + ", ".join(f"{k}: {v}" for k, v in stats["pose_classes"].items()),
             "joints: " + ", ".join(f"{k} {v:.1%}" for k, v in stats["joint_visibility"].items())]
    if stats["person_distance_m"]:
        d = stats["person_distance_m"]
        lines.append(f"person distance: mean {d['mean']:.2f} m, range {d['min']:.2f}-{d['max']:.2f} m")
    return "\n".join(lines) + "\n"
