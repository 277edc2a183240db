"""Losses of the detector. Every target carries a weight channel (0 = not sampled); each loss is the weighted mean
over the sampled anchors or RoIs of an image, so images with few positives are not drowned by padding."""

import keras
from keras import ops


def _weighted_mean(values, weights):
    return ops.sum(values * weights, axis=-1) / ops.maximum(ops.sum(weights, axis=-1), 1.0)


def smooth_l1(x, beta=1.0):
    x = ops.abs(x)
    return ops.where(x < beta, 0.5 * x * x / beta, x - 0.5 * beta)


@keras.saving.register_keras_serializable(package="pose_tl")
class ObjectnessLoss(keras.losses.Loss):
    """Sigmoid cross-entropy of RPN logits [B, K]; y_true [B, K, 2] = (label, weight)."""

    def call(self, y_true, y_pred):
        y_pred = ops.cast(y_pred, "float32")
        labels, weights = y_true[..., 0], y_true[..., 1]
        losses = ops.maximum(y_pred, 0.0) - y_pred * labels + ops.log1p(ops.exp(-ops.abs(y_pred)))
        return _weighted_mean(losses, weights)


@keras.saving.register_keras_serializable(package="pose_tl")
class RpnBoxLoss(keras.losses.Loss):
    """Smooth L1 of RPN deltas [B, K, 4] on positive anchors; y_true [B, K, 5] = (4 deltas, weight)."""

    def call(self, y_true, y_pred):
        errors = ops.sum(smooth_l1(ops.cast(y_pred, "float32") - y_true[..., :4]), axis=-1)
        return _weighted_mean(errors, y_true[..., 4])


@keras.saving.register_keras_serializable(package="pose_tl")
class RoiClassLoss(keras.losses.Loss):
    """Softmax cross-entropy of the box head's logits [B, R, C+1]; y_true [B, R, 2] = (class id, weight)."""

    def call(self, y_true, y_pred):
        classes = ops.cast(y_true[..., 0], "int32")
        losses = keras.losses.sparse_categorical_crossentropy(classes, ops.cast(y_pred, "float32"), from_logits=True)
        return _weighted_mean(losses, y_true[..., 1])


@keras.saving.register_keras_serializable(package="pose_tl")
class RoiBoxLoss(keras.losses.Loss):
    """Smooth L1 of the true class's deltas from [B, R, (C+1) * 4]; y_true [B, R, 6] = (4 deltas, class id, weight)."""

    def call(self, y_true, y_pred):
        y_pred = ops.cast(y_pred, "float32")
        per_class = ops.reshape(y_pred, (ops.shape(y_pred)[0], ops.shape(y_pred)[1], -1, 4))
        slot = ops.one_hot(ops.cast(y_true[..., 4], "int32"), ops.shape(per_class)[2])  # [B, R, C+1]
        chosen = ops.sum(per_class * slot[..., None], axis=2)
        errors = ops.sum(smooth_l1(chosen - y_true[..., :4]), axis=-1)
        return _weighted_mean(errors, y_true[..., 5])
