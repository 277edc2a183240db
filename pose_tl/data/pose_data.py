"""Pose training data: people frames -> joint-aware augmentation -> heatmap and PAF targets for every stage.

Each element is (depth, targets, loss weights): the weights are 0 where labels are unknown (people boxed without
joints), so the loss ignores those pixels rather than learning that a body there is background.
"""

from dataclasses import dataclass

import tensorflow as tf

from pose_tl.data.augment import add_depth_noise_and_shift, random_holes
from pose_tl.data.people.augment_people import crop_and_resize_people_frame, random_people_augment
from pose_tl.data.people.targets import joint_depth_targets, joint_heatmaps, known_label_mask, part_affinity_fields
from pose_tl.data.people_sources import open_people_split, people_examples, split_frame_count
from pose_tl.data.prefetching import prefetched
from pose_tl.models.pose_model import HEATMAPS, JOINT_DEPTH, stage_output_names


@dataclass
class PoseSplits:
    datasets: dict  # split -> batched tf.data of the task's training elements, or None when empty
    sizes: dict  # split -> number of frames


def people_frame_from_example(example):
    """A TFDS example of `pose_tl_synthetic_depth` -> the augmentation's frame dict (depth in metres)."""
    people = example["people"]
    return {"depth": tf.cast(example["depth_mm"], tf.float32)[..., None] / 1000.0,
            "joints_2d": people["joints_2d"], "joints_3d": people["joints_3d"],
            "visibility": tf.cast(people["visibility"], tf.int32), "boxes": people["box"],
            "pose_classes": tf.cast(people["pose_class"], tf.int32), "intrinsics": example["intrinsics"]}


def pose_targets(frame, *, output_size, stride, sigma, paf_width, stages, joint_depth=False):
    """(targets, loss weights), each a dict over the model's outputs: every stage has the same targets."""
    heatmaps = joint_heatmaps(frame["joints_2d"], frame["visibility"], output_size, stride, sigma)
    pafs = part_affinity_fields(frame["joints_2d"], frame["visibility"], output_size, stride, paf_width)
    mask = known_label_mask(frame["boxes"], frame["visibility"], output_size, stride)
    targets = {name: heatmaps if name.startswith(HEATMAPS) else pafs for name in stage_output_names(stages)}
    if joint_depth:
        targets[JOINT_DEPTH] = joint_depth_targets(frame["joints_2d"], frame["joints_3d"], frame["visibility"],
                                                   frame["depth"][..., 0], output_size, stride)
    return targets, {name: mask for name in targets}


def people_splits(data_config, *, seed, input_size, splits, for_training, frame_targets):
    """Batched datasets of `frame_targets(frame)` over the recipe's people frames for each split.

    Training frames get the joint-aware augmentation, depth noise and holes; others are resized only. `frame_targets`
    maps a prepared frame dict (see `pose_tl.data.people.augment_people`) to the elements the model trains on.
    """
    augment = data_config.augment
    datasets, sizes = {}, {}
    for split in splits:
        opened = open_people_split(data_config, seed, split)
        count = split_frame_count(opened, split)
        sizes[split] = count
        if not count:
            datasets[split] = None
            continue
        training = for_training and split == "train"

        def prepare(example, element_seed, training=training):
            frame = people_frame_from_example(example)
            if training and augment.enabled:
                seed_pair = tf.cast(element_seed % (2**31 - 1), tf.int32)
                frame = random_people_augment(frame, augment, input_size, seed_pair)
                depth = add_depth_noise_and_shift(frame["depth"], augment.depth_noise_m, 0.0, seed_pair + 7)
                depth = random_holes(depth, augment.hole_probability, augment.max_holes, augment.max_hole_fraction,
                                     seed_pair + 9)
                frame = {**frame, "depth": depth, "seed": seed_pair + 11}
            else:
                shape = tf.shape(frame["depth"])
                frame = crop_and_resize_people_frame(frame, 0, 0, shape[0], shape[1], input_size)
                frame = {**frame, "seed": tf.cast(element_seed % (2**31 - 1), tf.int32)}
            frame["depth"] = tf.ensure_shape(frame["depth"], (*input_size, 1))
            return frame_targets(frame)

        if not hasattr(opened, "info") and for_training:
            for _ in opened:  # read every file once now: a corrupt one fails here, named, not mid-epoch
                pass
        dataset = people_examples(opened, split)
        if training:
            dataset = dataset.shuffle(min(count, data_config.shuffle_buffer), seed=seed, reshuffle_each_iteration=True)
        dataset = tf.data.Dataset.zip((dataset, tf.data.Dataset.random(seed=seed).batch(2)))
        dataset = dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        datasets[split] = prefetched(dataset.batch(data_config.batch_size))
    return PoseSplits(datasets, sizes)


def pose_splits(data_config, pose_config, *, seed, input_size, splits=("train", "validation"), for_training=True):
    """Batched (depth [B, H, W, 1], targets, loss weights) datasets of the recipe's people for `splits`."""
    output_size = (input_size[0] // pose_config.output_stride, input_size[1] // pose_config.output_stride)

    def frame_targets(frame):
        targets, weights = pose_targets(frame, output_size=output_size, stride=pose_config.output_stride,
                                        sigma=pose_config.sigma, paf_width=pose_config.paf_width,
                                        stages=pose_config.stages, joint_depth=pose_config.joint_depth)
        return frame["depth"], targets, weights

    return people_splits(data_config, seed=seed, input_size=input_size, splits=splits, for_training=for_training,
                         frame_targets=frame_targets)
