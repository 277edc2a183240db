"""Pose training beyond the synthetic engine: COCO-style and ITOP files as sources, and loss masks where labels are
unknown (people boxed without joints)."""

import json

import h5py
import numpy as np
import pytest
import tensorflow as tf
from conftest import assert_one_line_error, invoke, write_recipe

from pose_tl.data.people.frame import PeopleFrame
from pose_tl.data.people.skeleton import NUM_JOINTS, VISIBLE
from pose_tl.data.people.targets import known_label_mask
from pose_tl.evaluation.pose_metrics import evaluate_pose, format_pose_report
from pose_tl.training.losses import ForegroundWeightedMSE


def test_known_label_mask_zeroes_only_boxes_of_people_without_joints():
    boxes = tf.constant([[4.0, 4.0, 16.0, 24.0], [40.0, 8.0, 16.0, 16.0]])  # (x, y, w, h) input pixels
    visibility = np.full((2, NUM_JOINTS), VISIBLE, np.int32)
    visibility[1] = 0  # the second person is boxed but has no labelled joint
    mask = known_label_mask(boxes, tf.constant(visibility), (8, 16), 4).numpy()
    assert mask.shape == (8, 16)
    assert np.all(mask[2:6, 10:14] == 0)  # inside the unlabelled box (output px 10-14, 2-6)
    assert np.all(mask[1:7, 1:5] == 1)  # the labelled person still trains
    assert np.count_nonzero(mask == 0) == 4 * 4  # pixels whose centre lies in the box, nothing more
    assert set(np.unique(mask)) == {0.0, 1.0}


def test_masked_pixels_do_not_change_the_loss():
    rng = np.random.default_rng(0)
    y_true = rng.uniform(0, 1, (2, 6, 8, 3)).astype(np.float32)
    y_pred = rng.uniform(0, 1, (2, 6, 8, 3)).astype(np.float32)
    mask = np.ones((2, 6, 8), np.float32)
    mask[0, 1:4, 2:5] = 0
    loss = ForegroundWeightedMSE()
    changed = y_pred.copy()
    changed[0, 1:4, 2:5] += 5.0  # a wildly wrong prediction where the labels are unknown
    assert float(loss(y_true, y_pred, sample_weight=mask)) == pytest.approx(
        float(loss(y_true, changed, sample_weight=mask)))
    assert float(loss(y_true, changed)) > float(loss(y_true, y_pred)) + 1.0  # unmasked, it would count


def test_metrics_without_3d_labels_report_pck_and_no_map():
    joints = np.tile(np.linspace(5, 40, NUM_JOINTS)[:, None], (1, 2)).astype(np.float32)[None]
    frame = PeopleFrame(depth_mm=np.zeros((48, 64), np.uint16), instance_mask=np.zeros((48, 64), np.uint8),
                        intrinsics=np.full(4, np.nan, np.float32), joints_2d=joints,
                        joints_3d=np.full((1, NUM_JOINTS, 3), np.nan, np.float32),
                        visibility=np.full((1, NUM_JOINTS), VISIBLE, np.int8),
                        boxes=np.array([[5, 5, 35, 35]], np.float32), pose_classes=np.array([-1], np.int32))
    prediction = {"num_people": 1, "keypoints_2d": joints, "keypoints_3d": np.zeros((1, NUM_JOINTS, 3)),
                  "keypoint_scores": np.ones((1, NUM_JOINTS)), "keypoint_inferred": np.zeros((1, NUM_JOINTS), bool),
                  "person_scores": np.ones(1)}
    report = evaluate_pose([prediction], [frame])
    assert report["pck@0.2"] == 1.0 and report["map@10cm"] is None and report["mpjpe_mm"] is None
    assert "mAP@10cm: n/a" in format_pose_report(report)


def synthetic_recipe(tmp_path):
    return write_recipe(tmp_path / "synthetic.yaml", {
        "task": "pose", "seed": 2,
        "data": {"source": "synthetic", "synthetic": {"image_size": [48, 64], "train_frames": 6,
                                                      "validation_frames": 3, "test_frames": 3,
                                                      "data_dir": str(tmp_path / "tfds")}},
    })


def files_recipe(tmp_path, data):
    return write_recipe(tmp_path / "files.yaml", {
        "task": "pose", "seed": 1,
        "model": {"backbone": {"weights": "none"}, "input_size": [32, 64], "pose": {"channels": 8, "stages": 1}},
        "data": {"batch_size": 4, **data},
        "train": {"phases": [{"name": "head", "epochs": 1}], "tensorboard": False},
    })


@pytest.fixture(scope="module")
def coco_folders(tmp_path_factory):
    """Synthetic people converted to COCO folders (train, validation); one train person loses its joints."""
    tmp_path = tmp_path_factory.mktemp("coco")
    recipe = synthetic_recipe(tmp_path)
    for split in ("train", "validation"):
        converted = invoke("data", "convert", recipe, "--split", split, "--out", tmp_path / split)
        assert converted.exit_code == 0, converted.output
    annotations = tmp_path / "train" / "annotations.json"
    data = json.loads(annotations.read_text())
    unlabelled = data["annotations"][0]
    unlabelled["keypoints"] = [0] * (3 * NUM_JOINTS)
    unlabelled["num_keypoints"] = 0
    for key in ("keypoints_3d", "keypoints_2d_raw"):
        unlabelled.pop(key, None)
    annotations.write_text(json.dumps(data))
    return tmp_path


def test_pose_trains_and_evaluates_on_coco_files(coco_folders, tmp_path):
    from pose_tl.data.pose_data import pose_splits
    from pose_tl.config import load_recipe

    recipe = files_recipe(tmp_path, {"source": "coco", "coco": {"train": str(coco_folders / "train"),
                                                                "validation": str(coco_folders / "validation")}})
    loaded = load_recipe(recipe)
    data = pose_splits(loaded.data, loaded.model.pose, seed=1, input_size=(32, 64), for_training=False)
    assert data.sizes == {"train": 6, "validation": 3}
    assert all(dataset.options().autotune.enabled is False for dataset in data.datasets.values())  # `prefetching`
    weights = [w for _, _, w in data.datasets["train"].unbatch().as_numpy_iterator()]
    masks = np.stack([w["heatmaps"] for w in weights])
    assert masks.shape == (6, 4, 8) and masks[0].min() == 0.0  # the unlabelled person's box is masked
    assert masks[1:].min() == 1.0  # every other frame trains everywhere

    result = invoke("train", recipe, "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "run/eval/metrics.json").read_text())
    assert metrics["frames"] == 3 and metrics["map@10cm"] is not None  # pose_tl's COCO files keep 3D labels
    assert (tmp_path / "run/saved_model/saved_model.pb").is_file()


def write_itop_split(folder, split, frames=5, seed=0):
    """`frames` ITOP frames (240x320, float16 metres) of one person, labels in ITOP's layout."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"00_{i:05d}".encode() for i in range(frames)])
    depth = np.full((frames, 240, 320), 3.0, np.float16)
    image = np.zeros((frames, NUM_JOINTS, 2), np.int64)
    world = np.zeros((frames, NUM_JOINTS, 3), np.float32)
    for i in range(frames):
        cx = rng.integers(110, 210)
        image[i, :, 0] = cx + rng.integers(-30, 30, NUM_JOINTS)
        image[i, :, 1] = np.linspace(40, 200, NUM_JOINTS).astype(int)
        depth[i, 30:210, cx - 40:cx + 40] = 2.0
        world[i, :, 0] = (image[i, :, 0] - 160) * 2.0 / 285.71
        world[i, :, 1] = -(image[i, :, 1] - 120) * 2.0 / 285.71
        world[i, :, 2] = 2.0
    depth_path, labels_path = folder / f"ITOP_side_{split}_depth_map.h5", folder / f"ITOP_side_{split}_labels.h5"
    with h5py.File(depth_path, "w") as f:
        f["id"], f["data"] = ids, depth
    with h5py.File(labels_path, "w") as f:
        f["id"], f["is_valid"] = ids, np.ones(frames, np.uint8)
        f["visible_joints"] = np.ones((frames, NUM_JOINTS), np.int32)
        f["image_coordinates"], f["real_world_coordinates"] = image, world
    return depth_path, labels_path


def test_pose_trains_on_itop_files_without_validation_and_evaluates_the_test_pair(tmp_path):
    train = write_itop_split(tmp_path, "train", frames=5)
    test = write_itop_split(tmp_path, "test", frames=3, seed=1)
    recipe = files_recipe(tmp_path, {"source": "itop", "itop": {
        "train_depth": train[0].name, "train_labels": train[1].name,
        "test_depth": test[0].name, "test_labels": test[1].name}})  # relative to the recipe
    result = invoke("train", recipe, "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "run/eval").exists()  # no validation pair: nothing to evaluate during training
    evaluated = invoke("evaluate", recipe, "--model", tmp_path / "run/saved_model", "--split", "test",
                       "--out", tmp_path / "test_eval")
    assert evaluated.exit_code == 0, evaluated.output
    metrics = json.loads((tmp_path / "test_eval/metrics.json").read_text())
    assert metrics["frames"] == 3 and metrics["people"] == 3


@pytest.mark.parametrize("data, named", [
    ({"source": "coco"}, ["data.coco", "at least one split"]),
    ({"source": "coco", "coco": {"train": "missing_folder"}}, ["data.coco.train", "missing_folder"]),
    ({"source": "itop", "itop": {"train_depth": "a.h5"}}, ["data.itop.train_labels", "paired"]),
    ({"source": "itop", "itop": {"test_depth": "a.h5", "test_labels": "b.h5"}}, ["data.itop.test_depth", "a.h5"]),
    ({"source": "folder", "root": "."}, ["data.source", "'synthetic', 'coco' or 'itop'"]),
])
def test_bad_people_file_recipes_name_the_field(tmp_path, data, named):
    recipe = files_recipe(tmp_path, data)
    assert_one_line_error(invoke("train", recipe, "--out", tmp_path / "run"), str(recipe), *named)


def test_classification_rejects_pose_only_sources(tmp_path):
    recipe = write_recipe(tmp_path / "c.yaml", {"data": {"source": "coco", "coco": {"train": "."}}})
    assert_one_line_error(invoke("recipes", "validate", recipe), "data.source", "joint labels")


def test_a_corrupt_coco_png_is_named_before_training(coco_folders, tmp_path):
    import shutil

    broken = tmp_path / "train"
    shutil.copytree(coco_folders / "train", broken)
    first = sorted((broken / "depth").iterdir())[2]
    first.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    recipe = files_recipe(tmp_path, {"source": "coco", "coco": {"train": str(broken)}})
    assert_one_line_error(invoke("train", recipe, "--out", tmp_path / "run"), first.name)


def test_two_processes_preparing_the_same_synthetic_dataset_both_succeed(tmp_path):
    import subprocess
    import sys

    script = f"""
from pose_tl.data.people.tfds_builder import default_settings, prepare_synthetic
settings = default_settings(image_size=(24, 32))
builder = prepare_synthetic(settings, 3, {{"train": 6, "validation": 2}}, {str(tmp_path)!r})
print(builder.info.splits["train"].num_examples)
"""
    runs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    outputs = [run.communicate(timeout=300) for run in runs]
    for run, (out, err) in zip(runs, outputs):
        assert run.returncode == 0, err[-2000:]
        assert out.strip().splitlines()[-1] == "6"
