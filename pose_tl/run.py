"""The one place that orders a run's steps: data -> model -> fit (phases) -> evaluate -> export.

The CLI calls these functions; each returns plain data describing what it wrote.
"""

import dataclasses
import functools
import json
import math
from pathlib import Path

import numpy as np

from pose_tl.atomic import atomic_path, write_json_atomic
from pose_tl.errors import DataError
from pose_tl.output_dir import prepare_output_dir

FINAL_MODEL = "checkpoints/final.keras"
SAVED_MODEL = "saved_model"
EVAL_DIR = "eval"


def default_output_dir(recipe):
    return Path(recipe.output_dir) if recipe.output_dir else Path("runs") / Path(recipe.source).stem


def train(recipe, out_dir=None, resume=False, export=None, command="train", verbose="auto", log=print):
    """Train `recipe`'s model, then evaluate it on the validation split and export a SavedModel.

    With `train.distribute: multi_worker` every worker calls this; only the chief writes `out_dir`.

    Returns:
        A dict with the paths written, the precision used, the number of replicas and the validation metrics.
    """
    from pose_tl.config.validation import check_classification_data
    from pose_tl.training import distribution

    check_classification_data(recipe)
    if recipe.train.deterministic:
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()  # for the rest of the process: TensorFlow cannot undo it
    strategy = distribution.build_strategy(recipe.train.distribute, recipe.source)  # first: multi_worker sets TF up
    distribution.check_global_batch(recipe.data.batch_size, strategy, recipe.source)
    with distribution.worker_output_dir(strategy, out_dir or default_output_dir(recipe), resume) as worker_dir:
        return _train_on_this_worker(recipe, strategy, worker_dir, resume, export, command, verbose, log)


def _train_on_this_worker(recipe, strategy, out_dir, resume, export, command, verbose, log):
    """`train` in `out_dir` (this worker's folder): data, then model, fit, evaluate and export under `strategy`."""
    import keras

    from pose_tl.run_record import write_run_record
    from pose_tl.training import distribution
    from pose_tl.training.phases import describe_training_kernels
    from pose_tl.training.precision import dtype_policy, resolve_precision

    out_dir = prepare_output_dir(out_dir, resume)
    write_run_record(out_dir, recipe, command)
    keras.utils.set_random_seed(recipe.seed)
    load_data, fit = _task_steps(recipe.task)
    data = load_data(recipe)
    # Again: preparing data (rendering a dataset the first time) draws from the global generators, and the model's
    # initialisation must not depend on whether the data was already cached.
    keras.utils.set_random_seed(recipe.seed)
    if data.datasets["train"] is None:
        raise DataError(f"{recipe.source}: the training split is empty")
    if recipe.train.distribute == "multi_worker":
        data.datasets = distribution.shard_by_element(data.datasets)
    policy = resolve_precision(recipe.train.precision)
    log(f"precision: {policy} (train.precision: {recipe.train.precision})")
    log(f"kernels: {recipe.train.kernels} ({describe_training_kernels(recipe.train, policy)})")
    log(f"distribute: {distribution.describe(strategy, recipe.train.distribute)}")  # after the checks
    if recipe.train.deterministic:
        log("deterministic: TensorFlow's op determinism is on (train.deterministic)")
    with strategy.scope(), dtype_policy(policy):  # variables made in the scope are mirrored on every replica
        result = fit(recipe, data, out_dir, resume, export, verbose, log)
    result["precision"] = policy
    result["replicas"] = strategy.num_replicas_in_sync
    return result


def _task_steps(task):
    """(load_data(recipe) -> splits, fit(recipe, data, out_dir, resume, export, verbose, log) -> result) of a task."""
    if task == "pose":
        from pose_tl.data.pose_data import pose_splits

        def pose_data(recipe):
            return pose_splits(recipe.data, recipe.model.pose, seed=recipe.seed, input_size=recipe.model.input_size)

        return pose_data, _fit_pose
    if task == "detection":
        from pose_tl import run_detection

        def fit_detector(recipe, data, out_dir, resume, export, verbose, log):
            return run_detection.fit(recipe, data, out_dir, resume, export, verbose, _fit_and_save)

        return run_detection.detection_data, fit_detector
    from pose_tl.data.classification_data import classification_splits

    def classification_data(recipe):
        return classification_splits(recipe.data, seed=recipe.seed, input_size=recipe.model.input_size)

    return classification_data, _fit_evaluate_export


def _fit_pose(recipe, data, out_dir, resume, export, verbose, log):
    """Train the pose model, evaluate it, and export it with decoding (people, 3D skeletons) inside."""
    import tensorflow as tf

    from pose_tl import run_pose
    from pose_tl.data.people.skeleton import NUM_JOINTS, PAF_LIMBS
    from pose_tl.export.pose_saved_model import export_pose_model, make_pose_predictor, used_facing_classifier
    from pose_tl.models.factory import build_pose_model
    from pose_tl.training.phases import compile_pose_model

    model = build_pose_model(recipe.model, NUM_JOINTS, len(PAF_LIMBS))
    compile_model = functools.partial(compile_pose_model, heatmap_loss=recipe.model.pose.heatmap_loss,
                                      foreground_weight=recipe.model.pose.foreground_weight)
    result = _fit_and_save(recipe, model, model.get_layer(f"{recipe.model.backbone.name}_depth_pyramid"), data,
                           out_dir, resume, verbose, compile_model)

    bone_lengths = run_pose.training_bone_lengths(recipe)
    write_json_atomic(out_dir / "bone_lengths.json", bone_lengths)
    crop_models = {
        "facing_model": run_pose.fit_facing_classifier(recipe, out_dir / FINAL_MODEL, out_dir / "logs" / "facing.json",
                                                       log),
        "refiner_model": run_pose.fit_joint_refiner(recipe, out_dir / FINAL_MODEL, out_dir / "logs" / "refiner.json",
                                                    log)}
    if crop_models["facing_model"] is not None and used_facing_classifier(**crop_models) is None:
        log("facing classifier: not used (the joint refiner answers which way people face, model.pose.refiner_facing)")
    if data.sizes["validation"]:
        predict = tf.function(make_pose_predictor(model, output_stride=recipe.model.pose.output_stride,
                                                  bone_lengths=bone_lengths, flip_test=recipe.model.pose.flip_test,
                                                  refine_passes=recipe.model.pose.refine_passes,
                                                  compiled_decoding=recipe.model.pose.xla_decoding, **crop_models))
        result.update(run_pose.evaluate_people(predict, recipe, "validation", out_dir / EVAL_DIR))
    if recipe.train.export_at_end if export is None else export:
        result["saved_model"] = str(export_pose_model(model, out_dir / SAVED_MODEL,
                                                      output_stride=recipe.model.pose.output_stride,
                                                      bone_lengths=bone_lengths, flip_test=recipe.model.pose.flip_test,
                                                      refine_passes=recipe.model.pose.refine_passes,
                                                      xla_decoding=recipe.model.pose.xla_decoding, **crop_models))
    return result


def _fit_evaluate_export(recipe, data, out_dir, resume, export, verbose, log=print):
    from pose_tl.models.classifier import backbone_of
    from pose_tl.models.factory import build_model
    from pose_tl.training.phases import compile_classifier

    val_ds = data.datasets["validation"]
    model = build_model(recipe.model, data.class_names)
    write_json_atomic(out_dir / "class_names.json", data.class_names)
    backbone = backbone_of(model)
    cache = _feature_cache(recipe, model, backbone, data, out_dir, log)
    result = _fit_and_save(recipe, model, backbone, data, out_dir, resume, verbose, compile_classifier, cache)
    if val_ds is not None:
        result.update(_evaluate_dataset(model, val_ds, data.class_names, out_dir / EVAL_DIR))
    if recipe.train.export_at_end if export is None else export:
        from pose_tl.export.saved_model import export_classifier

        result["saved_model"] = str(export_classifier(model, out_dir / SAVED_MODEL))
    return result


def _feature_cache(recipe, model, backbone, data, out_dir, log=print):
    """A `FrozenFeatureCache` when a head-only phase can use one (logged either way), else None."""
    from pose_tl.data.classification_data import classification_splits
    from pose_tl.training.feature_cache import FrozenFeatureCache, cache_unavailable_reason, is_head_only

    if not any(is_head_only(phase) for phase in recipe.train.phases):
        return None
    reason = cache_unavailable_reason(recipe)
    if reason is not None:
        log(f"feature cache: not used ({reason})")
        return None
    frames = classification_splits(recipe.data, seed=recipe.seed, input_size=recipe.model.input_size,
                                   splits=("train",), for_training=False, verify=False).datasets  # checked in train
    frames["validation"] = data.datasets["validation"]
    fingerprint = json.dumps([dataclasses.asdict(recipe.data), dataclasses.asdict(recipe.model), recipe.seed],
                             sort_keys=True, default=str)
    cache = FrozenFeatureCache(model, backbone, frames, storage=recipe.train.feature_cache,
                               folder=out_dir / "cache", seed=recipe.seed,
                               shuffle_buffer=recipe.data.shuffle_buffer, batch_size=recipe.data.batch_size,
                               num_train=data.sizes["train"], fingerprint=fingerprint)
    size = f"~{cache.estimated_bytes / 2**20:.0f} MiB"
    where = "disk (over the memory limit)" if cache.storage != recipe.train.feature_cache else cache.storage
    log(f"feature cache: {where}, {size} (head-only phases train on frozen backbone features)")
    return cache


def _fit_and_save(recipe, model, backbone, data, out_dir, resume, verbose, compile_model, feature_cache=None):
    """Run every phase, then save `checkpoints/final.keras` atomically; returns the run's paths and sizes."""
    from pose_tl.config.validation import frozen_layer_names
    from pose_tl.training.phases import train_phases

    histories = train_phases(
        model, backbone, data.datasets["train"], data.datasets["validation"], recipe.train,
        frozen_layers=frozen_layer_names(recipe.model.backbone),
        learned_adapter=recipe.model.backbone.depth_adapter == "learned",
        steps_per_epoch=math.ceil(data.sizes["train"] / recipe.data.batch_size), out_dir=out_dir, resume=resume,
        verbose=verbose, compile_model=compile_model, feature_cache=feature_cache)
    write_json_atomic(out_dir / "logs" / "history.json", histories)
    final = out_dir / FINAL_MODEL
    with atomic_path(final) as tmp:
        model.save(str(tmp))
    return {"output_dir": str(out_dir), "checkpoint": str(final), "train_samples": data.sizes["train"],
            "validation_samples": data.sizes["validation"]}


def _evaluate_dataset(model, dataset, class_names, eval_dir, predict=None):
    """Predict every batch, then write metrics.json, confusion_matrix.txt and confusion_matrix.png."""
    from pose_tl.evaluation.classification_metrics import classification_report, format_report
    from pose_tl.evaluation.pictures import render_confusion_matrix
    from pose_tl.models.classifier import PROBABILITIES

    y_true, y_pred = [], []
    for frames, labels in dataset:
        if predict is None:
            probabilities = model(frames, training=False)[PROBABILITIES]
        else:
            probabilities = predict(frames.numpy()[..., 0])
        y_pred.append(np.argmax(np.asarray(probabilities), axis=-1))
        y_true.append(labels[PROBABILITIES].numpy())
    report = classification_report(np.concatenate(y_true), np.concatenate(y_pred), class_names)
    eval_dir = Path(eval_dir)
    eval_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(eval_dir / "metrics.json", report)
    (eval_dir / "confusion_matrix.txt").write_text(format_report(report))
    render_confusion_matrix(report["confusion_matrix"], class_names, eval_dir / "confusion_matrix.png")
    return {"accuracy": report["accuracy"], "report_text": format_report(report), "eval_dir": str(eval_dir)}


def evaluate(recipe, model_path, out_dir=None, split="validation", command="evaluate"):
    """Evaluate a `.keras` checkpoint or SavedModel on the recipe's data split; writes reports into `out_dir`."""
    from pose_tl.config.validation import check_classification_data
    from pose_tl.data.classification_data import classification_splits
    from pose_tl.export.loading import load_classifier
    from pose_tl.run_record import write_run_record

    out_dir = Path(out_dir) if out_dir else Path(model_path).parent / f"{EVAL_DIR}_{split}"
    if recipe.task == "pose":
        from pose_tl import run_pose

        return run_pose.evaluate(recipe, model_path, out_dir, split, command)
    if recipe.task == "detection":
        from pose_tl import run_detection

        return run_detection.evaluate(recipe, model_path, out_dir, split, command)
    check_classification_data(recipe)
    classifier = load_classifier(model_path)
    data = classification_splits(recipe.data, seed=recipe.seed, input_size=recipe.model.input_size, splits=(split,),
                                 for_training=False)
    if data.datasets[split] is None:
        raise DataError(f"{recipe.source}: the {split} split is empty")
    if list(data.class_names) != list(classifier.class_names):
        raise DataError(f"{model_path}: model classes {classifier.class_names} disagree with the data's "
                        f"{data.class_names}")
    out_dir = prepare_output_dir(out_dir, allow_previous_run=True)
    write_run_record(out_dir, recipe, command)
    return _evaluate_dataset(None, data.datasets[split], data.class_names, out_dir, predict=classifier.predict)


def export(checkpoint, out_dir, recipe=None, export_format="saved_model"):
    """Export a `.keras` checkpoint (classifier, pose model or detector) as a SavedModel folder, or as a folder
    holding model.tflite / model.onnx (`export_format`) and pose_tl.json; returns the path
    written."""
    from pose_tl.export.loading import load_keras_model

    model = load_keras_model(checkpoint)
    from pose_tl.export.formats import export_model_file, task_of

    task = task_of(model)
    if export_format != "saved_model":
        options = {}
        if task == "pose model":
            options = _pose_export_options(model, checkpoint, recipe)
        elif task == "detector":
            options = {"detection_config": _detection_config(checkpoint, recipe)}
        return str(export_model_file(model, Path(out_dir), export_format, **options))
    if task == "detector":
        from pose_tl.export.detection_saved_model import export_detector

        return str(export_detector(model, Path(out_dir), detection_config=_detection_config(checkpoint, recipe),
                                   class_names=model.get_layer("box_head").class_names,
                                   input_size=recipe.model.input_size))
    if task == "pose model":
        from pose_tl.export.pose_saved_model import export_pose_model

        xla = {"xla_decoding": recipe.model.pose.xla_decoding} if recipe is not None and recipe.task == "pose" else {}
        return str(export_pose_model(model, Path(out_dir), **_pose_export_options(model, checkpoint, recipe), **xla))
    from pose_tl.export.saved_model import export_classifier

    return str(export_classifier(model, Path(out_dir)))


def _detection_config(checkpoint, recipe):
    if recipe is None or recipe.task != "detection":
        raise DataError(f"{checkpoint}: a detector exports with its detection recipe (anchors, proposals)")
    return recipe.model.detection


def _pose_export_options(model, checkpoint, recipe):
    """The output stride of a pose model and the crop models beside its checkpoint (facing classifier, joint
    refiner); the bone lengths of its recipe's people, its flip test and refiner passes where a pose recipe is given."""
    from pose_tl.export.loading import load_crop_models

    stride = model.input_shape[1] // model.get_layer("heatmaps").output.shape[1]
    options = {"output_stride": stride, **load_crop_models(checkpoint)}
    if recipe is None or recipe.task != "pose":
        return options
    from pose_tl import run_pose

    bone_lengths = run_pose.training_bone_lengths(recipe)  # None without training frames: the defaults
    return {**options, "flip_test": recipe.model.pose.flip_test, "refine_passes": recipe.model.pose.refine_passes,
            **({"bone_lengths": bone_lengths} if bone_lengths else {})}


def predict(model_path, files, top_k=3, npy_units="m", out_dir=None, intrinsics=None):
    """Classifier: top-k classes per depth file, `{"file", "top_k": [{"class", "probability"}]}`.
    Pose model: people per file, `{"file", "intrinsics", "people": [{"score", "joints": {...}}]}` (+ overlays)."""
    from pose_tl.data.depth_io import read_valid_depth
    from pose_tl.export.loading import load_classifier, model_task

    task = model_task(model_path)
    if task == "pose":
        from pose_tl import run_pose

        return run_pose.predict_files(model_path, files, out_dir=out_dir, npy_units=npy_units, intrinsics=intrinsics)
    if task == "detection":
        from pose_tl import run_detection

        return run_detection.predict_files(model_path, files, out_dir=out_dir, npy_units=npy_units,
                                           intrinsics=intrinsics)

    classifier = load_classifier(model_path)
    results = []
    for path in files:
        depth = read_valid_depth(path, npy_units)
        probabilities = classifier.predict(depth[None])[0]
        order = np.argsort(-probabilities)[:top_k]
        results.append({"file": str(path), "top_k": [
            {"class": classifier.class_names[i], "probability": float(probabilities[i])} for i in order]})
    return results
