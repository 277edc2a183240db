"""An optimizer with the phase's learning-rate schedule, from `TrainConfig` and `PhaseConfig`."""

import keras

from pose_tl.training.fused_adam import FusedAdam, FusedAdamW


def build_learning_rate(phase, steps_per_epoch):
    """Constant, cosine decay over the phase, or exponential decay by `decay_rate` per epoch."""
    total_steps = max(1, phase.epochs * steps_per_epoch)
    if phase.schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(phase.learning_rate, decay_steps=total_steps)
    if phase.schedule == "exponential":
        return keras.optimizers.schedules.ExponentialDecay(phase.learning_rate, decay_steps=max(1, steps_per_epoch),
                                                           decay_rate=phase.decay_rate)
    return phase.learning_rate


def fused_updates_apply(train_config):
    """Whether `build_optimizer`'s updates are fused: Adam or AdamW with `train.kernels: auto`, outside a
    distribution strategy (where `FusedAdam` takes Keras' own update)."""
    return (train_config.kernels == "auto" and train_config.optimizer in ("adam", "adamw")
            and train_config.distribute == "none")


def build_optimizer(train_config, phase, steps_per_epoch):
    learning_rate = build_learning_rate(phase, steps_per_epoch)
    clip = {"global_clipnorm": train_config.clip_gradient_norm} if train_config.clip_gradient_norm else {}
    if train_config.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=train_config.momentum, **clip)
    fused = train_config.kernels == "auto"  # one fused update op per variable instead of ~a dozen
    if train_config.optimizer == "adamw":
        adamw = FusedAdamW if fused else keras.optimizers.AdamW
        return adamw(learning_rate, weight_decay=train_config.weight_decay, **clip)
    return (FusedAdam if fused else keras.optimizers.Adam)(learning_rate, **clip)
