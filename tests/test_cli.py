"""Every command through the CLI: --help, a real run, and one-line errors with exit code 2."""

import json

import numpy as np
import pytest
from conftest import REPO, invoke, tiny_recipe_dict, write_recipe

from pose_tl.data.depth_io import write_depth_png

COMMANDS = [["train"], ["evaluate"], ["predict"], ["export"], ["inspect"], ["recipes"], ["recipes", "list"],
            ["recipes", "show"], ["recipes", "validate"]]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command):
    result = invoke(*command, "--help")
    assert result.exit_code == 0
    assert "Usage:" in result.output


def test_help_does_not_import_tensorflow():
    import subprocess
    import sys

    code = ("import sys; from pose_tl.cli.main import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported by --help'")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_train_writes_every_output(trained_run):
    out, result = trained_run
    for name in ["recipe.resolved.yaml", "run.json", "class_names.json", "checkpoints/final.keras",
                 "checkpoints/best.keras",
                 "saved_model/saved_model.pb", "saved_model/pose_tl.json", "eval/metrics.json",
                 "eval/confusion_matrix.txt", "eval/confusion_matrix.png", "logs/0_head.csv", "logs/1_finetune.csv"]:
        assert (out / name).exists(), name
    run = json.loads((out / "run.json").read_text())
    assert run["seed"] == 3 and run["packages"]["tensorflow"]
    assert "SavedModel:" in result.output and "metrics:" in result.output
    metrics = json.loads((out / "eval/metrics.json").read_text())
    assert metrics["class_names"] == ["box", "cone", "cylinder", "sphere"]
    assert metrics["num_samples"] == 4  # one validation frame per class (25 % of 4)


def test_train_refuses_to_mix_runs_without_resume(trained_run, tiny_recipe):
    out, _ = trained_run
    result = invoke("train", tiny_recipe, "--out", out)
    assert result.exit_code == 2
    assert "--resume" in result.output


def test_resume_of_a_finished_run_trains_no_more_epochs(trained_run, tiny_recipe):
    out, _ = trained_run
    before = (out / "logs/1_finetune.csv").read_text()
    result = invoke("train", tiny_recipe, "--out", out, "--resume", "--no-export")
    assert result.exit_code == 0, result.output
    assert (out / "logs/1_finetune.csv").read_text() == before


def test_resume_continues_from_the_last_completed_epoch(tiny_recipe, tmp_path):
    out = tmp_path / "run"
    first = invoke("train", tiny_recipe, "--out", out, "--no-export", "--set",
                   "train.phases=[{name: head, epochs: 1}]")
    assert first.exit_code == 0, first.output
    second = invoke("train", tiny_recipe, "--out", out, "--no-export", "--resume", "--set",
                    "train.phases=[{name: head, epochs: 2}]")
    assert second.exit_code == 0, second.output
    rows = (out / "logs/0_head.csv").read_text().strip().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == ["0", "1"]  # epoch 0 from run 1, epoch 1 from run 2


def test_evaluate_saved_model_and_checkpoint_agree(trained_run, tiny_recipe, tmp_path):
    out, _ = trained_run
    saved = invoke("evaluate", tiny_recipe, "--model", out / "saved_model", "--out", tmp_path / "a")
    keras_file = invoke("evaluate", tiny_recipe, "--model", out / "checkpoints/final.keras", "--out", tmp_path / "b")
    assert saved.exit_code == 0 and keras_file.exit_code == 0, saved.output + keras_file.output
    a = json.loads((tmp_path / "a/metrics.json").read_text())
    b = json.loads((tmp_path / "b/metrics.json").read_text())
    assert a["confusion_matrix"] == b["confusion_matrix"]
    assert (tmp_path / "a/confusion_matrix.png").stat().st_size > 0
    assert (tmp_path / "a/recipe.resolved.yaml").is_file() and (tmp_path / "a/run.json").is_file()
    assert "confusion matrix" in saved.output


def test_predict_json_top_k(trained_run, shapes_root, tmp_path):
    out, _ = trained_run
    npy = tmp_path / "frame.npy"
    np.save(npy, np.full((30, 50), 2.0, np.float32))
    png = sorted((shapes_root / "cone").glob("*.png"))[0]
    result = invoke("predict", out / "saved_model", png, npy, "--top-k", "2", "--json")
    assert result.exit_code == 0, result.output
    items = json.loads(result.output)
    assert [item["file"] for item in items] == [str(png), str(npy)]
    for item in items:
        assert len(item["top_k"]) == 2
        assert item["top_k"][0]["probability"] >= item["top_k"][1]["probability"]
        assert item["top_k"][0]["class"] in {"box", "cone", "cylinder", "sphere"}


def test_predict_names_a_corrupt_file(trained_run, tmp_path):
    out, _ = trained_run
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    result = invoke("predict", out / "saved_model", bad)
    assert result.exit_code == 2
    assert str(bad) in result.output
    assert "Traceback" not in result.output


def test_export_from_checkpoint(trained_run, tiny_recipe, tmp_path):
    out, _ = trained_run
    result = invoke("export", tiny_recipe, "--checkpoint", out / "checkpoints/final.keras", "--out", tmp_path / "sm")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "sm/saved_model.pb").is_file()
    meta = json.loads((tmp_path / "sm/pose_tl.json").read_text())
    assert meta["class_names"] == ["box", "cone", "cylinder", "sphere"] and meta["input_size"] == [32, 32]


def test_inspect_prints_blocks_and_stride(tiny_recipe):
    result = invoke("inspect", tiny_recipe)
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines() if line.startswith("block")}
    assert "frozen" in lines["block3"] and "phases" not in lines["block3"]
    assert "trains in phases: finetune" in lines["block5"]
    assert "no phase unfreezes it" in lines["block4"]
    assert "output stride 32" in result.output


def test_recipes_list_show_validate():
    listed = invoke("recipes", "list")
    assert listed.exit_code == 0 and "classify_vgg16_depth" in listed.output
    shown = invoke("recipes", "show", "classify_vgg19_depth")
    assert shown.exit_code == 0 and "name: vgg19" in shown.output and "hed-bsds500" not in shown.output
    valid = invoke("recipes", "validate", *sorted((REPO / "recipes").glob("*.yaml")))
    assert valid.exit_code == 0 and "ERROR" not in valid.output


def test_bad_recipe_is_one_line_and_exit_2(shapes_root, tmp_path):
    data = tiny_recipe_dict(shapes_root)
    data["model"]["head"]["num_units"] = 3
    bad = write_recipe(tmp_path / "bad.yaml", data)
    for command in (["train", bad], ["inspect", bad], ["recipes", "validate", bad], ["recipes", "show", bad]):
        result = invoke(*command)
        assert result.exit_code == 2, command
        assert str(bad) in result.output and "model.head.num_units" in result.output
        assert "Traceback" not in result.output
        assert len(result.output.strip().splitlines()) == 1


def test_set_override_reaches_the_run(tiny_recipe):
    result = invoke("recipes", "show", tiny_recipe, "--set", "data.batch_size=2", "--set", "model.input_size=[64, 32]")
    assert result.exit_code == 0
    assert "batch_size: 2" in result.output and "- 64\n  - 32" in result.output


def test_unwritable_output_folder(tiny_recipe, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = invoke("train", tiny_recipe, "--out", blocker / "run")
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_corrupt_training_file_is_named(shapes_root, tmp_path):
    import shutil

    root = tmp_path / "data"
    shutil.copytree(shapes_root, root)
    bad = root / "box" / "00000.png"
    bad.write_bytes(bad.read_bytes()[:60])
    write_depth_png(root / "cone" / "extra.png", np.ones((40, 48)))
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe_dict(root))
    result = invoke("train", recipe, "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert str(bad) in result.output
