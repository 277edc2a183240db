"""Batch normalisation folded into the convolution before it (`pose_tl.models.batch_norm_folding`)."""

import keras
import numpy as np
import tensorflow as tf

from pose_tl.models.batch_norm_folding import FoldedBatchNormalization, fold_batch_norms


def with_random_statistics(model, seed=0):
    """`model` with every batch normalisation's scale, shift and moving statistics set away from their defaults
    (fresh ones are the identity, which any folding would reproduce)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            channels = layer.moving_mean.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 2.0, channels))
            layer.beta.assign(rng.normal(0.0, 0.5, channels))
            layer.moving_mean.assign(rng.normal(0.0, 0.5, channels))
            layer.moving_variance.assign(rng.uniform(0.2, 3.0, channels))
    return model


def mixed_graph():
    """Conv -> BN -> ReLU (folds); biased conv -> BN (folds); conv with ReLU -> BN (does not: the activation lies
    between); a conv whose output also feeds an addition -> BN (does not: folding would change the other use)."""
    layers = keras.layers
    inputs = keras.Input((12, 10, 3))
    x = layers.ReLU()(keras.layers.BatchNormalization()(layers.Conv2D(8, 3, padding="same", use_bias=False)(inputs)))
    x = layers.BatchNormalization(epsilon=0.01)(layers.Conv2D(8, 3, padding="same")(x))
    activated = layers.BatchNormalization()(layers.Conv2D(8, 1, activation="relu")(x))
    shared = layers.Conv2D(8, 1)(activated)
    outputs = layers.Add()([layers.BatchNormalization()(shared), shared])
    return with_random_statistics(keras.Model(inputs, outputs))


def test_folding_keeps_the_outputs_and_folds_only_what_is_exact():
    model = mixed_graph()
    folded = fold_batch_norms(model)
    x = tf.constant(np.random.default_rng(1).normal(size=(4, 12, 10, 3)).astype(np.float32))
    expected = model(x, training=False).numpy()
    np.testing.assert_allclose(folded(x).numpy(), expected, rtol=1e-4, atol=1e-4)
    assert np.ptp(expected) > 1.0
    kinds = [type(layer) for layer in folded.layers]
    assert kinds.count(FoldedBatchNormalization) == 2
    assert kinds.count(keras.layers.BatchNormalization) == 2  # after the activation, and on the shared output


def test_a_model_with_nothing_to_fold_comes_back_as_it_is():
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3)])
    assert fold_batch_norms(model) is model
    folded = fold_batch_norms(mixed_graph())
    assert fold_batch_norms(folded) is folded  # the two normalisations left cannot be folded


def test_the_joint_refiner_folds_with_its_named_outputs_and_answers():
    from pose_tl.decoding.refining import REFINER_CROP_SIZE
    from pose_tl.models.fused_batch_norm import FusedBatchNormalization
    from pose_tl.models.refiner import build_joint_refiner

    refiner = with_random_statistics(build_joint_refiner(seed=2, base_filters=8))
    folded = fold_batch_norms(refiner)
    assert not any(isinstance(layer, FusedBatchNormalization) for layer in folded.layers)
    crops = tf.constant(np.random.default_rng(3).uniform(-1, 1, (3, *REFINER_CROP_SIZE, 1)).astype(np.float32))
    expected, answered = refiner(crops, training=False), folded(crops)
    assert sorted(answered) == sorted(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(answered[name].numpy(), value.numpy(), rtol=1e-4, atol=1e-4)
        assert np.ptp(value.numpy()) > 1e-3, name


def test_a_served_refiner_is_folded_once_in_the_pose_networks_precision():
    from pose_tl.export.pose_saved_model import served_crop_model
    from pose_tl.models.refiner import build_joint_refiner
    from pose_tl.training.precision import compute_policy, dtype_policy

    with dtype_policy("mixed_bfloat16"):
        network = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3)])
    refiner = with_random_statistics(build_joint_refiner(seed=2, base_filters=8))
    served = served_crop_model(network, refiner)
    # computing in the network's bfloat16, its weights stored so (`pose_tl.export.stored_precision`)
    assert compute_policy(served) == "bfloat16"
    assert {str(weight.dtype) for layer in served.layers if isinstance(layer, keras.layers.Conv2D)
            for weight in layer.weights} == {"bfloat16"}
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in served.layers)
    assert served_crop_model(network, served) is served  # an export tracks the variables of the model it decodes with
    assert served_crop_model(network, None) is None


def small_pose_network(policy, lateral_norm=True):
    """A scratch VGG16 pose network at 32x32 (2 stages, joint depths) built under `policy`, its head's lateral norms
    given random statistics."""
    import dataclasses

    from pose_tl.config.schema import ModelConfig, PoseHeadConfig
    from pose_tl.data.people.skeleton import NUM_JOINTS, PAF_LIMBS
    from pose_tl.heads.pose import PoseHead
    from pose_tl.models.factory import build_pose_model
    from pose_tl.training.precision import dtype_policy

    config = ModelConfig(input_size=(32, 32), pose=PoseHeadConfig(output_stride=8, channels=8, stages=2,
                                                                    joint_depth=True, lateral_norm=lateral_norm))
    config = dataclasses.replace(config, backbone=dataclasses.replace(config.backbone, weights="none"))
    with dtype_policy(policy):
        model = build_pose_model(config, NUM_JOINTS, len(PAF_LIMBS))
    head = next(layer for layer in model.layers if isinstance(layer, PoseHead))
    rng = np.random.default_rng(4)
    for norm in head.lateral_norms or ():
        norm.gamma.assign(rng.uniform(0.5, 2.0, 8))
        norm.beta.assign(rng.normal(0.0, 0.5, 8))
        norm.moving_mean.assign(rng.normal(0.0, 0.5, 8))
        norm.moving_variance.assign(rng.uniform(0.2, 3.0, 8))
    return model, head


def test_the_pose_heads_lateral_norms_fold_into_its_laterals_with_the_same_outputs():
    from pose_tl.heads.pose import PoseHead
    from pose_tl.models.batch_norm_folding import fold_lateral_norms

    model, head = small_pose_network("float32")
    folded = fold_lateral_norms(model)
    folded_head = next(layer for layer in folded.layers if isinstance(layer, PoseHead))
    assert head.lateral_norm and not folded_head.lateral_norm and folded_head.lateral_norms is None
    assert len(folded.weights) == len(model.weights) - 4 * len(head.lateral_norms)
    x = tf.constant(np.random.default_rng(5).uniform(0.5, 4.0, (2, 32, 32, 1)).astype(np.float32))
    expected, served = model(x, training=False), folded(x, training=False)
    assert sorted(served) == sorted(expected)
    for name in expected:
        assert np.ptp(expected[name]) > 1e-3, name
        np.testing.assert_allclose(served[name], expected[name], atol=2e-5, rtol=1e-4, err_msg=name)
    assert fold_lateral_norms(folded) is folded
    unnormed, _ = small_pose_network("float32", lateral_norm=False)
    assert fold_lateral_norms(unnormed) is unnormed
