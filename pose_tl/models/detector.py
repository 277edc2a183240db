"""The depth detector: depth -> DepthPreprocessing -> VGG features -> RPN, and RoIAlign(features, rois) -> box head.

For training the model takes the RoIs as a second input (sampled in the data pipeline, see
`pose_tl.detection.targets`); at inference `pose_tl.detection.inference` feeds it proposals from the RPN and/or
depth segments. The sub-layers are named so inference can call them one by one.
"""

import keras

from pose_tl.backbones.depth_preprocessing import DepthPreprocessing
from pose_tl.heads.detection import BoxHead, RoiAlign, RpnHead
from pose_tl.models.classifier import DEPTH_INPUT

ROIS_INPUT = "rois"
RPN_OBJECTNESS, RPN_DELTAS, CLASS_LOGITS, BOX_DELTAS = "rpn_objectness", "rpn_deltas", "class_logits", "box_deltas"
FEATURE_LAYERS = {("vgg16", 8): "block4_conv3", ("vgg16", 16): "block5_conv3",
                  ("vgg19", 8): "block4_conv4", ("vgg19", 16): "block5_conv4"}


def build_depth_detector(backbone, *, backbone_name, class_names, feature_stride, anchors_per_cell, rpn_channels,
                         roi_size, fc_units, input_size, min_m, max_m, encoding="grey"):
    """Compose the detector; outputs a dict of the four named float32 training outputs."""
    layer = FEATURE_LAYERS[(backbone_name, feature_stride)]
    features_model = keras.Model(backbone.input, backbone.get_layer(layer).output, name=f"{backbone.name}_features")
    depth = keras.Input(shape=(*input_size, 1), name=DEPTH_INPUT, dtype="float32")
    rois = keras.Input(shape=(None, 4), name=ROIS_INPUT, dtype="float32")
    x = DepthPreprocessing(min_m=min_m, max_m=max_m, encoding=encoding, name="depth_preprocessing",
                           dtype="float32")(depth)
    features = features_model(x)
    objectness, rpn_deltas = RpnHead(anchors_per_cell, rpn_channels, name="rpn_head")(features)
    pooled = RoiAlign(roi_size, name="roi_align")([features, rois])
    logits, deltas = BoxHead(class_names, fc_units, name="box_head")(pooled)
    named = {RPN_OBJECTNESS: objectness, RPN_DELTAS: rpn_deltas, CLASS_LOGITS: logits, BOX_DELTAS: deltas}
    outputs = {name: keras.layers.Identity(name=name, dtype="float32")(value) for name, value in named.items()}
    return keras.Model({DEPTH_INPUT: depth, ROIS_INPUT: rois}, outputs, name="depth_detector")


def features_model_of(model):
    return next(layer for layer in model.layers if layer.name.endswith("_features"))
