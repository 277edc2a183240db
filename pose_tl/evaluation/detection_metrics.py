"""Detection metrics through pycocotools: AP (IoU .50:.95), AP50, AP75 and AR@100, overall and per class."""

import contextlib
import io

import numpy as np

from pose_tl.data.detection_data import is_ignore_region


def ground_truth_classes(frame, by_pose_class):
    """Class ids 1..C of the frame's people, 0 for people of unknown class (not scored at all)."""
    boxes = np.asarray(frame.boxes, np.float32).reshape(-1, 4)
    present = (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
    if by_pose_class:
        classes = np.asarray(frame.pose_classes) + 1
        return np.where(present & (classes > 0), classes, 0)
    return np.where(present, 1, 0)


def ignore_regions(frame, ignore_below):
    """[P] bool: which of the frame's people are slivers, scored as COCO crowd boxes (neither found nor missed)."""
    boxes = np.asarray(frame.boxes, np.float32).reshape(-1, 4)
    height, width = frame.depth_mm.shape
    return is_ignore_region(boxes[:, 2], boxes[:, 3], width, height, ignore_below)


def evaluate_detections(predictions, frames, class_names, by_pose_class=False, ignore_below=0.0):
    """Metrics of per-frame detector outputs (NumPy dicts of the SavedModel's outputs) against `frames`.

    People that are ignore regions (`ignore_regions`) are COCO crowd annotations: a detection at least half inside one
    is neither a hit nor a false positive, and an ignore region no detection covers is not a miss.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, annotations, results = [], [], []
    for image_id, (pred, frame) in enumerate(zip(predictions, frames), start=1):
        height, width = frame.depth_mm.shape
        images.append({"id": image_id, "width": int(width), "height": int(height)})
        crowds = ignore_regions(frame, ignore_below)
        for box, category, crowd in zip(np.asarray(frame.boxes).reshape(-1, 4),
                                        ground_truth_classes(frame, by_pose_class), crowds):
            if category:
                x, y, w, h = (float(v) for v in box)
                annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(category),
                                    "bbox": [x, y, w, h], "area": w * h, "iscrowd": int(crowd)})
        for k in range(int(pred["num_detections"])):
            ymin, xmin, ymax, xmax = (float(v) for v in pred["detection_boxes"][k])
            results.append({"image_id": image_id, "category_id": int(pred["detection_classes"][k]),
                            "bbox": [xmin * width, ymin * height, (xmax - xmin) * width, (ymax - ymin) * height],
                            "score": float(pred["detection_scores"][k])})
    ignored = sum(a["iscrowd"] for a in annotations)
    report = {"frames": len(frames), "objects": len(annotations) - ignored, "ignored": ignored,
              "detections": len(results)}
    empty = {"ap": 0.0, "ap50": 0.0, "ap75": 0.0, "ar100": 0.0}
    if not report["objects"] or not results:
        return {**report, **empty, "per_class": {name: dict(empty) for name in class_names}}
    ground_truth = COCO()
    ground_truth.dataset = {"images": images, "annotations": annotations,
                            "categories": [{"id": i + 1, "name": name} for i, name in enumerate(class_names)]}
    with contextlib.redirect_stdout(io.StringIO()):
        ground_truth.createIndex()
        evaluator = COCOeval(ground_truth, ground_truth.loadRes(results), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    stats = [max(0.0, float(v)) for v in evaluator.stats]
    precision, recall = evaluator.eval["precision"], evaluator.eval["recall"]  # [T, R, K, A, M], [T, K, A, M]
    per_class = {}
    for k, name in enumerate(class_names):
        per_class[name] = {"ap": _mean_valid(precision[:, :, k, 0, -1]), "ap50": _mean_valid(precision[0, :, k, 0, -1]),
                           "ap75": _mean_valid(precision[5, :, k, 0, -1]), "ar100": _mean_valid(recall[:, k, 0, -1])}
    return {**report, "ap": stats[0], "ap50": stats[1], "ap75": stats[2], "ar100": stats[8], "per_class": per_class}


def _mean_valid(values):
    values = values[values > -1]
    return float(values.mean()) if values.size else 0.0


def format_detection_report(report):
    lines = [f"frames: {report['frames']}   objects: {report['objects']}   "
             f"ignored (slivers): {report.get('ignored', 0)}   detections: {report['detections']}",
             f"AP: {report['ap']:.4f}   AP50: {report['ap50']:.4f}   AP75: {report['ap75']:.4f}   "
             f"AR@100: {report['ar100']:.4f}", "", f"{'class':<16}{'AP':>8}{'AP50':>8}{'AP75':>8}{'AR@100':>8}"]
    for name, row in report["per_class"].items():
        lines.append(f"{name:<16}{row['ap']:>8.4f}{row['ap50']:>8.4f}{row['ap75']:>8.4f}{row['ar100']:>8.4f}")
    return "\n".join(lines) + "\n"
