"""`pose-tl data ...` and training on the synthetic people source, through the CLI."""

import json

import pytest
from conftest import invoke, write_recipe
from PIL import Image


def synthetic_recipe(tmp_path, **synthetic):
    settings = {"image_size": [48, 64], "people": [1, 2], "train_frames": 6, "validation_frames": 2,
                "test_frames": 2, "data_dir": str(tmp_path / "tfds")}
    settings.update(synthetic)
    return {
        "task": "classification", "seed": 5,
        "model": {"backbone": {"weights": "none"}, "head": {"units": [8]}, "input_size": [32, 32]},
        "data": {"source": "synthetic", "batch_size": 4, "synthetic": settings},
        "train": {"phases": [{"name": "head", "epochs": 1}], "tensorboard": False},
    }


@pytest.fixture(scope="module")
def people_recipe(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("people")
    return write_recipe(tmp_path / "people.yaml", synthetic_recipe(tmp_path))


def test_generate_lists_splits(people_recipe):
    result = invoke("data", "generate", people_recipe)
    assert result.exit_code == 0, result.output
    assert "pose_tl_synthetic_depth" in result.output
    rows = [line.split() for line in result.output.splitlines() if line.strip().endswith(" frames")]
    counts = {row[0]: int(row[1]) for row in rows}
    assert counts == {"train": 6, "validation": 2, "test": 2}


def test_show_writes_a_contact_sheet(people_recipe, tmp_path):
    out = tmp_path / "sheet.png"
    result = invoke("data", "show", people_recipe, "--out", out, "--count", "4", "--columns", "2")
    assert result.exit_code == 0, result.output
    with Image.open(out) as image:
        assert image.size[0] == 2 * 64 * 2 and image.size[1] >= 2 * 48 * 2


def test_stats_json(people_recipe):
    result = invoke("data", "stats", people_recipe, "--json", "--split", "validation")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    assert stats["frames"] == 2
    assert 1 <= stats["people"] <= 4
    assert abs(sum(stats["joint_visibility"].values()) - 1.0) < 1e-6


def test_convert_to_coco_and_read_back(people_recipe, tmp_path):
    from pose_tl.data.people.coco_format import read_coco_dataset

    result = invoke("data", "convert", people_recipe, "--out", tmp_path / "coco", "--limit", "3")
    assert result.exit_code == 0, result.output
    frames = read_coco_dataset(tmp_path / "coco")
    assert len(frames) == 3 and all(frame.depth_mm.shape == (48, 64) for frame in frames)


def test_data_commands_need_a_people_source(tiny_recipe):
    result = invoke("data", "stats", tiny_recipe)
    assert result.exit_code == 2 and "data.source: synthetic" in result.output


def test_classification_trains_on_pose_classes(tmp_path):
    recipe = synthetic_recipe(tmp_path, people=[1, 1], pose_classes=["t_pose", "arms_up"], train_frames=8)
    path = write_recipe(tmp_path / "poses.yaml", recipe)
    result = invoke("train", path, "--out", tmp_path / "run", "--no-export")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "run/eval/metrics.json").read_text())
    assert metrics["class_names"] == ["t_pose", "arms_up"]
    evaluated = invoke("evaluate", path, "--model", tmp_path / "run/checkpoints/final.keras", "--split", "test",
                       "--out", tmp_path / "test_eval")
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads((tmp_path / "test_eval/metrics.json").read_text())["num_samples"] == 2


def test_classification_on_crowds_is_refused(tmp_path):
    path = write_recipe(tmp_path / "crowd.yaml", synthetic_recipe(tmp_path, people=[1, 3]))
    result = invoke("train", path, "--out", tmp_path / "run")
    assert result.exit_code == 2 and "data.synthetic.people" in result.output
