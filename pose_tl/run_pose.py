"""The pose task's evaluate and predict steps (train lives in `run`, which dispatches on the task)."""

import functools
import hashlib
import json
from pathlib import Path

import numpy as np

from pose_tl.atomic import write_json_atomic
from pose_tl.errors import DataError

EVAL_BATCH = 8


def predict_split(predict, recipe, split, limit=None):
    """Run `predict(depth_mm [N, H, W], intrinsics [N, 4])` over a split; returns (predictions, frames).

    Frames are batched only with frames of the same size (file sources may mix sizes).
    """
    from pose_tl.data.people.frame import same_size_batches
    from pose_tl.data.people_sources import people_frames

    frames = people_frames(recipe.data, recipe.seed, split, limit)
    if not frames:
        raise DataError(f"{recipe.source}: the {split} split is empty")
    predictions = []
    for batch in same_size_batches(frames, EVAL_BATCH):
        out = predict(np.stack([f.depth_mm for f in batch]), np.stack([f.intrinsics for f in batch]))
        predictions += [{name: np.asarray(value)[i] for name, value in out.items()} for i in range(len(batch))]
    return predictions, frames


def write_report(eval_dir, report, text):
    """metrics.json and metrics.txt into `eval_dir`; returns `text`."""
    eval_dir = Path(eval_dir)
    eval_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(eval_dir / "metrics.json", report)
    (eval_dir / "metrics.txt").write_text(text)
    return text


def evaluate_people(predict, recipe, split, eval_dir):
    """Pose metrics of `predict` on a split, written as metrics.json and metrics.txt into `eval_dir`."""
    from pose_tl.evaluation.pose_metrics import evaluate_pose, format_pose_report

    predictions, frames = predict_split(predict, recipe, split)
    report = evaluate_pose(predictions, frames)
    text = write_report(eval_dir, report, format_pose_report(report))
    return {"report_text": text, "eval_dir": str(eval_dir), "pck": report["pck@0.2"], "map": report["map@10cm"]}


def training_bone_lengths(recipe, frames=400):
    """Mean bone lengths of the recipe's training people (for inferring occluded joints)."""
    from pose_tl.data.people_sources import people_frames
    from pose_tl.decoding.occlusion import bone_length_statistics

    joints, visibility = [], []
    for frame in people_frames(recipe.data, recipe.seed, "train", frames):
        joints.append(frame.joints_3d)
        visibility.append(frame.visibility)
    if not joints:
        return None
    return bone_length_statistics(np.concatenate(joints), np.concatenate(visibility))


def fit_facing_classifier(recipe, checkpoint, report_path, log=print):
    """Train the recipe's facing classifier on its training people, save it beside the pose `checkpoint` and its
    report (examples, validation accuracy, seconds) as `report_path`. None where the recipe asks for none
    (`model.pose.facing_epochs: 0`) or no training person is labelled for it. See `fit_crop_model`."""
    from pose_tl.export.loading import load_facing_model
    from pose_tl.models.facing import facing_model_path
    from pose_tl.training.facing import train_facing_classifier

    return fit_crop_model(recipe, recipe.model.pose.facing_epochs, train_facing_classifier,
                          facing_model_path(checkpoint), lambda: load_facing_model(checkpoint), report_path,
                          "facing classifier", log)


def fit_joint_refiner(recipe, checkpoint, report_path, log=print):
    """Train the recipe's joint refiner (`model.pose.refine_epochs`) on its training people, save it beside the pose
    `checkpoint` and its report as `report_path`; None where the recipe asks for none. See `fit_crop_model`."""
    from pose_tl.export.loading import load_refiner_model
    from pose_tl.models.refiner import refiner_model_path
    from pose_tl.training.refiner import (COPIES, FACING_LOSS_WEIGHT, LEARNING_RATE, RESHAKEN_COPIES,
                                          train_joint_refiner)

    pose = recipe.model.pose
    filters, depths, facing = pose.refiner_filters, pose.refiner_depth, pose.refiner_depth and pose.refiner_facing
    return fit_crop_model(recipe, pose.refine_epochs,
                          functools.partial(train_joint_refiner, base_filters=filters, joint_depths=depths,
                                            facing=facing),
                          refiner_model_path(checkpoint), lambda: load_refiner_model(checkpoint), report_path,
                          "joint refiner", log, filters=filters, copies=COPIES, reshaken_copies=RESHAKEN_COPIES,
                          learning_rate=LEARNING_RATE, joint_depths=depths, trunk_depths=depths,
                          **({"facing": True, "facing_loss_weight": FACING_LOSS_WEIGHT} if facing else {}))


def fit_crop_model(recipe, epochs, train, path, load, report_path, name, log, **settings):
    """Train a model of people's depth crops with `train(train_frames, validation_frames, *, epochs, seed, log) ->
    (model, report)` and save it as `path`, with its report as `report_path` (`settings`: what else shapes the model,
    for the fingerprint). With no epochs or nothing to train
    on, a model an earlier run left at `path` is removed, as it would act on this model's people. One that an
    earlier attempt of this run trained from the same settings (`--resume`) is kept (`load()`): it depends on the
    labelled people, not on the pose network."""
    import time

    import keras

    from pose_tl.atomic import atomic_path
    from pose_tl.data.people_sources import people_frames

    model = None
    if epochs:
        fingerprint = crop_training_fingerprint(recipe, epochs, **settings)
        if path.is_file() and _reported_fingerprint(report_path) == fingerprint:
            log(f"{name}: kept {path} (trained from the same data, seed and epochs)")
            return load()
        start = time.perf_counter()
        policy = keras.mixed_precision.global_policy().name  # the network's (bfloat16 trains the refiner faster: README)
        log(f"{name}: training in {policy}")
        model, report = train(people_frames(recipe.data, recipe.seed, "train"),
                              people_frames(recipe.data, recipe.seed, "validation"),
                              epochs=epochs, seed=recipe.seed, log=log)
        write_json_atomic(report_path, {**report, "epochs": epochs, **settings, "precision": policy,
                                        "seconds": round(time.perf_counter() - start, 1),
                                        "trained_from": fingerprint if model is not None else None})
    if model is None:
        path.unlink(missing_ok=True)
        return None
    with atomic_path(path) as tmp:
        model.save(str(tmp))
    return model


def crop_training_fingerprint(recipe, epochs, **settings):
    """A hash of what a crop model is trained from: the recipe's data settings, seed, the model's epochs and
    `settings`."""
    from pose_tl.config.loading import recipe_to_dict

    settings = {"data": recipe_to_dict(recipe)["data"], "seed": recipe.seed, "epochs": epochs, **settings}
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _reported_fingerprint(report_path):
    """The `trained_from` of a facing report, or None where there is no readable one."""
    try:
        return json.loads(Path(report_path).read_text()).get("trained_from")
    except (OSError, ValueError, AttributeError):
        return None


def evaluate(recipe, model_path, out_dir, split, command):
    from pose_tl.export.loading import load_pose_model
    from pose_tl.output_dir import prepare_output_dir
    from pose_tl.run_record import write_run_record

    model = load_pose_model(model_path, xla_decoding=recipe.model.pose.xla_decoding,
                            flip_test=recipe.model.pose.flip_test, refine_passes=recipe.model.pose.refine_passes,
                            # a SavedModel has its own bone lengths
                            bone_lengths=None if Path(model_path).is_dir() else training_bone_lengths(recipe))
    out_dir = prepare_output_dir(out_dir, allow_previous_run=True)
    write_run_record(out_dir, recipe, command)
    return evaluate_people(model.predict, recipe, split, out_dir)


def read_depth_file(path, npy_units, intrinsics=None):
    """(metres [H, W], uint16 millimetres [H, W], intrinsics [4]: given, or Kinect v2 optics scaled to W)."""
    from pose_tl.data.depth_io import read_valid_depth
    from pose_tl.export.pose_saved_model import default_intrinsics

    depth_m = read_valid_depth(path, npy_units)
    depth_mm = np.clip(np.round(depth_m * 1000.0), 0, 65535).astype(np.uint16)
    frame_intrinsics = np.asarray(intrinsics if intrinsics is not None else
                                  default_intrinsics(*depth_mm.shape).numpy(), np.float32)
    return depth_m, depth_mm, frame_intrinsics


def predict_files(model_path, files, *, out_dir=None, npy_units="m", intrinsics=None):
    """People in each depth file: a list of JSON-able dicts; with `out_dir`, one overlay PNG per file too."""
    from pose_tl.export.loading import load_pose_model

    model = load_pose_model(model_path)
    results = []
    for path in files:
        depth_m, depth_mm, frame_intrinsics = read_depth_file(path, npy_units, intrinsics)
        out = {name: value[0] for name, value in model.predict(depth_mm[None], frame_intrinsics[None]).items()}
        item = people_json(path, out, model.metadata["joint_names"], frame_intrinsics)
        if out_dir is not None:
            Path(out_dir).mkdir(parents=True, exist_ok=True)
            item["overlay"] = str(write_overlay(Path(out_dir) / f"{Path(path).stem}_pose.png", depth_m, out))
        results.append(item)
    return results


def people_json(path, out, joint_names, intrinsics):
    people = []
    for p in range(int(out["num_people"])):
        joints = {}
        for j, name in enumerate(joint_names):
            detected, inferred = out["keypoint_scores"][p, j] > 0, bool(out["keypoint_inferred"][p, j])
            if not (detected or inferred):
                continue
            joints[name] = {"xy_px": [round(float(v), 2) for v in out["keypoints_2d"][p, j]],
                            "xyz_m": [round(float(v), 4) for v in out["keypoints_3d"][p, j]],
                            "score": round(float(out["keypoint_scores"][p, j]), 4), "inferred": inferred}
        people.append({"score": round(float(out["person_scores"][p]), 4), "joints": joints})
    return {"file": str(path), "intrinsics": [float(v) for v in intrinsics], "people": people}


def write_overlay(path, depth_m, out):
    """Heatmaps blended on colour-mapped depth; skeletons with detected joints filled and inferred ones ringed."""
    from PIL import Image

    from pose_tl.data.people.skeleton import LIMBS
    from pose_tl.drawing import colourise_depth, draw_people

    scale = max(1, 480 // depth_m.shape[1])
    rgb = colourise_depth(depth_m).astype(np.float32)
    heat = np.asarray(out["heatmaps"]).max(axis=-1)
    heat = np.asarray(Image.fromarray(np.clip(heat * 255, 0, 255).astype(np.uint8)).resize(
        (depth_m.shape[1], depth_m.shape[0]), Image.BILINEAR), np.float32)[..., None] / 255.0
    blended = rgb * (1 - 0.6 * heat) + np.array([255.0, 255.0, 255.0]) * 0.6 * heat
    image = Image.fromarray(blended.astype(np.uint8)).resize((depth_m.shape[1] * scale, depth_m.shape[0] * scale),
                                                            Image.NEAREST)
    count = int(out["num_people"])
    codes = np.where(out["keypoint_scores"][:count] > 0, 2, np.where(out["keypoint_inferred"][:count], 1, 0))
    draw_people(image, out["keypoints_2d"][:count], codes, None, LIMBS, scale=scale)
    image.save(path)
    return path
