"""Batch normalisation through TensorFlow's fused kernel.

Keras 3 normalises in separate element-wise ops, in float32 even under mixed bfloat16: on the joint refiner's small
crops (many channels, few pixels of work per byte) that was ~40 % of a training step on this 2-core CPU and ~40 % of
its inference. TensorFlow's `FusedBatchNormV3` does the same arithmetic in one pass over bfloat16 activations
(statistics in float32). Same variables, same results within rounding (tests), so checkpoints of either load into
the other. Falls back to Keras's path where the kernel does not apply (masks, renorm, another axis or rank).
"""

import keras

FUSED_DTYPES = ("float32", "bfloat16", "float16")


@keras.saving.register_keras_serializable(package="pose_tl")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` over the last axis of 4-D inputs, through `tf.nn.fused_batch_norm`."""

    def _fusable(self, inputs, mask):
        return (keras.backend.backend() == "tensorflow" and mask is None and not self.renorm
                and len(inputs.shape) == 4 and self.axis in (-1, 3) and self.center and self.scale
                and self.compute_dtype in FUSED_DTYPES)

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        x = tf.cast(inputs, self.compute_dtype)
        gamma, beta = (tf.cast(tf.convert_to_tensor(v), tf.float32) for v in (self.gamma, self.beta))
        if not (training and self.trainable):
            outputs, _, _ = tf.compat.v1.nn.fused_batch_norm(
                x, gamma, beta, mean=tf.convert_to_tensor(self.moving_mean),
                variance=tf.convert_to_tensor(self.moving_variance), epsilon=self.epsilon, is_training=False)
            return outputs
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(x, gamma, beta, epsilon=self.epsilon,
                                                                   is_training=True)
        # The kernel returns the unbiased variance; Keras's moving variance averages the biased one.
        count = tf.cast(tf.reduce_prod(tf.shape(x)[:-1]), tf.float32)
        variance = variance * tf.maximum(count - 1.0, 0.0) / tf.maximum(count, 1.0)
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return outputs
