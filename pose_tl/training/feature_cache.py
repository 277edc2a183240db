"""Frozen-feature cache: a head-only phase trains on backbone features computed once instead of every epoch.

When nothing below the head trains and no augmentation changes the pixels, every epoch would push the same frames
through the same frozen backbone. The cache runs the backbone once per frame (the first epoch's cost), keeps the
features in memory or on disk (`tf.data` cache files named by a digest of the settings and backbone weights), and
the phase fits a small model that is the head alone, sharing its layers with the full model. Shuffling happens
after the cache with the uncached pipeline's seed and buffer, so a run's first phase sees the same frames in the
same order as without the cache.
"""

import hashlib

import keras
import numpy as np
import tensorflow as tf

from pose_tl.data.prefetching import prefetched
from pose_tl.models.classifier import PROBABILITIES

INDEX_SUFFIX = ".index"
MEMORY_LIMIT_BYTES = 4 * 2**30  # above this a `memory` cache goes to disk instead (logged)


def pixel_changing(augment):
    """True when the augmentation settings alter a frame's pixels (flip, crop, noise, shift, holes)."""
    return augment.enabled and (augment.horizontal_flip or tuple(augment.crop_scale) != (1.0, 1.0)
                                or augment.depth_noise_m > 0 or augment.depth_shift_m > 0
                                or (augment.hole_probability > 0 and augment.max_holes > 0))


def cache_unavailable_reason(recipe):
    """Why the recipe's head-only phases cannot use the cache, or None when they can."""
    if recipe.train.feature_cache == "off":
        return "train.feature_cache is off"
    if recipe.task != "classification":
        return f"task {recipe.task} (the cache serves classification heads)"
    if recipe.train.distribute != "none":
        return "train.distribute is not none"
    if recipe.model.backbone.depth_adapter == "learned":
        return "depth_adapter: learned trains the first convolution in every phase"
    if pixel_changing(recipe.data.augment):
        return "data.augment changes pixels (set data.augment.enabled: false to cache)"
    return None


def is_head_only(phase):
    return not phase.unfreeze


class FrozenFeatureCache:
    """Cached backbone features for the train and validation splits, and the head-only model that reads them.

    Args:
        model: the full classifier (depth -> probabilities).
        backbone: its backbone sub-model.
        frames: {"train": unshuffled, unaugmented batches, "validation": batches or None}, both (x, y) pairs.
        storage: "memory" or "disk".
        folder: where disk cache files go.
        seed, shuffle_buffer, batch_size, num_train: reproduce the uncached pipeline's shuffling and batching.
        fingerprint: text naming the data and model settings (the recipe's); with the backbone's weights it names
            the disk cache files, so a changed recipe or backbone never reads features of another.
    """

    def __init__(self, model, backbone, frames, *, storage, folder, seed, shuffle_buffer, batch_size, num_train,
                 fingerprint=""):
        self.extractor = _extractor_model(model, backbone)
        self.head_model = _head_model(model, self.extractor.output.shape[1:])
        self.frames = frames
        self.storage = storage
        self.folder = folder
        self.fingerprint = fingerprint
        self.seed = seed
        self.shuffle_buffer = max(1, min(num_train, shuffle_buffer))
        self.batch_size = batch_size
        frame_bytes = np.prod(self.extractor.output.shape[1:]) * np.dtype(self.extractor.compute_dtype).itemsize
        self.estimated_bytes = int(frame_bytes * num_train)
        if storage == "memory" and self.estimated_bytes > MEMORY_LIMIT_BYTES:
            self.storage = "disk"

    def phase_data(self, phase_index):
        """(head model, train batches, validation batches or None) for a head-only phase.

        Computes the features now (one pass over each split), so the phase's epochs only read the cache.
        """
        train = self._cached(self.frames["train"], f"phase{phase_index}_train")
        train = train.shuffle(self.shuffle_buffer, seed=self.seed, reshuffle_each_iteration=True)
        train = prefetched(train.batch(self.batch_size))
        validation = None
        if self.frames.get("validation") is not None:
            validation = self._cached(self.frames["validation"], f"phase{phase_index}_validation")
            validation = prefetched(validation.batch(self.batch_size))
        return self.head_model, train, validation

    def _cached(self, batches, key):
        extractor = self.extractor
        # kept in the compute dtype (half the memory under mixed precision), float32 for the head after
        features = batches.map(lambda x, y: (extractor(x, training=False), y)).unbatch()
        features = features.cache(self._cache_file(key))
        count = sum(1 for _ in features)  # fills the cache: the one pass through the backbone
        # a known size lets Keras run whole epochs over the cache as it does over the uncached pipeline
        features = features.apply(tf.data.experimental.assert_cardinality(count))
        return features.map(lambda f, y: (tf.cast(f, tf.float32), y))

    def _cache_file(self, key):
        """'' (memory) or a file prefix `<key>-<digest>`; other digests of `key` and unfinished files go."""
        if self.storage == "memory":
            return ""
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{key}-{self._digest()}"
        complete = (self.folder / (name + INDEX_SUFFIX)).exists()
        for stale in self.folder.glob(f"{key}-*"):  # other settings, or a run killed while writing
            if not (complete and stale.name.startswith(name)):
                stale.unlink()
        return str(self.folder / name)

    def _digest(self):
        digest = hashlib.sha256(self.fingerprint.encode())
        for weights in self.extractor.get_weights():
            digest.update(np.ascontiguousarray(weights).tobytes())
        return digest.hexdigest()[:16]


def _extractor_model(model, backbone):
    """Depth -> the frozen backbone's features, reusing the classifier's preprocessing and backbone layers."""
    depth = keras.Input(shape=model.inputs[0].shape[1:], name="depth", dtype="float32")
    features = backbone(model.get_layer("depth_preprocessing")(depth))
    return keras.Model(depth, features, name="frozen_features")


def _head_model(model, feature_shape):
    """The classifier's head as a model of its own: backbone features -> {probabilities}; layers shared."""
    head = model.get_layer("classification_head")
    features = keras.Input(shape=feature_shape, name="frozen_features", dtype="float32")
    probabilities = keras.layers.Identity(name=PROBABILITIES, dtype="float32")(head(features))
    return keras.Model(features, {PROBABILITIES: probabilities}, name="cached_feature_head")
