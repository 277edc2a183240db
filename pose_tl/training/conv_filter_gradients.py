"""Convolution filter gradients as matmuls, for trainable bfloat16 convolutions on CPU.

oneDNN's bfloat16 `Conv2DBackpropFilter` runs well below its forward convolution on this kind of CPU (VGG16's
block4 at 16x16x512, batch 16: ~59 ms against ~41 ms forward; block5 at 8x8: ~21 ms against ~10 ms), while a
stride-1 filter gradient is a sum over the kernel's taps of `shifted input^T @ output gradient`, i.e. kh*kw
plain matmuls that reach ~52 ms and ~14 ms. The forward convolution and the input gradient stay TensorFlow's own
ops, and the gradients are as close to float32 ones as the native bfloat16 gradients are. In float32 the matmuls
are no faster, and GPUs have cuDNN, so only trainable bfloat16 convolutions on a machine without GPUs use them.
"""

import contextlib
import types

import keras
import tensorflow as tf

MAX_TAPS = 9  # kh * kw: 3x3 is the measured case (also 1x1, 1x9, 2x4, ...); a 7x7 kernel would be 49 matmuls


def filter_gradient_by_matmuls(inputs, output_gradient, kernel_size, padding):
    """d(loss)/d(kernel) of a stride-1, undilated, channels-last 2D convolution.

    Args:
        inputs: [N, H, W, C_in], the convolution's input.
        output_gradient: [N, H_out, W_out, C_out], d(loss)/d(output).
        kernel_size: (kh, kw).
        padding: "same" or "valid" (TensorFlow's convention: the odd pixel of SAME padding goes after).

    Returns:
        [kh, kw, C_in, C_out], in the inputs' dtype.
    """
    kh, kw = kernel_size
    channels_in, channels_out = inputs.shape[-1], output_gradient.shape[-1]
    if padding == "same":
        inputs = tf.pad(inputs, [[0, 0], [(kh - 1) // 2, kh // 2], [(kw - 1) // 2, kw // 2], [0, 0]])
    out_h, out_w = tf.shape(output_gradient)[1], tf.shape(output_gradient)[2]
    flat_gradient = tf.reshape(output_gradient, [-1, channels_out])
    taps = [tf.matmul(tf.reshape(inputs[:, i:i + out_h, j:j + out_w, :], [-1, channels_in]), flat_gradient,
                      transpose_a=True)
            for i in range(kh) for j in range(kw)]
    return tf.reshape(tf.stack(taps), [kh, kw, channels_in, channels_out])


def conv2d_with_matmul_filter_gradient(inputs, kernel, bias, padding):
    """`tf.nn.conv2d` (stride 1) + `bias` whose filter gradient is `filter_gradient_by_matmuls`.

    The bias is inside so its gradient sums in float32, as TensorFlow's fused backprop-filter-with-bias does
    (a bfloat16 sum over N*H*W loses ~5 %).
    """
    kernel_size = tuple(kernel.shape[:2])
    tf_padding = padding.upper()

    @tf.custom_gradient
    def convolve(x, k, b):
        def gradient(output_gradient):
            input_gradient = tf.raw_ops.Conv2DBackpropInput(
                input_sizes=tf.shape(x), filter=k, out_backprop=output_gradient, strides=[1, 1, 1, 1],
                padding=tf_padding)
            bias_gradient = tf.reduce_sum(tf.cast(output_gradient, tf.float32), axis=[0, 1, 2])
            return (input_gradient, filter_gradient_by_matmuls(x, output_gradient, kernel_size, padding),
                    tf.cast(bias_gradient, b.dtype))

        return tf.nn.bias_add(tf.nn.conv2d(x, k, strides=1, padding=tf_padding), b), gradient

    channels_out = kernel.shape[-1]
    bias = tf.zeros([channels_out], inputs.dtype) if bias is None else tf.cast(bias, inputs.dtype)
    return convolve(inputs, tf.cast(kernel, inputs.dtype), bias)


def takes_matmul_filter_gradient(layer):
    """True for the plain Conv2D layers `filter_gradient_by_matmuls` covers (not subclasses: their `call` is theirs)."""
    return (type(layer) is keras.layers.Conv2D and layer.groups == 1 and layer.strides == (1, 1)
            and layer.dilation_rate == (1, 1) and layer.data_format == "channels_last"
            and layer.padding in ("same", "valid") and layer.kernel_size[0] * layer.kernel_size[1] <= MAX_TAPS)


def _call(layer, inputs):
    if not (layer.trainable and inputs.dtype == tf.bfloat16):
        return type(layer).call(layer, inputs)
    outputs = conv2d_with_matmul_filter_gradient(inputs, layer.kernel, layer.bias if layer.use_bias else None,
                                                 layer.padding)
    return outputs if layer.activation is None else layer.activation(outputs)


def matmul_filter_gradients_apply(policy):
    """Whether `matmul_filter_gradients` gives any layer them under the dtype `policy`: bfloat16, no GPU."""
    return policy == "mixed_bfloat16" and not tf.config.list_logical_devices("GPU")


@contextlib.contextmanager
def matmul_filter_gradients(model):
    """While open, `model`'s eligible convolutions take matmul filter gradients where they pay (bfloat16, no GPU).

    Open it around the first `fit` after `compile` (Keras traces the training step there and keeps it until the
    next `compile`): the step uses them for the layers trainable and computing in bfloat16 at that time, while
    frozen layers keep oneDNN's fused convolution + bias + ReLU. Afterwards the layers are as before, so exports
    and predictions traced later hold TensorFlow's plain ops. Weights, configs and saved files are never changed;
    forward values are the same, only the training graph differs. Nested use on one model leaves the layers to
    the outer one.

    Yields:
        The number of layers given them (0 where a GPU is visible).
    """
    layers = [] if tf.config.list_logical_devices("GPU") else [
        layer for layer in model._flatten_layers(include_self=False)
        if takes_matmul_filter_gradient(layer) and "call" not in vars(layer)]
    for layer in layers:
        # an instance attribute set past Keras' attribute tracking: the layer's class and config stay Conv2D
        object.__setattr__(layer, "call", types.MethodType(_call, layer))
    try:
        yield len(layers)
    finally:
        for layer in layers:
            object.__delattr__(layer, "call")
