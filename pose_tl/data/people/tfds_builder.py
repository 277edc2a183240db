"""`pose_tl_synthetic_depth`: the synthetic people engine as a versioned TensorFlow Datasets builder.

Generated locally (no download) into a TFDS data_dir, with train / validation / test splits rendered from
disjoint random streams of one seed. Use it like any TFDS dataset:

    import pose_tl.data.people.tfds_builder  # registers the builder
    builder = tfds.builder("pose_tl_synthetic_depth", config="160x120", data_dir=...)
    builder.download_and_prepare()
    frames = builder.as_dataset(split="train")
"""

import contextlib
import dataclasses
import hashlib
import json
import multiprocessing
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import tensorflow_datasets as tfds

from pose_tl.config.schema import SyntheticConfig
from pose_tl.data.people.engine import ENGINE_SETTINGS, ENGINE_VERSION, render_people_frame
from pose_tl.data.people.skeleton import JOINT_NAMES, NUM_JOINTS, POSE_CLASSES

SPLIT_STREAMS = {"train": 0, "validation": 1, "test": 2}
PARALLEL_FROM = 256  # frames; fewer are rendered in-process


def engine_settings(synthetic_config, **changes):
    """The renderer's settings: the `ENGINE_SETTINGS` fields of a `SyntheticConfig` (lists as tuples), `changes`
    applied."""
    settings = {name: getattr(synthetic_config, name) for name in ENGINE_SETTINGS}
    settings = {name: tuple(value) if isinstance(value, (list, tuple)) else value for name, value in settings.items()}
    return SimpleNamespace(**{**settings, **changes})


def default_settings(**changes):
    """Engine settings with the recipe defaults."""
    return engine_settings(SyntheticConfig(), **changes)


def settings_key(settings, seed, frames):
    """A short, stable name for one set of engine settings, seed and split sizes."""
    payload = json.dumps({"settings": {k: list(v) if isinstance(v, tuple) else v for k, v in vars(settings).items()},
                          "seed": seed, "frames": frames, "engine": ENGINE_VERSION}, sort_keys=True, default=list)
    return hashlib.sha1(payload.encode()).hexdigest()[:10]


@dataclasses.dataclass(eq=False)
class SyntheticDepthConfig(tfds.core.BuilderConfig):
    settings: SimpleNamespace = None
    seed: int = 0
    frames: dict = None  # split name -> number of frames


def make_config(settings, seed, frames, name=None):
    frames = {split: int(n) for split, n in frames.items() if n > 0}
    return SyntheticDepthConfig(name=name or f"custom-{settings_key(settings, seed, frames)}",
                                description=f"seed {seed}, {frames}, settings {vars(settings)}",
                                settings=settings, seed=seed, frames=frames)


STANDARD_FRAMES = {"train": 2000, "validation": 200, "test": 200}


class PoseTlSyntheticDepth(tfds.core.GeneratorBasedBuilder):
    """Depth frames of 0..N articulated people in a room with ITOP-style 15-joint 2D/3D labels."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "15 ITOP joints, 8 pose classes, Kinect v2 optics, Kinect-like sensor model."}
    BUILDER_CONFIGS = [
        make_config(default_settings(), 0, STANDARD_FRAMES, name="160x120"),
        make_config(default_settings(image_size=(240, 320)), 0, STANDARD_FRAMES, name="320x240"),
        make_config(default_settings(noise="clean"), 0, STANDARD_FRAMES, name="160x120_clean"),
        make_config(default_settings(people=(1, 1)), 0, STANDARD_FRAMES, name="160x120_single"),
    ]

    def _info(self):
        height, width = self.builder_config.settings.image_size
        zlib = tfds.features.Encoding.ZLIB
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "depth_mm": tfds.features.Tensor(shape=(height, width), dtype=np.uint16, encoding=zlib),
                "instance_mask": tfds.features.Tensor(shape=(height, width), dtype=np.uint8, encoding=zlib),
                "intrinsics": tfds.features.Tensor(shape=(4,), dtype=np.float32),
                "people": tfds.features.Sequence({
                    "joints_2d": tfds.features.Tensor(shape=(NUM_JOINTS, 2), dtype=np.float32),
                    "joints_3d": tfds.features.Tensor(shape=(NUM_JOINTS, 3), dtype=np.float32),
                    "visibility": tfds.features.Tensor(shape=(NUM_JOINTS,), dtype=np.int8),
                    "box": tfds.features.Tensor(shape=(4,), dtype=np.float32),
                    "pose_class": tfds.features.ClassLabel(names=POSE_CLASSES),
                }),
                "frame_index": np.int64,
            }),
            homepage="https://github.com/pose-tl/pose_tl",
            description="Synthetic depth people; joints in order " + ", ".join(JOINT_NAMES),
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # everything is rendered locally
        config = self.builder_config
        return {split: self._generate_examples(split, count) for split, count in config.frames.items()}

    def _generate_examples(self, split, count):
        config = self.builder_config
        jobs = [(config.seed, index, config.settings, SPLIT_STREAMS[split]) for index in range(count)]
        if count < PARALLEL_FROM:
            frames = map(_render_example, jobs)
            yield from frames
            return
        with multiprocessing.get_context("spawn").Pool(max(1, min(4, multiprocessing.cpu_count()))) as pool:
            yield from pool.imap(_render_example, jobs, chunksize=32)


def _render_example(job):
    seed, index, settings, stream = job
    frame = render_people_frame(seed, index, settings, stream=stream)
    return index, {
        "depth_mm": frame.depth_mm, "instance_mask": frame.instance_mask, "intrinsics": frame.intrinsics,
        "people": {"joints_2d": frame.joints_2d, "joints_3d": frame.joints_3d, "visibility": frame.visibility,
                   "box": frame.boxes, "pose_class": frame.pose_classes.astype(np.int64)},
        "frame_index": index,
    }


def prepare_synthetic(settings, seed, frames, data_dir):
    """Generate (once) and return the builder for these settings; later calls reuse the prepared files.

    Processes preparing the same dataset at once (two runs started together) take turns on a lock file: without
    it, the second one's final rename meets the first one's folder and fails.
    """
    config = make_config(settings, seed, frames)
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    with _exclusive(Path(data_dir) / f".{PoseTlSyntheticDepth.name}-{config.name}.lock"):
        builder = PoseTlSyntheticDepth(config=config, data_dir=str(data_dir))  # built under the lock: sees the files
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(try_download_gcs=False))
    return builder


@contextlib.contextmanager
def _exclusive(lock_path):
    """Hold an exclusive advisory lock on `lock_path` (no-op where fcntl is missing, i.e. Windows)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def frames_from_builder(builder, split, limit=None):
    """Iterate a prepared split as `PeopleFrame`s (NumPy), in frame order."""
    from pose_tl.data.people.frame import PeopleFrame

    dataset = builder.as_dataset(split=split, shuffle_files=False)
    if limit is not None:
        dataset = dataset.take(limit)
    for example in tfds.as_numpy(dataset):
        people = example["people"]
        yield PeopleFrame(depth_mm=example["depth_mm"], instance_mask=example["instance_mask"],
                          intrinsics=example["intrinsics"], joints_2d=people["joints_2d"],
                          joints_3d=people["joints_3d"], visibility=people["visibility"], boxes=people["box"],
                          pose_classes=people["pose_class"].astype(np.int32))
