"""Load a trained classifier for inference: a `.keras` checkpoint or an exported SavedModel folder."""

import json
from pathlib import Path

import numpy as np

from pose_tl.errors import ModelFileError
from pose_tl.export.saved_model import METADATA_FILE, METRES_SIGNATURE


class LoadedClassifier:
    """`predict(frames_m)`: float32 metres [N, H, W] -> probabilities [N, C]; `class_names`: list of str."""

    def __init__(self, predict_fn, class_names):
        self._predict = predict_fn
        self.class_names = class_names

    def predict(self, frames_m):
        return np.asarray(self._predict(np.asarray(frames_m, np.float32)))


def load_classifier(path):
    """Open `path` (SavedModel folder from `pose-tl export` / `train`, or a `.keras` checkpoint)."""
    import tensorflow as tf

    path = Path(path)
    if path.is_dir():
        metadata_path = path / METADATA_FILE
        if not (path / "saved_model.pb").is_file() or not metadata_path.is_file():
            raise ModelFileError(f"{path}: not a pose_tl SavedModel (expected saved_model.pb and {METADATA_FILE})")
        try:
            loaded = tf.saved_model.load(str(path))
            signature = loaded.signatures[METRES_SIGNATURE]
        except (OSError, KeyError, ValueError, tf.errors.OpError) as exc:
            raise ModelFileError(f"{path}: cannot load SavedModel ({str(exc)[:200]})") from None
        metadata = json.loads(metadata_path.read_text())
        return LoadedClassifier(lambda frames: signature(depth=tf.constant(frames))["probabilities"],
                                metadata["class_names"])
    if path.suffix == ".keras" and path.is_file():
        import keras

        from pose_tl.data.augment import resize_depth
        from pose_tl.models.classifier import PROBABILITIES, class_names_of
        try:
            model = keras.saving.load_model(str(path))
        except Exception as exc:  # keras raises many types for a bad archive
            raise ModelFileError(f"{path}: cannot load Keras model ({type(exc).__name__}: {str(exc)[:200]})") from None
        size = tuple(model.input_shape[1:3])
        return LoadedClassifier(
            lambda frames: model(resize_depth(tf.constant(frames)[..., None], size), training=False)[PROBABILITIES],
            class_names_of(model))
    raise ModelFileError(f"{path}: expected an exported SavedModel folder or a .keras checkpoint")
