"""The folder-per-class layout: `root/<class name>/*.png|*.npy`, split deterministically into train/validation."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pose_tl.data.depth_io import DEPTH_SUFFIXES, read_valid_depth
from pose_tl.errors import DataError


@dataclass(frozen=True)
class LabelledFiles:
    paths: list
    labels: list
    class_names: list


def scan_class_folders(root, expected_classes=None):
    """Find class folders and depth files under `root`.

    Raises:
        DataError: no class folders, an empty class, or classes that disagree with `expected_classes`.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: dataset folder not found")
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if expected_classes is not None:
        if sorted(expected_classes) != found:
            raise DataError(f"{root}: data.classes {list(expected_classes)} disagree with the class folders "
                            f"found {found}")
        found = list(expected_classes)
    if len(found) < 2:
        raise DataError(f"{root}: expected at least 2 class folders holding {list(DEPTH_SUFFIXES)} files; "
                        f"found {found}")
    paths, labels = [], []
    for index, name in enumerate(found):
        files = sorted(p for p in (root / name).iterdir() if p.suffix.lower() in DEPTH_SUFFIXES)
        if not files:
            raise DataError(f"{root / name}: class folder holds no depth files ({list(DEPTH_SUFFIXES)})")
        paths += [str(p) for p in files]
        labels += [index] * len(files)
    return LabelledFiles(paths, labels, found)


def split_files(files, validation_fraction, seed):
    """Stratified, seeded split: each class keeps `validation_fraction` of its files (at least one) for validation."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(files.labels)
    train_idx, val_idx = [], []
    for label in range(len(files.class_names)):
        idx = np.flatnonzero(labels == label)
        rng.shuffle(idx)
        n_val = 0 if validation_fraction == 0 else max(1, int(round(validation_fraction * len(idx))))
        if n_val >= len(idx):
            raise DataError(f"class {files.class_names[label]!r} has {len(idx)} files: too few to keep "
                            f"{validation_fraction:.0%} for validation and still train")
        val_idx += idx[:n_val].tolist()
        train_idx += idx[n_val:].tolist()

    def pick(indices):
        indices = sorted(indices)
        return LabelledFiles([files.paths[i] for i in indices], [files.labels[i] for i in indices],
                             files.class_names)

    return pick(train_idx), pick(val_idx)


def verify_depth_files(paths, npy_units):
    """Decode every file once so a corrupt one is reported by name before training starts."""
    for path in paths:
        read_valid_depth(path, npy_units)
