"""The depth VGG backbone: Keras' VGG16/VGG19 without top, one input channel, pretrained weights copied in."""

from pose_tl.backbones.depth_adapter import adapt_first_conv_to_depth
from pose_tl.backbones.weights import APPLICATIONS, load_rgb_conv_weights
from pose_tl.errors import WeightsError

FIRST_CONV = "block1_conv1"


def copy_rgb_weights_to_depth_vgg(model, rgb_weights, depth_adapter):
    """Copy RGB conv weights into a 1-channel VGG layer by layer, adapting the first conv."""
    for layer in model.layers:
        if layer.name not in rgb_weights:
            continue
        kernel, bias = rgb_weights[layer.name]
        if layer.name == FIRST_CONV:
            kernel = adapt_first_conv_to_depth(kernel, depth_adapter)
        expected = tuple(layer.kernel.shape), tuple(layer.bias.shape)
        if (tuple(kernel.shape), tuple(bias.shape)) != expected:
            raise WeightsError(f"weights for {layer.name} have shapes {kernel.shape}, {bias.shape}; "
                               f"{model.name} expects {expected[0]}, {expected[1]}")
        layer.set_weights([kernel, bias])
    missing = [layer.name for layer in model.layers if "conv" in layer.name and layer.name not in rgb_weights]
    if missing:
        raise WeightsError(f"the weights have no values for {missing} of {model.name}")


def build_vgg_backbone(name="vgg16", *, weights="imagenet", depth_adapter="sum", input_shape=(None, None, 1)):
    """A VGG feature extractor for depth (stride 32, 512 channels).

    Keras refuses ImageNet weights for a 1-channel input, so the network is built with `weights=None` and the
    RGB weights are copied in afterwards (see `adapt_first_conv_to_depth`).

    Args:
        name: "vgg16" or "vgg19".
        weights: "imagenet", "none", "hed-bsds500" or a path to a weights file.
        depth_adapter: "sum", "mean" or "learned".
        input_shape: [H, W, C] of the preprocessed depth; C is 1 for depth (3 gives the plain RGB network).

    Returns:
        A `keras.Model` named e.g. `vgg16_depth`; its layers keep Keras' names (`block3_pool`, ...).
    """
    if name not in APPLICATIONS:
        raise ValueError(f"`name` must be one of {sorted(APPLICATIONS)}. Received: {name!r}")
    model_name = f"{name}_depth" if input_shape[-1] == 1 else f"{name}_rgb"
    model = APPLICATIONS[name](include_top=False, weights=None, input_shape=tuple(input_shape), name=model_name)
    rgb_weights = load_rgb_conv_weights(name, weights)
    if rgb_weights is not None:
        if input_shape[-1] == 3:
            for layer in model.layers:
                if layer.name in rgb_weights:
                    layer.set_weights(rgb_weights[layer.name])
        else:
            copy_rgb_weights_to_depth_vgg(model, rgb_weights, depth_adapter)
    return model
