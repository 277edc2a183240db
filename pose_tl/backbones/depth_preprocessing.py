"""Depth -> the input range VGG's first convolution was trained on, as a layer so exports carry it.

Keras' ImageNet VGG (and HED, fine-tuned from it) expect "caffe" inputs: 0..255 pixel values with the ImageNet
channel means (B 103.939, G 116.779, R 123.68) subtracted. We render depth as a grey image lit from the camera:
`min_m` maps to 255 (near is bright), `max_m` to 0, linearly, then subtract the mean of the three channel means
(114.799). Depth outside the range is clipped to it. Invalid pixels (0, negative, NaN, inf: sensor holes) become
exactly 0, the mean grey, so they look like VGG's own zero padding rather than like a surface.

`encoding: shaded` also lights that surface with a lamp at the camera (Lambertian: brightness times the cosine
between the surface normal and the optical axis). A person's depth varies by ~20 cm over a body, a few grey levels in
a 5 m range, too faint for filters trained on photographs; shading turns every change of surface orientation (a
limb's side, an arm in front of the chest, a silhouette) into a contrast as strong as a photograph's.
"""

import keras
import tensorflow as tf

IMAGENET_CAFFE_MEAN_GREY = (103.939 + 116.779 + 123.68) / 3.0
MILLIMETRES_PER_METRE = 1000.0
ENCODINGS = ("grey", "shaded")
# Focal length in pixels per pixel of image width used for shading when the intrinsics are not known to the model:
# 0.71 is Kinect v2's 70 degree horizontal field of view (RealSense D4xx: ~87, 0.53). It only sets how dark a slope
# of a given angle renders.
SHADING_FOCAL_PER_WIDTH = 0.71
SHADING_SMOOTHING_PX = 1.0


def depth_to_metres(depth):
    """uint16 (or any integer) millimetres -> float32 metres; float input is taken as metres already."""
    depth = tf.convert_to_tensor(depth)
    if depth.dtype.is_integer:
        return tf.cast(depth, tf.float32) / MILLIMETRES_PER_METRE
    return tf.cast(depth, tf.float32)


def valid_depth_mask(depth_m):
    """True where the sensor returned a usable distance."""
    return tf.logical_and(tf.math.is_finite(depth_m), depth_m > 0.0)


def smooth_valid_depth(depth_m, valid, sigma_px=SHADING_SMOOTHING_PX):
    """Gaussian-smoothed depth over valid pixels only (normalised convolution): sensor noise of ~1 cm would
    otherwise make per-pixel slopes, and so the shading, speckle."""
    taps = tf.range(-2.0 * sigma_px, 2.0 * sigma_px + 1.0)
    kernel_1d = tf.exp(-0.5 * tf.square(taps / sigma_px))
    kernel = tf.tensordot(kernel_1d, kernel_1d, axes=0)[:, :, None, None]
    weight = tf.cast(valid, tf.float32)
    blurred = tf.nn.conv2d(tf.where(valid, depth_m, 0.0), kernel, 1, "SAME")
    norm = tf.nn.conv2d(weight, kernel, 1, "SAME")
    return tf.math.divide_no_nan(blurred, norm)


def camera_facing_cosine(depth_m, valid):
    """cos(angle between the surface normal and the optical axis), [N, H, W, 1], from central differences of the
    smoothed depth.

    A slope dz/du (metres per pixel) is scale-free once divided by a pixel's metric size z / f. Where a neighbour
    is invalid the slope along that axis counts as 0 (holes do not draw edges).
    """
    focal_px = SHADING_FOCAL_PER_WIDTH * tf.cast(tf.shape(depth_m)[2], tf.float32)
    depth_m = smooth_valid_depth(depth_m, valid)
    valid = tf.cast(valid, tf.float32)
    paddings = [[0, 0], [1, 1], [1, 1], [0, 0]]
    z, ok = tf.pad(depth_m, paddings, mode="SYMMETRIC"), tf.pad(valid, paddings, mode="SYMMETRIC")
    both_x = ok[:, 1:-1, 2:] * ok[:, 1:-1, :-2] * valid
    both_y = ok[:, 2:, 1:-1] * ok[:, :-2, 1:-1] * valid
    scale = focal_px / tf.maximum(depth_m, 1e-3) / 2.0
    slope_x = (z[:, 1:-1, 2:] - z[:, 1:-1, :-2]) * scale * both_x
    slope_y = (z[:, 2:, 1:-1] - z[:, :-2, 1:-1]) * scale * both_y
    return tf.math.rsqrt(1.0 + tf.square(slope_x) + tf.square(slope_y))


@keras.saving.register_keras_serializable(package="pose_tl")
class DepthPreprocessing(keras.layers.Layer):
    """Clips depth to [min_m, max_m] and maps it to VGG's caffe input range; invalid pixels -> 0.

    Accepts float metres or integer millimetres, shape [N, H, W, 1]. `encoding`: "grey" (brightness from depth)
    or "shaded" (that brightness times the surface's camera-facing cosine).
    """

    def __init__(self, min_m=0.5, max_m=4.5, encoding="grey", **kwargs):
        super().__init__(**kwargs)
        if not 0.0 < min_m < max_m:
            raise ValueError(f"`min_m` and `max_m` must satisfy 0 < min_m < max_m. Received: {min_m}, {max_m}")
        if encoding not in ENCODINGS:
            raise ValueError(f"`encoding` must be one of {ENCODINGS}. Received: {encoding!r}")
        self.min_m = float(min_m)
        self.max_m = float(max_m)
        self.encoding = encoding

    def call(self, depth):
        depth_m = depth_to_metres(depth)
        valid = valid_depth_mask(depth_m)
        clipped = tf.clip_by_value(tf.where(valid, depth_m, self.max_m), self.min_m, self.max_m)
        grey = 255.0 * (self.max_m - clipped) / (self.max_m - self.min_m)
        if self.encoding == "shaded":
            grey = grey * camera_facing_cosine(depth_m, valid)
        return tf.where(valid, grey - IMAGENET_CAFFE_MEAN_GREY, tf.zeros_like(grey))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "min_m": self.min_m, "max_m": self.max_m, "encoding": self.encoding}
