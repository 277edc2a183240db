"""Checks that involve more than one field, or knowledge of the VGG layout; run once after conversion."""

from pathlib import Path

from pose_tl.backbones.layout import block_of, vgg_block_names, vgg_layer_names
from pose_tl.config.schema import POSE_CLASS_NAMES, WEIGHT_KEYWORDS
from pose_tl.errors import RecipeError

WEIGHT_SUFFIXES = (".h5", ".weights.h5", ".keras")


def is_existing(path, kind="any"):
    """Path.exists / is_file / is_dir that answer False for names the OS rejects (too long, bad bytes)."""
    try:
        path = Path(path)
        return {"file": path.is_file, "dir": path.is_dir, "any": path.exists}[kind]()
    except (OSError, ValueError):
        return False


def frozen_layer_names(backbone):
    """Layer names kept frozen in every phase, from `freeze.up_to` or `freeze.blocks`."""
    names = vgg_layer_names(backbone.name)
    if backbone.freeze.up_to is not None:
        return names[: names.index(backbone.freeze.up_to) + 1]
    if backbone.freeze.blocks:
        frozen_blocks = set(vgg_block_names(backbone.name)[: backbone.freeze.blocks])
        return [n for n in names if block_of(n) in frozen_blocks]
    return []


def _check_backbone(recipe, src):
    backbone = recipe.model.backbone
    freeze = backbone.freeze
    layers = vgg_layer_names(backbone.name)
    if freeze.up_to is not None and freeze.blocks is not None:
        raise RecipeError(src, "model.backbone.freeze", "expected either `up_to` or `blocks`, not both",
                          {"up_to": freeze.up_to, "blocks": freeze.blocks})
    if freeze.up_to is not None and freeze.up_to not in layers:
        raise RecipeError(src, "model.backbone.freeze.up_to", f"expected a layer of {backbone.name}, one of {layers}",
                          freeze.up_to)
    weights = backbone.weights
    if weights not in WEIGHT_KEYWORDS:
        path = Path(weights)
        if not path.name.endswith(WEIGHT_SUFFIXES) and path.suffix == "":
            raise RecipeError(src, "model.backbone.weights",
                              f"expected one of {list(WEIGHT_KEYWORDS)} or a path to a .h5 / .weights.h5 file",
                              weights)
        if not is_existing(path, "file"):
            raise RecipeError(src, "model.backbone.weights", "expected an existing weights file", weights)
    if weights == "hed-bsds500" and backbone.name != "vgg16":
        raise RecipeError(src, "model.backbone.weights", "hed-bsds500 holds VGG16 weights; use name: vgg16 "
                          "or weights: imagenet / none / a file", f"hed-bsds500 with {backbone.name}")


PEOPLE_FILE_SOURCES = ("coco", "itop")
SPLITS = ("train", "validation", "test")


def _check_task(recipe, src):
    source = recipe.data.source
    if recipe.task in ("pose", "detection") and source not in ("synthetic", *PEOPLE_FILE_SOURCES):
        raise RecipeError(src, "data.source", f"the {recipe.task} task trains on people data; expected 'synthetic', "
                          "'coco' or 'itop'", source)
    if recipe.task == "detection":
        _check_detection(recipe, src)
    if recipe.task == "classification" and source in PEOPLE_FILE_SOURCES:
        raise RecipeError(src, "data.source", "classification trains on 'folder', 'shapes' or 'synthetic' data; "
                          f"'{source}' holds joint labels for the pose task", source)
    if source == "coco":
        _check_coco(recipe.data.coco, src)
    if source == "itop":
        _check_itop(recipe.data.itop, src)


def _check_detection(recipe, src):
    detection = recipe.model.detection
    if detection.classes == "pose_class" and recipe.data.source != "synthetic":
        raise RecipeError(src, "model.detection.classes", "pose_class labels come from the synthetic people; "
                          "expected 'person' for COCO-style or ITOP files", detection.classes)
    for name in ("anchor_sizes", "anchor_ratios"):
        if not getattr(detection, name):
            raise RecipeError(src, f"model.detection.{name}", "expected a non-empty list", [])


def _check_coco(coco, src):
    given = [split for split in SPLITS if getattr(coco, split) is not None]
    if not given:
        raise RecipeError(src, "data.coco", "expected the COCO dataset (folder or annotations JSON) of at least "
                          "one split: train, validation, test", None)
    for split in given:
        if not is_existing(getattr(coco, split)):
            raise RecipeError(src, f"data.coco.{split}", "expected an existing COCO dataset folder or annotations "
                              "JSON", getattr(coco, split))


def _check_itop(itop, src):
    given = []
    for split in SPLITS:
        depth, labels = getattr(itop, f"{split}_depth"), getattr(itop, f"{split}_labels")
        if (depth is None) != (labels is None):
            missing = f"{split}_labels" if labels is None else f"{split}_depth"
            raise RecipeError(src, f"data.itop.{missing}", f"expected the ITOP file paired with data.itop.{split}_"
                              f"{'depth' if labels is None else 'labels'}", None)
        for name, path in ((f"{split}_depth", depth), (f"{split}_labels", labels)):
            if path is not None and not is_existing(path, "file"):
                raise RecipeError(src, f"data.itop.{name}", "expected an existing ITOP .h5 file", path)
        given += [split] if depth is not None else []
    if not given:
        raise RecipeError(src, "data.itop", "expected the depth and labels h5 files of at least one split "
                          "(train_depth and train_labels, ...)", None)


def _check_model(recipe, src):
    height, width = recipe.model.input_size
    if height % 32 or width % 32:
        raise RecipeError(src, "model.input_size", "expected [height, width], both multiples of 32 "
                          "(VGG's output stride)", [height, width])
    depth = recipe.model.depth
    if depth.min_m >= depth.max_m:
        raise RecipeError(src, "model.depth", "expected min_m < max_m", [depth.min_m, depth.max_m])


def _check_data(recipe, src):
    data = recipe.data
    if data.source == "folder":
        if data.root is None:
            raise RecipeError(src, "data.root", "expected the folder with one sub-folder per class", None)
        if not is_existing(data.root, "dir"):
            raise RecipeError(src, "data.root", "expected an existing folder with one sub-folder per class",
                              data.root)
    if data.classes is not None:
        if len(data.classes) < 2:
            raise RecipeError(src, "data.classes", "expected at least 2 class names", data.classes)
        if len(set(data.classes)) != len(data.classes):
            raise RecipeError(src, "data.classes", "expected unique class names", data.classes)
    ranges = {"data.augment.crop_scale": data.augment.crop_scale, "data.synthetic.people": data.synthetic.people,
              "data.synthetic.camera_height_m": data.synthetic.camera_height_m,
              "data.synthetic.camera_tilt_deg": data.synthetic.camera_tilt_deg,
              "data.synthetic.distance_m": data.synthetic.distance_m,
              "data.synthetic.facing_deg": data.synthetic.facing_deg}
    for name, (low, high) in ranges.items():
        if low > high:
            raise RecipeError(src, name, "expected [min, max] with min <= max", [low, high])
    _check_synthetic(recipe, src)


def _check_synthetic(recipe, src):
    synthetic = recipe.data.synthetic
    classes = synthetic.pose_classes
    for i, name in enumerate(classes):
        if name not in POSE_CLASS_NAMES:
            raise RecipeError(src, f"data.synthetic.pose_classes[{i}]", f"expected one of {list(POSE_CLASS_NAMES)}",
                              name)
    if not classes or len(set(classes)) != len(classes):
        raise RecipeError(src, "data.synthetic.pose_classes", "expected a non-empty list of unique pose classes",
                          classes)


def check_classification_data(recipe):
    """Checks for training / evaluating a classifier on synthetic people (the data commands accept crowds)."""
    src, synthetic = recipe.source, recipe.data.synthetic
    classes = synthetic.pose_classes
    if recipe.data.source != "synthetic" or recipe.task != "classification":
        return
    if tuple(synthetic.people) != (1, 1):
        raise RecipeError(src, "data.synthetic.people", "classification labels a frame by its one person's pose "
                          "class; expected [1, 1]", list(synthetic.people))
    if len(classes) < 2:
        raise RecipeError(src, "data.synthetic.pose_classes", "classification needs at least 2 pose classes", classes)
    if recipe.data.classes is not None and list(recipe.data.classes) != list(classes):
        raise RecipeError(src, "data.classes", f"expected the synthetic pose classes {list(classes)} (or null)",
                          recipe.data.classes)


def _check_train(recipe, src):
    phases = recipe.train.phases
    if not phases:
        raise RecipeError(src, "train.phases", "expected at least one phase", [])
    blocks = vgg_block_names(recipe.model.backbone.name)
    frozen_blocks = {block_of(n) for n in frozen_layer_names(recipe.model.backbone)}
    names = [p.name for p in phases]
    for i, phase in enumerate(phases):
        field = f"train.phases[{i}]"
        if not phase.name or not phase.name.replace("_", "").replace("-", "").isalnum():
            raise RecipeError(src, f"{field}.name", "expected a name of letters, digits, - and _", phase.name)
        if names.count(phase.name) > 1:
            raise RecipeError(src, f"{field}.name", "expected unique phase names", phase.name)
        for j, block in enumerate(phase.unfreeze):
            if block == "all":
                continue
            if block not in blocks:
                raise RecipeError(src, f"{field}.unfreeze[{j}]", f"expected 'all' or a block of "
                                  f"{recipe.model.backbone.name}, one of {blocks}", block)
            if block in frozen_blocks:
                raise RecipeError(src, f"{field}.unfreeze[{j}]", "expected a block not frozen by "
                                  "model.backbone.freeze (frozen layers stay frozen in every phase)", block)


def check_recipe(recipe):
    """Raise RecipeError for the first cross-field problem in `recipe`."""
    src = recipe.source
    _check_backbone(recipe, src)
    _check_task(recipe, src)
    _check_model(recipe, src)
    _check_data(recipe, src)
    _check_train(recipe, src)
