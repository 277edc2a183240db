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
