"""The SavedModel contract, checked in a fresh Python process that imports only TensorFlow."""

import dataclasses
import json
import subprocess
import sys
import textwrap

import numpy as np

LOADER = textwrap.dedent("""
    import json, sys

    class NoPoseTL:  # behave as if pose_tl were not installed at all
        def find_spec(self, name, path=None, target=None):
            if name == "pose_tl" or name.startswith("pose_tl."):
                raise ImportError("pose_tl is not installed in this process")
            return None

    sys.meta_path.insert(0, NoPoseTL())
    import numpy as np
    import tensorflow as tf
    path, depth_file = sys.argv[1], sys.argv[2]
    model = tf.saved_model.load(path)
    depth_mm = np.load(depth_file)
    out_mm = model.signatures["serving_default"](depth=tf.constant(depth_mm))
    out_m = model.signatures["serving_metres"](depth=tf.constant(depth_mm.astype("float32") / 1000.0))
    np.save(depth_file + ".mm.npy", out_mm["probabilities"].numpy())
    np.save(depth_file + ".m.npy", out_m["probabilities"].numpy())
    print(json.dumps({
        "keys": sorted(out_mm),
        "class_ids": out_mm["class_ids"].numpy().tolist(),
        "class_names": [n.decode() for n in out_mm["class_names"].numpy()],
        "pose_tl_loaded": any(m == "pose_tl" or m.startswith("pose_tl.") for m in sys.modules),
    }))
""")


def test_saved_model_in_fresh_process_matches_keras(trained_run, tmp_path):
    import keras
    import tensorflow as tf

    from pose_tl.models.classifier import PROBABILITIES

    out, _ = trained_run
    rng = np.random.default_rng(0)
    depth_mm = rng.integers(600, 4000, size=(3, 32, 32)).astype(np.uint16)
    depth_mm[:, :4, :4] = 0  # holes
    depth_file = tmp_path / "depth.npy"
    np.save(depth_file, depth_mm)
    proc = subprocess.run([sys.executable, "-c", LOADER, str(out / "saved_model"), str(depth_file)],
                          capture_output=True, text=True, check=True, cwd=tmp_path)
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["keys"] == ["class_ids", "class_names", "probabilities"]
    assert not report["pose_tl_loaded"]

    model = keras.saving.load_model(out / "checkpoints/final.keras")
    expected = model(tf.constant(depth_mm.astype(np.float32)[..., None] / 1000.0), training=False)[PROBABILITIES]
    expected = np.asarray(expected)
    # the tiny run trains under `precision: auto` (mixed_bfloat16 on this CPU): ~3 significant digits
    np.testing.assert_allclose(np.load(str(depth_file) + ".mm.npy"), expected, atol=2e-3)
    np.testing.assert_allclose(np.load(str(depth_file) + ".m.npy"), expected, atol=2e-3)
    names = json.loads((out / "class_names.json").read_text())
    assert report["class_ids"] == expected.argmax(-1).tolist()
    assert report["class_names"] == [names[i] for i in report["class_ids"]]


def test_saved_model_resizes_other_frame_sizes(trained_run):
    import tensorflow as tf

    out, _ = trained_run
    model = tf.saved_model.load(str(out / "saved_model"))
    result = model.signatures["serving_default"](depth=tf.fill([2, 48, 64], tf.constant(1500, tf.uint16)))
    assert result["probabilities"].shape == (2, 4)
    np.testing.assert_allclose(result["probabilities"].numpy().sum(-1), 1.0, rtol=1e-5)


def test_float32_export_equals_keras_exactly(tmp_path):
    """Under float32 the SavedModel computes what the Keras model computes, to float tolerance."""
    import keras

    from pose_tl.config.schema import ModelConfig
    from pose_tl.export.saved_model import export_classifier
    from pose_tl.models.classifier import PROBABILITIES
    from pose_tl.models.factory import build_model

    keras.utils.set_random_seed(1)
    config = ModelConfig(input_size=(32, 32))
    model = build_model(dataclasses.replace(config, backbone=dataclasses.replace(config.backbone, weights="none")),
                        ["a", "b", "c"])
    export_classifier(model, tmp_path / "sm")
    depth_mm = np.random.default_rng(2).integers(500, 4500, size=(2, 32, 32)).astype(np.uint16)
    depth_file = tmp_path / "depth.npy"
    np.save(depth_file, depth_mm)
    subprocess.run([sys.executable, "-c", LOADER, str(tmp_path / "sm"), str(depth_file)], check=True,
                   capture_output=True, cwd=tmp_path)
    expected = np.asarray(model(depth_mm.astype(np.float32)[..., None] / 1000.0, training=False)[PROBABILITIES])
    np.testing.assert_allclose(np.load(str(depth_file) + ".mm.npy"), expected, rtol=1e-5, atol=1e-6)
