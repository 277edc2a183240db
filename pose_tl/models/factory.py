"""Config objects -> explicit keyword arguments -> models. The only place model code meets the recipe."""

from pose_tl.backbones.vgg import build_vgg_backbone
from pose_tl.heads.classification import ClassificationHead
from pose_tl.heads.pose import PoseHead
from pose_tl.models.classifier import build_depth_classifier
from pose_tl.models.detector import build_depth_detector
from pose_tl.models.pose_model import build_depth_pose_model


def build_backbone(backbone_config):
    return build_vgg_backbone(backbone_config.name, weights=backbone_config.weights,
                              depth_adapter=backbone_config.depth_adapter, input_shape=(None, None, 1))


def build_model(model_config, class_names):
    """The task model for `model_config`, with random head weights and the recipe's backbone weights."""
    head_config = model_config.head
    head = ClassificationHead(class_names, pooling=head_config.pooling, units=head_config.units,
                              dropout=head_config.dropout, batch_norm=head_config.batch_norm,
                              name="classification_head")
    return build_depth_classifier(build_backbone(model_config.backbone), head,
                                  input_size=model_config.input_size,
                                  min_m=model_config.depth.min_m, max_m=model_config.depth.max_m,
                                  encoding=model_config.depth.encoding)


def build_pose_model(model_config, num_joints, num_limbs):
    """The pose model for `model_config`: random head, the recipe's backbone weights."""
    pose = model_config.pose
    head = PoseHead(num_joints, num_limbs, channels=pose.channels, stages=pose.stages,
                    joint_depth=pose.joint_depth, sigmoid_heatmaps=pose.heatmap_loss == "focal",
                    lateral_norm=pose.lateral_norm, name="pose_head")
    return build_depth_pose_model(build_backbone(model_config.backbone), head,
                                  backbone_name=model_config.backbone.name, output_stride=pose.output_stride,
                                  input_size=model_config.input_size, min_m=model_config.depth.min_m,
                                  max_m=model_config.depth.max_m, encoding=model_config.depth.encoding)


def build_detector(model_config, class_names):
    """The detector for `model_config`: random RPN and box head, the recipe's backbone weights."""
    from pose_tl.detection.boxes import anchors_per_cell

    detection = model_config.detection
    return build_depth_detector(
        build_backbone(model_config.backbone), backbone_name=model_config.backbone.name, class_names=class_names,
        feature_stride=detection.feature_stride,
        anchors_per_cell=anchors_per_cell(detection.anchor_sizes, detection.anchor_ratios),
        rpn_channels=detection.rpn_channels, roi_size=detection.roi_size, fc_units=detection.fc_units,
        input_size=model_config.input_size, min_m=model_config.depth.min_m, max_m=model_config.depth.max_m,
        encoding=model_config.depth.encoding)
