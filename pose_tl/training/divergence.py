"""Stop a run whose loss becomes NaN or infinite, and say where and at which learning rate."""

import math

import keras

from pose_tl.errors import PoseTLError


class TrainingDivergedError(PoseTLError):
    """The loss stopped being finite; the run's last good state is kept for `--resume`."""


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Like Keras' TerminateOnNaN, but remembers the phase, epoch, step and learning rate for the error."""

    def __init__(self, phase_name, phase_field):
        super().__init__()
        self.phase_name = phase_name
        self.phase_field = phase_field
        self.diverged_at = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(loss)):
            return
        optimizer = self.model.optimizer
        self.diverged_at = {"loss": float(loss), "epoch": self._epoch + 1, "step": batch + 1,
                            "global_step": int(optimizer.iterations.numpy()),
                            "learning_rate": float(keras.ops.convert_to_numpy(optimizer.learning_rate))}
        self.model.stop_training = True

    def raise_if_diverged(self):
        if self.diverged_at is None:
            return
        at = self.diverged_at
        raise TrainingDivergedError(
            f"loss became {at['loss']} in phase {self.phase_name!r}, epoch {at['epoch']}, step {at['step']} "
            f"(optimizer step {at['global_step']}) at learning rate {at['learning_rate']:.3g}; the last completed "
            f"epoch is kept (--resume). Lower {self.phase_field}.learning_rate or set train.clip_gradient_norm")


def finite_loss(logs):
    loss = (logs or {}).get("loss")
    return loss is None or math.isfinite(float(loss))
