"""Which backbone layers train in a phase: never the recipe's frozen layers, only the blocks the phase unfreezes."""

from pose_tl.backbones.layout import block_of, vgg_block_names
from pose_tl.backbones.vgg import FIRST_CONV


def set_trainable_layers(backbone, *, frozen_layers, unfreeze, learned_adapter=False):
    """Set `trainable` on each backbone layer for one training phase.

    Args:
        backbone: the VGG feature extractor.
        frozen_layers: layer names frozen in every phase (`model.backbone.freeze`).
        unfreeze: block names trained in this phase (`["all"]` means every non-frozen block; `[]` head only).
        learned_adapter: keep the first conv trainable even if frozen (`depth_adapter: learned`).

    Returns:
        The names of the backbone layers left trainable.
    """
    blocks = set(vgg_block_names(backbone.name.split("_")[0])) if "all" in unfreeze else set(unfreeze)
    backbone.trainable = True
    trainable = []
    for layer in backbone.layers:
        is_trainable = block_of(layer.name) in blocks and layer.name not in frozen_layers
        if learned_adapter and layer.name == FIRST_CONV:
            is_trainable = True
        layer.trainable = is_trainable
        if is_trainable and layer.weights:
            trainable.append(layer.name)
    return trainable
