"""Export a detector as a SavedModel that returns boxes, proposals and post-processing included.

Signatures (frames of any size; resized to the model's input with nearest neighbour, as in training):
  serving_default(depth: uint16 [N, H, W] millimetres) — intrinsics: Kinect v2 depth optics scaled to W.
  serving_with_intrinsics(depth: uint16 [N, H, W], intrinsics: float32 [N, 4] (fx, fy, cx, cy))
Outputs as the TF Object Detection API: detection_boxes [N, K, 4] (normalised ymin, xmin, ymax, xmax),
detection_scores [N, K], detection_classes [N, K] (int32 1..C), detection_class_names [N, K], num_detections [N].
"""

import dataclasses

from pose_tl.detection.inference import make_detector
from pose_tl.export.pose_saved_model import INTRINSICS_SIGNATURE, export_with_intrinsics
from pose_tl.export.saved_model import DEFAULT_SIGNATURE
from pose_tl.export.stored_precision import weights_in_compute_dtype

OUTPUTS = ["detection_boxes", "detection_scores", "detection_classes", "detection_class_names", "num_detections"]


def detection_metadata(model, detection_config, class_names, input_size):
    preprocessing = model.get_layer("depth_preprocessing")
    return {"task": "detection", "class_names": list(class_names), "input_size": list(input_size),
            "depth_range_m": [preprocessing.min_m, preprocessing.max_m], "depth_encoding": preprocessing.encoding,
            "detection": dataclasses.asdict(detection_config),
            "signatures": {DEFAULT_SIGNATURE: "depth uint16 [N,H,W] mm; Kinect v2 intrinsics scaled to W",
                           INTRINSICS_SIGNATURE: "depth uint16 [N,H,W] mm, intrinsics float32 [N,4] fx,fy,cx,cy"},
            "outputs": OUTPUTS}


def export_detector(model, destination, *, detection_config, class_names, input_size):
    """Write the detection SavedModel (proposals and post-processing inside) atomically."""
    model = weights_in_compute_dtype(model)
    predict = make_detector(model, detection_config=detection_config, class_names=class_names,
                            input_size=input_size)
    return export_with_intrinsics([model], destination, predict,
                                  detection_metadata(model, detection_config, class_names, input_size))
