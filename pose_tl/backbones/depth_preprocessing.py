"""Depth -> the input range VGG's first convolution was trained on, as a layer so exports carry it.

Keras' ImageNet VGG (and HED, fine-tuned from it) expect "caffe" inputs: 0..255 pixel values with the ImageNet
channel means (B 103.939, G 116.779, R 123.68) subtracted. We render depth as a grey image lit from the camera:
`min_m` maps to 255 (near is bright), `max_m` to 0, linearly, then subtract the mean of the three channel means
(114.799). Depth outside the range is clipped to it. Invalid pixels (0, negative, NaN, inf: sensor holes) become
exactly 0, the mean grey, so they look like VGG's own zero padding rather than like a surface.
"""

import keras
import tensorflow as tf

IMAGENET_CAFFE_MEAN_GREY = (103.939 + 116.779 + 123.68) / 3.0
MILLIMETRES_PER_METRE = 1000.0


def depth_to_metres(depth):
    """uint16 (or any integer) millimetres -> float32 metres; float input is taken as metres already."""
    depth = tf.convert_to_tensor(depth)
    if depth.dtype.is_integer:
        return tf.cast(depth, tf.float32) / MILLIMETRES_PER_METRE
    return tf.cast(depth, tf.float32)


def valid_depth_mask(depth_m):
    """True where the sensor returned a usable distance."""
    return tf.logical_and(tf.math.is_finite(depth_m), depth_m > 0.0)


@keras.saving.register_keras_serializable(package="pose_tl")
class DepthPreprocessing(keras.layers.Layer):
    """Clips depth to [min_m, max_m] and maps it to VGG's caffe input range; invalid pixels -> 0.

    Accepts float metres or integer millimetres, shape [N, H, W, 1].
    """

    def __init__(self, min_m=0.5, max_m=4.5, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 < min_m < max_m:
            raise ValueError(f"`min_m` and `max_m` must satisfy 0 < min_m < max_m. Received: {min_m}, {max_m}")
        self.min_m = float(min_m)
        self.max_m = float(max_m)

    def call(self, depth):
        depth_m = depth_to_metres(depth)
        valid = valid_depth_mask(depth_m)
        clipped = tf.clip_by_value(tf.where(valid, depth_m, self.max_m), self.min_m, self.max_m)
        grey = 255.0 * (self.max_m - clipped) / (self.max_m - self.min_m)
        return tf.where(valid, grey - IMAGENET_CAFFE_MEAN_GREY, tf.zeros_like(grey))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "min_m": self.min_m, "max_m": self.max_m}
