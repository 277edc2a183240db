"""Adapting VGG's RGB first convolution to one depth channel."""

import numpy as np

ADAPTERS = ("sum", "mean", "learned")


def adapt_first_conv_to_depth(kernel_rgb, mode):
    """Collapse an RGB kernel [kh, kw, 3, C] to a depth kernel [kh, kw, 1, C].

    `sum` makes the 1-channel network on depth d compute exactly what the RGB network computes on [d, d, d]
    (convolution is linear in its input channels). `mean` divides that by 3 (activations start at a third of the
    RGB scale). `learned` starts from `sum` and is left trainable by the freezing step even when block 1 is frozen.
    """
    if mode not in ADAPTERS:
        raise ValueError(f"`mode` must be one of {ADAPTERS}. Received: {mode!r}")
    kernel_rgb = np.asarray(kernel_rgb, dtype=np.float32)
    if kernel_rgb.ndim != 4 or kernel_rgb.shape[2] != 3:
        raise ValueError(f"`kernel_rgb` must have shape [kh, kw, 3, C]. Received: {kernel_rgb.shape}")
    summed = kernel_rgb.sum(axis=2, keepdims=True)
    return summed / 3.0 if mode == "mean" else summed
