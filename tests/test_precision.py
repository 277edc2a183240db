"""`train.precision`: what `auto` picks, and that mixed bfloat16 trains to the accuracy float32 reaches."""

import json
from pathlib import Path

import pytest

from conftest import invoke, tiny_recipe_dict, write_recipe
from pose_tl.data.shapes import write_shapes_dataset
from pose_tl.training.precision import cpu_has_native_bf16, resolve_precision


@pytest.mark.parametrize("flags, native_bf16", [
    ("fpu sse avx512f avx512_bf16", True), ("fpu amx_bf16 amx_tile", True), ("fpu sse avx2 avx512f", False),
    ("fpu amx_tile", False)])
def test_native_bf16_read_from_cpu_flags(tmp_path, flags, native_bf16):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    assert cpu_has_native_bf16(cpuinfo) is native_bf16


def test_auto_prefers_gpu_then_native_bf16_then_float32(monkeypatch):
    import tensorflow as tf

    from pose_tl.training import precision

    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: ["GPU:0"] if kind == "GPU" else [])
    assert resolve_precision("auto") == "mixed_float16"
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert resolve_precision("auto") == "mixed_bfloat16"
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert resolve_precision("auto") == "float32"
    assert resolve_precision("mixed_float16") == "mixed_float16"


def test_a_crop_model_trains_under_the_runs_policy_and_reports_it(tmp_path):
    import keras

    from pose_tl import run_pose
    from pose_tl.config import load_recipe
    from pose_tl.training import precision

    recipe = load_recipe(Path(__file__).resolve().parent.parent / "recipes" / "pose_vgg16_depth.yaml",
                         ["data.synthetic.train_frames=2", "data.synthetic.validation_frames=1",
                          "data.synthetic.test_frames=1", f"data.synthetic.data_dir={tmp_path / 'tfds'}"])
    seen = []

    def train(train_frames, validation_frames, *, epochs, seed, log):
        seen.append(keras.mixed_precision.global_policy().name)
        return keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]), {"train_examples": 1}

    report = tmp_path / "crop.json"
    with precision.dtype_policy("mixed_bfloat16"):
        model = run_pose.fit_crop_model(recipe, 1, train, tmp_path / "crop.keras", None, report, "crop model",
                                        lambda *_: None)
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"  # the run's policy again after
    assert model is not None and seen == ["mixed_bfloat16"]
    assert json.loads(report.read_text())["precision"] == "mixed_bfloat16"


@pytest.fixture(scope="module")
def shapes_160(tmp_path_factory):
    """4 classes x 40 frames (40 for validation)."""
    return write_shapes_dataset(tmp_path_factory.mktemp("shapes160"), samples_per_class=40, image_size=(40, 48),
                                seed=7)


def train_with(shapes, folder, precision):
    folder.mkdir()
    recipe = write_recipe(folder / "r.yaml", tiny_recipe_dict(
        shapes, data__augment={"enabled": False}, data__batch_size=8, train__precision=precision,
        model__backbone={"name": "vgg16", "weights": "hed-bsds500", "freeze": {"up_to": "block3_pool"}},
        model__head={"units": [64], "dropout": 0.0, "batch_norm": False}, model__input_size=[64, 64],
        # head-only on cached features (many epochs for little time), then bfloat16 backprop through block 5
        train__phases=[{"name": "head", "epochs": 12, "learning_rate": 1e-3},
                       {"name": "finetune", "epochs": 3, "learning_rate": 1e-4, "unfreeze": ["block5"]}]))
    result = invoke("train", recipe, "--out", folder / "run", "--no-export")
    assert result.exit_code == 0, result.output
    assert f"precision: {precision}" in result.output  # logged at the start
    head, finetune = json.loads((folder / "run" / "logs" / "history.json").read_text())
    return {metric: head["history"][metric] + finetune["history"][metric] for metric in head["history"]}


def mean_of_last(values, count=5):
    return sum(values[-count:]) / count


def test_mixed_bfloat16_trains_like_float32(shapes_160, tmp_path):
    fp32 = train_with(shapes_160, tmp_path / "fp32", "float32")
    bf16 = train_with(shapes_160, tmp_path / "bf16", "mixed_bfloat16")
    assert mean_of_last(fp32["accuracy"]) >= 0.45  # well above chance (0.25): the comparison means something
    for metric in ("accuracy", "val_accuracy"):
        assert mean_of_last(bf16[metric]) == pytest.approx(mean_of_last(fp32[metric]), abs=0.1), metric
    for epoch, (low, full) in enumerate(zip(bf16["val_loss"], fp32["val_loss"])):
        assert low == pytest.approx(full, rel=0.15), f"val_loss at epoch {epoch + 1}"


def test_mixed_precision_model_outputs_float32():
    from pose_tl.config.schema import BackboneConfig, ModelConfig
    from pose_tl.models.factory import build_model
    from pose_tl.training.precision import dtype_policy

    with dtype_policy("mixed_bfloat16"):
        model = build_model(ModelConfig(backbone=BackboneConfig(weights="none"), input_size=(32, 32)), ["a", "b"])
    assert model.get_layer("classification_head").compute_dtype == "bfloat16"
    assert model.output["probabilities"].dtype == "float32"
