"""`ShakenCopies`: the joint refiner's training set, its mirror images made per batch."""

import numpy as np
import pytest

from pose_tl.data.people.skeleton import FLIP_INDEX, NUM_JOINTS
from pose_tl.decoding.refining import (REFINER_CROP_SIZE, REFINER_DEPTHS, REFINER_HEATMAPS, REFINER_STRIDE,
                                       REFINER_TRUNK_DEPTHS)
from pose_tl.training.array_batches import shuffled_batches
from pose_tl.training.refiner import gaussian_heatmaps, joint_depth_maps
from pose_tl.training.shaken_copies import ShakenCopies

HEATMAP_SIZE = (REFINER_CROP_SIZE[0] // REFINER_STRIDE, REFINER_CROP_SIZE[1] // REFINER_STRIDE)
FLIP = list(FLIP_INDEX)


def person(seed):
    """One person's (crop, heatmaps, joint depth maps, its cells, surface offsets, trunk offsets) as
    `refiner_examples` gives them."""
    rng = np.random.default_rng(seed)
    cells = np.stack([rng.uniform(1, HEATMAP_SIZE[1] - 1, NUM_JOINTS), rng.uniform(1, HEATMAP_SIZE[0] - 1, NUM_JOINTS)],
                     -1).astype(np.float32)
    surface, trunk = rng.uniform(0.0, 0.3, (2, NUM_JOINTS)).astype(np.float32)
    surface[3] = np.nan  # unknown: no target there
    crop = rng.uniform(size=(*REFINER_CROP_SIZE, 1)).astype(np.float32)
    depths = np.concatenate([joint_depth_maps(cells, surface, HEATMAP_SIZE),
                             joint_depth_maps(cells, trunk, HEATMAP_SIZE)], -1)
    return crop, gaussian_heatmaps(cells, np.ones(NUM_JOINTS, bool), HEATMAP_SIZE), depths, cells, surface, trunk


def copy_of(seeds):
    people = [person(seed) for seed in seeds]
    return tuple(np.stack([p[kind] for p in people]) for kind in range(3))


def test_mirrored_examples_are_the_targets_of_the_mirrored_person():
    examples = ShakenCopies([copy_of([1, 2]), copy_of([3, 4])], joint_depths=True)
    assert len(examples) == 8
    crops, targets = examples.gather(np.array([1, 2, 5, 6]))  # rows 1 and 2, then their mirror images
    for got, seed in ((2, 2), (3, 3)):
        crop, _, _, cells, surface, trunk = person(seed)
        mirrored = cells.copy()
        mirrored[:, 0] = HEATMAP_SIZE[1] - cells[:, 0]
        mirrored = mirrored[FLIP]
        np.testing.assert_array_equal(crops[got], crop[:, ::-1])
        np.testing.assert_allclose(targets[REFINER_HEATMAPS][got],
                                   gaussian_heatmaps(mirrored, np.ones(NUM_JOINTS, bool), HEATMAP_SIZE), atol=1e-6)
        np.testing.assert_allclose(targets[REFINER_DEPTHS][got],
                                   joint_depth_maps(mirrored, surface[FLIP], HEATMAP_SIZE), atol=1e-6)
        np.testing.assert_allclose(targets[REFINER_TRUNK_DEPTHS][got],
                                   joint_depth_maps(mirrored, trunk[FLIP], HEATMAP_SIZE), atol=1e-6)
    unmirrored = person(2)
    np.testing.assert_array_equal(crops[0], unmirrored[0])
    np.testing.assert_array_equal(targets[REFINER_HEATMAPS][0], unmirrored[1])
    np.testing.assert_array_equal(targets[REFINER_DEPTHS][0], unmirrored[2][..., :2 * NUM_JOINTS])
    np.testing.assert_array_equal(targets[REFINER_TRUNK_DEPTHS][0], unmirrored[2][..., 2 * NUM_JOINTS:])


def test_gathering_leaves_the_held_copies_as_they_were():
    copy = copy_of([1, 2])
    examples = ShakenCopies([copy], joint_depths=True)
    examples.gather(np.array([2, 3]))
    np.testing.assert_array_equal(examples.gather(np.array([0, 1]))[0], copy[0])


def test_heatmaps_alone_without_joint_depths():
    crops, heatmaps = ShakenCopies([copy_of([1])], joint_depths=False).gather(np.array([0, 1]))
    assert crops.shape == (2, *REFINER_CROP_SIZE, 1) and heatmaps.shape == (2, *HEATMAP_SIZE, NUM_JOINTS)
    np.testing.assert_array_equal(heatmaps[1], heatmaps[0][:, ::-1][..., FLIP])


def test_a_new_shake_replaces_the_oldest_copy():
    copies = [copy_of([seed, seed + 10]) for seed in (1, 2, 3)]
    examples = ShakenCopies(copies, joint_depths=True)
    newer = [copy_of([seed, seed + 10]) for seed in (4, 5, 6, 7)]
    for copy in newer:
        examples.replace_oldest(copy)
    held = [examples.gather(np.arange(2 * slot, 2 * slot + 2))[0] for slot in range(3)]
    for got, expected in zip(held, [newer[3], newer[1], newer[2]]):  # slot 0 twice, then slots 1 and 2
        np.testing.assert_array_equal(got, expected[0])
    with pytest.raises(ValueError, match="the 2 people of the first"):
        examples.replace_oldest(copy_of([1]))


def test_a_model_batch_of_them_fits_the_refiners_outputs():
    from pose_tl.models.refiner import build_joint_refiner
    from pose_tl.training.losses import ForegroundWeightedMSE, MaskedJointDepthL1

    examples = ShakenCopies([copy_of(range(5))], joint_depths=True)
    batches = shuffled_batches(examples.gather, len(examples), 4, np.random.default_rng(0))
    model = build_joint_refiner(0, base_filters=4)
    model.compile("adam", {REFINER_HEATMAPS: ForegroundWeightedMSE(20.0), REFINER_DEPTHS: MaskedJointDepthL1(),
                           REFINER_TRUNK_DEPTHS: MaskedJointDepthL1()})  # as `train_joint_refiner` does
    history = model.fit(batches, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0]) and int(batches.cardinality()) == 3


def test_facing_labels_are_held_and_kept_by_the_mirror_images():
    from pose_tl.decoding.refining import REFINER_FACING
    from pose_tl.training.shaken_copies import FACING_COLUMN

    def with_facing(copy, labels):
        columns = [*copy, *([None] * (FACING_COLUMN - len(copy))), np.array(labels, np.float32)]
        return tuple(columns)

    examples = ShakenCopies([with_facing(copy_of([1, 2]), [1, -1]), with_facing(copy_of([3, 4]), [0, 1])],
                            joint_depths=True, facing=True)
    _, targets = examples.gather(np.array([0, 1, 2, 3, 4, 6, 7]))
    np.testing.assert_array_equal(targets[REFINER_FACING][:, 0], [1, -1, 0, 1, 1, 0, 1])
    examples.replace_oldest(with_facing(copy_of([5, 6]), [0, 0]))
    _, targets = examples.gather(np.array([0, 1, 2]))
    np.testing.assert_array_equal(targets[REFINER_FACING][:, 0], [0, 0, 0])
    assert REFINER_FACING not in ShakenCopies([with_facing(copy_of([1]), [1])], joint_depths=True).gather(
        np.array([0]))[1]
