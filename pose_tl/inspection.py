"""`pose-tl inspect`: per block, which phases train it, its parameter count, and the output stride."""

from pose_tl.backbones.layout import OUTPUT_STRIDE, block_of, vgg_block_names
from pose_tl.config.validation import frozen_layer_names


def describe_model(recipe, model):
    """A text table of the backbone blocks and the head, from a model built by `build_model`."""
    from pose_tl.models.classifier import backbone_of

    backbone = backbone_of(model)
    frozen = set(frozen_layer_names(recipe.model.backbone))
    learned = recipe.model.backbone.depth_adapter == "learned"
    lines = [f"recipe: {recipe.source}",
             f"backbone: {recipe.model.backbone.name} (weights: {recipe.model.backbone.weights}, "
             f"depth adapter: {recipe.model.backbone.depth_adapter})",
             f"input: {list(recipe.model.input_size)} depth, valid range {recipe.model.depth.min_m}-"
             f"{recipe.model.depth.max_m} m; backbone output stride {OUTPUT_STRIDE}", "",
             f"{'part':<22}{'params':>12}  status"]
    total = 0
    for block in vgg_block_names(recipe.model.backbone.name):
        layers = [layer for layer in backbone.layers if block_of(layer.name) == block]
        params = sum(layer.count_params() for layer in layers)
        total += params
        if not layers:
            lines.append(f"{block:<22}{0:>12,}  not used (the task reads features before it)")
            continue
        phases = [p.name for p in recipe.train.phases if "all" in p.unfreeze or block in p.unfreeze]
        if all(layer.name in frozen for layer in layers):
            status = "frozen"
            if learned and block == "block1":
                status = "frozen except block1_conv1 (learned depth adapter)"
        elif phases:
            partly = any(layer.name in frozen for layer in layers)
            status = ("partly frozen; " if partly else "") + "trains in phases: " + ", ".join(phases)
        else:
            status = "not frozen, but no phase unfreezes it"
        lines.append(f"{block:<22}{params:>12,}  {status}")
    phases = ", ".join(p.name for p in recipe.train.phases)
    if recipe.task == "detection":
        detection = recipe.model.detection
        rpn, head = model.get_layer("rpn_head"), model.get_layer("box_head")
        lines.append(f"{'region proposal net':<22}{rpn.count_params():>12,}  trains in phases: {phases}")
        total += rpn.count_params()
        label = f"box head ({len(head.class_names)} classes)"
        detail = (f"proposals: {detection.proposals}; features at stride {detection.feature_stride}; "
                  f"classes: {', '.join(head.class_names)}")
    elif recipe.task == "pose":
        head = model.get_layer("pose_head")
        pose = recipe.model.pose
        label = f"pose head ({pose.stages} stages)"
        maps = "heatmaps + PAFs + joint depths" if pose.joint_depth else "heatmaps + PAFs"
        height, width = (side // pose.output_stride for side in recipe.model.input_size)
        detail = f"{maps} at output stride {pose.output_stride}: {height}x{width}"
    else:
        head = model.get_layer("classification_head")
        label = f"head ({len(head.class_names)} classes)"
        detail = f"classes: {', '.join(head.class_names)}"
    lines.append(f"{label:<22}{head.count_params():>12,}  trains in phases: {phases}")
    total += head.count_params()
    lines += [f"{'total':<22}{total:>12,}", detail]
    return "\n".join(lines) + "\n"


def inspect_recipe(recipe):
    """Build the recipe's model (with its weights) and describe it."""
    from pose_tl.models.factory import build_model, build_pose_model

    if recipe.task == "pose":
        from pose_tl.data.people.skeleton import NUM_JOINTS, PAF_LIMBS

        model = build_pose_model(recipe.model, NUM_JOINTS, len(PAF_LIMBS))
    elif recipe.task == "detection":
        from pose_tl.data.detection_data import detection_class_names
        from pose_tl.models.factory import build_detector

        model = build_detector(recipe.model, detection_class_names(recipe.model.detection, recipe.data))
    else:
        from pose_tl.data.sources import class_names_for

        model = build_model(recipe.model, class_names_for(recipe.data))
    return describe_model(recipe, model)
