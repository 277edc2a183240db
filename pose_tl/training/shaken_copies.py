"""The joint refiner's training set: shaken copies of every person's crop and targets, each also seen mirrored.

The copies are held in place, one array per kind, and a copy shaken again overwrites the oldest; mirror images are
made per batch. Until this module the set was rebuilt before every epoch, the copies concatenated and their mirror
images stored beside them: ~10 s an epoch for the demo's 11,022 crops (~1.8 GB with their target maps) on a 2-core AMD
EPYC, as long as ~30 training steps of the 32-filter refiner (README, *Benchmarks, pose*).
"""

import numpy as np

from pose_tl.data.people.skeleton import FLIP_INDEX

FACING_COLUMN = 8  # of a `training.refiner.refiner_examples` copy: each person's facing label


def mirrored_joint_depth_maps(maps):
    """Joint depth maps [M, h, w, kJ] of the mirrored crops: a mirror exchanges left and right, keeps depths."""
    joints = len(FLIP_INDEX)
    order = [index + joints * block for block in range(maps.shape[-1] // joints) for index in FLIP_INDEX]
    return maps[:, :, ::-1][..., order]


class ShakenCopies:
    """Copies from `refiner_examples` (crops, heatmaps, joint depth maps, ..., facing labels) of the same people, as
    the examples `shuffled_batches` reads: example i < `len / 2` is row i of the copies one after another, example
    `len / 2 + i` its mirror image."""

    def __init__(self, copies, joint_depths, facing=False):
        """`joint_depths`: the targets are a dict of the heatmaps and both joint depth maps by output name (the
        refiner's), else the heatmaps alone; `facing` (with `joint_depths`): and the facing labels [B, 1]."""
        self.people = len(copies[0][0])
        self.joint_depths, self.facing = joint_depths, facing and joint_depths
        rows = len(copies) * self.people
        # crops, heatmaps, depths, facing labels
        self.arrays = [np.empty((rows, *kind.shape[1:]), np.float32) for kind in self.kinds(copies[0])]
        self.oldest = 0
        for slot, copy in enumerate(copies):
            self.write(slot, copy)

    def __len__(self):
        return 2 * len(self.arrays[0])

    def kinds(self, copy):
        """The arrays of a `refiner_examples` copy this set holds."""
        return [*copy[:3], copy[FACING_COLUMN]] if self.facing else copy[:3] if self.joint_depths else copy[:2]

    def write(self, slot, copy):
        """Copy number `slot` becomes `copy` (the same people, so the same count)."""
        if len(copy[0]) != self.people:
            raise ValueError(f"a copy must hold the {self.people} people of the first. Received: {len(copy[0])}")
        for array, kind in zip(self.arrays, self.kinds(copy)):
            array[slot * self.people:(slot + 1) * self.people] = kind

    def replace_oldest(self, copy):
        """A new shake of the people takes the place of the copy held longest."""
        self.write(self.oldest, copy)
        self.oldest = (self.oldest + 1) % (len(self.arrays[0]) // self.people)

    def gather(self, index):
        """(crops [B, h, w, 1], targets) of the examples at `index` (int [B])."""
        from pose_tl.decoding.refining import REFINER_DEPTHS, REFINER_FACING, REFINER_HEATMAPS, REFINER_TRUNK_DEPTHS

        rows = len(self.arrays[0])
        mirrored = index >= rows
        crops, heatmaps, *depths = [array[index % rows] for array in self.arrays]
        facing = depths.pop() if self.facing else None  # a mirror image faces the camera as the person does
        crops[mirrored] = crops[mirrored][:, :, ::-1]
        heatmaps[mirrored] = heatmaps[mirrored][:, :, ::-1][..., list(FLIP_INDEX)]
        if not self.joint_depths:
            return crops, heatmaps
        depths = depths[0]
        depths[mirrored] = mirrored_joint_depth_maps(depths[mirrored])
        half = depths.shape[-1] // 2  # behind the surface, then behind the trunk
        targets = {REFINER_HEATMAPS: heatmaps, REFINER_DEPTHS: depths[..., :half],
                   REFINER_TRUNK_DEPTHS: depths[..., half:]}
        if facing is not None:
            targets[REFINER_FACING] = facing[:, None]
        return crops, targets
