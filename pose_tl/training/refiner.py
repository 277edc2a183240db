"""Training the joint refiner (`pose_tl.models.refiner`) on the labelled people of the training frames.

Each person's crop is cut as decoding cuts it (`pose_tl.decoding.refining`), around its labelled visible joints shaken
as the bottom-up head's joints differ from the labels (`facing.shaken`), `COPIES` times; the targets are a Gaussian
(`REFINER_HEATMAP_SIGMA` cells) at each in-frame joint, visible or hidden, in the crop's heatmap cells; joints out of
the frame or unlabelled have none. With joint depths, each in-frame joint with a 3D label is also given its z minus
the depth lifting reads at it (`lifting.depth_at_keypoints`, in the frame), on the cells within `DEPTH_RADIUS` of it,
unless that surface lies nearer than the crop shows (`refining.behind_occluder`: no depth behind it can be read from
the crop), and its z minus the person's trunk depth the crop is measured from (`facing.trunk_depth`).
Every crop is also shown mirrored, its left and right joints exchanged. Before each epoch after the first, the
oldest `RESHAKEN_COPIES` of the copies are shaken again: a refiner that sees the same few shaken crops 20 times learns
them (train 0.965 against test 0.938 of joints within 0.1 box heights on the accuracy benchmark's data, README).
"""

import numpy as np

from pose_tl.data.people.skeleton import OCCLUDED, VISIBLE
from pose_tl.training.facing import BATCH_FRAMES, MIN_LABEL_COSINE, MIN_VISIBLE_JOINTS, facing_cosine, padded, shaken

# Shaken copies of each person per epoch (each also mirrored). On the accuracy benchmark's HED model (test split),
# 2 copies and 15 epochs gave PCK@0.2 0.831 where 1 copy and 10 epochs gave 0.627, and 3 copies and 20 epochs 0.851
# (README, pose accuracy).
COPIES = 3
# Copies shaken again before each later epoch (~5-8 s per copy of 2500 frames on 2 cores, against ~80 s or more to
# train an epoch of three). At 1 copy and 16 epochs a new shake each epoch gave 0.769 of shaken test crops' joints
# within 0.1 box heights against 0.762 (README, pose accuracy).
RESHAKEN_COPIES = 1
BATCH_SIZE = 64
# Adam's peak rate, decayed to 0 over the epochs (cosine). On the accuracy benchmark's data (seed 11, 3 copies x 20
# epochs, the same script one after the other) 4e-3 against 2e-3: validation 0.936 / 0.899 against 0.931 / 0.895,
# test people's crops cut at shaken labels 0.843 against 0.825 of joints lifted within 10 cm
# (`benchmarks/refiner_errors.py`, README, pose accuracy).
LEARNING_RATE = 4e-3
FOREGROUND_WEIGHT = 20.0  # of the squared error near joints (`ForegroundWeightedMSE`)
ACCURACY_DISTANCE = 0.1  # the validation report counts joints refined within this share of the person's box height
DEPTH_RADIUS = 2.0  # heatmap cells around a joint where its depth is supervised (decoding reads it at the peak's cell)
# Of the refiner's loss, its depths behind the trunk (several times larger than those behind the surface). At 3 copies
# x 6 epochs on the accuracy benchmark's data, 1.0 cost its joints 2.4 points of validation accuracy (0.791 against
# 0.815 without trunk depths); 0.1 kept them (0.813) and its trunk depths as good (0.785 against 0.787 within 10 cm).
TRUNK_DEPTH_LOSS_WEIGHT = 0.1
FACING_LOSS_WEIGHT = 0.1  # of the refiner's loss, its facing answer's cross-entropy (README, pose: keeping twins apart)
DEPTH_TOLERANCE_M = 0.1  # the validation report counts joint depths within this of the label (mAP@10 cm's radius)


def refiner_examples(frames, rng=None):
    """(crops [M, h, w, 1] float32, heatmaps [M, h / 2, w / 2, J] float32, joint depths [M, h / 2, w / 2, 4J] float32
    (`joint_depth_maps` behind the surface, then behind the trunk), and for the report: joints [M, J, 2] frame pixels,
    in_frame [M, J] bool, boxes [M, 4], depth offsets [M, J]: z minus the depth read at the joint, then [M, J] z minus
    the trunk's depth, NaN where unknown; then facing labels [M]: 1 faces the camera, 0 away, -1 side-on or unknown,
    as the facing classifier's are, `training.facing.facing_cosine`) of the frames' people with `MIN_VISIBLE_JOINTS`
    visible; with a NumPy `rng`, cut around shaken joints."""
    from pose_tl.decoding.facing import person_boxes, trunk_depth
    from pose_tl.decoding.lifting import depth_at_keypoints
    from pose_tl.decoding.refining import (REFINER_CROP_SIZE, REFINER_STRIDE, behind_occluder, frame_to_heatmap,
                                           refiner_crops)
    from pose_tl.data.people.frame import same_size_batches

    heatmap_size = (REFINER_CROP_SIZE[0] // REFINER_STRIDE, REFINER_CROP_SIZE[1] // REFINER_STRIDE)
    columns = [[] for _ in range(9)]
    for batch in same_size_batches(frames, BATCH_FRAMES):
        people = max(frame.num_people for frame in batch)
        labels = padded([f.joints_2d for f in batch], people).astype(np.float32)
        visibility = padded([f.visibility for f in batch], people)
        z = padded([f.joints_3d for f in batch], people)[..., 2].astype(np.float32)
        keypoints, visible = np.nan_to_num(labels), visibility == VISIBLE
        cut_at, cut_found = shaken(keypoints, visible, rng) if rng is not None else (keypoints, visible)
        depth_m = np.stack([f.depth_mm for f in batch]).astype(np.float32) / 1000.0
        batch_crops = refiner_crops(depth_m, cut_at, cut_found).numpy()
        batch_boxes = person_boxes(cut_at, cut_found).numpy()
        cells = frame_to_heatmap(keypoints, batch_boxes[:, :, None], heatmap_size).numpy()  # [N, P, J, 2]
        has_target = (visibility >= OCCLUDED) & ~np.isnan(labels).any(-1)
        surface = depth_at_keypoints(depth_m, keypoints).numpy()  # [N, P, J]
        reference = trunk_depth(depth_m, cut_at, cut_found).numpy()[..., None]  # as the crop is measured
        with np.errstate(invalid="ignore"):
            known = has_target & np.isfinite(z) & (z > 0)
        occluded = np.asarray(behind_occluder(surface, reference))
        offsets = np.where(known & (surface > 0) & ~occluded, z - surface, np.nan)
        trunk_offsets = np.where(known & (reference > 0), z - reference, np.nan)  # every joint: more to learn from
        for i, frame in enumerate(batch):
            facing = facing_labels(frame.joints_3d)
            for person in range(frame.num_people):
                if visible[i, person].sum() >= MIN_VISIBLE_JOINTS:
                    example = (batch_crops[i, person],
                               gaussian_heatmaps(cells[i, person], has_target[i, person], heatmap_size),
                               np.concatenate([joint_depth_maps(cells[i, person], offsets[i, person], heatmap_size),
                                               joint_depth_maps(cells[i, person], trunk_offsets[i, person],
                                                                heatmap_size)], axis=-1),
                               keypoints[i, person], has_target[i, person], batch_boxes[i, person],
                               offsets[i, person], trunk_offsets[i, person], facing[person])
                    for column, value in zip(columns, example):
                        column.append(value)
    if not columns[0]:
        return None
    return tuple(np.stack(column) for column in columns)


def facing_labels(joints_3d):
    """[P] float32: 1 where each person (joints_3d [P, J, 3], camera frame) faces the camera, 0 where it faces away,
    -1 where it stands side-on (`facing.MIN_LABEL_COSINE`) or its trunk is unlabelled: no facing to learn."""
    cosine = facing_cosine(joints_3d)
    with np.errstate(invalid="ignore"):
        return np.where(np.abs(cosine) >= MIN_LABEL_COSINE, (cosine > 0).astype(np.float32), -1.0).astype(np.float32)


def gaussian_heatmaps(cells, has_target, heatmap_size):
    """[h, w, J] a Gaussian of peak 1 at each joint's heatmap coordinates `cells` [J, 2] (x, y) where `has_target`."""
    from pose_tl.decoding.refining import REFINER_HEATMAP_SIGMA

    height, width = heatmap_size
    x = np.arange(width, dtype=np.float32)[None, :, None] + 0.5
    y = np.arange(height, dtype=np.float32)[:, None, None] + 0.5
    squared = (x - cells[None, None, :, 0]) ** 2 + (y - cells[None, None, :, 1]) ** 2
    return (np.exp(-squared / (2.0 * REFINER_HEATMAP_SIGMA ** 2)) * has_target).astype(np.float32)


def joint_depth_maps(cells, offsets, heatmap_size):
    """[h, w, 2J]: each joint's depth offset (`offsets` [J], NaN: unknown) on the cells within `DEPTH_RADIUS` of its
    heatmap coordinates `cells` [J, 2] (x, y), then the weights (1 there), as `losses.MaskedJointDepthL1` reads."""
    height, width = heatmap_size
    x = np.arange(width, dtype=np.float32)[None, :, None] + 0.5
    y = np.arange(height, dtype=np.float32)[:, None, None] + 0.5
    near = (x - cells[None, None, :, 0]) ** 2 + (y - cells[None, None, :, 1]) ** 2 <= DEPTH_RADIUS ** 2
    weight = (near & np.isfinite(offsets)).astype(np.float32)
    return np.concatenate([weight * np.nan_to_num(offsets), weight], axis=-1).astype(np.float32)


def train_joint_refiner(train_frames, validation_frames, *, epochs, seed, base_filters=None, joint_depths=True,
                        facing=False, log=print):
    """A fitted joint refiner and its report ({"train_examples", "validation_people", "validation_accuracy": the share
    of in-frame validation joints refined within `ACCURACY_DISTANCE` of the box height, from crops cut at the labels,
    and with `joint_depths` "validation_depth_accuracy": the share of their joints with a 3D label whose depth the
    refiner places within `DEPTH_TOLERANCE_M`, at its own peak}), or (None, report) where no training person has
    enough visible joints. `base_filters`: the refiner's width (None: `pose_tl.models.refiner.BASE_FILTERS`);
    `joint_depths`: it also learns each joint's depth behind the surface; `facing` (with `joint_depths`): and which way
    the person faces (the report's "validation_facing_accuracy": the share of clearly facing validation people it
    answers right)."""
    import keras

    from pose_tl.decoding.refining import REFINER_DEPTHS, REFINER_FACING, REFINER_HEATMAPS, REFINER_TRUNK_DEPTHS
    from pose_tl.models.refiner import build_joint_refiner
    from pose_tl.training.array_batches import shuffled_batches
    from pose_tl.training.losses import ForegroundWeightedMSE, MaskedFacingCrossEntropy, MaskedJointDepthL1
    from pose_tl.training.shaken_copies import ShakenCopies

    rng = np.random.default_rng(seed)
    order_rng = np.random.default_rng([seed, 1])  # apart from `rng`: the shaken copies do not depend on the order
    copies = [refiner_examples(train_frames, rng) for _ in range(COPIES)]
    if copies[0] is None:
        log("joint refiner: no training person has enough visible joints; not trained")
        return None, {"train_examples": 0}
    facing = facing and joint_depths
    examples = ShakenCopies(copies, joint_depths, facing)
    del copies
    loss = ForegroundWeightedMSE(FOREGROUND_WEIGHT)
    if joint_depths:
        loss = {REFINER_HEATMAPS: loss, REFINER_DEPTHS: MaskedJointDepthL1(),
                REFINER_TRUNK_DEPTHS: MaskedJointDepthL1()}
    report = {"train_examples": len(examples)}  # shaken copies and their mirror images, an epoch
    keras.utils.set_random_seed(seed)
    model = build_joint_refiner(seed, **({"base_filters": base_filters} if base_filters else {}),
                                joint_depths=joint_depths, facing=facing)
    steps = epochs * int(np.ceil(report["train_examples"] / BATCH_SIZE))
    weights = ({REFINER_HEATMAPS: 1.0, REFINER_DEPTHS: 1.0, REFINER_TRUNK_DEPTHS: TRUNK_DEPTH_LOSS_WEIGHT}
               if joint_depths else None)
    if facing:
        loss[REFINER_FACING], weights[REFINER_FACING] = MaskedFacingCrossEntropy(), FACING_LOSS_WEIGHT
    model.compile(keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(LEARNING_RATE, steps)), loss,
                  loss_weights=weights)
    batches = shuffled_batches(examples.gather, len(examples), BATCH_SIZE, order_rng)
    for epoch in range(epochs):
        for _ in range(RESHAKEN_COPIES if epoch else 0):
            examples.replace_oldest(refiner_examples(train_frames, rng))
        model.fit(batches, initial_epoch=epoch, epochs=epoch + 1, verbose=0)
    del examples, batches
    validation = refiner_examples(validation_frames)
    report["validation_people"] = 0 if validation is None else int(len(validation[0]))
    if validation is not None:
        report.update(refiner_accuracy(model, validation[0], *validation[3:8]))
        if facing:
            report["validation_facing_accuracy"] = facing_accuracy(model, validation[0], validation[8])
    log(f"joint refiner: {report['train_examples']} training crops, {epochs} epochs; validation accuracy "
        + (f"{report['validation_accuracy']:.3f} on {report['validation_people']} people"
           + (f", joint depths within {DEPTH_TOLERANCE_M * 100:.0f} cm {report['validation_depth_accuracy']:.3f}"
              f" (behind the trunk {report.get('validation_trunk_depth_accuracy', float('nan')):.3f})"
              if "validation_depth_accuracy" in report else "")
           + (f", facing {report['validation_facing_accuracy']:.3f}"
              if report.get("validation_facing_accuracy") is not None else "")
           if validation is not None else "n/a (no validation people)"))
    return model, report


def refiner_accuracy(model, crops, joints, in_frame, boxes, offsets, trunk_offsets):
    """{"validation_accuracy": the share of in-frame joints the refiner places within `ACCURACY_DISTANCE` of the box
    height} and, for a refiner with joint depths, {"validation_depth_accuracy": the share of joints with a known depth
    behind the surface, `offsets` [M, J] (NaN: unknown), that it answers within `DEPTH_TOLERANCE_M` at its peak,
    "validation_trunk_depth_accuracy": the same of its depths behind the trunk, `trunk_offsets` [M, J]}."""
    from pose_tl.decoding.refining import crop_joints, refiner_maps

    maps = refiner_maps(model.predict(crops, batch_size=256, verbose=0))
    found, _, depths, trunk_depths = crop_joints(maps, boxes)  # as decoding places them (twins turned to its facing)
    found = found.numpy()
    error = np.linalg.norm(found - joints, axis=-1) / (boxes[:, 2] - boxes[:, 0])[:, None]
    report = {"validation_accuracy": float(np.mean(error[in_frame] <= ACCURACY_DISTANCE))}
    for name, answered, labels in (("validation_depth_accuracy", depths, offsets),
                                   ("validation_trunk_depth_accuracy", trunk_depths, trunk_offsets)):
        known = np.isfinite(labels)
        if answered is not None and known.any():
            report[name] = float(np.mean(np.abs(answered.numpy() - labels)[known] <= DEPTH_TOLERANCE_M))
    return report


def facing_accuracy(model, crops, labels):
    """The share of the people with a facing label (`labels` [M]: 1, 0; -1 none) whose facing the refiner answers
    right; None where none has one (JSON has no NaN)."""
    from pose_tl.decoding.refining import REFINER_FACING

    known = labels >= 0
    if not known.any():
        return None
    logits = model.predict(crops[known], batch_size=256, verbose=0)[REFINER_FACING][:, 0]
    return float(np.mean((logits > 0) == (labels[known] > 0.5)))
