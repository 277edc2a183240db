"""FusedBatchNormalization computes what keras.layers.BatchNormalization does, and saves and loads as a Keras layer."""

import keras
import numpy as np
import pytest

from pose_tl.models.fused_batch_norm import FusedBatchNormalization


def _pair(shape, **options):
    keras_norm, fused_norm = keras.layers.BatchNormalization(**options), FusedBatchNormalization(**options)
    keras_norm.build(shape)
    fused_norm.build(shape)
    rng = np.random.default_rng(3)
    gamma, beta = rng.uniform(0.5, 2.0, shape[-1]).astype(np.float32), rng.normal(0, 1, shape[-1]).astype(np.float32)
    for norm in (keras_norm, fused_norm):  # the same non-trivial scale and offset in both
        norm.gamma.assign(gamma)
        norm.beta.assign(beta)
    return keras_norm, fused_norm


def test_training_and_inference_match_keras_batch_normalization():
    x = np.random.default_rng(0).normal(2.0, 3.0, (6, 8, 5, 7)).astype(np.float32)
    keras_norm, fused_norm = _pair(x.shape, momentum=0.5)
    for _ in range(2):  # moving statistics follow the same updates
        np.testing.assert_allclose(fused_norm(x, training=True), keras_norm(x, training=True), atol=1e-4)
    np.testing.assert_allclose(fused_norm.moving_mean.numpy(), keras_norm.moving_mean.numpy(), rtol=1e-5)
    np.testing.assert_allclose(fused_norm.moving_variance.numpy(), keras_norm.moving_variance.numpy(), rtol=1e-5)
    assert not np.allclose(fused_norm.moving_variance.numpy(), 1.0)
    np.testing.assert_allclose(fused_norm(x, training=False), keras_norm(x, training=False), atol=1e-4)


def test_frozen_layer_uses_its_moving_statistics_in_training():
    x = np.random.default_rng(1).normal(1.0, 2.0, (4, 3, 3, 5)).astype(np.float32)
    keras_norm, fused_norm = _pair(x.shape)
    keras_norm.trainable = fused_norm.trainable = False
    np.testing.assert_allclose(fused_norm(x, training=True), keras_norm(x, training=True), atol=1e-5)
    np.testing.assert_allclose(fused_norm.moving_mean.numpy(), 0.0)


def test_other_ranks_fall_back_to_keras():
    x = np.random.default_rng(2).normal(0.0, 4.0, (16, 6)).astype(np.float32)
    keras_norm, fused_norm = _pair(x.shape)
    np.testing.assert_allclose(fused_norm(x, training=True), keras_norm(x, training=True), atol=1e-5)


def test_mixed_bfloat16_outputs_bfloat16_and_gradients_flow():
    import tensorflow as tf

    inputs = keras.Input((8, 4, 3))
    outputs = FusedBatchNormalization(dtype="mixed_bfloat16")(keras.layers.Conv2D(6, 3, dtype="mixed_bfloat16")(inputs))
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(4).normal(0, 1, (5, 8, 4, 3)).astype(np.float32)
    assert model(x).dtype == tf.bfloat16
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(tf.cast(model(x, training=True), tf.float32) - 1.0))
    gradients = tape.gradient(loss, model.trainable_weights)
    assert all(g is not None and np.isfinite(g.numpy()).all() and np.any(g.numpy() != 0) for g in gradients)


def test_saves_and_loads_as_a_keras_model(tmp_path):
    inputs = keras.Input((4, 4, 2))
    model = keras.Model(inputs, FusedBatchNormalization(momentum=0.9)(inputs))
    x = np.random.default_rng(5).normal(3, 2, (8, 4, 4, 2)).astype(np.float32)
    model(x, training=True)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.layers[-1], FusedBatchNormalization)
    np.testing.assert_allclose(loaded(x, training=False), model(x, training=False), atol=1e-6)


@pytest.mark.parametrize("layer", ["refiner", "pose_head"])
def test_models_use_it(layer):
    if layer == "refiner":
        from pose_tl.models.refiner import build_joint_refiner

        model = build_joint_refiner(0, base_filters=4)
        norms = [lay for lay in model.layers if isinstance(lay, keras.layers.BatchNormalization)]
    else:
        from pose_tl.heads.pose import PoseHead

        head = PoseHead(num_joints=3, num_limbs=2, channels=8, lateral_norm=True)
        head.build([(None, 8, 8, 4), (None, 4, 4, 6)])
        norms = head.lateral_norms
    assert norms and all(isinstance(norm, FusedBatchNormalization) for norm in norms)
