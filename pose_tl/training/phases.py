"""Multi-phase fine-tuning: phase 1 trains the head, later phases unfreeze blocks at a lower learning rate.

Each phase is one Keras `fit` with its own trainable set and optimizer; after every epoch the resume state is
saved, so `--resume` continues from the last completed epoch of the phase it was in.
"""

import contextlib
from pathlib import Path

import keras

from pose_tl.backbones.freezing import set_trainable_layers
from pose_tl.models.classifier import PROBABILITIES
from pose_tl.training.conv_filter_gradients import matmul_filter_gradients, matmul_filter_gradients_apply
from pose_tl.training.divergence import StopOnNonFiniteLoss
from pose_tl.training.feature_cache import is_head_only
from pose_tl.training.losses import ForegroundWeightedMSE, HeatmapFocalLoss, MaskedJointDepthL1
from pose_tl.training.optimizers import build_optimizer, fused_updates_apply
from pose_tl.training.resume import ResumeState, SaveBestModel, SaveResumeState, restore_missing_log_row


def compile_classifier(model, optimizer):
    model.compile(optimizer=optimizer,
                  loss={PROBABILITIES: keras.losses.SparseCategoricalCrossentropy()},
                  metrics={PROBABILITIES: [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]})


def compile_pose_model(model, optimizer, heatmap_loss="weighted_mse", foreground_weight=10.0):
    """Every stage's heatmaps and PAFs supervised (intermediate supervision, as OpenPose): PAFs by foreground-weighted
    L2, heatmaps by that or a focal loss (`PoseHeadConfig.heatmap_loss`); masked L1 on the joint depths."""
    from pose_tl.models.pose_model import HEATMAPS, JOINT_DEPTH

    def loss_of(name):
        if name == JOINT_DEPTH:
            return MaskedJointDepthL1()
        if name.startswith(HEATMAPS) and heatmap_loss == "focal":
            return HeatmapFocalLoss()
        return ForegroundWeightedMSE(foreground_weight)

    model.compile(optimizer=optimizer, loss={name: loss_of(name) for name in model.output_names})


def training_kernels(model, train_config):
    """The context to `fit` `model` in: matmul filter gradients with `train.kernels: auto`, else nothing."""
    if train_config.kernels == "auto":
        return matmul_filter_gradients(model)
    return contextlib.nullcontext(0)


def describe_training_kernels(train_config, policy):
    """What `train.kernels` does in this run, for the log: the parts that apply to its optimizer, precision, devices."""
    if train_config.kernels == "keras":
        return "Keras' and TensorFlow's own ops"
    parts = []
    if fused_updates_apply(train_config):
        parts.append(f"fused {train_config.optimizer} updates")
    if matmul_filter_gradients_apply(policy):
        parts.append("matmul filter gradients for trainable convolutions")
    return "; ".join(parts) or "nothing applies to this optimizer, precision and device"


def phase_log_path(out_dir, phase_index, phase):
    return Path(out_dir) / "logs" / f"{phase_index}_{phase.name}.csv"


def phase_callbacks(train_config, phase, phase_index, out_dir, state, best, has_validation, divergence, model):
    logs = Path(out_dir) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    best.whole_model = model
    callbacks = [
        divergence,  # first, so no later callback saves a diverged model
        SaveResumeState(state, phase_index, model),  # before the CSV row: a logged epoch is always resumable
        keras.callbacks.CSVLogger(str(phase_log_path(out_dir, phase_index, phase)), append=True),
        best,
    ]
    if train_config.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(str(logs / "tensorboard" / phase.name), write_graph=False))
    if train_config.early_stopping_patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss" if has_validation else "loss",
                                                       patience=train_config.early_stopping_patience))
    return callbacks


def train_phases(model, backbone, train_ds, val_ds, train_config, *, frozen_layers, learned_adapter,
                 steps_per_epoch, out_dir, resume=False, verbose="auto", compile_model=compile_classifier,
                 feature_cache=None):
    """Run every phase of `train_config`, or the remaining ones when resuming.

    With a `FrozenFeatureCache`, head-only phases fit the head on cached backbone features.

    Returns:
        A list of `{"phase": name, "history": {metric: [per epoch]}}`, one per phase run in this call.
    """
    state = ResumeState(Path(out_dir) / "checkpoints" / "resume")
    saved = state.load() if resume else None
    if saved is not None:
        state.restore_weights(model, saved)
    best = SaveBestModel(Path(out_dir) / "checkpoints" / "best.keras",
                         monitor="val_loss" if val_ds is not None else "loss")
    histories = []
    for index, phase in enumerate(train_config.phases):
        initial_epoch = 0
        if saved is not None:
            if index < saved["phase_index"]:
                continue
            if index == saved["phase_index"]:
                initial_epoch = saved["epochs_done"]
                restore_missing_log_row(phase_log_path(out_dir, index, phase), initial_epoch - 1,
                                        saved.get("last_epoch_logs"))
        if initial_epoch >= phase.epochs:
            continue
        set_trainable_layers(backbone, frozen_layers=frozen_layers, unfreeze=phase.unfreeze,
                             learned_adapter=learned_adapter)
        fit_model, phase_train, phase_val = model, train_ds, val_ds
        if feature_cache is not None and is_head_only(phase):
            fit_model, phase_train, phase_val = feature_cache.phase_data(index)
        optimizer = build_optimizer(train_config, phase, steps_per_epoch)
        compile_model(fit_model, optimizer)
        if initial_epoch:
            optimizer.build(fit_model.trainable_variables)
            optimizer.iterations.assign(initial_epoch * steps_per_epoch)  # schedules continue, not restart
        divergence = StopOnNonFiniteLoss(phase.name, f"train.phases[{index}]")
        with training_kernels(fit_model, train_config):
            history = fit_model.fit(phase_train, validation_data=phase_val, epochs=phase.epochs,
                                    initial_epoch=initial_epoch,
                                    callbacks=phase_callbacks(train_config, phase, index, out_dir, state, best,
                                                              val_ds is not None, divergence, model),
                                    verbose=verbose)
        divergence.raise_if_diverged()
        state.save(model, index, phase.epochs)  # early stopping ends the phase for good, resume included
        histories.append({"phase": phase.name, "history": history.history})
    return histories


def compile_detector(model, optimizer):
    """RPN objectness + smooth L1 and box-head cross-entropy + smooth L1, equally weighted (Faster R-CNN)."""
    from pose_tl.models.detector import BOX_DELTAS, CLASS_LOGITS, RPN_DELTAS, RPN_OBJECTNESS
    from pose_tl.training.detection_losses import ObjectnessLoss, RoiBoxLoss, RoiClassLoss, RpnBoxLoss

    model.compile(optimizer=optimizer, loss={RPN_OBJECTNESS: ObjectnessLoss(), RPN_DELTAS: RpnBoxLoss(),
                                             CLASS_LOGITS: RoiClassLoss(), BOX_DELTAS: RoiBoxLoss()})
