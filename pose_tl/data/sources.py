"""Which labelled files a recipe's `data` section means: a user's folder, or the built-in shapes written to a cache."""

import os
from pathlib import Path

from pose_tl.data.folder_dataset import scan_class_folders, split_files, verify_depth_files
from pose_tl.data.shapes import RENDERER_VERSION, SHAPE_CLASSES, write_shapes_dataset

CACHE_ENV = "POSE_TL_CACHE"


def cache_dir():
    return Path(os.environ.get(CACHE_ENV, Path.home() / ".cache" / "pose_tl"))


def shapes_root(data_config, seed):
    if data_config.root is not None:
        return Path(data_config.root)
    shapes = data_config.shapes
    height, width = shapes.image_size
    return cache_dir() / f"shapes-v{RENDERER_VERSION}-{shapes.samples_per_class}x{height}x{width}-seed{seed}"


def labelled_files(data_config, seed):
    """All labelled files of the recipe's data source (the built-in source is generated on first use)."""
    root = Path(data_config.root) if data_config.root else None
    if data_config.source == "shapes":
        shapes = data_config.shapes
        root = write_shapes_dataset(shapes_root(data_config, seed), samples_per_class=shapes.samples_per_class,
                                    image_size=shapes.image_size, seed=seed)
    return scan_class_folders(root, data_config.classes)


def train_validation_files(data_config, seed, verify=True):
    """The seeded, stratified train / validation split; every file is decoded once first if `verify`."""
    files = labelled_files(data_config, seed)
    if verify:
        verify_depth_files(files.paths, data_config.npy_units)
    return split_files(files, data_config.validation_fraction, seed)


def synthetic_builder(data_config, seed):
    """The prepared TFDS builder of the recipe's synthetic settings (rendered on first use, then reused)."""
    from pose_tl.data.people.tfds_builder import engine_settings, prepare_synthetic

    synthetic = data_config.synthetic
    settings = engine_settings(synthetic)
    frames = {"train": synthetic.train_frames, "validation": synthetic.validation_frames,
              "test": synthetic.test_frames}
    data_dir = synthetic.data_dir or cache_dir() / "tfds"
    return prepare_synthetic(settings, seed, frames, data_dir)


def class_names_for(data_config):
    """Class names without reading any data where the recipe says them, or the source fixes them."""
    if data_config.classes is not None:
        return list(data_config.classes)
    if data_config.source == "shapes":
        return list(SHAPE_CLASSES)
    if data_config.source == "synthetic":
        return list(data_config.synthetic.pose_classes)
    return scan_class_folders(data_config.root).class_names


def split_size(builder, split):
    """Frames in a prepared split of a TFDS builder, 0 if the split was not generated."""
    return builder.info.splits[split].num_examples if split in builder.info.splits else 0
