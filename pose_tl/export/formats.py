"""Export a classifier, pose model or detector as TFLite or ONNX, for runtimes without TensorFlow (phones,
onnxruntime).

Classifier files take what the SavedModel's serving_default takes, uint16 depth [N, H, W] in millimetres of any
frame size, with resizing and depth preprocessing inside, and return `probabilities` [N, C] float32 and `class_ids`
[N] int32. Class names are not a tensor there (string tensors are awkward in both runtimes); `pose_tl.json` beside
the file lists them.

A pose .tflite holds the whole SavedModel computation, decoding into people included (TFLite builtin ops only),
with both signatures (serving_default: depth; serving_with_intrinsics: depth, intrinsics) and the SavedModel's
outputs. A pose .onnx holds the same graph with one entry point, serving_with_intrinsics's: inputs `depth` and
`intrinsics` (an ONNX graph has one signature; pose_tl.json says how to compute the Kinect v2 default).

A detector .onnx is built the same way: serving_with_intrinsics's inputs, proposals (RPN and depth segments),
RoIAlign and per-class NMS inside, and the SavedModel's numeric outputs (`DETECTOR_OUTPUTS`; class names in
pose_tl.json). A detector .tflite holds the same computation with both signatures, as a pose .tflite; its RoIAlign
and NMS are rewritten in TFLite builtin ops (`pose_tl.detection.tflite_builtins`), which select the same detections.

The network is converted in float32 whatever precision it was trained under: TFLite's and ONNX Runtime's CPU
kernels have no bfloat16 convolutions, and the variables are float32 anyway. What converts, and how the graphs are
written so that it does, was worked out with TF 2.21, tf2onnx 1.17 and onnxruntime 1.32.
"""

import json
import tempfile
from pathlib import Path

import keras
import tensorflow as tf

from pose_tl.atomic import atomic_path
from pose_tl.backbones.depth_preprocessing import depth_to_metres
from pose_tl.data.people.engine import KINECT_V2_DEPTH
from pose_tl.data.augment import resize_depth
from pose_tl.decoding.refining import REFINE_PASSES
from pose_tl.errors import ModelFileError
from pose_tl.export.detection_saved_model import OUTPUTS as DETECTION_OUTPUTS
from pose_tl.export.saved_model import DEFAULT_SIGNATURE, METADATA_FILE, classifier_metadata
from pose_tl.models.classifier import PROBABILITIES
from pose_tl.training.precision import copy_with_policy

FILE_NAMES = {"tflite": "model.tflite", "onnx": "model.onnx"}
OUTPUTS = ("probabilities", "class_ids")
ONNX_OPSET = 17  # onnxruntime >= 1.14 runs it
ONNX_INPUTS = ("depth uint16 [N,H,W] mm, intrinsics float32 [N,4] fx,fy,cx,cy of those frames (Kinect v2: "
               "fx = fy = {2} * W / {0}, cx = W / 2, cy = H / 2)").format(*KINECT_V2_DEPTH)
DEPTH_SPEC = tf.TensorSpec([None, None, None], tf.uint16, name="depth")
INTRINSICS_SPEC = tf.TensorSpec([None, 4], tf.float32, name="intrinsics")
# The detection SavedModel's outputs less detection_class_names (a string tensor; pose_tl.json lists the names).
DETECTOR_OUTPUTS = tuple(name for name in DETECTION_OUTPUTS if name != "detection_class_names")


def classifier_function(model):
    """tf.function(depth uint16 [N, H, W] mm) -> {probabilities, class_ids}: the SavedModel's graph, no strings.

    `tf.expand_dims` rather than `[..., None]`: TFLite has no kernel for a strided slice that adds an axis.
    """
    input_size = tuple(model.input_shape[1:3])

    @tf.function(input_signature=[DEPTH_SPEC])
    def predict(depth):
        frames = resize_depth(tf.expand_dims(depth_to_metres(depth), -1), input_size)
        probabilities = model(frames, training=False)[PROBABILITIES]
        return {"probabilities": probabilities,
                "class_ids": tf.argmax(probabilities, axis=-1, output_type=tf.int32)}

    return predict


def tflite_bytes(model, predict):
    """Convert through a temporary SavedModel: converting the concrete function directly leaves the Keras
    variables unfrozen (a 32 kB file that outputs NaN)."""
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(DEFAULT_SIGNATURE, predict.python_function, input_signature=[DEPTH_SPEC])
    with tempfile.TemporaryDirectory(prefix="pose_tl_tflite_") as tmp:
        archive.write_out(tmp, verbose=False)
        return tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=[DEFAULT_SIGNATURE]).convert()


def onnx_bytes(predict, input_signature=(DEPTH_SPEC,)):
    tf2onnx = import_tf2onnx()
    proto, _ = tf2onnx.convert.from_function(predict, input_signature=list(input_signature), opset=ONNX_OPSET,
                                             output_path=None)
    return proto.SerializeToString()


def import_tf2onnx():
    try:
        import tf2onnx
    except ImportError:
        raise ModelFileError("--format onnx needs tf2onnx and onnxruntime: pip install 'pose_tl[onnx]'") from None
    return tf2onnx


def tflite_with_intrinsics(models, predict, metadata):
    """The .tflite bytes of `predict(depth, intrinsics)` (which calls the Keras `models`) with both SavedModel
    signatures (serving_default: depth, Kinect v2 intrinsics; serving_with_intrinsics), converted from a temporary
    SavedModel."""
    from pose_tl.export.pose_saved_model import INTRINSICS_SIGNATURE, export_with_intrinsics

    with tempfile.TemporaryDirectory(prefix="pose_tl_tflite_") as tmp:
        export_with_intrinsics(models, Path(tmp) / "saved_model", predict, metadata)
        converter = tf.lite.TFLiteConverter.from_saved_model(
            str(Path(tmp) / "saved_model"), signature_keys=[DEFAULT_SIGNATURE, INTRINSICS_SIGNATURE])
        return converter.convert()


def pose_tflite(model32, metadata, *, output_stride, bone_lengths, flip_test=False, facing_model=None,
                refiner_model=None, refine_passes=REFINE_PASSES):
    """The .tflite bytes of a float32 pose model, decoding included, with both SavedModel signatures."""
    from pose_tl.export.pose_saved_model import make_pose_predictor, served_crop_model, tracked_models

    facing_model, refiner_model = served_crop_model(model32, facing_model), served_crop_model(model32, refiner_model)
    predict = make_pose_predictor(model32, output_stride=output_stride, bone_lengths=bone_lengths,
                                  compiled_decoding=False, flip_test=flip_test, facing_model=facing_model,
                                  refiner_model=refiner_model, refine_passes=refine_passes)
    return tflite_with_intrinsics(tracked_models(model32, facing_model, refiner_model), predict, metadata)


def pose_onnx(model32, *, output_stride, bone_lengths, flip_test=False, facing_model=None, refiner_model=None,
              refine_passes=REFINE_PASSES):
    """The .onnx bytes of a float32 pose model, decoding included: (depth, intrinsics) -> the SavedModel's outputs.

    Decoding has no loops or conditionals (`pose_tl.decoding.grouping`), so it converts node for node.
    """
    from pose_tl.export.pose_saved_model import make_pose_predictor

    predict = make_pose_predictor(model32, output_stride=output_stride, bone_lengths=bone_lengths,
                                  compiled_decoding=False, flip_test=flip_test, facing_model=facing_model,
                                  refiner_model=refiner_model, refine_passes=refine_passes)
    return onnx_with_intrinsics(predict)


def onnx_with_intrinsics(predict):
    """The .onnx bytes of `predict(depth, intrinsics)`: serving_with_intrinsics's inputs (one ONNX entry point)."""
    return onnx_bytes(tf.function(predict, input_signature=[DEPTH_SPEC, INTRINSICS_SPEC]),
                      (DEPTH_SPEC, INTRINSICS_SPEC))


def numeric_detections(model32, *, detection_config, class_names, input_size, portable):
    """fn(depth, intrinsics) -> the detection SavedModel's numeric outputs (`DETECTOR_OUTPUTS`)."""
    from pose_tl.detection.inference import make_detector

    predict = make_detector(model32, detection_config=detection_config, class_names=class_names,
                            input_size=input_size, portable=portable)

    def detections(depth, intrinsics):
        found = predict(depth, intrinsics)
        return {name: found[name] for name in DETECTOR_OUTPUTS}

    return detections


def detector_onnx(model32, **detector):
    """The .onnx bytes of a float32 detector, proposals and NMS included: (depth, intrinsics) -> the SavedModel's
    numeric outputs (`DETECTOR_OUTPUTS`). `detector`: `numeric_detections`'s keywords.

    Converts as ONNX Loop (depth segments), ScatterND (segment extents) and NonMaxSuppression: how
    `pose_tl.detection` writes those steps is what makes them convert (see `per_class_nms`, `_segment_extents`).
    """
    return onnx_with_intrinsics(numeric_detections(model32, portable="onnx", **detector))


def detector_tflite(model32, metadata, **detector):
    """The .tflite bytes of a float32 detector, proposals and NMS included, with both SavedModel signatures and
    its numeric outputs. Depth segments convert as a TFLite WHILE; RoIAlign and NMS are rewritten in builtin ops
    (`tflite_builtins`), since TFLite has no CropAndResize or CombinedNonMaxSuppression kernel."""
    return tflite_with_intrinsics([model32], numeric_detections(model32, portable="tflite", **detector), metadata)


def task_of(model):
    """The task of a pose_tl model, from its head's layer name: "detector", "pose model" or "classifier"."""
    names = {layer.name for layer in model.layers}
    return "detector" if "box_head" in names else "pose model" if "pose_head" in names else "classifier"


def export_model_file(model, destination, export_format, *, output_stride=None, bone_lengths=None,
                      flip_test=False, facing_model=None, refiner_model=None, refine_passes=REFINE_PASSES,
                      detection_config=None):
    """Write `destination`/model.tflite or model.onnx and pose_tl.json, atomically; returns the model file's path.

    Args:
        output_stride, bone_lengths, flip_test, facing_model, refiner_model, refine_passes: of a pose model, as for
            its SavedModel.
        detection_config: of a detector (its recipe's `model.detection`: anchors, proposals, NMS).

    Raises:
        ModelFileError: tf2onnx is not installed (onnx).
    """
    task = task_of(model)
    if task == "detector" and detection_config is None:
        raise ValueError("`detection_config` is needed to export a detector. Received: None")
    if export_format == "onnx":
        import_tf2onnx()  # fail before the slow conversion
    model32 = copy_with_policy(model, "float32")
    if task == "detector":
        from pose_tl.export.detection_saved_model import detection_metadata

        class_names = model.get_layer("box_head").class_names
        input_size = tuple(model.get_layer("depth_preprocessing").input.shape[1:3])
        detector = {"detection_config": detection_config, "class_names": class_names, "input_size": input_size}
        metadata = {**detection_metadata(model, detection_config, class_names, input_size),
                    "outputs": list(DETECTOR_OUTPUTS)}
        if export_format == "tflite":
            blob = detector_tflite(model32, metadata, **detector)
        else:
            blob = detector_onnx(model32, **detector)
            metadata = {**metadata, "signatures": {"onnx": ONNX_INPUTS}}
    elif task == "pose model":
        from pose_tl.decoding.occlusion import DEFAULT_BONE_LENGTHS
        from pose_tl.export.pose_saved_model import pose_metadata

        bone_lengths = DEFAULT_BONE_LENGTHS if bone_lengths is None else bone_lengths
        metadata = pose_metadata(model, output_stride, bone_lengths, flip_test, facing_model, refiner_model,
                                 refine_passes)
        pose = {"output_stride": output_stride, "bone_lengths": bone_lengths, "flip_test": flip_test,
                "facing_model": facing_model, "refiner_model": refiner_model, "refine_passes": refine_passes}
        if export_format == "tflite":
            blob = pose_tflite(model32, metadata, **pose)
        else:
            blob = pose_onnx(model32, **pose)
            metadata = {**metadata, "signatures": {"onnx": ONNX_INPUTS}}
    else:
        predict = classifier_function(model32)
        blob = tflite_bytes(model32, predict) if export_format == "tflite" else onnx_bytes(predict)
        metadata = {**classifier_metadata(model), "outputs": list(OUTPUTS),
                    "signatures": {DEFAULT_SIGNATURE: "depth uint16 [N,H,W] millimetres"}}
    metadata = {**metadata, "format": export_format, "file": FILE_NAMES[export_format]}
    destination = Path(destination)
    with atomic_path(destination) as tmp:
        tmp.mkdir()
        (tmp / FILE_NAMES[export_format]).write_bytes(blob)
        (tmp / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
    return destination / FILE_NAMES[export_format]
