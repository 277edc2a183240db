"""TFLite and ONNX exports compute what the SavedModel computes, from the same uint16 depth frames."""

import dataclasses
import json
import sys

import numpy as np
import pytest

from conftest import assert_one_line_error, invoke, write_recipe

CLASS_NAMES = ["a", "b", "c"]
# TF 2.21 still ships tf.lite.Interpreter but points to ai_edge_litert; the .tflite file is the same for both
pytestmark = pytest.mark.filterwarnings(r"ignore:.*tf\.lite\.Interpreter is deprecated:UserWarning")


def save_tiny_model(path, build, policy):
    """A random-weight 32x32 model built under the Keras dtype `policy`, saved as a .keras checkpoint."""
    import keras

    from pose_tl.config.schema import ModelConfig
    from pose_tl.training.precision import dtype_policy

    keras.utils.set_random_seed(1)
    config = ModelConfig(input_size=(32, 32))
    config = dataclasses.replace(config, backbone=dataclasses.replace(config.backbone, weights="none"))
    with dtype_policy(policy):
        model = build(config)
    model.save(path)
    return model


def save_tiny_classifier(path, policy="float32"):
    from pose_tl.models.factory import build_model

    return save_tiny_model(path, lambda config: build_model(config, CLASS_NAMES), policy)


def depth_frames():
    """Two frames of another size than the model's input, with sensor holes."""
    depth = np.random.default_rng(2).integers(500, 4500, size=(2, 40, 48)).astype(np.uint16)
    depth[:, :5, :5] = 0
    return depth


def saved_model_outputs(model, folder, depth):
    import tensorflow as tf

    from pose_tl.export.saved_model import export_classifier

    export_classifier(model, folder)
    out = tf.saved_model.load(str(folder)).signatures["serving_default"](depth=tf.constant(depth))
    return {name: out[name].numpy() for name in ("probabilities", "class_ids")}


def tflite_outputs(path, depth):
    import tensorflow as tf

    return tf.lite.Interpreter(model_path=str(path)).get_signature_runner()(depth=depth)


def onnx_outputs(path, depth):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(names, {"depth": depth})))


@pytest.fixture(scope="module")
def float32_classifier(tmp_path_factory):
    folder = tmp_path_factory.mktemp("float32")
    model = save_tiny_classifier(folder / "model.keras")
    return folder, saved_model_outputs(model, folder / "saved_model", depth_frames())


def test_tflite_export_through_the_cli_matches_the_saved_model(float32_classifier, tiny_recipe):
    folder, expected = float32_classifier
    result = invoke("export", tiny_recipe, "--checkpoint", folder / "model.keras", "--out", folder / "tflite",
                    "--format", "tflite")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"TFLite: {folder / 'tflite' / 'model.tflite'}"
    out = tflite_outputs(folder / "tflite" / "model.tflite", depth_frames())
    np.testing.assert_allclose(out["probabilities"], expected["probabilities"], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out["class_ids"], expected["class_ids"])
    metadata = json.loads((folder / "tflite" / "pose_tl.json").read_text())
    assert (metadata["format"], metadata["file"], metadata["class_names"]) == ("tflite", "model.tflite", CLASS_NAMES)


def test_onnx_export_matches_the_saved_model(float32_classifier, tiny_recipe):
    pytest.importorskip("tf2onnx")
    pytest.importorskip("onnxruntime")
    folder, expected = float32_classifier
    result = invoke("export", tiny_recipe, "--checkpoint", folder / "model.keras", "--out", folder / "onnx",
                    "--format", "onnx")
    assert result.exit_code == 0, result.output
    out = onnx_outputs(folder / "onnx" / "model.onnx", depth_frames())
    np.testing.assert_allclose(out["probabilities"], expected["probabilities"], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out["class_ids"], expected["class_ids"])


def test_bfloat16_classifier_converts_in_float32_within_bfloat16_rounding(tmp_path):
    """A model trained under mixed_bfloat16 converts (TFLite has no bf16 convolutions) to ~3 significant digits."""
    from pose_tl.export.formats import export_model_file

    model = save_tiny_classifier(tmp_path / "model.keras", policy="mixed_bfloat16")
    expected = saved_model_outputs(model, tmp_path / "saved_model", depth_frames())
    path = export_model_file(model, tmp_path / "tflite", "tflite")
    np.testing.assert_allclose(tflite_outputs(path, depth_frames())["probabilities"], expected["probabilities"],
                               atol=2e-3)


def test_shaded_depth_classifier_converts_to_tflite(tmp_path):
    """The shading's convolution and slopes (model.depth.encoding: shaded) are TFLite builtin ops too."""
    from pose_tl.export.formats import export_model_file
    from pose_tl.models.factory import build_model

    def build(config):
        return build_model(dataclasses.replace(config, depth=dataclasses.replace(config.depth, encoding="shaded")),
                           CLASS_NAMES)

    model = save_tiny_model(tmp_path / "model.keras", build, "float32")
    expected = saved_model_outputs(model, tmp_path / "saved_model", depth_frames())
    path = export_model_file(model, tmp_path / "tflite", "tflite")
    np.testing.assert_allclose(tflite_outputs(path, depth_frames())["probabilities"], expected["probabilities"],
                               rtol=1e-5, atol=1e-6)


def save_tiny_pose_model(path):
    """A random-weight pose model, stride 4, whose untrained maps already decode into people (10 per frame here),
    so decoding's outputs are compared, not only empty arrays."""
    from pose_tl.config.schema import PoseHeadConfig
    from pose_tl.data.people.skeleton import JOINT_NAMES, PAF_LIMBS
    from pose_tl.models.factory import build_pose_model

    def build(config):
        config = dataclasses.replace(config, input_size=(32, 64),
                                     pose=PoseHeadConfig(output_stride=4, channels=8, stages=1))
        return build_pose_model(config, len(JOINT_NAMES), len(PAF_LIMBS))

    return save_tiny_model(path, build, "float32")


POSE_OUTPUTS = ("num_people", "keypoints_2d", "keypoints_3d", "keypoint_scores", "keypoint_inferred",
                "person_scores", "heatmaps")


def assert_same_people(out, expected):
    assert expected["num_people"].min() > 0  # people were decoded: the comparison covers grouping and lifting
    for name in POSE_OUTPUTS:
        np.testing.assert_allclose(np.asarray(out[name], np.float64), np.asarray(expected[name], np.float64),
                                   atol=1e-3, rtol=1e-5, err_msg=name)  # rtol: joints inferred far off the frame


@pytest.fixture(scope="module")
def pose_model(tmp_path_factory):
    """A tiny pose checkpoint with a facing classifier and a joint refiner beside it, and its SavedModel's outputs on
    frames with Kinect v2 optics and with others."""
    import tensorflow as tf

    from pose_tl.export.pose_saved_model import export_pose_model
    from pose_tl.models.facing import build_facing_classifier, facing_model_path
    from pose_tl.models.refiner import build_joint_refiner, refiner_model_path

    folder = tmp_path_factory.mktemp("pose")
    model = save_tiny_pose_model(folder / "pose.keras")
    facing_model = build_facing_classifier(seed=1)
    facing_model.get_layer("faces_camera").bias.assign([3.0])  # sure: skeletons that disagree are turned
    facing_model.save(facing_model_path(folder / "pose.keras"))
    refiner_model = build_joint_refiner(seed=1, base_filters=4)
    refiner_model.get_layer("joint_heatmaps").bias.assign(np.linspace(0.05, 0.3, 15))  # some joints moved, some not
    refiner_model.get_layer("joint_depths").bias.assign(np.linspace(0.0, 0.3, 15))  # the moved ones' depths differ
    refiner_model.save(refiner_model_path(folder / "pose.keras"))
    export_pose_model(model, folder / "saved_model", output_stride=4, facing_model=facing_model,
                      refiner_model=refiner_model)
    loaded = tf.saved_model.load(str(folder / "saved_model"))
    depth, intrinsics = depth_frames(), np.array([[50.0, 50.0, 20.0, 24.0]] * 2, np.float32)
    default = loaded.signatures["serving_default"](depth=tf.constant(depth))
    explicit = loaded.signatures["serving_with_intrinsics"](depth=tf.constant(depth),
                                                            intrinsics=tf.constant(intrinsics))
    as_numpy = lambda out: {name: out[name].numpy() for name in POSE_OUTPUTS}  # noqa: E731
    return folder, depth, intrinsics, as_numpy(default), as_numpy(explicit)


def test_pose_tflite_through_the_cli_decodes_the_people_the_saved_model_does(pose_model, tiny_recipe):
    import tensorflow as tf

    folder, depth, intrinsics, default, explicit = pose_model
    result = invoke("export", tiny_recipe, "--checkpoint", folder / "pose.keras", "--out", folder / "tflite",
                    "--format", "tflite")
    assert result.exit_code == 0, result.output
    interpreter = tf.lite.Interpreter(model_path=str(folder / "tflite" / "model.tflite"))
    assert_same_people(interpreter.get_signature_runner("serving_default")(depth=depth), default)
    assert_same_people(interpreter.get_signature_runner("serving_with_intrinsics")(depth=depth,
                                                                                  intrinsics=intrinsics), explicit)
    metadata = json.loads((folder / "tflite" / "pose_tl.json").read_text())
    assert (metadata["task"], metadata["format"], len(metadata["joint_names"])) == ("pose", "tflite", 15)
    assert metadata["facing_classifier"] is True and metadata["joint_refiner"] is True
    assert metadata["refine_passes"] == 2 and metadata["refiner_joint_depths"] is True  # as the SavedModel's
    assert metadata["refiner_trunk_depths"] is True


def test_pose_onnx_through_the_cli_decodes_the_people_the_saved_model_does(pose_model, tiny_recipe):
    pytest.importorskip("tf2onnx")
    onnxruntime = pytest.importorskip("onnxruntime")

    folder, depth, intrinsics, _, explicit = pose_model
    result = invoke("export", tiny_recipe, "--checkpoint", folder / "pose.keras", "--out", folder / "onnx",
                    "--format", "onnx")
    assert result.exit_code == 0, result.output
    session = onnxruntime.InferenceSession(str(folder / "onnx" / "model.onnx"), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    out = dict(zip(names, session.run(names, {"depth": depth, "intrinsics": intrinsics})))
    assert_same_people(out, explicit)
    metadata = json.loads((folder / "onnx" / "pose_tl.json").read_text())
    assert (metadata["task"], metadata["format"], metadata["file"]) == ("pose", "onnx", "model.onnx")


def test_bfloat16_pose_saved_model_runs_its_facing_classifier_in_bfloat16(tmp_path):
    """A mixed_bfloat16 pose network with a float32 classifier: the SavedModel tracks the bfloat16 copy it runs and
    decodes the people the same predictor does outside it (decoding uncompiled there, TensorFlow's ops: depths read
    from bfloat16 maps may round differently, by a few centimetres)."""
    import tensorflow as tf

    from pose_tl.export.pose_saved_model import default_intrinsics, export_pose_model, make_pose_predictor
    from pose_tl.models.facing import build_facing_classifier

    def build(config):
        from pose_tl.config.schema import PoseHeadConfig
        from pose_tl.data.people.skeleton import JOINT_NAMES, PAF_LIMBS
        from pose_tl.models.factory import build_pose_model

        config = dataclasses.replace(config, input_size=(32, 64),
                                     pose=PoseHeadConfig(output_stride=4, channels=8, stages=1))
        return build_pose_model(config, len(JOINT_NAMES), len(PAF_LIMBS))

    model = save_tiny_model(tmp_path / "pose.keras", build, "mixed_bfloat16")
    facing_model = build_facing_classifier(seed=1)
    facing_model.get_layer("faces_camera").bias.assign([3.0])
    export_pose_model(model, tmp_path / "saved_model", output_stride=4, facing_model=facing_model)
    depth = depth_frames()
    served = tf.saved_model.load(str(tmp_path / "saved_model")).signatures["serving_default"](depth=tf.constant(depth))
    predict = make_pose_predictor(model, output_stride=4, compiled_decoding=False, facing_model=facing_model)
    intrinsics = tf.tile(default_intrinsics(*depth.shape[1:])[None], [len(depth), 1])  # serving_default's
    expected = predict(tf.constant(depth), intrinsics)
    assert expected["num_people"].numpy().min() > 0
    for name in POSE_OUTPUTS:
        np.testing.assert_allclose(served[name].numpy().astype(np.float64), expected[name].numpy().astype(np.float64),
                                   atol=0.05 if name == "keypoints_3d" else 1e-3, rtol=1e-5, err_msg=name)


def save_tiny_detector(folder):
    """A random-weight 32x64 detector with RPN and depth proposals, its detection recipe, and its SavedModel."""
    import keras

    from pose_tl.config import load_recipe
    from pose_tl.models.factory import build_detector

    recipe = write_recipe(folder / "detect.yaml", {
        "task": "detection", "seed": 1,
        "model": {"backbone": {"weights": "none"}, "input_size": [32, 64],
                  "detection": {"proposals": "both", "anchor_sizes": [16, 32], "rpn_channels": 8, "fc_units": 8,
                                "rpn_proposals": 8}},
        "data": {"source": "synthetic", "synthetic": {"image_size": [40, 80], "data_dir": str(folder / "tfds")}},
    })
    keras.utils.set_random_seed(1)
    build_detector(load_recipe(recipe).model, ["person", "chair"]).save(folder / "detector.keras")
    result = invoke("export", recipe, "--checkpoint", folder / "detector.keras", "--out", folder / "saved_model")
    assert result.exit_code == 0, result.output
    return recipe


def detector_frames():
    """Two 40x80 frames, boxes standing before a wall and a sensor hole, with their intrinsics: the depth segments
    become proposals."""
    depth = np.full((2, 40, 80), 4000, np.uint16)
    depth[0, 8:36, 10:22], depth[0, 12:30, 50:60], depth[1, 5:38, 30:45] = 2000, 2500, 1500
    depth[:, :3, :3] = 0
    return depth, np.array([[60.0, 60.0, 40.0, 20.0]] * 2, np.float32)


@pytest.fixture(scope="module")
def tiny_detector(tmp_path_factory):
    """A detector checkpoint, its recipe, and its SavedModel's outputs on `detector_frames`: serving_with_intrinsics's,
    and serving_default's (Kinect v2 intrinsics)."""
    import tensorflow as tf

    from pose_tl.detection.depth_proposals import depth_proposals
    from pose_tl.export.formats import DETECTOR_OUTPUTS

    folder = tmp_path_factory.mktemp("detector")
    recipe = save_tiny_detector(folder)
    depth, intrinsics = detector_frames()
    _, segments = depth_proposals(depth / 1000.0, intrinsics)
    assert segments.numpy().any(axis=1).all()  # every frame has depth proposals: the comparison covers them
    signatures = tf.saved_model.load(str(folder / "saved_model")).signatures
    explicit = signatures["serving_with_intrinsics"](depth=tf.constant(depth), intrinsics=tf.constant(intrinsics))
    default = signatures["serving_default"](depth=tf.constant(depth))
    as_numpy = lambda out: {name: out[name].numpy() for name in DETECTOR_OUTPUTS}  # noqa: E731
    return folder, recipe, as_numpy(explicit), as_numpy(default)


def assert_same_detections(out, expected):
    """As many detections per frame, each with a twin of its class in the other output, score and box within 1e-3
    (as sets: NMS may order equal scores either way)."""
    assert expected["num_detections"].min() > 0
    np.testing.assert_array_equal(out["num_detections"], expected["num_detections"])
    for frame, count in enumerate(expected["num_detections"]):
        rows, classes = [], []
        for found in (out, expected):
            rows.append(np.concatenate([found["detection_scores"][frame, :count, None],
                                        found["detection_boxes"][frame, :count]], -1))
            classes.append(found["detection_classes"][frame])
            assert not found["detection_classes"][frame, count:].any()  # padding rows: class 0
        gap = np.abs(rows[0][:, None] - rows[1][None]).max(-1)
        gap[classes[0][:count, None] != classes[1][None, :count]] = np.inf
        assert gap.min(0).max() < 1e-3 and gap.min(1).max() < 1e-3, gap.min(0)


def test_detector_onnx_through_the_cli_finds_what_the_saved_model_finds(tiny_detector):
    pytest.importorskip("tf2onnx")
    onnxruntime = pytest.importorskip("onnxruntime")

    folder, recipe, expected, _ = tiny_detector
    result = invoke("export", recipe, "--checkpoint", folder / "detector.keras", "--out", folder / "onnx",
                    "--format", "onnx")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"ONNX: {folder / 'onnx' / 'model.onnx'}"
    session = onnxruntime.InferenceSession(str(folder / "onnx" / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["depth", "intrinsics"]
    names = [output.name for output in session.get_outputs()]
    depth, intrinsics = detector_frames()
    assert_same_detections(dict(zip(names, session.run(names, {"depth": depth, "intrinsics": intrinsics}))),
                           expected)
    metadata = json.loads((folder / "onnx" / "pose_tl.json").read_text())
    assert (metadata["task"], metadata["format"], metadata["class_names"]) == ("detection", "onnx", ["person", "chair"])
    assert sorted(metadata["outputs"]) == sorted(names)


def test_detector_tflite_through_the_cli_finds_what_the_saved_model_finds(tiny_detector):
    """Builtin ops only (the converter refuses anything else unless told to use TensorFlow's kernels), both
    signatures, the SavedModel's detections."""
    import tensorflow as tf

    folder, recipe, explicit, default = tiny_detector
    result = invoke("export", recipe, "--checkpoint", folder / "detector.keras", "--out", folder / "tflite",
                    "--format", "tflite")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"TFLite: {folder / 'tflite' / 'model.tflite'}"
    interpreter = tf.lite.Interpreter(model_path=str(folder / "tflite" / "model.tflite"))
    depth, intrinsics = detector_frames()
    assert_same_detections(interpreter.get_signature_runner("serving_with_intrinsics")(depth=depth,
                                                                                      intrinsics=intrinsics), explicit)
    assert_same_detections(interpreter.get_signature_runner("serving_default")(depth=depth), default)
    metadata = json.loads((folder / "tflite" / "pose_tl.json").read_text())
    assert (metadata["task"], metadata["format"], metadata["file"]) == ("detection", "tflite", "model.tflite")
    signatures = interpreter.get_signature_list()
    assert {key: sorted(signature["inputs"]) for key, signature in signatures.items()} == {
        "serving_default": ["depth"], "serving_with_intrinsics": ["depth", "intrinsics"]}
    assert all(sorted(signature["outputs"]) == sorted(metadata["outputs"]) for signature in signatures.values())


def test_detector_onnx_needs_its_detection_recipe(tiny_detector, tiny_recipe, tmp_path):
    folder, _, _, _ = tiny_detector
    result = invoke("export", tiny_recipe, "--checkpoint", folder / "detector.keras", "--out", tmp_path / "onnx",
                    "--format", "onnx")
    assert_one_line_error(result, "detector.keras", "detection recipe")
    assert not (tmp_path / "onnx").exists()


def test_onnx_without_tf2onnx_names_the_extra(float32_classifier, tiny_recipe, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # import tf2onnx raises ImportError
    folder, _ = float32_classifier
    result = invoke("export", tiny_recipe, "--checkpoint", folder / "model.keras", "--out", tmp_path / "onnx",
                    "--format", "onnx")
    assert_one_line_error(result, "tf2onnx", "pose_tl[onnx]")
