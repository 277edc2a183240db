"""The facing classifier: does a person, seen in a crop of its own depth (`pose_tl.decoding.facing`), face the
camera? A small CNN from scratch: the cue is the body's relief, which ImageNet filters on a whole frame miss."""

from pathlib import Path

import keras

from pose_tl.decoding.facing import CROP_SIZE

FACING_MODEL_FILE = "facing.keras"  # saved beside the pose checkpoint it turns skeletons for


def build_facing_classifier(seed=None):
    """crops [M, h, w, 1] -> [M, 1] probability that each person faces the camera (float32)."""
    layers = keras.layers
    inputs = keras.Input((*CROP_SIZE, 1), name="person_depth")
    x = inputs
    for filters in (32, 64, 128):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", dtype="float32")(x)
        x = layers.MaxPool2D(dtype="float32")(x)
    x = layers.Conv2D(128, 3, padding="same", activation="relu", dtype="float32")(x)
    x = layers.GlobalAveragePooling2D(dtype="float32")(x)
    initializer = keras.initializers.GlorotUniform(seed=seed)
    outputs = layers.Dense(1, activation="sigmoid", kernel_initializer=initializer, name="faces_camera",
                           dtype="float32")(x)
    return keras.Model(inputs, outputs, name="facing_classifier")


def facing_model_path(checkpoint):
    """Where the facing classifier of the pose checkpoint `checkpoint` lives (it may not exist)."""
    return Path(checkpoint).with_name(FACING_MODEL_FILE)
