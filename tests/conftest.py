"""Shared fixtures: tiny depth datasets and recipes, and one tiny trained run reused by several tests."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import yaml  # noqa: E402
from click.testing import CliRunner  # noqa: E402

from pose_tl.cli.main import main  # noqa: E402
from pose_tl.data.shapes import write_shapes_dataset  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def tiny_recipe_dict(data_root, **extra):
    """A recipe small enough to train in seconds: random weights, 32x32 input, one epoch per phase."""
    recipe = {
        "task": "classification",
        "seed": 3,
        "model": {"backbone": {"name": "vgg16", "weights": "none", "freeze": {"up_to": "block3_pool"}},
                  "head": {"units": [8], "dropout": 0.1}, "input_size": [32, 32]},
        "data": {"source": "folder", "root": str(data_root), "batch_size": 4, "validation_fraction": 0.25},
        "train": {"phases": [{"name": "head", "epochs": 1, "learning_rate": 1e-3},
                             {"name": "finetune", "epochs": 1, "learning_rate": 1e-4, "unfreeze": ["block5"]}],
                  "tensorboard": False},
    }
    return with_overrides(recipe, extra)


def tiny_pose_recipe_dict(tmp_path, **extra):
    """A pose recipe small enough to train in seconds: random weights, 32x64 input, 8 synthetic training frames
    rendered into `tmp_path`, a facing classifier and a joint refiner trained for one epoch each."""
    recipe = {
        "task": "pose", "seed": 1,
        "model": {"backbone": {"weights": "none"}, "input_size": [32, 64],
                  "pose": {"channels": 8, "stages": 2, "facing_epochs": 1, "refine_epochs": 1,
                           "refiner_filters": 8}},
        "data": {"source": "synthetic", "batch_size": 4,
                 "synthetic": {"image_size": [48, 64], "train_frames": 8, "validation_frames": 4, "test_frames": 2,
                               "data_dir": str(tmp_path / "tfds")}},
        "train": {"phases": [{"name": "head", "epochs": 1},
                             {"name": "finetune", "epochs": 1, "learning_rate": 1.0e-4, "unfreeze": ["block5"]}],
                  "tensorboard": False},
    }
    return with_overrides(recipe, extra)


def with_overrides(recipe, extra):
    """`recipe` with `extra` {"a__b": value} set at recipe["a"]["b"]."""
    for dotted, value in extra.items():
        node = recipe
        *parents, leaf = dotted.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return recipe


def write_recipe(path, data):
    path = Path(path)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def shapes_root(tmp_path_factory):
    """4 classes x 4 frames of 40x48 depth PNGs."""
    return write_shapes_dataset(tmp_path_factory.mktemp("shapes"), samples_per_class=4, image_size=(40, 48), seed=1)


@pytest.fixture(scope="session")
def tiny_recipe(shapes_root, tmp_path_factory):
    return write_recipe(tmp_path_factory.mktemp("recipe") / "tiny.yaml", tiny_recipe_dict(shapes_root))


def invoke(*args):
    """Run the CLI in-process; returns the click Result."""
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="session")
def trained_run(tiny_recipe, tmp_path_factory):
    """A complete tiny `pose-tl train` run: its output folder and the CLI result."""
    out = tmp_path_factory.mktemp("runs") / "tiny"
    result = invoke("train", tiny_recipe, "--out", out)
    assert result.exit_code == 0, result.output
    return out, result


EXIT_USER_ERROR = 2


def assert_one_line_error(result, *fragments):
    """A user error: exit 2, one line, no traceback, naming every fragment."""
    output = result.output
    assert result.exit_code == EXIT_USER_ERROR, output
    assert "Traceback" not in output, output
    assert len(output.strip().splitlines()) == 1, output
    for fragment in fragments:
        assert str(fragment) in output, output


WITHOUT_POSE_TL = """
import sys, json
class NoPoseTL:
    def find_spec(self, name, path=None, target=None):
        if name == "pose_tl" or name.startswith("pose_tl."):
            raise ImportError("pose_tl is not installed in this process")
sys.meta_path.insert(0, NoPoseTL())
import numpy as np, tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
"""


def run_without_pose_tl(code, saved_model, cwd):
    """Run `code` in a fresh Python that cannot import pose_tl, `model` loaded from `saved_model`; its stdout lines."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", WITHOUT_POSE_TL + code, str(saved_model)], capture_output=True,
                          text=True, cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip().splitlines()
