"""The depth classifier: raw depth -> DepthPreprocessing -> VGG backbone -> ClassificationHead."""

import keras

from pose_tl.backbones.depth_preprocessing import DepthPreprocessing
from pose_tl.heads.classification import ClassificationHead

DEPTH_INPUT = "depth"
PROBABILITIES = "probabilities"


def build_depth_classifier(backbone, head, *, input_size, min_m, max_m, encoding="grey"):
    """Compose a classifier whose input is depth in metres, [N, H, W, 1], and whose output is named.

    Args:
        backbone: a VGG feature extractor with a 1-channel input.
        head: a `ClassificationHead`.
        input_size: (height, width).
        min_m, max_m, encoding: the valid depth range and its rendering, see `DepthPreprocessing`.
    """
    depth = keras.Input(shape=(*input_size, 1), name=DEPTH_INPUT, dtype="float32")
    x = DepthPreprocessing(min_m=min_m, max_m=max_m, encoding=encoding, name="depth_preprocessing",
                           dtype="float32")(depth)
    features = backbone(x)
    probabilities = head(features)
    probabilities = keras.layers.Identity(name=PROBABILITIES, dtype="float32")(probabilities)
    return keras.Model(depth, {PROBABILITIES: probabilities}, name="depth_classifier")


def class_names_of(model):
    """The class names carried by a classifier's head."""
    for layer in model.layers:
        if isinstance(layer, ClassificationHead):
            return list(layer.class_names)
    raise ValueError(f"{model.name} has no ClassificationHead")


def backbone_of(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            return layer
    raise ValueError(f"{model.name} has no backbone sub-model")
