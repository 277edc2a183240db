"""The pose task so far: heatmap / PAF targets, the pose head, and training through the CLI."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import invoke, run_without_pose_tl, tiny_pose_recipe_dict, write_recipe

from pose_tl.data.people.skeleton import JOINT, LIMBS, NUM_JOINTS, OCCLUDED, OUT_OF_FRAME, PAF_LIMBS, VISIBLE
from pose_tl.data.people.targets import joint_depth_targets, joint_heatmaps, part_affinity_fields


def one_person(points):
    joints = np.zeros((1, NUM_JOINTS, 2), np.float32)
    visibility = np.full((1, NUM_JOINTS), VISIBLE, np.int32)
    for name, xy in points.items():
        joints[0, JOINT[name]] = xy
    return tf.constant(joints), visibility


def test_heatmap_peaks_at_joints_in_the_frame_only():
    joints, visibility = one_person({"head": (36.0, 20.0), "neck": (36.0, 44.0)})
    visibility[0, JOINT["neck"]] = OUT_OF_FRAME
    visibility[0, JOINT["torso"]] = OCCLUDED
    maps = joint_heatmaps(joints, tf.constant(visibility), (16, 16), 4, 1.5).numpy()
    head = maps[..., JOINT["head"]]
    y, x = np.unravel_index(head.argmax(), head.shape)
    assert (x + 0.5) * 4 == pytest.approx(36.0, abs=2) and (y + 0.5) * 4 == pytest.approx(20.0, abs=2)
    assert head.max() > 0.85  # the joint sits on a pixel corner: exp(-0.5 / (2 * 1.5**2))
    assert maps[..., JOINT["neck"]].max() == 0.0  # out of frame: no peak to learn
    assert maps[..., JOINT["torso"]].max() > 0.5  # occluded joints are labelled and learned, as in COCO


def test_heatmaps_of_two_people_are_their_maximum():
    joints = np.zeros((2, NUM_JOINTS, 2), np.float32)
    joints[0, :, :] = (8.0, 8.0)
    joints[1, :, :] = (56.0, 56.0)
    maps = joint_heatmaps(tf.constant(joints), tf.fill([2, NUM_JOINTS], VISIBLE), (16, 16), 4, 1.0).numpy()
    assert maps[1, 1, 0] > 0.7 and maps[13, 13, 0] > 0.7 and maps[7, 7, 0] < 0.01


def test_paf_points_along_the_limb_and_is_zero_elsewhere():
    joints, visibility = one_person({"right_shoulder": (10.0, 30.0), "right_elbow": (50.0, 30.0)})
    fields = part_affinity_fields(joints, tf.constant(visibility), (16, 16), 4, 1.0).numpy()
    limb = LIMBS.index((JOINT["right_shoulder"], JOINT["right_elbow"]))
    fx, fy = fields[..., 2 * limb], fields[..., 2 * limb + 1]
    row = int(30 / 4)
    assert np.allclose(fx[row, 4:12], 1.0) and np.allclose(fy[row, 4:12], 0.0)
    assert np.all(fx[0:3] == 0) and np.all(fx[row, 14:] == 0)


def test_joint_depth_targets_are_the_depth_behind_the_surface_near_labelled_joints():
    joints, visibility = one_person({"neck": (18.0, 18.0), "torso": (42.0, 42.0)})
    joints_3d = np.zeros((1, NUM_JOINTS, 3), np.float32)
    joints_3d[0, :, 2] = 2.5
    joints_3d[0, JOINT["torso"], 2] = 0.0  # no 3D label
    depth = np.full((64, 64), 2.4, np.float32)
    depth[:, 32:] = 3.0
    maps = joint_depth_targets(joints, joints_3d, tf.constant(visibility), depth, (16, 16), 4).numpy()
    target, weight = maps[..., :NUM_JOINTS], maps[..., NUM_JOINTS:]
    neck, torso = JOINT["neck"], JOINT["torso"]
    assert weight[4, 4, neck] == 1 and np.isclose(target[4, 4, neck], 0.1, atol=1e-5)  # 2.5 m behind 2.4 m
    assert weight[4, 5, neck] == 1 and weight[4, 7, neck] == 0 and np.all(target[weight == 0] == 0)
    assert np.all(weight[..., torso] == 0)  # an unknown z is not supervised


def test_no_people_gives_empty_targets():
    empty = tf.zeros((0, NUM_JOINTS, 2))
    visibility = tf.zeros((0, NUM_JOINTS), tf.int32)
    assert float(tf.reduce_max(joint_heatmaps(empty, visibility, (8, 8), 8, 1.5))) == 0.0
    assert float(tf.reduce_max(tf.abs(part_affinity_fields(empty, visibility, (8, 8), 8, 1.0)))) == 0.0


@pytest.mark.parametrize("stride", [2, 4, 8])
def test_pose_model_outputs_every_stage_at_the_output_stride(stride):
    from pose_tl.config.schema import ModelConfig, PoseHeadConfig
    from pose_tl.models.factory import build_pose_model
    import dataclasses

    config = ModelConfig(input_size=(64, 96), pose=PoseHeadConfig(output_stride=stride, channels=16, stages=3,
                                                                    joint_depth=True))
    config = dataclasses.replace(config, backbone=dataclasses.replace(config.backbone, weights="none"))
    model = build_pose_model(config, NUM_JOINTS, len(PAF_LIMBS))
    outputs = model(np.ones((1, 64, 96, 1), np.float32))
    assert sorted(outputs) == ["heatmaps", "heatmaps_stage1", "heatmaps_stage2", "joint_depth", "pafs",
                               "pafs_stage1", "pafs_stage2"]
    assert outputs["heatmaps"].shape == (1, 64 // stride, 96 // stride, NUM_JOINTS)
    assert outputs["joint_depth"].shape == (1, 64 // stride, 96 // stride, NUM_JOINTS)
    assert outputs["pafs"].shape == (1, 64 // stride, 96 // stride, 2 * len(PAF_LIMBS))
    assert outputs["heatmaps"].dtype == "float32"


def test_normalised_laterals_make_the_head_blind_to_the_scale_of_vgg_features():
    from pose_tl.heads.pose import PoseHead

    rng = np.random.default_rng(0)
    features = [rng.normal(size=(4, 16, 16, 8)).astype(np.float32), rng.normal(size=(4, 8, 8, 12)).astype(np.float32)]
    for lateral_norm in (True, False):
        head = PoseHead(NUM_JOINTS, len(PAF_LIMBS), channels=8, stages=1, lateral_norm=lateral_norm)
        small = head(features, training=True)[0][0].numpy()
        large = head([f * 1000.0 for f in features], training=True)[0][0].numpy()
        scale = np.abs(large).mean() / np.abs(small).mean()
        if lateral_norm:
            np.testing.assert_allclose(large, small, rtol=1e-2, atol=2e-3)  # up to BatchNorm's epsilon
        else:
            assert scale > 100.0  # unnormalised, the heatmaps follow the feature scale
    assert PoseHead.from_config(head.get_config()).lateral_norm is False
    assert PoseHead(NUM_JOINTS, len(PAF_LIMBS), lateral_norm=True).get_config()["lateral_norm"] is True


def test_focal_heatmap_loss_keeps_an_unsure_pixel_near_its_probability_where_weighted_l2_inflates_it():
    from pose_tl.training.losses import ForegroundWeightedMSE, HeatmapFocalLoss

    q = 0.2  # the pixel is the joint in 20 % of look-alike frames
    candidates = np.linspace(0.01, 0.99, 99, dtype=np.float32)

    def best_prediction(loss):
        expected = [q * float(loss(tf.ones([1, 1]), tf.constant([[p]]))) +
                    (1 - q) * float(loss(tf.zeros([1, 1]), tf.constant([[p]]))) for p in candidates]
        return candidates[int(np.argmin(expected))]

    assert 0.1 <= best_prediction(HeatmapFocalLoss()) <= 0.45  # 0.37: the focal term leans towards 1/2
    assert best_prediction(ForegroundWeightedMSE(10.0)) > 0.6  # 11 q / (11 q + 1 - q) = 0.73
    assert float(HeatmapFocalLoss()(tf.constant([[0.0, 1.0]]), tf.constant([[0.0, 1.0]]))) < 1e-6


def pose_recipe(tmp_path):
    return write_recipe(tmp_path / "pose.yaml", tiny_pose_recipe_dict(tmp_path))


@pytest.fixture(scope="module")
def pose_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("pose")
    recipe = pose_recipe(tmp_path)
    result = invoke("train", recipe, "--out", tmp_path / "run")
    assert result.exit_code == 0, result.output
    return recipe, tmp_path / "run", result


def test_pose_train_writes_checkpoint_metrics_and_saved_model(pose_run):
    recipe, run, result = pose_run
    for name in ("checkpoints/final.keras", "checkpoints/facing.keras", "checkpoints/refiner.keras",
                 "logs/0_head.csv", "logs/1_finetune.csv", "recipe.resolved.yaml", "eval/metrics.json",
                 "eval/metrics.txt", "saved_model/saved_model.pb", "saved_model/pose_tl.json", "bone_lengths.json"):
        assert (run / name).exists(), name
    metadata = json.loads((run / "saved_model/pose_tl.json").read_text())
    # The recipe trains both, but the refiner answers which way people face: the classifier is not served.
    assert metadata["facing_classifier"] is False and metadata["joint_refiner"] is True
    assert metadata["refine_passes"] == 2  # the default
    assert "facing classifier:" in result.output and "joint refiner:" in result.output
    assert "facing classifier: not used" in result.output
    for report in ("facing", "refiner"):
        trained = json.loads((run / f"logs/{report}.json").read_text())
        assert trained["epochs"] == 1 and trained["train_examples"] > 0, report
        assert 0.0 <= trained["validation_accuracy"] <= 1.0, report
    from pose_tl.export.loading import load_refiner_model

    refiner = load_refiner_model(run / "checkpoints/final.keras")
    refiner_report = json.loads((run / "logs/refiner.json").read_text())
    assert refiner.layers[1].filters == 8 and (refiner_report["filters"], refiner_report["copies"]) == (8, 3)
    assert refiner_report["joint_depths"] is True and 0.0 <= refiner_report["validation_depth_accuracy"] <= 1.0
    assert metadata["refiner_joint_depths"] is True and metadata["refiner_trunk_depths"] is True
    assert metadata["refiner_facing"] is True  # the recipe default: the refiner says which way people face
    assert refiner_report["facing"] is True and "validation_facing_accuracy" in refiner_report
    header = (run / "logs/1_finetune.csv").read_text().splitlines()[0]
    assert "val_heatmaps_loss" in header and "val_pafs_stage1_loss" in header
    metrics = json.loads((run / "eval/metrics.json").read_text())
    assert metrics["frames"] == 4 and set(metrics["per_joint"]) == set(JOINT)
    assert set(metrics["twin_pairs"]) == {"apart", "turned@0.2", "collapsed@0.2"}
    assert "PCK@0.2" in result.output and "SavedModel:" in result.output
    inspected = invoke("inspect", recipe)
    assert inspected.exit_code == 0 and "pose head (2 stages)" in inspected.output


def test_pose_resume_of_a_finished_run_keeps_its_facing_classifier_and_joint_refiner(pose_run, tmp_path):
    recipe, run, _ = pose_run
    crop_models = [run / "checkpoints/facing.keras", run / "checkpoints/refiner.keras"]
    trained_at = [path.stat().st_mtime_ns for path in crop_models]
    resumed = invoke("train", recipe, "--out", run, "--resume", "--no-export")
    assert resumed.exit_code == 0, resumed.output
    assert "facing classifier: kept" in resumed.output and "training examples" not in resumed.output
    assert "joint refiner: kept" in resumed.output and "training crops" not in resumed.output
    assert [path.stat().st_mtime_ns for path in crop_models] == trained_at
    # other settings for it: trained again (on a copy, so the module's run stays as it was)
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    retrained = invoke("train", recipe, "--out", copy, "--resume", "--no-export",
                       "--set", "model.pose.facing_epochs=2")
    assert retrained.exit_code == 0, retrained.output
    assert "facing classifier: kept" not in retrained.output and "2 epochs" in retrained.output
    assert json.loads((copy / "logs/facing.json").read_text())["epochs"] == 2
    assert "joint refiner: kept" in retrained.output  # its own settings did not change
    narrower = invoke("train", recipe, "--out", copy, "--resume", "--no-export", "--set", "model.pose.refiner_filters=4")
    assert narrower.exit_code == 0, narrower.output
    assert "joint refiner: kept" not in narrower.output and "training crops" in narrower.output
    # none asked for: the refiner an earlier attempt left is removed, as it would move this model's joints
    unrefined = invoke("train", recipe, "--out", copy, "--resume", "--no-export", "--set", "model.pose.refine_epochs=0")
    assert unrefined.exit_code == 0, unrefined.output
    assert not (copy / "checkpoints/refiner.keras").exists()


def test_pose_evaluate_and_predict(pose_run, tmp_path):
    from pose_tl.data.depth_io import write_depth_png

    recipe, run, _ = pose_run
    evaluated = invoke("evaluate", recipe, "--model", run / "saved_model", "--split", "test", "--out", tmp_path / "e")
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads((tmp_path / "e/metrics.json").read_text())["frames"] == 2
    frame = tmp_path / "frame.png"
    write_depth_png(frame, np.full((48, 64), 2.5))
    predicted = invoke("predict", run / "saved_model", frame, "--json", "--out", tmp_path / "overlays",
                       "--intrinsics", "60", "60", "32", "24")
    assert predicted.exit_code == 0, predicted.output
    (item,) = json.loads(predicted.output)
    assert item["intrinsics"] == [60.0, 60.0, 32.0, 24.0] and isinstance(item["people"], list)
    assert (tmp_path / "overlays/frame_pose.png").is_file()


def test_pose_export_from_checkpoint_loads_with_tensorflow_alone(pose_run, tmp_path):
    recipe, run, _ = pose_run
    exported = invoke("export", recipe, "--checkpoint", run / "checkpoints/final.keras", "--out", tmp_path / "sm")
    assert exported.exit_code == 0, exported.output
    shapes_line, same_maps = run_without_pose_tl("""
depth = tf.constant(np.full((2, 48, 64), 2500, np.uint16))
a = model.signatures["serving_default"](depth=depth)
b = model.signatures["serving_with_intrinsics"](depth=depth, intrinsics=tf.constant([[57.1, 57.1, 32., 24.]] * 2))
print(json.dumps({k: [list(v.shape), v.dtype.name] for k, v in a.items()}))
print(json.dumps(bool(np.allclose(a["heatmaps"].numpy(), b["heatmaps"].numpy()))))
""", tmp_path / "sm", tmp_path)[-2:]
    shapes = json.loads(shapes_line)
    assert shapes["num_people"] == [[2], "int32"]
    assert shapes["keypoints_3d"][0] == [2, 10, NUM_JOINTS, 3] and shapes["keypoint_inferred"][1] == "bool"
    assert shapes["heatmaps"][0] == [2, 32 // 8, 64 // 8, NUM_JOINTS]  # output stride 8
    assert json.loads(same_maps)
    assert compiled_functions(tmp_path / "sm")  # decoding runs as XLA-compiled functions


def test_flip_test_through_evaluate_and_export(pose_run, tmp_path):
    recipe, run, _ = pose_run
    flip = ("--set", "model.pose.flip_test=true", "--set", "model.pose.refine_passes=3")
    reports = {}
    for name, options in (("plain", ()), ("flip", flip)):
        evaluated = invoke("evaluate", recipe, *options, "--model", run / "checkpoints/final.keras", "--split",
                           "test", "--out", tmp_path / name)
        assert evaluated.exit_code == 0, evaluated.output
        reports[name] = json.loads((tmp_path / name / "metrics.json").read_text())
    assert reports["flip"]["frames"] == reports["plain"]["frames"] == 2
    exported = invoke("export", recipe, *flip, "--checkpoint", run / "checkpoints/final.keras",
                      "--out", tmp_path / "sm")
    assert exported.exit_code == 0, exported.output
    metadata = json.loads((tmp_path / "sm" / "pose_tl.json").read_text())
    assert metadata["flip_test"] is True and metadata["refine_passes"] == 3
    (gap,) = run_without_pose_tl("""
depth = np.random.default_rng(1).uniform(1500, 4000, (1, 48, 64)).astype(np.uint16)
a = model.signatures["serving_default"](depth=tf.constant(depth))["heatmaps"].numpy()
b = model.signatures["serving_default"](depth=tf.constant(depth[:, :, ::-1].copy()))["heatmaps"].numpy()
flip = json.load(open(sys.argv[1] + "/pose_tl.json"))
index = [flip["joint_names"].index(n.replace("right_", "L_").replace("left_", "right_").replace("L_", "left_"))
         for n in flip["joint_names"]]
print(json.dumps(float(np.abs(b[:, :, ::-1][..., index] - a).max())))
""", tmp_path / "sm", tmp_path)[-1:]
    assert json.loads(gap) < 1e-4  # the exported model is mirror-symmetric: the flip test is inside


def compiled_functions(saved_model):
    """Names of the SavedModel's functions marked for XLA compilation."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((Path(saved_model) / "saved_model.pb").read_bytes())
    return [function.signature.name for function in proto.meta_graphs[0].graph_def.library.function
            if function.attr["_XlaMustCompile"].b]


def test_pose_with_learned_joint_depths_at_stride_2_trains_exports_and_loads_with_tensorflow_alone(tmp_path):
    recipe = pose_recipe(tmp_path)
    run = tmp_path / "run"
    options = ("--set", "model.pose.joint_depth=true", "--set", "model.pose.output_stride=2")
    result = invoke("train", recipe, *options, "--out", run)
    assert result.exit_code == 0, result.output
    header = (run / "logs/1_finetune.csv").read_text().splitlines()[0]
    assert "val_joint_depth_loss" in header
    inspected = invoke("inspect", recipe, *options)
    assert inspected.exit_code == 0 and "heatmaps + PAFs + joint depths at output stride 2: 16x32" in inspected.output
    finite, heatmap_shape = run_without_pose_tl("""
out = model.signatures["serving_default"](depth=tf.constant(np.full((1, 48, 64), 2500, np.uint16)))
print(json.dumps(bool(np.all(np.isfinite(out["keypoints_3d"].numpy())))))
print(json.dumps(list(out["heatmaps"].shape)))
""", run / "saved_model", tmp_path)[-2:]
    assert json.loads(finite)
    assert json.loads(heatmap_shape) == [1, 32 // 2, 64 // 2, NUM_JOINTS]


def test_pose_with_focal_heatmap_loss_and_shaded_depth_trains_and_exports(tmp_path):
    recipe = pose_recipe(tmp_path)
    run = tmp_path / "run"
    result = invoke("train", recipe, "--set", "model.pose.heatmap_loss=focal", "--set", "model.depth.encoding=shaded",
                    "--set", "model.pose.xla_decoding=false", "--out", run)
    assert result.exit_code == 0, result.output
    metadata = json.loads((run / "saved_model" / "pose_tl.json").read_text())
    assert metadata["depth_encoding"] == "shaded"
    assert not metadata["xla_decoding"] and not compiled_functions(run / "saved_model")  # TensorFlow's ops only
    (heatmap_range,) = run_without_pose_tl("""
out = model.signatures["serving_default"](depth=tf.constant(np.full((1, 48, 64), 2500, np.uint16)))
print(json.dumps([float(tf.reduce_min(out["heatmaps"])), float(tf.reduce_max(out["heatmaps"]))]))
""", run / "saved_model", tmp_path)[-1:]
    low, high = json.loads(heatmap_range)
    assert 0.0 <= low <= high <= 1.0  # sigmoid maps; an untrained start sits near the 0.01 prior
    bad = invoke("train", recipe, "--set", "model.pose.heatmap_loss=l1", "--out", tmp_path / "never")
    assert bad.exit_code == 2 and "model.pose.heatmap_loss" in bad.output
    bad = invoke("train", recipe, "--set", "model.depth.encoding=jet", "--out", tmp_path / "never")
    assert bad.exit_code == 2 and "model.depth.encoding" in bad.output


def test_pose_needs_people_data(tiny_recipe):
    result = invoke("train", tiny_recipe, "--set", "task=pose", "--out", "/tmp/never-written")
    assert result.exit_code == 2 and "data.source" in result.output
