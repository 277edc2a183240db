"""The detection task's steps: training data, fit + evaluate + export, evaluate a saved model, predict files."""

import time
from pathlib import Path

import numpy as np

from pose_tl.atomic import write_json_atomic
from pose_tl.run_pose import read_depth_file, write_report
from pose_tl.errors import DataError, ModelFileError

EVAL_BATCH = 8


def training_proposals(detection_config):
    """fn(depth [H, W, 1], intrinsics [4]) -> depth proposals [M, 4] for the head's training RoIs, or None."""
    if detection_config.proposals == "rpn":
        return None
    from pose_tl.detection.depth_proposals import depth_proposals

    def proposals(depth, intrinsics):
        boxes, valid = depth_proposals(depth[None, ..., 0], intrinsics[None])
        return boxes[0][valid[0]]

    return proposals


def detection_data(recipe, splits=("train", "validation"), for_training=True):
    from pose_tl.data.detection_data import detection_splits

    return detection_splits(recipe.data, recipe.model.detection, seed=recipe.seed, input_size=recipe.model.input_size,
                            proposal_fn=training_proposals(recipe.model.detection), splits=splits,
                            for_training=for_training)


def fit(recipe, data, out_dir, resume, export, verbose, fit_and_save):
    """Train the detector, evaluate it on the validation split and export it with post-processing inside."""
    import tensorflow as tf

    from pose_tl.data.detection_data import detection_class_names
    from pose_tl.detection.inference import make_detector
    from pose_tl.export.detection_saved_model import export_detector
    from pose_tl.models.detector import features_model_of
    from pose_tl.models.factory import build_detector
    from pose_tl.training.phases import compile_detector

    class_names = detection_class_names(recipe.model.detection, recipe.data)
    model = build_detector(recipe.model, class_names)
    write_json_atomic(out_dir / "class_names.json", class_names)
    result = fit_and_save(recipe, model, features_model_of(model), data, out_dir, resume, verbose, compile_detector)
    if data.sizes["validation"]:
        predict = tf.function(make_detector(model, detection_config=recipe.model.detection, class_names=class_names,
                                            input_size=recipe.model.input_size))
        result.update(evaluate_detector(predict, recipe, class_names, "validation", out_dir / "eval"))
    if recipe.train.export_at_end if export is None else export:
        result["saved_model"] = str(export_detector(model, out_dir / "saved_model",
                                                    detection_config=recipe.model.detection,
                                                    class_names=class_names, input_size=recipe.model.input_size))
    return result


def predict_split(predict, recipe, split, limit=None):
    """Run `predict(depth_mm [N, H, W], intrinsics [N, 4])` over a split: (predictions, frames, ms per frame)."""
    from pose_tl.data.people_sources import people_frames
    from pose_tl.data.people.frame import same_size_batches

    frames = people_frames(recipe.data, recipe.seed, split, limit)
    if not frames:
        raise DataError(f"{recipe.source}: the {split} split is empty")
    predictions, seconds = [], 0.0
    for batch in same_size_batches(frames, EVAL_BATCH):
        start = time.perf_counter()
        out = predict(np.stack([f.depth_mm for f in batch]), np.stack([f.intrinsics for f in batch]))
        out = {name: np.asarray(value) for name, value in out.items()}
        seconds += time.perf_counter() - start
        predictions += [{name: value[i] for name, value in out.items()} for i in range(len(batch))]
    return predictions, frames, 1000.0 * seconds / len(frames)


def evaluate_detector(predict, recipe, class_names, split, eval_dir):
    """COCO box metrics of `predict` on a split, written as metrics.json and metrics.txt into `eval_dir`."""
    from pose_tl.evaluation.detection_metrics import evaluate_detections, format_detection_report

    predictions, frames, ms_per_frame = predict_split(predict, recipe, split)
    report = evaluate_detections(predictions, frames, class_names,
                                 by_pose_class=recipe.model.detection.classes == "pose_class",
                                 ignore_below=recipe.model.detection.ignore_below)
    report["ms_per_frame"] = ms_per_frame
    text = write_report(eval_dir, report, format_detection_report(report))
    return {"report_text": text, "eval_dir": str(eval_dir), "ap": report["ap"], "ap50": report["ap50"]}


def load_detector(path, recipe=None):
    """(predict fn, class names) of a detection SavedModel folder, or of a `.keras` checkpoint with its recipe."""
    import tensorflow as tf

    from pose_tl.export.loading import load_signature
    from pose_tl.export.pose_saved_model import INTRINSICS_SIGNATURE

    path = Path(path)
    if path.is_dir():
        signature, metadata = load_signature(path, INTRINSICS_SIGNATURE, "a detection SavedModel")
        return (lambda depth, intrinsics: signature(depth=tf.constant(depth, tf.uint16),
                                                    intrinsics=tf.constant(intrinsics, tf.float32)),
                metadata["class_names"])
    if recipe is None:
        raise ModelFileError(f"{path}: predicting with a detection checkpoint needs its recipe; export it first "
                             "(pose-tl export RECIPE --checkpoint ... --out DIR) and pass the SavedModel folder")
    from pose_tl.detection.inference import make_detector
    from pose_tl.export.loading import load_keras_model

    model = load_keras_model(path)
    class_names = model.get_layer("box_head").class_names
    predict = tf.function(make_detector(model, detection_config=recipe.model.detection, class_names=class_names,
                                        input_size=recipe.model.input_size))
    return lambda depth, intrinsics: predict(tf.constant(depth, tf.uint16), tf.constant(intrinsics, tf.float32)), \
        class_names


def evaluate(recipe, model_path, out_dir, split, command):
    from pose_tl.output_dir import prepare_output_dir
    from pose_tl.run_record import write_run_record

    predict, class_names = load_detector(model_path, recipe)
    out_dir = prepare_output_dir(out_dir, allow_previous_run=True)
    write_run_record(out_dir, recipe, command)
    return evaluate_detector(predict, recipe, class_names, split, out_dir)


def predict_files(model_path, files, *, out_dir=None, npy_units="m", intrinsics=None):
    """Detections per depth file as JSON-able dicts; with `out_dir`, one PNG per file with boxes drawn."""
    predict, _ = load_detector(model_path)
    results = []
    for path in files:
        depth_m, depth_mm, frame_intrinsics = read_depth_file(path, npy_units, intrinsics)
        out = {name: np.asarray(value)[0] for name, value in predict(depth_mm[None], frame_intrinsics[None]).items()}
        item = detections_json(path, out, depth_mm.shape)
        if out_dir is not None:
            Path(out_dir).mkdir(parents=True, exist_ok=True)
            item["overlay"] = str(write_detection_picture(Path(out_dir) / f"{Path(path).stem}_boxes.png", depth_m,
                                                          item["detections"]))
        results.append(item)
    return results


def detections_json(path, out, image_size):
    height, width = image_size
    detections = []
    for k in range(int(out["num_detections"])):
        ymin, xmin, ymax, xmax = (float(v) for v in out["detection_boxes"][k])
        name = out["detection_class_names"][k]
        detections.append({"class": name.decode() if isinstance(name, bytes) else str(name),
                           "score": round(float(out["detection_scores"][k]), 4),
                           "box_xywh_px": [round(v, 2) for v in (xmin * width, ymin * height, (xmax - xmin) * width,
                                                                 (ymax - ymin) * height)],
                           "box_normalised": [round(v, 5) for v in (ymin, xmin, ymax, xmax)]})
    return {"file": str(path), "detections": detections}


def write_detection_picture(path, depth_m, detections):
    """Boxes with class names and scores on colour-mapped depth."""
    from PIL import Image, ImageDraw, ImageFont

    from pose_tl.drawing import PERSON_COLOURS, colourise_depth

    scale = max(1, 480 // depth_m.shape[1])
    image = Image.fromarray(colourise_depth(depth_m)).resize((depth_m.shape[1] * scale, depth_m.shape[0] * scale),
                                                             Image.NEAREST)
    draw, font = ImageDraw.Draw(image), ImageFont.load_default()
    for i, detection in enumerate(detections):
        colour = PERSON_COLOURS[i % len(PERSON_COLOURS)]
        x, y, w, h = (v * scale for v in detection["box_xywh_px"])
        draw.rectangle([x, y, x + w, y + h], outline=colour, width=2)
        draw.text((x + 3, y + 2), f"{detection['class']} {detection['score']:.2f}", fill=colour, font=font)
    image.save(path)
    return path
