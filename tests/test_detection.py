"""The detection task: box arithmetic, RPN and head targets, losses, RoIAlign, post-processing, and the CLI end to
end (train, evaluate, predict, export) with a SavedModel that loads with TensorFlow alone."""

import json

import numpy as np
import pytest
import tensorflow as tf
from conftest import assert_one_line_error, invoke, run_without_pose_tl, write_recipe

from pose_tl.detection.boxes import anchor_grid, box_ioa, box_iou, decode_boxes, encode_boxes
from pose_tl.detection.targets import RPN_SAMPLES, head_targets, rpn_targets
from pose_tl.heads.detection import RoiAlign
from pose_tl.training.detection_losses import ObjectnessLoss, RoiBoxLoss, RoiClassLoss


def test_anchor_grid_centres_sizes_and_ratios():
    anchors = anchor_grid((64, 96), 16, [32.0], [1.0, 2.0])
    assert anchors.shape == (4 * 6 * 2, 4)
    first_square, first_tall = anchors[0] * [64, 96, 64, 96], anchors[1] * [64, 96, 64, 96]
    np.testing.assert_allclose(first_square, [8 - 16, 8 - 16, 8 + 16, 8 + 16])  # centred on cell (0, 0)
    np.testing.assert_allclose(first_tall, [8 - 16, 8 - 8, 8 + 16, 8 + 8])  # height / width = 2


def test_iou_of_known_boxes():
    a = tf.constant([[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 1.0, 1.0]])
    b = tf.constant([[0.0, 0.0, 0.5, 0.5], [0.25, 0.25, 0.75, 0.75], [0.6, 0.6, 0.9, 0.9]])
    iou = box_iou(a, b).numpy()
    np.testing.assert_allclose(iou[0], [1.0, 0.0625 / 0.4375, 0.0], rtol=1e-5)
    np.testing.assert_allclose(iou[1], [0.25, 0.25, 0.09], rtol=1e-5)


@pytest.mark.parametrize("aspect", [1.0, 1.5])
def test_decode_inverts_encode(aspect):
    rng = np.random.default_rng(0)

    def random_boxes(count):
        top_left = rng.uniform(0, 0.6, (count, 2))
        return np.concatenate([top_left, top_left + rng.uniform(0.05, 0.4, (count, 2))], axis=1).astype(np.float32)

    anchors, boxes = tf.constant(random_boxes(20)), tf.constant(random_boxes(20))
    np.testing.assert_allclose(decode_boxes(encode_boxes(boxes, anchors, aspect), anchors, aspect), boxes, atol=1e-5)


def test_rpn_targets_label_and_sample_anchors():
    anchors = tf.constant(anchor_grid((64, 96), 8, [16.0, 32.0], [1.0, 2.0]))
    gt = tf.constant([[0.25, 0.25, 0.75, 0.5]])
    objectness, deltas = rpn_targets(gt, anchors, tf.constant([1, 2]), 1.5)
    labels, weights = objectness[:, 0].numpy(), objectness[:, 1].numpy()
    iou = box_iou(anchors, gt).numpy()[:, 0]
    assert weights.sum() == RPN_SAMPLES and labels.sum() >= 1
    assert np.all(iou[labels == 1] >= min(0.7, iou.max() - 1e-6))  # positives: IoU >= 0.7 or the best anchor
    assert np.all(iou[(weights == 1) & (labels == 0)] < 0.3)
    positive = labels == 1
    decoded = decode_boxes(deltas[:, :4], anchors, 1.5).numpy()[positive]
    np.testing.assert_allclose(decoded, np.repeat(gt.numpy(), positive.sum(), 0), atol=1e-5)
    assert np.all(deltas[:, 4].numpy() == labels)


def test_rpn_and_head_targets_without_people():
    anchors = tf.constant(anchor_grid((64, 64), 16, [32.0], [1.0]))
    objectness, deltas = rpn_targets(tf.zeros([0, 4]), anchors, tf.constant([3, 4]), 1.0)
    assert objectness[:, 0].numpy().sum() == 0 and objectness[:, 1].numpy().sum() == len(anchors)
    rois, classes, box = head_targets(tf.zeros([0, 4]), tf.zeros([0], tf.int32), tf.zeros([0, 4]), anchors, 8,
                                      tf.constant([5, 6]), 1.0)
    assert rois.shape == (8, 4) and classes[:, 0].numpy().sum() == 0 and box[:, 5].numpy().sum() == 0


def test_head_targets_foreground_share_classes_and_deltas():
    anchors = tf.constant(anchor_grid((64, 96), 8, [16.0, 32.0], [1.0, 2.0]))
    gt = tf.constant([[0.1, 0.1, 0.6, 0.3], [0.3, 0.6, 0.9, 0.8]])
    rois, classes, deltas = head_targets(gt, tf.constant([1, 2]), tf.zeros([0, 4]), anchors, 32,
                                         tf.constant([7, 8]), 1.5)
    ids, weights = classes[:, 0].numpy(), classes[:, 1].numpy()
    foreground = ids > 0
    assert weights.sum() == 32 and 2 <= foreground.sum() <= 8  # at most 25 % foreground, the boxes themselves in
    iou = box_iou(rois, gt).numpy()
    assert np.all(iou[foreground].max(axis=1) >= 0.5) and np.all(iou[~foreground].max(axis=1) < 0.5)
    np.testing.assert_array_equal(ids[foreground], iou[foreground].argmax(axis=1) + 1)
    decoded = decode_boxes(deltas[:, :4], rois, 1.5).numpy()[foreground]
    np.testing.assert_allclose(decoded, gt.numpy()[iou[foreground].argmax(axis=1)], atol=1e-5)
    assert np.all(deltas[:, 4].numpy() == ids) and np.all(deltas[:, 5].numpy() == foreground)


def test_anchors_and_rois_half_inside_an_ignore_region_are_not_negatives():
    anchors = tf.constant(anchor_grid((64, 96), 8, [16.0, 32.0], [1.0, 2.0]))
    gt = tf.constant([[0.1, 0.1, 0.6, 0.3]])
    sliver = tf.constant([[0.2, 0.9, 0.9, 1.0]])  # a person cut by the right edge
    inside = box_ioa(anchors, sliver).numpy()[:, 0] >= 0.5
    assert inside.sum() > 0
    objectness, _ = rpn_targets(gt, anchors, tf.constant([1, 2]), 1.5, ignored=sliver)
    labels, weights = objectness[:, 0].numpy(), objectness[:, 1].numpy()
    assert weights[inside].sum() == 0 and labels[inside].sum() == 0
    plain, _ = rpn_targets(gt, anchors, tf.constant([1, 2]), 1.5)
    assert plain[:, 1].numpy()[inside].sum() > 0  # without the ignore region some of them were sampled negatives
    proposals = tf.constant([[0.3, 0.92, 0.8, 1.0], [0.25, 0.85, 0.85, 1.0]])  # boxes on the sliver
    rois, classes, _ = head_targets(gt, tf.constant([1]), proposals, anchors, 64, tf.constant([7, 8]), 1.5,
                                    ignored=sliver)
    sampled = rois.numpy()[classes[:, 1].numpy() > 0]
    assert np.all(box_ioa(tf.constant(sampled), sliver).numpy()[:, 0] < 0.5)
    assert np.all(box_ioa(tf.constant([[0.2, 0.9, 0.9, 1.0]]), sliver).numpy() == pytest.approx(1.0))


def test_slivers_are_crowd_boxes_in_evaluation():
    from pose_tl.data.people.frame import PeopleFrame
    from pose_tl.evaluation.detection_metrics import evaluate_detections

    frame = PeopleFrame(depth_mm=np.zeros((120, 160), np.uint16), instance_mask=np.zeros((120, 160), np.uint8),
                        intrinsics=np.array([100, 100, 80, 60], np.float32),
                        joints_2d=np.zeros((2, 15, 2), np.float32), joints_3d=np.zeros((2, 15, 3), np.float32),
                        visibility=np.zeros((2, 15), np.int8),
                        boxes=np.array([[40, 20, 30, 80], [156, 30, 4, 60]], np.float32),
                        pose_classes=np.zeros(2, np.int32))

    def detections(*boxes_xywh):
        boxes = [[y / 120, x / 160, (y + h) / 120, (x + w) / 160] for x, y, w, h in boxes_xywh]
        return {"num_detections": len(boxes), "detection_boxes": np.array(boxes, np.float32),
                "detection_scores": np.linspace(0.9, 0.8, len(boxes)), "detection_classes": np.ones(len(boxes))}

    person, on_sliver, empty = [40, 20, 30, 80], [155, 30, 5, 60], [100, 10, 20, 40]
    strict = evaluate_detections([detections(person)], [frame], ["person"])
    ignoring = evaluate_detections([detections(person)], [frame], ["person"], ignore_below=0.05)
    assert (strict["objects"], strict["ignored"], ignoring["objects"], ignoring["ignored"]) == (2, 0, 1, 1)
    assert strict["ap50"] < 0.6 and ignoring["ap50"] == pytest.approx(1.0)  # the unfound sliver: a miss, or not
    on_the_sliver_first = evaluate_detections([detections(on_sliver, person)], [frame], ["person"], ignore_below=0.05)
    assert on_the_sliver_first["ap50"] == pytest.approx(1.0)  # inside the ignore region: not a false positive
    on_nothing_first = evaluate_detections([detections(empty, person)], [frame], ["person"], ignore_below=0.05)
    assert on_nothing_first["ap50"] < 0.6  # a box on nothing still costs precision


def test_losses_ignore_unsampled_entries_and_use_the_true_class_slot():
    logits = tf.constant([[5.0, -5.0, 100.0]])
    y = tf.constant([[[1.0, 1.0], [0.0, 1.0], [0.0, 0.0]]])  # the third anchor is not sampled
    assert float(ObjectnessLoss()(y, logits)) < 0.01
    class_logits = tf.constant([[[0.0, 9.0, 0.0], [9.0, 0.0, 0.0]]])
    assert float(RoiClassLoss()(tf.constant([[[1.0, 1.0], [0.0, 1.0]]]), class_logits)) < 0.01
    assert float(RoiClassLoss()(tf.constant([[[2.0, 1.0], [0.0, 1.0]]]), class_logits)) > 4.0
    deltas = np.zeros((1, 1, 3 * 4), np.float32)
    deltas[0, 0, 8:12] = [1.0, 2.0, 3.0, 4.0]  # class 2's slot
    target = tf.constant([[[1.0, 2.0, 3.0, 4.0, 2.0, 1.0]]])
    assert float(RoiBoxLoss()(target, tf.constant(deltas))) == pytest.approx(0.0)
    wrong_slot = tf.constant([[[1.0, 2.0, 3.0, 4.0, 1.0, 1.0]]])
    assert float(RoiBoxLoss()(wrong_slot, tf.constant(deltas))) > 5.0


def test_roi_align_reads_the_boxed_region():
    features = np.zeros((1, 8, 8, 1), np.float32)
    features[0, :4, :4] = 1.0  # top-left quarter
    rois = tf.constant([[[0.0, 0.0, 0.375, 0.375], [0.625, 0.625, 1.0, 1.0]]])
    pooled = RoiAlign(2)([tf.constant(features), rois]).numpy()
    assert pooled.shape == (1, 2, 2, 2, 1)
    assert pooled[0, 0].min() > 0.9 and pooled[0, 1].max() < 0.1


def boxes_ending_at_the_edge(rng, shape):
    """Random normalised boxes [..., 4], many clipped to end at 1.0 (where crop_and_resize's last sample falls a
    rounding error inside or past the last row) and some reaching outside the frame (extrapolated)."""
    corners = np.sort(rng.uniform(-0.2, 1.2, (2, *shape, 2)), axis=0)
    boxes = np.concatenate([corners[0], corners[1]], -1)
    boxes[..., 2:] = np.where(rng.uniform(size=(*shape, 2)) < 0.5, 1.0, boxes[..., 2:])
    return boxes.astype(np.float32)


def test_roi_align_by_gathers_is_the_layer_to_the_bit():
    from pose_tl.detection.tflite_builtins import roi_align_by_gathers

    rng = np.random.default_rng(0)
    features = tf.constant(rng.normal(size=(2, 4, 8, 3)).astype(np.float32))
    rois = tf.constant(boxes_ending_at_the_edge(rng, (2, 50)))
    np.testing.assert_array_equal(roi_align_by_gathers(features, rois, 3).numpy(),
                                  RoiAlign(3)([features, rois]).numpy())


def nms_cases(rng, frames=6, rois=24, classes=3):
    """Per-class boxes [frames, rois, classes, 4] and scores. Corners on a 1/64 grid, so areas are exact; each box
    in row 6k + 1 is the upper half of row 6k's, at exactly IoU 0.5 (the threshold: TensorFlow keeps both, TFLite's
    kernel alone would not). Rows 5k + 3 repeat the scores of rows 5k + 2."""
    top, left = rng.integers(0, 40, (2, frames, rois, classes))
    height, width = 2 * rng.integers(1, 12, (2, frames, rois, classes))
    height[:, 1::6] = height[:, ::6] // 2
    top[:, 1::6], left[:, 1::6], width[:, 1::6] = top[:, ::6], left[:, ::6], width[:, ::6]
    boxes = np.stack([top, left, top + height, left + width], -1) / 64.0
    scores = rng.uniform(0.0, 1.0, (frames, rois, classes))
    scores[:, 3::5] = scores[:, 2::5][:, :scores[:, 3::5].shape[1]]
    return boxes.astype(np.float32), scores.astype(np.float32)


def test_nms_and_roi_align_from_tflite_builtins_select_what_tensorflow_selects_in_tflite(tmp_path):
    """Converted with builtin ops only and run by the TFLite interpreter, on random cases."""
    from pose_tl.detection.inference import combined_nms
    from pose_tl.detection.tflite_builtins import combined_nms_from_builtins, roi_align_by_gathers

    class Builtins(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None, 3, 4]), tf.TensorSpec([None, None, 3]),
                                      tf.TensorSpec([None, None, None, 2]), tf.TensorSpec([None, None, 4])])
        def run(self, boxes, scores, features, rois):
            nms = combined_nms_from_builtins(boxes, scores, max_size=7, iou_threshold=0.5, score_threshold=0.3)
            return {**nms._asdict(), "pooled": roi_align_by_gathers(features, rois, 3)}

    module = Builtins()
    tf.saved_model.save(module, str(tmp_path), signatures=module.run)
    run = tf.lite.Interpreter(model_content=tf.lite.TFLiteConverter.from_saved_model(str(tmp_path)).convert()
                              ).get_signature_runner()
    rng = np.random.default_rng(3)
    boxes, scores = nms_cases(rng)
    features, rois = rng.normal(size=(2, 4, 8, 2)).astype(np.float32), boxes_ending_at_the_edge(rng, (2, 60))
    out = run(boxes=boxes, scores=scores, features=features, rois=rois)
    expected = combined_nms(boxes, scores, max_size=7, iou_threshold=0.5, score_threshold=0.3)
    np.testing.assert_array_equal(out["valid_detections"], expected.valid_detections.numpy())
    for frame in range(len(boxes)):
        as_set = lambda nms: sorted(map(tuple, np.concatenate(  # noqa: E731
            [np.asarray(nms[2])[frame, :, None], np.asarray(nms[1])[frame, :, None], np.asarray(nms[0])[frame]],
            -1).tolist()))
        assert as_set([out[key] for key in ("nmsed_boxes", "nmsed_scores", "nmsed_classes")]) == as_set(expected)
    # To float rounding (TFLite's average pool rounds its own way); a sample extrapolated by one and not the other
    # would differ by a feature's size.
    np.testing.assert_allclose(out["pooled"], RoiAlign(3)([features, rois]).numpy(), atol=1e-6)


def test_per_class_nms_in_shared_box_form_selects_what_combined_nms_selects():
    """The form the SavedModel uses (so that tf2onnx converts it) against TensorFlow's per-class combined NMS."""
    from pose_tl.detection.inference import combined_nms, per_class_nms

    boxes, scores = nms_cases(np.random.default_rng(5))
    for threshold in (0.0, 0.3):
        ours = per_class_nms(boxes, scores, max_size=9, iou_threshold=0.5, score_threshold=threshold)
        expected = combined_nms(boxes, scores, max_size=9, iou_threshold=0.5, score_threshold=threshold)
        for got, want in zip(ours, expected):
            np.testing.assert_array_equal(got.numpy(), want.numpy())


def detection_recipe(tmp_path, proposals="rpn", classes="person"):
    return write_recipe(tmp_path / "detect.yaml", {
        "task": "detection", "seed": 1,
        "model": {"backbone": {"weights": "none"}, "input_size": [64, 96],
                  "detection": {"proposals": proposals, "classes": classes, "anchor_sizes": [16, 32, 64],
                                "rpn_channels": 16, "fc_units": 32, "rois_per_image": 16, "rpn_proposals": 16}},
        "data": {"source": "synthetic", "batch_size": 4,
                 "synthetic": {"image_size": [48, 64], "train_frames": 8, "validation_frames": 4, "test_frames": 3,
                               "data_dir": str(tmp_path / "tfds")}},
        "train": {"phases": [{"name": "head", "epochs": 1},
                             {"name": "finetune", "epochs": 1, "learning_rate": 1.0e-4, "unfreeze": ["block4"]}],
                  "tensorboard": False},
    })


@pytest.fixture(scope="module")
def detection_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("detect")
    recipe = detection_recipe(tmp_path, proposals="both", classes="pose_class")
    result = invoke("train", recipe, "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    return recipe, tmp_path / "run", result


def test_detection_train_writes_checkpoint_metrics_and_saved_model(detection_run):
    recipe, run, result = detection_run
    for name in ("checkpoints/final.keras", "logs/0_head.csv", "logs/1_finetune.csv", "class_names.json",
                 "eval/metrics.json", "eval/metrics.txt", "saved_model/saved_model.pb", "saved_model/pose_tl.json"):
        assert (run / name).exists(), name
    header = (run / "logs/1_finetune.csv").read_text().splitlines()[0]
    for loss in ("val_rpn_objectness_loss", "val_rpn_deltas_loss", "val_class_logits_loss", "val_box_deltas_loss"):
        assert loss in header
    metrics = json.loads((run / "eval/metrics.json").read_text())
    assert metrics["frames"] == 4 and set(metrics["per_class"]) == set(json.loads((run / "class_names.json")
                                                                                  .read_text()))
    assert "AP50" in result.output and "SavedModel:" in result.output


def test_detection_evaluate_predict_and_pictures(detection_run, tmp_path):
    from pose_tl.data.depth_io import write_depth_png

    recipe, run, _ = detection_run
    evaluated = invoke("evaluate", recipe, "--model", run / "saved_model", "--split", "test", "--out", tmp_path / "e")
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads((tmp_path / "e/metrics.json").read_text())["frames"] == 3
    from_checkpoint = invoke("evaluate", recipe, "--model", run / "checkpoints/final.keras", "--split", "test",
                             "--out", tmp_path / "e2")
    assert from_checkpoint.exit_code == 0, from_checkpoint.output
    frame = tmp_path / "frame.png"
    write_depth_png(frame, np.full((48, 64), 2.5))
    predicted = invoke("predict", run / "saved_model", frame, "--json", "--out", tmp_path / "pictures")
    assert predicted.exit_code == 0, predicted.output
    (item,) = json.loads(predicted.output)
    assert isinstance(item["detections"], list) and (tmp_path / "pictures/frame_boxes.png").is_file()
    for detection in item["detections"]:
        assert detection["class"] in json.loads((run / "class_names.json").read_text())
        assert 0 <= detection["score"] <= 1 and len(detection["box_normalised"]) == 4
    plain = invoke("predict", run / "checkpoints/final.keras", frame)
    assert_one_line_error(plain, "needs its recipe", "pose-tl export")


def test_detection_export_from_checkpoint_loads_with_tensorflow_alone(detection_run, tmp_path):
    recipe, run, _ = detection_run
    exported = invoke("export", recipe, "--checkpoint", run / "checkpoints/final.keras", "--out", tmp_path / "sm")
    assert exported.exit_code == 0, exported.output
    output = run_without_pose_tl("""
out = model.signatures["serving_default"](depth=tf.constant(np.full((2, 48, 64), 2500, np.uint16)))
print(json.dumps({k: [list(v.shape), v.dtype.name] for k, v in out.items()}))
""", tmp_path / "sm", tmp_path)
    shapes = json.loads(output[-1])
    assert shapes["detection_boxes"] == [[2, 20, 4], "float32"] and shapes["num_detections"] == [[2], "int32"]
    assert shapes["detection_classes"] == [[2, 20], "int32"] and shapes["detection_class_names"][1] == "string"


@pytest.mark.parametrize("changes, named", [
    ({"model": {"detection": {"anchor_sizes": []}}}, ["model.detection.anchor_sizes"]),
    ({"model": {"detection": {"proposals": "selective"}}}, ["model.detection.proposals"]),
    ({"data": {"source": "folder", "root": "."}}, ["data.source", "detection task"]),
])
def test_bad_detection_recipes_name_the_field(tmp_path, changes, named):
    import yaml

    recipe = detection_recipe(tmp_path)
    data = yaml.safe_load(recipe.read_text())
    for section, values in changes.items():
        for key, value in values.items():
            if isinstance(value, dict):
                data[section].setdefault(key, {}).update(value)
            else:
                data[section][key] = value
    write_recipe(recipe, data)
    assert_one_line_error(invoke("recipes", "validate", recipe), str(recipe), *named)
