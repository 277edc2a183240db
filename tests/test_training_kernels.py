"""`train.kernels: auto`: the fused Adam update and matmul filter gradients give Keras' results, faster."""

import json

import numpy as np
import pytest

from conftest import invoke, tiny_recipe_dict, write_recipe


def native_filter_gradient(x, kernel, output_gradient, padding):
    import tensorflow as tf

    with tf.GradientTape() as tape:
        tape.watch(kernel)
        loss = tf.reduce_sum(tf.nn.conv2d(x, kernel, 1, padding.upper()) * output_gradient)
    return tape.gradient(loss, kernel)


@pytest.mark.parametrize("kernel_size, padding", [((3, 3), "same"), ((1, 1), "same"), ((2, 2), "same"),
                                                  ((3, 1), "same"), ((3, 3), "valid"), ((2, 3), "valid")])
def test_matmul_filter_gradient_equals_tensorflows(kernel_size, padding):
    import tensorflow as tf

    from pose_tl.training.conv_filter_gradients import filter_gradient_by_matmuls

    rng = np.random.default_rng(sum(kernel_size))
    x = tf.constant(rng.normal(size=(2, 7, 9, 5)), tf.float32)
    kernel = tf.constant(rng.normal(size=(*kernel_size, 5, 4)), tf.float32)
    output_shape = tf.nn.conv2d(x, kernel, 1, padding.upper()).shape
    output_gradient = tf.constant(rng.normal(size=output_shape), tf.float32)
    expected = native_filter_gradient(x, kernel, output_gradient, padding)
    np.testing.assert_allclose(filter_gradient_by_matmuls(x, output_gradient, kernel_size, padding), expected,
                               atol=1e-4)


def small_model(policy):
    """frozen 3x3 -> trainable 5x5 (too many taps) -> eligible 3x3 -> eligible 3x3 valid without bias or
    activation -> strided 3x3 -> dense: the 5x5's gradients pass through both eligible layers' input gradients."""
    import keras

    from pose_tl.training.precision import dtype_policy

    with dtype_policy(policy):
        keras.utils.set_random_seed(0)
        inputs = keras.Input((12, 12, 3))
        x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="frozen", trainable=False)(inputs)
        x = keras.layers.Conv2D(8, 5, padding="same", activation="relu", name="five_by_five")(x)
        x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="eligible")(x)
        x = keras.layers.Conv2D(8, 3, padding="valid", use_bias=False, name="eligible_valid")(x)
        x = keras.layers.Conv2D(8, 3, strides=2, name="strided")(x)
        outputs = keras.layers.Dense(2, dtype="float32")(keras.layers.GlobalAveragePooling2D()(x))
        return keras.Model(inputs, outputs)


def gradients_and_graph_ops(model, x):
    import tensorflow as tf

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(model(x, training=True)))
        return tape.gradient(loss, model.trainable_variables)

    graph = step.get_concrete_function().graph
    return [g.numpy() for g in step()], {op.type for op in graph.get_operations()}


def test_bfloat16_training_gradients_match_keras_and_only_inside_the_context():
    import tensorflow as tf

    from pose_tl.training.conv_filter_gradients import matmul_filter_gradients

    model, reference = small_model("mixed_bfloat16"), small_model("float32")
    reference.set_weights(model.get_weights())
    x = tf.constant(np.random.default_rng(1).normal(size=(4, 12, 12, 3)), tf.float32)
    exact, _ = gradients_and_graph_ops(reference, x)
    native, native_ops = gradients_and_graph_ops(model, x)
    with matmul_filter_gradients(model) as count:
        assert count == 3  # the 3x3 stride-1 convs (the frozen one keeps TF's op); not the 5x5 nor the strided one
        ours, our_ops = gradients_and_graph_ops(model, x)
    assert "Conv2DBackpropFilter" in native_ops and "IdentityN" not in native_ops
    assert "IdentityN" in our_ops  # the custom gradient of the one trainable eligible layer
    for variable, got, keras_bf16, expected in zip(model.trainable_variables, ours, native, exact):
        scale = np.abs(expected).max()
        # as close to the float32 gradient as Keras' own bfloat16 gradient is (the bias sums in float32 too)
        assert np.abs(got - expected).max() <= 1.5 * np.abs(keras_bf16 - expected).max() + 1e-3 * scale, variable.path
        assert np.abs(got - expected).max() <= 0.15 * scale, variable.path  # bfloat16 through five layers
    # afterwards the layers are plain again: exports and predictions traced later hold TensorFlow's ops only
    assert all("call" not in vars(layer) for layer in model.layers)
    _, after_ops = gradients_and_graph_ops(model, x)
    assert "IdentityN" not in after_ops


def test_float32_and_frozen_layers_keep_tensorflows_convolution():
    import tensorflow as tf

    from pose_tl.training.conv_filter_gradients import matmul_filter_gradients

    x = tf.constant(np.random.default_rng(2).normal(size=(2, 12, 12, 3)), tf.float32)
    fp32 = small_model("float32")
    with matmul_filter_gradients(fp32):
        _, ops = gradients_and_graph_ops(fp32, x)
    assert "IdentityN" not in ops  # float32: the matmuls are no faster, so the native gradient
    frozen = small_model("mixed_bfloat16")
    frozen.get_layer("eligible").trainable = False
    frozen.get_layer("eligible_valid").trainable = False
    with matmul_filter_gradients(frozen):
        _, ops = gradients_and_graph_ops(frozen, x)
    assert "IdentityN" not in ops


def test_no_matmul_filter_gradients_where_a_gpu_is_visible(monkeypatch):
    import tensorflow as tf

    from pose_tl.training.conv_filter_gradients import matmul_filter_gradients

    monkeypatch.setattr(tf.config, "list_logical_devices", lambda kind=None: ["GPU:0"] if kind == "GPU" else [])
    model = small_model("mixed_bfloat16")
    with matmul_filter_gradients(model) as count:
        assert count == 0
        assert all("call" not in vars(layer) for layer in model.layers)


def test_nested_contexts_leave_the_layers_to_the_outer_one():
    from pose_tl.training.conv_filter_gradients import matmul_filter_gradients

    model = small_model("mixed_bfloat16")
    with matmul_filter_gradients(model) as outer:
        with matmul_filter_gradients(model) as inner:
            assert (outer, inner) == (3, 0)
        assert "call" in vars(model.get_layer("eligible"))
    assert all("call" not in vars(layer) for layer in model.layers)


@pytest.mark.parametrize("fused_name, keras_name, options", [("FusedAdam", "Adam", {}),
                                                              ("FusedAdamW", "AdamW", {"weight_decay": 0.05})])
def test_fused_adam_steps_equal_keras_adam(fused_name, keras_name, options):
    import keras
    import tensorflow as tf

    from pose_tl.training import fused_adam

    rng = np.random.default_rng(3)
    start = rng.normal(size=(30, 20)).astype("float32")
    variables = keras.Variable(start), keras.Variable(start)
    optimizers = (getattr(fused_adam, fused_name)(1e-2, **options),
                  getattr(keras.optimizers, keras_name)(1e-2, **options))

    def step_of(optimizer, variable):
        return tf.function(lambda gradient: optimizer.apply_gradients([(gradient, variable)]))

    steps = [step_of(optimizer, variable) for optimizer, variable in zip(optimizers, variables)]
    for _ in range(6):
        gradient = tf.constant(rng.normal(size=start.shape).astype("float32"))
        for step in steps:
            step(gradient)
    graph_ops = [{op.type for op in step.get_concrete_function(gradient).graph.get_operations()} for step in steps]
    assert "ResourceApplyAdam" in graph_ops[0] and "ResourceApplyAdam" not in graph_ops[1]
    fused, plain = (v.numpy() for v in variables)
    assert np.abs(plain - start).max() > 0.03  # the steps moved the weights
    np.testing.assert_allclose(fused, plain, atol=1e-6)


def test_fused_adam_falls_back_to_keras_ops_under_a_strategy():
    import keras
    import tensorflow as tf

    from pose_tl.training.fused_adam import FusedAdam, fused_adam_update

    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        variable = keras.Variable(np.ones((3,), "float32"))
        optimizer = FusedAdam(0.1)
        optimizer.build([variable])
        assert not fused_adam_update(optimizer, tf.ones((3,)), variable.value, 0.1)
        strategy.run(lambda: optimizer.apply_gradients([(tf.ones((3,)), variable)]))
    np.testing.assert_allclose(variable.numpy(), 0.9, atol=1e-6)


def test_build_optimizer_follows_train_kernels():
    import keras

    from pose_tl.config.schema import PhaseConfig, TrainConfig
    from pose_tl.training.fused_adam import FusedAdam, FusedAdamW
    from pose_tl.training.optimizers import build_optimizer

    phase = PhaseConfig()
    assert type(build_optimizer(TrainConfig(), phase, 10)) is FusedAdam
    assert type(build_optimizer(TrainConfig(optimizer="adamw"), phase, 10)) is FusedAdamW
    assert type(build_optimizer(TrainConfig(kernels="keras"), phase, 10)) is keras.optimizers.Adam
    assert type(build_optimizer(TrainConfig(kernels="keras", optimizer="adamw"), phase, 10)) is keras.optimizers.AdamW


LOGGED = {"auto": "fused adam updates; matmul filter gradients for trainable convolutions",
          "keras": "Keras' and TensorFlow's own ops"}


def test_train_with_auto_kernels_follows_keras_kernels(shapes_root, tmp_path):
    """Through the CLI, in bfloat16: same losses to rounding, and the checkpoint (fused optimizer) reloads."""
    histories = {}
    for kernels in ("auto", "keras"):
        recipe = write_recipe(tmp_path / f"{kernels}.yaml", tiny_recipe_dict(
            shapes_root, train__precision="mixed_bfloat16", train__kernels=kernels, data__augment={"enabled": False},
            train__feature_cache="off", model__head={"units": [8], "dropout": 0.0}))
        result = invoke("train", recipe, "--out", tmp_path / kernels, "--no-export")
        assert result.exit_code == 0, result.output
        assert f"kernels: {kernels} ({LOGGED[kernels]})" in result.output
        histories[kernels] = json.loads((tmp_path / kernels / "logs" / "history.json").read_text())
    for auto, plain in zip(histories["auto"], histories["keras"]):
        np.testing.assert_allclose(auto["history"]["loss"], plain["history"]["loss"], rtol=0.02)
    result = invoke("evaluate", tmp_path / "auto.yaml", "--model", tmp_path / "auto" / "checkpoints" / "final.keras",
                    "--out", tmp_path / "eval")
    assert result.exit_code == 0, result.output
