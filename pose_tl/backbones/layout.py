"""Static layer layout of Keras' VGG16 / VGG19, so recipes can be validated before TensorFlow is imported."""

CONVS_PER_BLOCK = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
OUTPUT_STRIDE = 32  # five 2x2 max-pools


def vgg_block_names(name):
    return [f"block{b}" for b in range(1, len(CONVS_PER_BLOCK[name]) + 1)]


def vgg_layer_names(name):
    """Layer names of `keras.applications.VGG16/19(include_top=False)`, input layer excluded, in order."""
    names = []
    for block, convs in enumerate(CONVS_PER_BLOCK[name], start=1):
        names += [f"block{block}_conv{i}" for i in range(1, convs + 1)]
        names.append(f"block{block}_pool")
    return names


def block_of(layer_name):
    """`block3_conv2` -> `block3`."""
    return layer_name.split("_")[0]
