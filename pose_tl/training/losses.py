"""Losses of the pose head."""

import keras


@keras.saving.register_keras_serializable(package="pose_tl")
class ForegroundWeightedMSE(keras.losses.Loss):
    """Squared error weighted by 1 + `foreground_weight` * |target|.

    Heatmaps and PAFs are almost all zero: plain L2 is minimised early by predicting zeros everywhere. Weighting the
    pixels near joints and on limbs keeps their gradient from being drowned by the background.
    """

    def __init__(self, foreground_weight=10.0, name="foreground_weighted_mse", **kwargs):
        super().__init__(name=name, **kwargs)
        self.foreground_weight = float(foreground_weight)

    def call(self, y_true, y_pred):
        y_true = keras.ops.cast(y_true, y_pred.dtype)
        weight = 1.0 + self.foreground_weight * keras.ops.abs(y_true)
        return keras.ops.mean(weight * keras.ops.square(y_pred - y_true), axis=-1)

    def get_config(self):
        return {**super().get_config(), "foreground_weight": self.foreground_weight}


@keras.saving.register_keras_serializable(package="pose_tl")
class HeatmapFocalLoss(keras.losses.Loss):
    """Binary cross-entropy of sigmoid heatmaps against Gaussian targets, times |target - prediction|^gamma.

    Near a scoring rule: for a pixel that is a joint in 20 % of look-alike frames, the best prediction is 0.37 (the
    focal term leans towards 1/2), where weighted L2 (weight 10) inflates it to 0.73 and so makes strong false peaks.
    The focal term keeps the many easy background pixels from drowning the joints. Summed over the joints of a
    pixel, and doubled, so that its gradient at a half-learnt peak is near weighted L2's.
    """

    def __init__(self, gamma=2.0, name="heatmap_focal_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.gamma = float(gamma)

    def call(self, y_true, y_pred):
        y_true = keras.ops.cast(y_true, "float32")
        p = keras.ops.clip(keras.ops.cast(y_pred, "float32"), 1e-4, 1.0 - 1e-4)
        cross_entropy = -(y_true * keras.ops.log(p) + (1.0 - y_true) * keras.ops.log(1.0 - p))
        return 2.0 * keras.ops.sum(keras.ops.abs(y_true - p) ** self.gamma * cross_entropy, axis=-1)

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma}


@keras.saving.register_keras_serializable(package="pose_tl")
class MaskedJointDepthL1(keras.losses.Loss):
    """Per pixel, the L1 error of the joint depths summed over the joints supervised there.

    y_true [..., 2J] holds the targets then their weights (`joint_depth_targets`); L1, because a few joints with a
    wrong depth label (a hole's edge) should not pull the rest.
    """

    def __init__(self, name="masked_joint_depth_l1", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        joints = keras.ops.shape(y_pred)[-1]
        y_true = keras.ops.cast(y_true, y_pred.dtype)
        target, weight = y_true[..., :joints], y_true[..., joints:]
        return keras.ops.sum(weight * keras.ops.abs(y_pred - target), axis=-1)


@keras.saving.register_keras_serializable(package="pose_tl")
class MaskedFacingCrossEntropy(keras.losses.Loss):
    """Binary cross-entropy of a logit that the person faces the camera; targets 1 (faces it), 0 (faces away) or -1
    (side-on or unknown: no loss), as `training.refiner.refiner_examples` labels them."""

    def __init__(self, name="masked_facing_cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)

    def call(self, y_true, y_pred):
        y_true = keras.ops.cast(y_true, y_pred.dtype)
        known = keras.ops.cast(y_true >= 0.0, y_pred.dtype)
        loss = keras.ops.binary_crossentropy(keras.ops.maximum(y_true, 0.0), y_pred, from_logits=True)
        return keras.ops.sum(known * loss, axis=-1)
