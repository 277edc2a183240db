"""`train.deterministic: true` repeats a run bit for bit. In fresh processes: op determinism cannot be turned off."""

import subprocess
import sys

from conftest import tiny_pose_recipe_dict, write_recipe

TRAIN = "from pose_tl.cli.main import main; main()"
COMPARE = """
import sys
import numpy as np
from pose_tl.export.loading import load_keras_model
first, second = (load_keras_model(path).get_weights() for path in sys.argv[1:3])
print(max(float(np.max(np.abs(a - b))) for a, b in zip(first, second)))
"""


def python(code, *args):
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, timeout=600)


def test_a_deterministic_pose_run_repeats_bit_for_bit(tmp_path):
    recipe = write_recipe(tmp_path / "pose.yaml", tiny_pose_recipe_dict(tmp_path, train__deterministic=True))
    for run in ("first", "second"):
        result = python(TRAIN, "train", recipe, "--out", tmp_path / run)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        assert "deterministic: TensorFlow's op determinism is on" in result.stdout + result.stderr
    for checkpoint in ("final.keras", "facing.keras"):
        compared = python(COMPARE, *(tmp_path / run / "checkpoints" / checkpoint for run in ("first", "second")))
        assert compared.returncode == 0, compared.stderr[-2000:]
        assert float(compared.stdout.split()[-1]) == 0.0, checkpoint
    assert (tmp_path / "second" / "saved_model" / "saved_model.pb").exists()
    first, second = ((tmp_path / run / "eval" / "metrics.json").read_text() for run in ("first", "second"))
    assert first == second
