"""Detection heads: the region proposal network, RoIAlign on the shared features, and the Fast R-CNN box head."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="pose_tl")
class RpnHead(keras.layers.Layer):
    """Features [B, h, w, C] -> objectness logits [B, h*w*A] and scaled box deltas [B, h*w*A, 4] (cell-major)."""

    def __init__(self, anchors_per_cell, channels=256, **kwargs):
        super().__init__(**kwargs)
        self.anchors_per_cell = int(anchors_per_cell)
        self.channels = int(channels)
        self.conv = keras.layers.Conv2D(self.channels, 3, padding="same", activation="relu", name="rpn_conv")
        self.objectness = keras.layers.Conv2D(self.anchors_per_cell, 1, dtype="float32", name="rpn_objectness")
        self.deltas = keras.layers.Conv2D(4 * self.anchors_per_cell, 1, dtype="float32", name="rpn_deltas",
                                          kernel_initializer=keras.initializers.RandomNormal(stddev=0.001))

    def build(self, input_shape):
        self.conv.build(input_shape)
        hidden = tuple(input_shape[:-1]) + (self.channels,)
        self.objectness.build(hidden)
        self.deltas.build(hidden)

    def call(self, features):
        x = self.conv(features)
        batch = tf.shape(features)[0]
        return (tf.reshape(self.objectness(x), [batch, -1]), tf.reshape(self.deltas(x), [batch, -1, 4]))

    def get_config(self):
        return {**super().get_config(), "anchors_per_cell": self.anchors_per_cell, "channels": self.channels}


@keras.saving.register_keras_serializable(package="pose_tl")
class RoiAlign(keras.layers.Layer):
    """(features [B, h, w, C], rois [B, R, 4] normalised) -> [B, R, size, size, C] by bilinear sampling.

    `tf.image.crop_and_resize` samples 2x the output grid, then 2x2 average pooling: RoIAlign's four samples per bin
    (He et al., ICCV 2017), with no quantisation of the box to the feature grid.
    """

    def __init__(self, size=7, **kwargs):
        super().__init__(**kwargs)
        self.size = int(size)

    def call(self, inputs):
        features, rois = inputs
        batch, count = tf.shape(rois)[0], tf.shape(rois)[1]
        flat = tf.reshape(tf.cast(rois, tf.float32), [-1, 4])
        box_indices = tf.repeat(tf.range(batch), count)
        sampled = tf.image.crop_and_resize(tf.cast(features, tf.float32), flat, box_indices,
                                           [2 * self.size, 2 * self.size])
        pooled = tf.nn.avg_pool2d(sampled, 2, 2, "VALID")
        channels = features.shape[-1]
        return tf.cast(tf.reshape(pooled, [batch, count, self.size, self.size, channels]), self.compute_dtype)

    def compute_output_shape(self, input_shapes):
        features, rois = input_shapes
        return (rois[0], rois[1], self.size, self.size, features[-1])

    def get_config(self):
        return {**super().get_config(), "size": self.size}


@keras.saving.register_keras_serializable(package="pose_tl")
class BoxHead(keras.layers.Layer):
    """RoI features [B, R, s, s, C] -> two FC layers -> class logits [B, R, C+1] and deltas [B, R, (C+1) * 4].

    Index 0 is background; `class_names` (carried in the config, so a checkpoint knows them) are 1..C.
    """

    def __init__(self, class_names, units=512, **kwargs):
        super().__init__(**kwargs)
        self.class_names = [str(name) for name in class_names]
        self.num_classes = len(self.class_names)
        self.units = int(units)
        self.fc1 = keras.layers.Dense(self.units, activation="relu", name="fc1")
        self.fc2 = keras.layers.Dense(self.units, activation="relu", name="fc2")
        self.logits = keras.layers.Dense(self.num_classes + 1, dtype="float32", name="class_logits")
        self.deltas = keras.layers.Dense(4 * (self.num_classes + 1), dtype="float32", name="box_deltas",
                                         kernel_initializer=keras.initializers.RandomNormal(stddev=0.001))

    def build(self, input_shape):
        flat = input_shape[2] * input_shape[3] * input_shape[4]
        self.fc1.build((None, flat))
        self.fc2.build((None, self.units))
        self.logits.build((None, self.units))
        self.deltas.build((None, self.units))

    def call(self, roi_features):
        batch, count = tf.shape(roi_features)[0], tf.shape(roi_features)[1]
        flat_size = roi_features.shape[2] * roi_features.shape[3] * roi_features.shape[4]
        x = self.fc2(self.fc1(tf.reshape(roi_features, [batch * count, flat_size])))
        logits = tf.reshape(self.logits(x), [batch, count, self.num_classes + 1])
        deltas = tf.reshape(self.deltas(x), [batch, count, 4 * (self.num_classes + 1)])
        return logits, deltas

    def get_config(self):
        return {**super().get_config(), "class_names": self.class_names, "units": self.units}
