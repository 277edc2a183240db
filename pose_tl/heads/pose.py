"""Pose head: VGG features -> stride 2, 4 or 8 -> joint heatmaps and part affinity fields, refined in stages.

Top-down path as a feature pyramid: block5 features are upsampled and added to block4's (stride 8), for stride 4
to block3's, and for stride 2 to block2's. Stage 1 predicts heatmaps and PAFs from those features; each refinement
stage sees the features plus the previous stage's predictions (Cao et al., CVPR 2017). Every stage is supervised,
so every stage is an output.

With `lateral_norm`, each level's 1x1 lateral is batch-normalised before the sum: VGG has no normalisation, and its
activations' scale differs ~8x between blocks 2 and 4 (and between weight sources), so without it the finest level
dominates the sum and, at stride 2, blows the first steps up into dead ReLUs (FPN, Lin et al., CVPR 2017, with the
normalised laterals of detectron2's `norm` option).

The head's convolutions (and upsampling) compute and store their weights under the head's own dtype policy, not the
global one, so a served copy whose head stores bfloat16 weights (`pose_tl.export.stored_precision`) reaches them; its
batch norms keep float32 statistics (`norm_policy`), and its outputs are float32.

With `joint_depth`, the last stage also predicts, per joint, how far behind the visible surface the joint lies
(metres): depth read at a peak is the skin, or an occluder's skin, not the joint.
"""

import keras

from pose_tl.models.fused_batch_norm import FusedBatchNormalization

PYRAMID_LAYERS = {8: ("block4_conv3", "block5_conv3"), 4: ("block3_conv3", "block4_conv3", "block5_conv3"),
                  2: ("block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3")}
HEATMAP_PRIOR_LOGIT = -4.6  # sigmoid -> 0.01
VGG19_PYRAMID_LAYERS = {8: ("block4_conv4", "block5_conv4"), 4: ("block3_conv4", "block4_conv4", "block5_conv4"),
                        2: ("block2_conv2", "block3_conv4", "block4_conv4", "block5_conv4")}


def pyramid_layer_names(backbone_name, output_stride):
    """Backbone layers the head reads, finest first."""
    table = VGG19_PYRAMID_LAYERS if backbone_name == "vgg19" else PYRAMID_LAYERS
    if output_stride not in table:
        raise ValueError(f"`output_stride` must be one of {sorted(table)}. Received: {output_stride}")
    return table[output_stride]


def norm_policy(policy):
    """The policy of a batch norm computing as `policy` does with float32 statistics ("bfloat16" ->
    "mixed_bfloat16"; a mixed or float32 policy stays)."""
    return policy.name if policy.variable_dtype == "float32" else f"mixed_{policy.compute_dtype}"


@keras.saving.register_keras_serializable(package="pose_tl")
class PoseHead(keras.layers.Layer):
    """Features (finest first) -> list of (heatmaps [N, Ho, Wo, J], pafs [N, Ho, Wo, 2L]) per stage; with
    `joint_depth` the last stage's tuple also holds joint depths [N, Ho, Wo, J]."""

    def __init__(self, num_joints, num_limbs, channels=128, stages=2, convs_per_stage=3, joint_depth=False,
                 sigmoid_heatmaps=False, lateral_norm=False, **kwargs):
        super().__init__(**kwargs)
        if stages < 1:
            raise ValueError(f"`stages` must be >= 1. Received: {stages}")
        self.num_joints = int(num_joints)
        self.num_limbs = int(num_limbs)
        self.channels = int(channels)
        self.stages = int(stages)
        self.convs_per_stage = int(convs_per_stage)
        self.joint_depth = bool(joint_depth)
        self.sigmoid_heatmaps = bool(sigmoid_heatmaps)
        # False here though recipes default to true: checkpoints saved before the option load as they were.
        self.lateral_norm = bool(lateral_norm)
        self.laterals = None
        self.lateral_norms = None
        self.upsample = keras.layers.UpSampling2D(2, interpolation="bilinear", dtype=self.dtype_policy)
        self.stage_convs = [[keras.layers.Conv2D(self.channels, 3, padding="same", activation="relu",
                                                 dtype=self.dtype_policy)
                             for _ in range(self.convs_per_stage)] for _ in range(self.stages)]
        # Sigmoid heatmaps (the focal loss) start near the share of joint pixels, as RetinaNet's classifier does.
        prior = keras.initializers.Constant(HEATMAP_PRIOR_LOGIT)
        heatmap_options = {"activation": "sigmoid", "bias_initializer": prior} if self.sigmoid_heatmaps else {}
        self.heatmap_outs = [keras.layers.Conv2D(self.num_joints, 1, dtype="float32", **heatmap_options)
                             for _ in range(self.stages)]
        self.paf_outs = [keras.layers.Conv2D(2 * self.num_limbs, 1, dtype="float32") for _ in range(self.stages)]
        self.depth_out = keras.layers.Conv2D(self.num_joints, 1, dtype="float32") if self.joint_depth else None

    def build(self, input_shapes):
        self.laterals = [keras.layers.Conv2D(self.channels, 1, name=f"lateral_{i}", dtype=self.dtype_policy)
                         for i in range(len(input_shapes))]
        for lateral, shape in zip(self.laterals, input_shapes):
            lateral.build(shape)
        if self.lateral_norm:
            statistics = norm_policy(self.dtype_policy)
            self.lateral_norms = [FusedBatchNormalization(name=f"lateral_norm_{i}", dtype=statistics)
                                  for i in range(len(input_shapes))]
            for norm, shape in zip(self.lateral_norms, input_shapes):
                norm.build(tuple(shape[:-1]) + (self.channels,))
        finest = tuple(input_shapes[0][:-1]) + (self.channels,)
        for stage in range(self.stages):
            width = self.channels if stage == 0 else self.channels + self.num_joints + 2 * self.num_limbs
            shape = finest[:-1] + (width,)
            for conv in self.stage_convs[stage]:
                conv.build(shape)
                shape = finest
            self.heatmap_outs[stage].build(finest)
            self.paf_outs[stage].build(finest)
        if self.depth_out is not None:
            self.depth_out.build(finest)

    def _lateral(self, level, feature, training):
        x = self.laterals[level](feature)
        return self.lateral_norms[level](x, training=training) if self.lateral_norm else x

    def call(self, features, training=None):
        x = self._lateral(len(features) - 1, features[-1], training)
        for level in range(len(features) - 2, -1, -1):
            x = self.upsample(x) + self._lateral(level, features[level], training)
        outputs = []
        stage_input = x
        for stage in range(self.stages):
            y = stage_input
            for conv in self.stage_convs[stage]:
                y = conv(y)
            heatmaps, pafs = self.heatmap_outs[stage](y), self.paf_outs[stage](y)
            last = stage == self.stages - 1
            outputs.append((heatmaps, pafs, self.depth_out(y)) if last and self.depth_out is not None
                           else (heatmaps, pafs))
            if not last:
                stage_input = keras.ops.concatenate(
                    [x, keras.ops.cast(heatmaps, x.dtype), keras.ops.cast(pafs, x.dtype)], axis=-1)
        return outputs

    def get_config(self):
        return {**super().get_config(), "num_joints": self.num_joints, "num_limbs": self.num_limbs,
                "channels": self.channels, "stages": self.stages, "convs_per_stage": self.convs_per_stage,
                "joint_depth": self.joint_depth, "sigmoid_heatmaps": self.sigmoid_heatmaps,
                "lateral_norm": self.lateral_norm}
