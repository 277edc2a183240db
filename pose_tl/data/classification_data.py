"""The splits a classification run trains and evaluates on, whatever the recipe's data source."""

from dataclasses import dataclass

from pose_tl.data.pipeline import batch_classification_frames, make_classification_dataset
from pose_tl.data.sources import split_size, synthetic_builder, train_validation_files
from pose_tl.errors import DataError


@dataclass
class ClassificationSplits:
    class_names: list
    datasets: dict  # split name -> batched tf.data, or None when the split is empty
    sizes: dict  # split name -> number of frames


def classification_splits(data_config, *, seed, input_size, splits=("train", "validation"), for_training=True,
                          verify=True):
    """Batched datasets for `splits`; with `for_training`, "train" is shuffled and augmented, the others never.

    `verify=False` skips decoding every file up front, for a second view of files already verified.
    """
    if data_config.source == "synthetic":
        return _synthetic_splits(data_config, seed, input_size, splits, for_training)
    train_files, val_files = train_validation_files(data_config, seed, verify=verify)
    files = {"train": train_files, "validation": val_files}
    if "test" in splits:
        raise DataError(f"data.source {data_config.source!r} has train and validation splits only; no test split")
    datasets, sizes = {}, {}
    for split in splits:
        sizes[split] = len(files[split].paths)
        datasets[split] = make_classification_dataset(files[split], data_config, input_size=input_size,
                                                      training=for_training and split == "train",
                                                      seed=seed) if sizes[split] else None
    return ClassificationSplits(train_files.class_names, datasets, sizes)


def _synthetic_splits(data_config, seed, input_size, splits, for_training):
    import tensorflow as tf

    from pose_tl.data.people.skeleton import POSE_CLASSES

    builder = synthetic_builder(data_config, seed)
    class_names = list(data_config.synthetic.pose_classes)
    # engine pose-class index -> index among the recipe's classes
    to_label = tf.constant([class_names.index(c) if c in class_names else -1 for c in POSE_CLASSES], tf.int32)
    datasets, sizes = {}, {}
    for split in splits:
        count = split_size(builder, split)
        sizes[split] = count
        if not count:
            datasets[split] = None
            continue
        # A person can fall wholly outside the frame; such frames have no label to learn from.
        labelled = builder.as_dataset(split=split, shuffle_files=False).filter(
            lambda ex: tf.shape(ex["people"]["pose_class"])[0] > 0)
        frames = labelled.map(
            lambda ex: (tf.cast(ex["depth_mm"], tf.float32)[..., None] / 1000.0,
                        tf.gather(to_label, tf.cast(ex["people"]["pose_class"][0], tf.int32))),
            num_parallel_calls=tf.data.AUTOTUNE)
        datasets[split] = batch_classification_frames(frames, data_config, input_size=input_size,
                                                      training=for_training and split == "train", seed=seed,
                                                      num_frames=count)
    return ClassificationSplits(class_names, datasets, sizes)
