"""Training the joint refiner (`pose_tl.models.refiner`) on the labelled people of the training frames.

Each person's crop is cut as decoding cuts it (`pose_tl.decoding.refining`), around its labelled visible joints shaken
as the bottom-up head's joints differ from the labels (`facing.shaken`), `COPIES` times; the targets are a Gaussian
(`REFINER_HEATMAP_SIGMA` cells) at each in-frame joint, visible or hidden, in the crop's heatmap cells; joints out of
the frame or unlabelled have none. Every crop is also shown mirrored, its left and right joints exchanged.
"""

import numpy as np

from pose_tl.data.people.skeleton import FLIP_INDEX, OCCLUDED, VISIBLE
from pose_tl.training.facing import BATCH_FRAMES, MIN_VISIBLE_JOINTS, padded, shaken

# Shaken copies of each person per epoch (each also mirrored). On the accuracy benchmark's HED model (test split),
# 2 copies and 15 epochs gave PCK@0.2 0.831 where 1 copy and 10 epochs gave 0.627, and 3 copies and 20 epochs 0.851
# (README, pose accuracy).
COPIES = 3
BATCH_SIZE = 64
LEARNING_RATE = 2e-3
FOREGROUND_WEIGHT = 20.0  # of the squared error near joints (`ForegroundWeightedMSE`)
ACCURACY_DISTANCE = 0.1  # the validation report counts joints refined within this share of the person's box height


def refiner_examples(frames, rng=None):
    """(crops [M, h, w, 1] float32, heatmaps [M, h / 2, w / 2, J] float32, and for the report: joints [M, J, 2]
    frame pixels, in_frame [M, J] bool, boxes [M, 4]) of the frames' people with `MIN_VISIBLE_JOINTS` visible; with
    a NumPy `rng`, cut around shaken joints."""
    from pose_tl.decoding.facing import person_boxes
    from pose_tl.decoding.refining import REFINER_CROP_SIZE, REFINER_STRIDE, frame_to_heatmap, refiner_crops
    from pose_tl.run_pose import same_size_batches

    heatmap_size = (REFINER_CROP_SIZE[0] // REFINER_STRIDE, REFINER_CROP_SIZE[1] // REFINER_STRIDE)
    crops, targets, joints, in_frame, boxes = [], [], [], [], []
    for batch in same_size_batches(frames, BATCH_FRAMES):
        people = max(frame.num_people for frame in batch)
        labels = padded([f.joints_2d for f in batch], people).astype(np.float32)
        visibility = padded([f.visibility for f in batch], people)
        keypoints, visible = np.nan_to_num(labels), visibility == VISIBLE
        cut_at, cut_found = shaken(keypoints, visible, rng) if rng is not None else (keypoints, visible)
        depth_m = np.stack([f.depth_mm for f in batch]).astype(np.float32) / 1000.0
        batch_crops = refiner_crops(depth_m, cut_at, cut_found).numpy()
        batch_boxes = person_boxes(cut_at, cut_found).numpy()
        cells = frame_to_heatmap(keypoints, batch_boxes[:, :, None], heatmap_size).numpy()  # [N, P, J, 2]
        has_target = (visibility >= OCCLUDED) & ~np.isnan(labels).any(-1)
        for i, frame in enumerate(batch):
            for person in range(frame.num_people):
                if visible[i, person].sum() >= MIN_VISIBLE_JOINTS:
                    crops.append(batch_crops[i, person])
                    targets.append(gaussian_heatmaps(cells[i, person], has_target[i, person], heatmap_size))
                    joints.append(keypoints[i, person])
                    in_frame.append(has_target[i, person])
                    boxes.append(batch_boxes[i, person])
    if not crops:
        return None
    return tuple(np.stack(values) for values in (crops, targets, joints, in_frame, boxes))


def gaussian_heatmaps(cells, has_target, heatmap_size):
    """[h, w, J] a Gaussian of peak 1 at each joint's heatmap coordinates `cells` [J, 2] (x, y) where `has_target`."""
    from pose_tl.decoding.refining import REFINER_HEATMAP_SIGMA

    height, width = heatmap_size
    x = np.arange(width, dtype=np.float32)[None, :, None] + 0.5
    y = np.arange(height, dtype=np.float32)[:, None, None] + 0.5
    squared = (x - cells[None, None, :, 0]) ** 2 + (y - cells[None, None, :, 1]) ** 2
    return (np.exp(-squared / (2.0 * REFINER_HEATMAP_SIGMA ** 2)) * has_target).astype(np.float32)


def train_joint_refiner(train_frames, validation_frames, *, epochs, seed, base_filters=None, log=print):
    """A fitted joint refiner and its report ({"train_examples", "validation_people", "validation_accuracy": the share
    of in-frame validation joints refined within `ACCURACY_DISTANCE` of the box height, from crops cut at the labels}),
    or (None, report) where no training person has enough visible joints. `base_filters`: the refiner's width (None:
    `pose_tl.models.refiner.BASE_FILTERS`)."""
    import keras

    from pose_tl.models.refiner import build_joint_refiner
    from pose_tl.training.losses import ForegroundWeightedMSE

    rng = np.random.default_rng(seed)
    examples = [refiner_examples(train_frames, rng) for _ in range(COPIES)]
    if examples[0] is None:
        log("joint refiner: no training person has enough visible joints; not trained")
        return None, {"train_examples": 0}
    crops = np.concatenate([e[0] for e in examples])
    targets = np.concatenate([e[1] for e in examples])
    crops = np.concatenate([crops, crops[:, :, ::-1]])
    targets = np.concatenate([targets, targets[:, :, ::-1][..., list(FLIP_INDEX)]])
    report = {"train_examples": int(len(crops))}  # shaken copies of each person, and their mirror images
    keras.utils.set_random_seed(seed)
    model = build_joint_refiner(seed, **({"base_filters": base_filters} if base_filters else {}))
    steps = epochs * int(np.ceil(len(crops) / BATCH_SIZE))
    model.compile(keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(LEARNING_RATE, steps)),
                  ForegroundWeightedMSE(FOREGROUND_WEIGHT))
    model.fit(crops, targets, epochs=epochs, batch_size=BATCH_SIZE, shuffle=True, verbose=0)
    validation = refiner_examples(validation_frames)
    report["validation_people"] = 0 if validation is None else int(len(validation[0]))
    if validation is not None:
        report["validation_accuracy"] = refiner_accuracy(model, *validation[:1], *validation[2:])
    log(f"joint refiner: {report['train_examples']} training crops, {epochs} epochs; validation accuracy "
        + (f"{report['validation_accuracy']:.3f} on {report['validation_people']} people"
           if validation is not None else "n/a (no validation people)"))
    return model, report


def refiner_accuracy(model, crops, joints, in_frame, boxes):
    """The share of in-frame joints the refiner places within `ACCURACY_DISTANCE` of the box height."""
    from pose_tl.decoding.refining import heatmap_to_frame
    from pose_tl.decoding.peaks import find_peaks

    heatmaps = model.predict(crops, batch_size=256, verbose=0)
    xy, _ = find_peaks(heatmaps, threshold=-np.inf, max_peaks=1)
    found = heatmap_to_frame(xy[:, :, 0], boxes[:, None], heatmaps.shape[1:3]).numpy()
    error = np.linalg.norm(found - joints, axis=-1) / (boxes[:, 2] - boxes[:, 0])[:, None]
    return float(np.mean(error[in_frame] <= ACCURACY_DISTANCE))
