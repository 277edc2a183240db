"""The depth pose model: depth -> DepthPreprocessing -> VGG feature pyramid -> PoseHead -> named stage outputs."""

import keras

from pose_tl.backbones.depth_preprocessing import DepthPreprocessing
from pose_tl.heads.pose import pyramid_layer_names
from pose_tl.models.classifier import DEPTH_INPUT

HEATMAPS = "heatmaps"
PAFS = "pafs"
JOINT_DEPTH = "joint_depth"  # metres behind the visible surface, per joint (last stage only)


def stage_output_names(stages):
    """Names of the heatmap and PAF outputs; the last stage's are plain `heatmaps` and `pafs`."""
    names = []
    for stage in range(1, stages + 1):
        suffix = "" if stage == stages else f"_stage{stage}"
        names += [HEATMAPS + suffix, PAFS + suffix]
    return names


def build_depth_pose_model(backbone, head, *, backbone_name, output_stride, input_size, min_m, max_m,
                           encoding="grey"):
    """Compose the pose model; outputs a dict of every stage's heatmaps and PAFs, and the joint depths where the
    head predicts them (float32)."""
    layers = pyramid_layer_names(backbone_name, output_stride)
    pyramid = keras.Model(backbone.input, [backbone.get_layer(name).output for name in layers],
                          name=f"{backbone.name}_pyramid")
    depth = keras.Input(shape=(*input_size, 1), name=DEPTH_INPUT, dtype="float32")
    x = DepthPreprocessing(min_m=min_m, max_m=max_m, encoding=encoding, name="depth_preprocessing",
                           dtype="float32")(depth)
    stages = head(pyramid(x))
    names = stage_output_names(len(stages))
    outputs = {}
    for (heatmaps, pafs, *joint_depth), heat_name, paf_name in zip(stages, names[0::2], names[1::2]):
        outputs[heat_name] = keras.layers.Identity(name=heat_name, dtype="float32")(heatmaps)
        outputs[paf_name] = keras.layers.Identity(name=paf_name, dtype="float32")(pafs)
        if joint_depth:
            outputs[JOINT_DEPTH] = keras.layers.Identity(name=JOINT_DEPTH, dtype="float32")(joint_depth[0])
    return keras.Model(depth, outputs, name="depth_pose")
