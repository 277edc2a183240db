"""Served networks store their convolution and dense weights in the dtype they compute in
(`pose_tl.export.stored_precision`): no cast per call, the same answers."""

import dataclasses
import json

import keras
import numpy as np
import tensorflow as tf

from pose_tl.export.stored_precision import compute_dtype, mixed_policy, weights_in_compute_dtype
from pose_tl.models.batch_norm_folding import fold_batch_norms
from pose_tl.training.precision import dtype_policy


def small_network(policy):
    """Conv -> BN -> ReLU -> Dense -> a float32 output, built under `policy` (as training builds it)."""
    layers = keras.layers
    with dtype_policy(policy):
        inputs = keras.Input((12, 10, 1))
        x = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(8, 3, padding="same")(inputs)))
        x = layers.Dense(6, activation="relu")(layers.GlobalAveragePooling2D()(x))
        outputs = layers.Dense(3, dtype="float32", name="scores")(x)
        model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    norm = next(layer for layer in model.layers if isinstance(layer, layers.BatchNormalization))
    norm.moving_mean.assign(rng.normal(0.0, 0.5, 8))
    norm.moving_variance.assign(rng.uniform(0.2, 3.0, 8))
    return model


def weight_dtypes(model):
    return {layer.name: {str(weight.dtype) for weight in layer.weights} for layer in model.layers if layer.weights}


def test_mixed_weights_are_stored_in_the_compute_dtype_with_the_same_answers():
    model = small_network("mixed_bfloat16")
    served = weights_in_compute_dtype(model)
    dtypes = weight_dtypes(served)
    conv, norm, hidden = (next(name for name in dtypes if name.startswith(prefix))
                          for prefix in ("conv2d", "batch_normalization", "dense"))
    assert dtypes[conv] == {"bfloat16"} and dtypes[hidden] == {"bfloat16"}
    assert dtypes[norm] == {"float32"}  # its statistics stay float32
    assert dtypes["scores"] == {"float32"}  # a float32 layer is left as it is
    assert weight_dtypes(model)[conv] == {"float32"}  # the trained model is untouched
    x = tf.constant(np.random.default_rng(1).uniform(-2.0, 2.0, (4, 12, 10, 1)).astype(np.float32))
    expected = model(x, training=False).numpy()
    assert np.ptp(expected) > 0.1
    np.testing.assert_array_equal(served(x, training=False).numpy(), expected)  # the values the cast would give
    assert compute_dtype(served) == compute_dtype(model) == "bfloat16"


def test_a_float32_or_already_stored_network_comes_back_as_it_is():
    model = small_network("float32")
    assert weights_in_compute_dtype(model) is model
    served = weights_in_compute_dtype(small_network("mixed_bfloat16"))
    assert weights_in_compute_dtype(served) is served
    assert mixed_policy("bfloat16") == "mixed_bfloat16" and mixed_policy("float32") == "float32"


def test_inside_a_distribution_strategy_the_network_is_served_as_it_is():
    """A run exports inside its strategy's scope, where the copy's variables would be the strategy's (and
    MultiWorkerMirroredStrategy's collectives refuse bfloat16: tests/test_distribution.py, two workers)."""
    model = small_network("mixed_bfloat16")
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        assert weights_in_compute_dtype(model) is model
    assert weights_in_compute_dtype(model) is not model


def test_a_folded_crop_model_is_stored_too():
    """The crop models serve folded (`fold_batch_norms`), then stored: the folded layers serialise."""
    model = small_network("mixed_bfloat16")
    served = weights_in_compute_dtype(fold_batch_norms(model))
    assert {"bfloat16"} in weight_dtypes(served).values()
    x = tf.constant(np.random.default_rng(2).uniform(-2.0, 2.0, (3, 12, 10, 1)).astype(np.float32))
    np.testing.assert_allclose(served(x).numpy(), model(x, training=False).numpy(), atol=0.05)


def test_the_exported_classifier_holds_bfloat16_weights_and_answers_as_keras(tmp_path):
    from pose_tl.config.schema import ModelConfig
    from pose_tl.export.saved_model import export_classifier
    from pose_tl.models.classifier import PROBABILITIES
    from pose_tl.models.factory import build_model

    config = ModelConfig(input_size=(32, 32))
    with dtype_policy("mixed_bfloat16"):
        model = build_model(dataclasses.replace(config, backbone=dataclasses.replace(config.backbone, weights="none")),
                            ["a", "b", "c"])
    export_classifier(model, tmp_path / "sm")
    loaded = tf.saved_model.load(str(tmp_path / "sm"))
    assert {variable.dtype for variable in loaded.variables} >= {tf.bfloat16, tf.float32}
    depth_mm = np.random.default_rng(3).integers(500, 4000, (2, 32, 32)).astype(np.uint16)
    served = loaded.signatures["serving_default"](depth=tf.constant(depth_mm))["probabilities"].numpy()
    expected = model(tf.constant(depth_mm.astype(np.float32)[..., None] / 1000.0), training=False)[PROBABILITIES]
    np.testing.assert_array_equal(served, np.asarray(expected))
    assert json.loads((tmp_path / "sm" / "pose_tl.json").read_text())["task"] == "classification"


def test_the_pose_heads_convolutions_follow_its_policy_and_its_norms_keep_float32_statistics():
    from pose_tl.heads.pose import PoseHead

    features = [np.ones((1, 8, 8, 4), np.float32), np.ones((1, 4, 4, 6), np.float32)]
    head = PoseHead(num_joints=3, num_limbs=2, channels=8, stages=2, lateral_norm=True, dtype="bfloat16")
    head(features)
    convs = head.laterals + [conv for stage in head.stage_convs for conv in stage]
    assert {conv.kernel.dtype for conv in convs} == {"bfloat16"}  # the global policy is float32 here
    assert {norm.dtype_policy.name for norm in head.lateral_norms} == {"mixed_bfloat16"}
    assert {norm.moving_variance.dtype for norm in head.lateral_norms} == {"float32"}
    assert {out.kernel.dtype for out in head.heatmap_outs + head.paf_outs} == {"float32"}


def test_a_served_pose_network_stores_its_heads_weights_folded_with_the_same_answers():
    """`served_pose_network`: the head's lateral norms folded, then its convolutions store bfloat16 as the
    backbone's do; the heatmaps move by bfloat16's rounding of the folded weights only."""
    from pose_tl.export.pose_saved_model import served_pose_network
    from pose_tl.heads.pose import PoseHead
    from test_batch_norm_folding import small_pose_network

    model, head = small_pose_network("mixed_bfloat16")
    served = served_pose_network(model)
    served_head = next(layer for layer in served.layers if isinstance(layer, PoseHead))
    assert not served_head.lateral_norm and served_head.dtype_policy.name == "bfloat16"
    assert {conv.kernel.dtype for conv in served_head.laterals + served_head.stage_convs[0]} == {"bfloat16"}
    assert head.laterals[0].kernel.dtype == "float32"  # the trained network is untouched
    x = tf.constant(np.random.default_rng(6).uniform(0.5, 4.0, (2, 32, 32, 1)).astype(np.float32))
    expected, answers = model(x, training=False), served(x, training=False)
    for name in expected:
        assert answers[name].dtype == "float32"
        np.testing.assert_allclose(answers[name], expected[name], atol=0.03 * float(np.ptp(expected[name])) + 1e-3,
                                   err_msg=name)
    assert served_pose_network(served) is served
