"""The frozen-feature cache: same results as running the backbone every epoch, used only where it is valid."""

import json
import shutil

import numpy as np
import pytest

from conftest import invoke, tiny_recipe_dict, write_recipe

HEAD_ONLY = [{"name": "head", "epochs": 3, "learning_rate": 1e-3}]


def cache_recipe(shapes_root, path, cache, **extra):
    return write_recipe(path, tiny_recipe_dict(
        shapes_root, data__augment={"enabled": False}, train__phases=HEAD_ONLY, train__precision="float32",
        train__feature_cache=cache, **extra))


def train_history(recipe, out):
    result = invoke("train", recipe, "--out", out, "--no-export")
    assert result.exit_code == 0, result.output
    history = json.loads((out / "logs" / "history.json").read_text())
    return result.output, history[0]["history"]


@pytest.fixture(scope="module")
def uncached(shapes_root, tmp_path_factory):
    folder = tmp_path_factory.mktemp("uncached")
    return train_history(cache_recipe(shapes_root, folder / "r.yaml", "off"), folder / "run")


@pytest.mark.parametrize("storage", ["memory", "disk"])
def test_cached_head_phase_matches_uncached(shapes_root, tmp_path, uncached, storage):
    output, history = train_history(cache_recipe(shapes_root, tmp_path / "r.yaml", storage), tmp_path / "run")
    assert f"feature cache: {storage}" in output
    assert "feature cache: not used (train.feature_cache is off)" in uncached[0]
    for metric in ("loss", "val_loss", "accuracy", "val_accuracy"):
        np.testing.assert_allclose(history[metric], uncached[1][metric], rtol=1e-3, atol=1e-4, err_msg=metric)
    if storage == "disk":
        names = sorted(p.name.split("-")[0] for p in (tmp_path / "run" / "cache").glob("*.index"))
        assert names == ["phase0_train", "phase0_validation"]
    # the checkpoints are the whole model (depth in), not the head the phase fitted
    result = invoke("evaluate", tmp_path / "r.yaml", "--model", tmp_path / "run" / "checkpoints" / "final.keras",
                    "--out", tmp_path / "eval")
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert saved["accuracy"] == pytest.approx(history["val_accuracy"][-1], abs=1e-6)


def test_disk_cache_of_a_killed_run_or_other_settings_is_rebuilt(shapes_root, tmp_path):
    recipe = cache_recipe(shapes_root, tmp_path / "r.yaml", "disk")
    _, first = train_history(recipe, tmp_path / "first")
    index = next((tmp_path / "first" / "cache").glob("phase0_train-*.index"))
    cache = tmp_path / "second" / "cache"
    shutil.copytree(tmp_path / "first" / "cache", cache)
    (cache / index.name).unlink()  # as a run killed while writing leaves it: no index, a lock file
    (cache / index.name.replace(".index", "_0.lockfile")).write_text("")
    (cache / "phase0_train-0123456789abcdef.index").write_text("")  # features of other settings or weights
    _, second = train_history(recipe, tmp_path / "second")
    assert sorted(p.name for p in cache.glob("phase0_train-*")) == sorted(
        p.name for p in (tmp_path / "first" / "cache").glob("phase0_train-*"))
    np.testing.assert_allclose(second["loss"], first["loss"], rtol=1e-5)


def test_cache_not_used_when_augmentation_changes_pixels(shapes_root, tmp_path):
    recipe = write_recipe(tmp_path / "r.yaml", tiny_recipe_dict(shapes_root, train__phases=HEAD_ONLY[:1]))
    result = invoke("train", recipe, "--out", tmp_path / "run", "--no-export")
    assert result.exit_code == 0, result.output
    assert "feature cache: not used (data.augment changes pixels" in result.output
    assert not (tmp_path / "run" / "cache").exists()
