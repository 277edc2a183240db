"""Export a classifier as a SavedModel whose signatures take raw depth frames.

Signatures (both resize to the model's input size with nearest-neighbour, like training):
  serving_default(depth: uint16 [N, H, W] millimetres)
  serving_metres(depth: float32 [N, H, W] metres)
Outputs: `probabilities` [N, C] float32, `class_ids` [N] int32, `class_names` [N] string (the predicted class).
The metadata file `pose_tl.json` beside `saved_model.pb` lists all class names, input size and depth range.
"""

import json

import keras
import tensorflow as tf

from pose_tl.atomic import atomic_path
from pose_tl.backbones.depth_preprocessing import depth_to_metres
from pose_tl.data.augment import resize_depth
from pose_tl.export.stored_precision import weights_in_compute_dtype
from pose_tl.models.classifier import PROBABILITIES, class_names_of

METADATA_FILE = "pose_tl.json"
DEFAULT_SIGNATURE = "serving_default"
METRES_SIGNATURE = "serving_metres"


def classifier_metadata(model):
    preprocessing = model.get_layer("depth_preprocessing")
    return {"task": "classification", "class_names": class_names_of(model),
            "input_size": list(model.input_shape[1:3]),
            "depth_range_m": [preprocessing.min_m, preprocessing.max_m], "depth_encoding": preprocessing.encoding,
            "signatures": {DEFAULT_SIGNATURE: "depth uint16 [N,H,W] millimetres",
                           METRES_SIGNATURE: "depth float32 [N,H,W] metres"},
            "outputs": ["probabilities", "class_ids", "class_names"]}


def export_classifier(model, destination):
    """Write the SavedModel to `destination` atomically (a killed export leaves the previous one or nothing)."""
    model = weights_in_compute_dtype(model)
    class_names = tf.constant(class_names_of(model))
    input_size = tuple(model.input_shape[1:3])

    def predict(depth):
        frames = resize_depth(depth_to_metres(depth)[..., None], input_size)
        probabilities = model(frames, training=False)[PROBABILITIES]
        class_ids = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        return {"probabilities": probabilities, "class_ids": class_ids,
                "class_names": tf.gather(class_names, class_ids)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(DEFAULT_SIGNATURE, predict, input_signature=[tf.TensorSpec([None, None, None], tf.uint16)])
    archive.add_endpoint(METRES_SIGNATURE, predict, input_signature=[tf.TensorSpec([None, None, None], tf.float32)])
    with atomic_path(destination) as tmp:
        archive.write_out(str(tmp), verbose=False)
        (tmp / METADATA_FILE).write_text(json.dumps(classifier_metadata(model), indent=2) + "\n")
    return destination
