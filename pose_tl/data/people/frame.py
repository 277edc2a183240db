"""One labelled depth frame, the unit every people source produces and every loader returns."""

from dataclasses import dataclass

import numpy as np


@dataclass
class PeopleFrame:
    """Depth plus per-person labels; P people, J = 15 ITOP joints.

    Attributes:
        depth_mm: uint16 [H, W], millimetres, 0 = no reading.
        instance_mask: uint8 [H, W], 0 = background, k = person k - 1 (the person's index + 1).
        intrinsics: float32 [4], (fx, fy, cx, cy) in pixels.
        joints_2d: float32 [P, J, 2], (x, y) pixels (may lie outside the image).
        joints_3d: float32 [P, J, 3], camera frame metres: x right, y down, z forward.
        visibility: int8 [P, J], 0 out of frame, 1 occluded, 2 visible.
        boxes: float32 [P, 4], (x, y, width, height) pixels of the visible person (COCO convention).
        pose_classes: int32 [P], index into `skeleton.POSE_CLASSES` (-1 if unknown).

    Readers of real formats put NaN where a file lacks a value (intrinsics, 3D joints, 2D joints that COCO leaves
    out); the synthetic engine never does.
    """

    depth_mm: np.ndarray
    instance_mask: np.ndarray
    intrinsics: np.ndarray
    joints_2d: np.ndarray
    joints_3d: np.ndarray
    visibility: np.ndarray
    boxes: np.ndarray
    pose_classes: np.ndarray

    @property
    def num_people(self):
        return int(self.joints_2d.shape[0])

    @property
    def image_size(self):
        """(height, width)."""
        return tuple(self.depth_mm.shape)


def same_size_batches(frames, size):
    """Lists of up to `size` consecutive `frames` of one depth size: what stacks into one batch (sources such as
    COCO-style files mix sizes)."""
    batch = []
    for frame in frames:
        if batch and (len(batch) == size or frame.depth_mm.shape != batch[0].depth_mm.shape):
            yield batch
            batch = []
        batch.append(frame)
    if batch:
        yield batch
