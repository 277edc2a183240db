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


def load_keras_model(path):
    """Load a `.keras` checkpoint written by pose_tl (its custom layers registered first)."""
    import keras

    import pose_tl.backbones.depth_preprocessing  # noqa: F401 - registers the layer
    import pose_tl.heads.classification  # noqa: F401
    import pose_tl.heads.detection  # noqa: F401
    import pose_tl.heads.pose  # noqa: F401
    import pose_tl.training.detection_losses  # noqa: F401 - the detector's compiled losses
    import pose_tl.training.fused_adam  # noqa: F401 - the compiled optimizer
    import pose_tl.training.losses  # noqa: F401 - the pose model's compiled loss

    path = Path(path)
    if path.suffix != ".keras" or not path.is_file():
        raise ModelFileError(f"{path}: expected a .keras checkpoint written by `pose-tl train`")
    try:
        return keras.saving.load_model(str(path))
    except Exception as exc:  # keras raises many types for a bad archive
        raise ModelFileError(f"{path}: cannot load Keras model ({type(exc).__name__}: {str(exc)[:200]})") from None


def model_task(path):
    """'classification', 'pose' or 'detection' for a SavedModel folder (pose_tl.json) or a .keras checkpoint."""
    path = Path(path)
    if path.is_dir():
        metadata = path / METADATA_FILE
        if not metadata.is_file():
            raise ModelFileError(f"{path}: not a pose_tl SavedModel (no {METADATA_FILE})")
        return json.loads(metadata.read_text()).get("task", "classification")
    names = {layer.name for layer in load_keras_model(path).layers}
    return "pose" if "pose_head" in names else "detection" if "box_head" in names else "classification"


def load_signature(path, name, what):
    """(signature `name` of the SavedModel folder `path`, its pose_tl.json) or a ModelFileError naming `what`."""
    import tensorflow as tf

    try:
        signature = tf.saved_model.load(str(path)).signatures[name]
        metadata = json.loads((Path(path) / METADATA_FILE).read_text())
    except (OSError, KeyError, ValueError, tf.errors.OpError) as exc:
        raise ModelFileError(f"{path}: cannot load {what} ({str(exc)[:200]})") from None
    return signature, metadata


class LoadedPoseModel:
    """`predict(depth [N, H, W] uint16 mm, intrinsics [N, 4])` -> dict of NumPy arrays (see pose_saved_model)."""

    def __init__(self, predict_fn, metadata):
        self._predict = predict_fn
        self.metadata = metadata

    def predict(self, depth_mm, intrinsics):
        import tensorflow as tf

        out = self._predict(tf.constant(np.asarray(depth_mm, np.uint16)), tf.constant(np.asarray(intrinsics,
                                                                                                 np.float32)))
        return {name: np.asarray(value) for name, value in out.items()}


def load_pose_model(path, xla_decoding=True, flip_test=False, bone_lengths=None, refine_passes=None):
    """A pose SavedModel folder or a pose `.keras` checkpoint, ready to predict people; a checkpoint decodes with
    XLA or TensorFlow's ops as `xla_decoding` says, with the flip test or not, and infers occluded joints from
    `bone_lengths` (None: `DEFAULT_BONE_LENGTHS`), as its SavedModel would (a SavedModel as it was exported); the
    facing classifier and joint refiner beside it, if any, act on its people (`load_crop_models`), the refiner in
    `refine_passes` passes (None: `REFINE_PASSES`)."""
    import tensorflow as tf

    from pose_tl.decoding.occlusion import DEFAULT_BONE_LENGTHS
    from pose_tl.decoding.refining import REFINE_PASSES
    from pose_tl.export.pose_saved_model import INTRINSICS_SIGNATURE, make_pose_predictor, pose_metadata

    path = Path(path)
    if path.is_dir():
        signature, metadata = load_signature(path, INTRINSICS_SIGNATURE, "a pose SavedModel")
        return LoadedPoseModel(lambda depth, intrinsics: signature(depth=depth, intrinsics=intrinsics), metadata)
    model, crop_models = load_keras_model(path), load_crop_models(path)
    stride = model.input_shape[1] // model.get_layer("heatmaps").output.shape[1]
    bone_lengths, passes = bone_lengths or DEFAULT_BONE_LENGTHS, refine_passes or REFINE_PASSES
    predict = tf.function(make_pose_predictor(model, output_stride=stride, bone_lengths=bone_lengths,
                                              compiled_decoding=xla_decoding, flip_test=flip_test,
                                              refine_passes=passes, **crop_models))
    return LoadedPoseModel(predict, pose_metadata(model, stride, bone_lengths, flip_test, **crop_models,
                                                  refine_passes=passes))


def load_facing_model(checkpoint):
    """The facing classifier saved beside a pose checkpoint (`pose_tl.models.facing`), or None where there is
    none."""
    from pose_tl.models.facing import facing_model_path

    path = facing_model_path(checkpoint)
    return load_keras_model(path) if path.is_file() else None


def load_refiner_model(checkpoint):
    """The joint refiner saved beside a pose checkpoint (`pose_tl.models.refiner`), or None where there is none."""
    from pose_tl.models.refiner import refiner_model_path

    path = refiner_model_path(checkpoint)
    return load_keras_model(path) if path.is_file() else None


def load_crop_models(checkpoint):
    """{"facing_model", "refiner_model"}: the models beside a pose checkpoint that act on its people's crops (None
    where absent), as the predictor and exports take them."""
    return {"facing_model": load_facing_model(checkpoint), "refiner_model": load_refiner_model(checkpoint)}


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
        from pose_tl.data.augment import resize_depth
        from pose_tl.models.classifier import PROBABILITIES, class_names_of

        model = load_keras_model(path)
        size = tuple(model.input_shape[1:3])
        return LoadedClassifier(
            lambda frames: model(resize_depth(tf.constant(frames)[..., None], size), training=False)[PROBABILITIES],
            class_names_of(model))
    raise ModelFileError(f"{path}: expected an exported SavedModel folder or a .keras checkpoint")
