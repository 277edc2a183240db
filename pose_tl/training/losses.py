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
