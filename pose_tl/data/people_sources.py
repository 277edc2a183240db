"""Labelled people frames for the pose task from the recipe's source: synthetic (TFDS), COCO-style files or ITOP.

Training reads a split as a tf.data pipeline of the TFDS example structure (one code path for every source);
evaluation reads it as `PeopleFrame`s. File sources are checked when opened, so a bad file fails before training.
"""

import itertools
from dataclasses import replace

import numpy as np
import tensorflow as tf

from pose_tl.data.people.skeleton import NUM_JOINTS
from pose_tl.errors import DataError

EXAMPLE_SIGNATURE = {
    "depth_mm": tf.TensorSpec([None, None], tf.uint16),
    "intrinsics": tf.TensorSpec([4], tf.float32),
    "people": {"joints_2d": tf.TensorSpec([None, NUM_JOINTS, 2], tf.float32),
               "joints_3d": tf.TensorSpec([None, NUM_JOINTS, 3], tf.float32),
               "visibility": tf.TensorSpec([None, NUM_JOINTS], tf.int8),
               "box": tf.TensorSpec([None, 4], tf.float32),
               "pose_class": tf.TensorSpec([None], tf.int64)},
}


def open_people_split(data_config, seed, split):
    """The frames of one split: a TFDS builder for synthetic data, else a re-iterable of `PeopleFrame`s (or None)."""
    source = data_config.source
    if source == "synthetic":
        from pose_tl.data.sources import synthetic_builder

        return synthetic_builder(data_config, seed)
    if source == "coco":
        from pose_tl.data.people.coco_format import open_coco_dataset

        path = getattr(data_config.coco, split)
        return None if path is None else open_coco_dataset(path)
    if source == "itop":
        from pose_tl.data.people.itop_format import read_itop

        depth, labels = getattr(data_config.itop, f"{split}_depth"), getattr(data_config.itop, f"{split}_labels")
        return None if depth is None else read_itop(depth, labels, only_valid=data_config.itop.only_valid)
    raise DataError(f"data.source '{source}' holds no people frames; expected synthetic, coco or itop")


def split_frame_count(opened, split):
    if opened is None:
        return 0
    if hasattr(opened, "info"):  # a TFDS builder
        from pose_tl.data.sources import split_size

        return split_size(opened, split)
    return len(opened)


def people_examples(opened, split):
    """A tf.data of TFDS-structured examples (`depth_mm`, `intrinsics`, `people`) of an opened split."""
    if hasattr(opened, "info"):
        return opened.as_dataset(split=split, shuffle_files=False)
    dataset = tf.data.Dataset.from_generator(lambda: (example_of(frame) for frame in opened),
                                             output_signature=EXAMPLE_SIGNATURE)
    return dataset.apply(tf.data.experimental.assert_cardinality(len(opened)))  # Keras knows the epoch's length


def people_frames(data_config, seed, split, limit=None):
    """`PeopleFrame`s of a split (the first `limit`), intrinsics filled in where the files have none."""
    opened = open_people_split(data_config, seed, split)
    if not split_frame_count(opened, split):
        return []
    if hasattr(opened, "info"):
        from pose_tl.data.people.tfds_builder import frames_from_builder

        return list(frames_from_builder(opened, split, limit))
    return [with_intrinsics(frame) for frame in itertools.islice(opened, limit)]


def with_intrinsics(frame):
    """The frame with the default sensor intrinsics for its size where its own are unknown (NaN)."""
    if np.all(np.isfinite(frame.intrinsics)):
        return frame
    from pose_tl.export.pose_saved_model import default_intrinsics

    return replace(frame, intrinsics=default_intrinsics(*frame.depth_mm.shape).numpy().astype(np.float32))


def example_of(frame):
    """A `PeopleFrame` as the TFDS example structure; 2D joints a file leaves out become 0 and out of frame."""
    frame = with_intrinsics(frame)
    known_2d = np.all(np.isfinite(frame.joints_2d), axis=-1)
    return {"depth_mm": frame.depth_mm.astype(np.uint16), "intrinsics": frame.intrinsics.astype(np.float32),
            "people": {"joints_2d": np.nan_to_num(frame.joints_2d).astype(np.float32),
                       "joints_3d": np.nan_to_num(frame.joints_3d).astype(np.float32),
                       "visibility": np.where(known_2d, frame.visibility, 0).astype(np.int8),
                       "box": np.nan_to_num(frame.boxes).astype(np.float32),
                       "pose_class": frame.pose_classes.astype(np.int64)}}
